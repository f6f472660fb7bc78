"""Named rows of a run, as the runtime produces them (the tables of :class:`~sieve.runtime.RunResult` are
built from these; column names are the field names)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

__all__ = ["LayerRow", "LayerExperts", "NO_EXPERTS", "StepRow", "PimPhase", "ExpertRows", "columns"]


@dataclass(slots=True)  # not frozen: a run builds one per layer, GPU and sub-batch, and frozen fields set slowly
class LayerRow:
    """One layer on one GPU for one sub-batch; see :mod:`sieve.runtime.result` for the meaning of each field."""

    step: int
    layer: int
    gpu: int
    sub_batch: int
    kind: str
    attention_on: str
    attention_s: float
    pim_experts_s: float
    experts_active: int
    experts_on_pim: int
    tokens: int
    tokens_on_pim: int
    estimated_s: float
    link_s: float
    start_s: float
    end_s: float
    ended_by: str
    critical_path: str


class LayerExperts(NamedTuple):
    """The expert columns of a layer row (:class:`LayerRow`), as the runtime works them out when the policy has
    placed the layer."""

    pim_experts_s: float
    experts_active: int
    experts_on_pim: int
    tokens: int
    tokens_on_pim: int
    estimated_s: float
    link_s: float


NO_EXPERTS = LayerExperts(0.0, 0, 0, 0, 0, math.nan, 0.0)
"""The expert columns of a dense layer."""


@dataclass(frozen=True)
class StepRow:
    step: int
    start_s: float
    end_s: float
    time_s: float
    decode_tokens: int
    prefill_tokens: int


@dataclass(frozen=True)
class PimPhase:
    """A phase on a GPU's PIM channels (``kind``: ``attention`` or ``experts``) and each channel's busy seconds."""

    step: int
    layer: int
    gpu: int
    kind: str
    start_s: float
    channel_busy_s: np.ndarray


@dataclass(slots=True)  # not frozen, as LayerRow
class ExpertRows:
    """The activated experts of one (step, layer, GPU, sub-batch): global index, tokens, on PIM or not."""

    step: int
    layer: int
    gpu: int
    sub_batch: int
    expert: np.ndarray
    tokens: np.ndarray
    on_pim: np.ndarray


def columns(record_type) -> list[str]:
    """The field names of a row record, in order: the table's columns."""
    return [f.name for f in fields(record_type)]


def frame(rows, record_type):
    """A DataFrame of row records, one column per field (built column by column: pandas' own conversion
    of dataclasses deep-copies every row)."""
    import pandas as pd

    return pd.DataFrame({c: [getattr(r, c) for r in rows] for c in columns(record_type)}, columns=columns(record_type))
