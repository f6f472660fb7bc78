"""Every notebook under ``notebooks/`` runs top to bottom, draws a figure in each cell tagged ``figure``,
and is stored without outputs (so diffs show code, and stale figures never pass for current ones).

A cell that draws a figure carries the tag in its metadata: ``"metadata": {"tags": ["figure"]}``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
FIGURE_TAG = "figure"
TIMEOUT_S = 600

# The notebooks that run whole sweeps (15-25 s each on two cores) are executed with the slow checks.
SWEEP_NOTEBOOKS = {"pareto.ipynb", "sensitivity.ipynb"}

notebooks = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
executed_notebooks = pytest.mark.parametrize(
    "path", [pytest.param(p, marks=pytest.mark.slow) if p.name in SWEEP_NOTEBOOKS else p for p in NOTEBOOKS],
    ids=[p.name for p in NOTEBOOKS])


def _code_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _is_figure_cell(cell) -> bool:
    return FIGURE_TAG in cell.metadata.get("tags", [])


def test_notebooks_are_found():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"


@notebooks
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in _code_cells(nb) if c.outputs or c.execution_count is not None]
    assert not dirty, (f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them "
                       f"(e.g. jupyter nbconvert --clear-output --inplace {path.name})")


@executed_notebooks
def test_runs_and_draws_every_tagged_figure(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in _code_cells(nb) if _is_figure_cell(c)]
    assert tagged, f"{path.name}: no code cell is tagged {FIGURE_TAG!r}; tag the cells that draw figures"
    # Inline figures even where MPLBACKEND is set for headless runs (it would reach the kernel).
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)  # raises CellExecutionError, with the traceback, at the first failing cell

    errors = [i for i, c in _code_cells(nb) if any(o.output_type == "error" for o in c.outputs)]
    assert not errors, f"{path.name}: cells {errors} raised"
    blank = [i for i in tagged if not any("image/png" in o.get("data", {}) for o in nb.cells[i].outputs)]
    assert not blank, f"{path.name}: cells {blank} are tagged {FIGURE_TAG!r} but drew no image/png"
