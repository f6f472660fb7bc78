"""The AiM simulator's own test traces run through ``python -m sieve.pim``.

The traces are rebuilt by ``scripts/aim_reference_traces.py`` in the reference's file layout. The
default suite runs them shortened (2 iterations) in-process, plus one through a real
``python -m sieve.pim``; the full 1024-iteration files run with ``-m slow``. Cycle counts of the
single-instruction micro-benchmarks are checked against closed forms from the standard's timing values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sieve.dram import Device
from sieve.pim import run_aim_trace
from sieve.pim.__main__ import main as cli_main
from tests import scripts

ROOT = Path(__file__).resolve().parents[2]
refs = scripts.load("aim_reference_traces")

NAMES = ["all_isr.csv", "all_isr.trace", *refs.MICRO]
FIXTURES = ROOT / "tests" / "fixtures" / "aim"


# memory_system_cycles of the reference (AiM simulator at 0f28a07, test/example.yaml) on the full traces
REFERENCE_CYCLES = {
    "all_isr.trace": 689,
    "micro_ewmul_16banks.csv": 227_260, "micro_macab_1024_16banks.csv": 231_383,
    "micro_rdmac_1024_16banks.csv": 3_106, "micro_wrab_1024_1bank.csv": 103_393,
    "micro_wrbias_1024_16banks.csv": 2_083, "micro_wrbias_mac_af_rdaf_16banks.csv": 424_960,
    "micro_wrbias_mac_rdmac_mac_16banks.csv": 576_482, "micro_wrgb_gbbk_bggb_16banks.csv": 637_890,
}
# The reference counts cycles from 1, and its EOC completes one cycle after the last command's
# completion: a trace's cycles are the last completion (counted from 0) + 2.
EOC_CK = 2


def expected_cycles(name: str, n: int) -> int | None:
    """Closed form of a micro-benchmark's cycles for n iterations (None where there is none)."""
    return None if (body := _body_cycles(name, n)) is None else body + EOC_CK


def _body_cycles(name: str, n: int) -> int | None:
    """Ticks from the first command to the last completion."""
    T = {k: int(v) for k, v in Device("gddr6_aim").standard.timing.items()}
    macs = 63 * T["nCCDL"]  # 64 column commands, nCCDL apart
    if name == "micro_macab_1024_16banks.csv":   # ACT16, 64 MAC16, PREA after nRTP, next ACT16 after nRP
        return (n - 1) * (T["nRCDRDMAC"] + macs + T["nRTP"] + T["nRP"]) + T["nRCDRDMAC"] + macs + 1
    if name == "micro_ewmul_16banks.csv":        # EWMUL16 to PREA: nCWL + nWR
        return (n - 1) * (T["nRCDEWMUL"] + macs + T["nCWL"] + T["nWR"] + T["nRP"]) + T["nRCDEWMUL"] + macs + 1
    if name == "micro_wrab_1024_1bank.csv":      # ACT16, WRA16, next ACT16 after write recovery + nRP
        wra = T["nRCDWR"] + T["nCWL"] + T["nBL"] + T["nWR"] + T["nRP"]
        return (n - 1) * wra + T["nRCDWR"] + T["nCWL"] + T["nBL"] + T["nRP"]
    if name == "micro_rdmac_1024_16banks.csv":   # TMOD once; each blocking read waits for the previous;
        rd = T["nCLREG"] + T["nBL"]                # EOC is decoded the cycle after the last one completes
        return T["nMODCH"] + (n - 1) * (rd + 1) + rd + 1
    if name == "micro_wrbias_1024_16banks.csv":  # TMOD once; register writes nBL apart
        return T["nMODCH"] + (n - 1) * T["nBL"] + T["nCWLREG"] + T["nBL"]
    return None


@pytest.fixture(scope="module")
def short_traces(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aim_ref")
    refs.write_all(out, rows=2)
    return out


def test_reference_layout():
    # sizes of the reference's files (test/ at its newest commit) for 1024 iterations: same layout
    sizes = {"micro_macab_1024_16banks.csv": 31730, "micro_ewmul_16banks.csv": 29680,
             "micro_rdmac_1024_16banks.csv": 25661, "micro_wrbias_1024_16banks.csv": 26685,
             "micro_wrab_1024_1bank.csv": 29682, "micro_wrbias_mac_af_rdaf_16banks.csv": 100367,
             "micro_wrbias_mac_rdmac_mac_16banks.csv": 109583, "micro_wrgb_gbbk_bggb_16banks.csv": 97124}
    for name, make in refs.MICRO.items():
        assert len(make(1024)) == sizes[name], name
    assert len(refs.all_isr()) == 5371


@pytest.mark.parametrize("name", NAMES)
def test_reference_trace_runs(short_traces, capsys, name):
    assert cli_main([str(short_traces / name), "--hw", "gddr6_aim", "--json", "--check"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["violations"] == 0
    assert out["cycles"] > 0 and out["commands"]
    want = expected_cycles(name, 2)
    if want is not None:
        assert out["cycles"] == want


def _reference_commands() -> list[tuple[int, int, str, int]]:
    lines = [ln for ln in (FIXTURES / "all_isr_reference_commands.csv").read_text().splitlines()
             if ln and not ln.startswith("#")][1:]
    return sorted((int(t), int(c), cmd, int(b)) for t, c, cmd, b in (ln.split(",") for ln in lines))


def test_all_isr_trace_equals_the_reference(short_traces):
    """The reference's test/all_isr.trace mixes conventional requests (W MEM, WR_SBK, RD_SBK) with
    all-bank instructions on the same rows: 689 cycles, and every command on the same tick, channel and
    bank as in the reference's command log (so every per-channel command count too)."""
    res = run_aim_trace(short_traces / "all_isr.trace", Device("gddr6_aim"), log=True)
    assert res.cycles == REFERENCE_CYCLES["all_isr.trace"]
    log = res.log.to_frame()
    bank = np.where(log["bank"] < 0, -1, log["bankgroup"] * 4 + log["bank"])
    mine = sorted(zip((log["tick"] + 1).tolist(), log["channel"].tolist(), log["command"].tolist(), bank.tolist()))
    assert mine == _reference_commands()


def test_python_dash_m(short_traces):
    proc = subprocess.run([sys.executable, "-m", "sieve.pim", str(short_traces / "all_isr.csv"), "--hw",
                           "gddr6_aim", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"cycles", "commands", "wall_s"} <= set(out)
    assert out["instructions"]["EOC"] == 1 and out["commands"]["TMOD"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_full_reference_trace(tmp_path, name):
    (path,) = [p for p in refs.write_all(tmp_path) if p.name == name]
    proc = subprocess.run([sys.executable, "-m", "sieve.pim", str(path), "--hw", "gddr6_aim", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    want = expected_cycles(name, 1024)
    if want is not None:
        assert out["cycles"] == want
    if name in REFERENCE_CYCLES:
        assert out["cycles"] == REFERENCE_CYCLES[name]
    if name == "micro_macab_1024_16banks.csv":
        assert out["commands"] == {"PREA": 1023 * 32, "ACT16": 1024 * 32, "MAC16": 1024 * 64 * 32}
        assert 0.55 < out["mac_peak_fraction"] < 0.58  # 128 MAC cycles of every 226 (see the module doc)
