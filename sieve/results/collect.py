"""A sweep as one table: the summaries of every finished run below a directory, and optionally their tables.

    python -m sieve.results multirun/2026-11-29/09-03-20
    python -m sieve.results multirun/2026-11-29/09-03-20 --out fig9.csv    (or .parquet)

From Python::

    from sieve.results import collect
    runs = collect("multirun/2026-11-29/09-03-20")                      # one row per run
    both = collect("multirun/2026-11-29/09-03-20", tables=("layers",))  # {"summary": ..., "layers": ...}

A run directory is one that ``python -m sieve.run`` writes: ``summary.json`` (written last, so its presence
means the run finished), the tables ``layers``, ``channels``, ``experts``, ``steps`` (CSV or Parquet),
``config.yaml`` and, under Hydra, ``.hydra/overrides.yaml``. A directory that Hydra started a job in but
that has no ``summary.json`` is an unfinished run: it is left out, with a warning saying how many were.
Hidden directories (``.hydra``, ``.submitit``, a run's ``.partial-*`` staging directory) are not searched.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from sieve._cli import output_path_problem

from .tables import TABLE_FORMATS, TABLES, write_table

__all__ = ["IDENTITY_COLUMNS", "collect", "find_runs", "main"]

log = logging.getLogger(__name__)

IDENTITY_COLUMNS = ("model", "sched", "batch_size", "num_gpus")
"""Summary columns put in front of every row of a collected table, so rows of different runs stay apart."""

TABLE_SUFFIXES = tuple(f".{fmt}" for fmt in TABLE_FORMATS)

# What a run directory holds before its summary.json: Hydra's job files, or write_run's outputs.
_STARTED_MARKERS = (".hydra", "config.yaml", *(f"{t}{s}" for t in TABLES for s in TABLE_SUFFIXES))


def find_runs(root: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The finished and the unfinished run directories at or below ``root``, each sorted by path.

    A run directory is not searched further: runs do not nest."""
    root = Path(root)
    finished: list[Path] = []
    unfinished: list[Path] = []
    for here, dirs, files in os.walk(root):
        path = Path(here)
        if "summary.json" in files:
            finished.append(path)
            dirs.clear()
            continue
        if any(name in files or name in dirs for name in _STARTED_MARKERS):
            unfinished.append(path)
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))

    def key(p: Path) -> tuple:
        return _natural_key(p.relative_to(root).as_posix())

    return sorted(finished, key=key), sorted(unfinished, key=key)


def _natural_key(text: str) -> tuple:
    """Numbers in a path compare as numbers: ``batch_size=4`` before ``batch_size=16``."""
    import re

    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text))


def _read_summary(run: Path) -> dict:
    path = run / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path} holds a {type(summary).__name__}, not a JSON object of summary values")
    return summary


def _read_overrides(run: Path) -> str:
    """The job's command-line overrides as Hydra recorded them, joined by spaces ('' outside Hydra)."""
    import yaml

    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return ""
    overrides = yaml.safe_load(path.read_text())
    if overrides is None:
        return ""
    if isinstance(overrides, list):
        return " ".join(str(o) for o in overrides)
    return str(overrides)


def _read_table(run: Path, name: str) -> pd.DataFrame:
    for suffix in TABLE_SUFFIXES:
        path = run / f"{name}{suffix}"
        if path.is_file():
            return pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    raise FileNotFoundError(f"{run / name}.csv (or .parquet): the finished run {run} has no {name} table")


def _check_tables(tables: str | Sequence[str]) -> tuple[str, ...]:
    names = (tables,) if isinstance(tables, str) else tuple(tables)
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise ValueError(f"unknown table {unknown[0]!r}; tables of a run: {', '.join(TABLES)}")
    return names


