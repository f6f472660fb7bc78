"""Writing result tables: the run tables' names and formats, and one writer for every table sieve saves.

This module sits below :mod:`sieve.runtime`: the runtime, the figure scripts and the sweep collector
all write through :func:`write_table`, and nothing here imports the runtime.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["TABLES", "TABLE_FORMATS", "write_table"]

TABLES = ("layers", "channels", "experts", "steps")
"""The tables of a run, each written as ``<name>.<format>`` into the run directory."""
TABLE_FORMATS = ("csv", "parquet")


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` as CSV or Parquet, by the suffix of ``path``; the file appears whole or not at all."""
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"{path}: unknown table format {path.suffix or '(none)'!r}; allowed: "
                         f"{', '.join('.' + f for f in TABLE_FORMATS)}")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
