"""The command-line tools start with only what they use: a run of ``python -m sieve.dram`` or ``python -m
sieve.pim`` on a small trace loads neither the config stack (Hydra, OmegaConf), the plots (matplotlib), the
Numba kernels, SciPy nor pandas; a DRAM run loads pandas only to write a table.
Checked on the modules a subprocess holds after the run (not timed: the start-up times themselves are in
``benchmarks/dram_speed.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

HEAVY = ("pandas", "hydra", "omegaconf", "matplotlib", "numba", "scipy")

_RUN = """
import json, runpy, sys
sys.argv = {argv!r}
code = None
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
print(json.dumps({{"code": code, "modules": sorted({{m.split(".")[0] for m in sys.modules}})}}), file=sys.stderr)
"""


def _loaded_after(module: str, *args: str) -> set[str]:
    """Top-level packages loaded by running ``python -m module args`` to completion (in a fresh process
    started in the checkout, so that it imports this copy of sieve)."""
    code = _RUN.format(argv=[module, *args], module=module)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    report = json.loads(p.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), p.stderr
    return set(report["modules"])


@pytest.fixture
def request_trace(tmp_path) -> Path:
    path = tmp_path / "ten.trace"
    path.write_text("".join(f"{'ST' if i % 3 == 2 else 'LD'} {i * 4096:#x}\n" for i in range(10)))
    return path


def test_dram_cli_loads_no_heavy_package(request_trace):
    for args in ([], ["--json", "--energy"], ["--json", "--refresh", "allbank", "--write-completion", "data"]):
        loaded = _loaded_after("sieve.dram", str(request_trace), *args)
        assert not loaded & set(HEAVY), (args, sorted(loaded & set(HEAVY)))


def test_dram_cli_loads_pandas_only_for_tables(request_trace, tmp_path):
    # the per-bank CSV is a table: that run may load pandas, the summary runs above may not
    loaded = _loaded_after("sieve.dram", str(request_trace), "--bank-csv", str(tmp_path / "bank.csv"))
    assert "pandas" in loaded and not loaded & {"hydra", "matplotlib", "numba", "scipy"}


def test_pim_cli_loads_no_heavy_package(tmp_path):
    # a hardware preset without overrides is read from its plain YAML files and validated without OmegaConf
    trace = tmp_path / "t.csv"
    trace.write_text("AiM MAC_ABK 64 0xffffffff 0\nAiM MAC_ABK 64 0xffffffff 1\nAiM EOC\n")
    loaded = _loaded_after("sieve.pim", str(trace), "--json")
    assert not loaded & set(HEAVY), sorted(loaded)


@pytest.mark.parametrize("module", ["sieve.dram", "sieve.pim", "sieve.dram.__main__", "sieve.pim.__main__"])
def test_importing_the_tools_loads_no_heavy_package(module):
    code = f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
