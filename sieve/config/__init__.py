"""Typed schemas of the Hydra config groups, registered in Hydra's ConfigStore."""

from __future__ import annotations

from . import model, workload

__all__ = ["register_all"]


def register_all() -> None:
    """Store every group's schema; call once before composing a config."""
    model.register()
    workload.register()