def collect(sweep_dir: str | os.PathLike, *, tables: str | Sequence[str] | None = None):
    """One row per finished run at or below ``sweep_dir``: the keys of its ``summary.json``, ``overrides``
    (the job's Hydra overrides, space-separated; '' when not run by Hydra) and ``run_dir`` (relative to
    ``sweep_dir``, ``.`` for ``sweep_dir`` itself), in the order of the run directories' paths.

    With ``tables`` (names among ``layers``, ``channels``, ``experts``, ``steps``), returns a dict instead:
    ``"summary"`` -> that frame, and each named table concatenated over the runs, with the run's
    ``model, sched, batch_size, num_gpus`` and ``run_dir`` put in front of its rows.

    Raises :class:`FileNotFoundError` when ``sweep_dir`` does not exist and :class:`ValueError` when it
    holds no finished run; unfinished runs (no ``summary.json``) are left out with a logged warning.
    """
    root = Path(sweep_dir)
    names = _check_tables(tables) if tables is not None else ()
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory (give the sweep or run directory)")
    finished, unfinished = find_runs(root)
    if not finished:
        extra = f" ({len(unfinished)} unfinished)" if unfinished else ""
        raise ValueError(f"{root} holds no finished run: no summary.json at or below it{extra}")
    if unfinished:
        shown = ", ".join(p.relative_to(root).as_posix() for p in unfinished[:3])
        more = f" and {len(unfinished) - 3} more" if len(unfinished) > 3 else ""
        log.warning("%d of %d runs under %s are unfinished (no summary.json) and were skipped: %s%s",
                    len(unfinished), len(finished) + len(unfinished), root, shown, more)

    rows = []
    for run in finished:
        rel = run.relative_to(root).as_posix()
        rows.append({**_read_summary(run), "overrides": _read_overrides(run), "run_dir": rel})
    summary = pd.DataFrame(rows)
    if tables is None:
        return summary

    out = {"summary": summary}
    for name in names:
        parts = []
        for run, row in zip(finished, rows):
            df = _read_table(run, name)
            front = [c for c in (*IDENTITY_COLUMNS, "run_dir") if c not in df.columns]
            for i, col in enumerate(front):
                df.insert(i, col, row.get(col))
            parts.append(df)
        out[name] = pd.concat(parts, ignore_index=True)
    return out


SETTINGS = ("model", "hw", "sched", "batch_size", "num_gpus", "sub_batches", "decode_steps", "prefill_requests",
            "seed", "routing")
FIGURES = ("tpot_s", "tokens_per_s_per_user", "tokens_per_s_per_gpu", "gpu_busy", "pim_busy", "nvlink_busy")


def _readable(table: pd.DataFrame, every_column: bool = False) -> str:
    """The table for a terminal: settings shared by every run on one line above it, then the settings that
    differ and the main figures (4 significant digits); ``every_column`` adds overrides and run directory."""
    same = [c for c in SETTINGS if c in table and table[c].nunique(dropna=False) == 1]
    shown = table if every_column else table[[c for c in (*SETTINGS, *FIGURES)
                                              if c in table and c not in same]]
    head = ", ".join(f"{c}={table[c].iloc[0]}" for c in same)
    with pd.option_context("display.width", None, "display.max_columns", None, "display.max_colwidth", None):
        body = shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    return (f"{len(table)} runs; in every run: {head}\n" if head and not every_column else "") + body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sieve.results",
        description="One row per finished run of a sweep (its summary.json, overrides and directory).")
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep directory (hydra.sweep.dir) or any "
                        "directory with run directories below it")
    parser.add_argument("--out", metavar="FILE", help="write the table to FILE (.csv or .parquet) instead of "
                        "printing it")
    parser.add_argument("--all", action="store_true", help="print every column (default: the settings that "
                        "differ between runs and the main figures; --out always writes every column)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)

    out = Path(args.out) if args.out else None
    problem = out is not None and output_path_problem(out, "--out")
    if out is not None and out.suffix not in TABLE_SUFFIXES:
        problem = f"--out {out}: unknown table format {out.suffix or '(none)'!r}; allowed: {', '.join(TABLE_SUFFIXES)}"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        table = collect(args.sweep_dir)
        if out is None:
            print(_readable(table, every_column=args.all))
            return 0
        write_table(table, out)
    except (OSError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(table)} runs written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from sieve._cli import exit_with

    exit_with(main, "no table was written")
