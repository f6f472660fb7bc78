"""Bad input gets a clear error naming the value and what is allowed, never a traceback from inside."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from sieve.dram import Device, StandardError, load_standard
from sieve.dram.requests import Trace, TraceError, read_trace, run_requests
from sieve.dram.spec import STANDARDS_DIR, standard_from_dict
from sieve.dram.tracegen import generate


@pytest.fixture()
def raw():
    with open(STANDARDS_DIR / "hbm3.yaml") as f:
        return yaml.safe_load(f)


def _err(data) -> str:
    with pytest.raises(StandardError) as e:
        standard_from_dict(data, where="test.yaml")
    return str(e.value)


def test_unknown_standard():
    with pytest.raises(StandardError, match=r"unknown DRAM standard 'hbm9'; available: .*hbm3"):
        load_standard("hbm9")


def test_negative_timing(raw):
    raw["timing"]["tRP"] = -1
    assert "timing 'tRP' must be a finite non-negative number, got -1" in _err(raw)


def test_missing_timing(raw):
    del raw["timing"]["tRP"]
    msg = _err(raw)
    assert "unknown timing 'nRP'" in msg and "nRAS" in msg


def test_timing_without_value(raw):
    raw["timing"]["tRP"] = None
    assert "timing 'tRP' has no value" in _err(raw)


def test_window_without_count(raw):
    raw["constraints"].append({"level": "pseudochannel", "prev": ["ACT"], "next": ["ACT"], "latency": "nFAW",
                               "window": None})
    assert "'window' needs a count" in _err(raw)


def test_closed_or_row_only_for_a_row_opener(raw):
    raw["commands"]["PRE"]["needs"] = "closed_or_row"
    assert "needs: closed_or_row is for a command that opens a row" in _err(raw)


def test_unknown_row_need(raw):
    raw["commands"]["ACT"]["needs"] = "open_or_closed"
    assert "needs 'open_or_closed' is not one of any, open, closed, closed_or_row" in _err(raw)


def test_window_not_a_count(raw):
    raw["constraints"][7]["window"] = 0
    assert "window must be a positive integer, got 0" in _err(raw)


def test_unknown_command_in_record(raw):
    raw["constraints"][0]["next"] = ["RDX"]
    msg = _err(raw)
    assert "unknown command 'RDX'" in msg and "ACT" in msg


def test_unknown_key_is_named(raw):
    raw["constraints"][0]["latncy"] = "nBL"
    assert "unknown key(s) latncy" in _err(raw)


def test_unknown_level(raw):
    raw["constraints"][0]["level"] = "rank"
    assert "level 'rank' is not one of channel" in _err(raw)


def test_bad_latency_expression(raw):
    raw["constraints"][0]["latency"] = "nBL + __import__('os')"
    assert "may use timing names, numbers" in _err(raw)


def test_negative_latency(raw):
    raw["constraints"][0]["latency"] = "nBL - nCL"
    assert "must be >= 0" in _err(raw)


def test_half_tick_latency(raw):
    raw["ticks_per_ck"] = 1
    for c in raw["commands"].values():
        c.pop("issue_ticks", None)
        c["cycles"] = 1
    raw["constraints"][0]["latency"] = 2.5
    assert "not a whole number of ticks" in _err(raw)


def test_refresh_that_cannot_keep_up(raw):
    raw["timing"]["tREFI"] = 100.0
    assert "must be longer than the refresh's own recovery" in _err(raw)


def test_stream_address_beyond_device():
    dev = Device("hbm3")
    with pytest.raises(StandardError, match=r"command #1 \(RD\): bank 4 is outside 0..3"):
        dev.execute(["ACT", "RD"], np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 4]]), auto_prereq=True)
    with pytest.raises(StandardError, match=r"row 8192 is outside 0..8191"):
        dev.execute(["ACT"], np.array([[0, 0, 0, 0, 0]]), row=[8192])


def test_stream_wrong_row_state_names_the_fix():
    dev = Device("hbm3")
    with pytest.raises(StandardError, match=r"command #0 \(RD .*the bank is closed; insert the ACT"):
        dev.execute(["RD"], np.array([[0, 0, 0, 0, 0]]))


def test_unknown_command_in_stream():
    with pytest.raises(StandardError, match=r"command #1: unknown command 'MAC'"):
        Device("hbm3").execute(["ACT", "MAC"], np.zeros((2, 5), dtype=np.int64))


@pytest.mark.parametrize("line", ["LD", "LD 0xZZ", "XX 12", "LD 12 34", "LD -5", "LD 0x1ffffffffffffffff", "ld 5"])
def test_malformed_trace_line(tmp_path, line):
    path = tmp_path / "t.trace"
    path.write_text(f"# header\nLD 0x40\n{line}\nST 64\n")
    with pytest.raises(TraceError) as e:
        read_trace(path)
    assert f"t.trace:3: malformed trace line {line!r}" in str(e.value)


def test_trace_formats(tmp_path):
    path = tmp_path / "t.trace"
    path.write_text("LD 0x40\n\n# comment\n  ST 64  \r\nLD 0X1F\n")
    t = read_trace(path)
    assert list(t.addr) == [64, 64, 31] and list(t.is_write) == [0, 1, 0] and list(t.line) == [1, 4, 5]


def test_a_pipe_reads_as_a_file(tmp_path):
    """A trace that cannot be mapped (a pipe) is read; line numbers are made only where lines were
    skipped, and are 1 .. n otherwise."""
    import os
    import threading

    text = "LD 0x40\n\n# comment\nST 64\n"
    (tmp_path / "t.trace").write_text(text)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=(text,))
    writer.start()
    piped = read_trace(fifo)
    writer.join()
    mapped = read_trace(tmp_path / "t.trace")
    for t in (piped, mapped):
        assert list(t.addr) == [64, 64] and list(t.is_write) == [0, 1] and list(t.line) == [1, 4]
    (tmp_path / "plain.trace").write_text("LD 1\nST 2\nLD 3\n")
    plain = read_trace(tmp_path / "plain.trace")
    assert plain.lines is None and list(plain.line) == [1, 2, 3]


def test_address_beyond_device(tmp_path):
    path = tmp_path / "t.trace"
    path.write_text("LD 0x40\nLD 0x200000000\n")
    with pytest.raises(TraceError, match=r"t.trace:2: address 0x200000000 is beyond the device \(hbm3"):
        run_requests(Device("hbm3"), path)


def test_missing_trace_file(tmp_path):
    with pytest.raises(TraceError, match="does not exist"):
        read_trace(tmp_path / "nope.trace")


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sieve.dram", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_cli_json(tmp_path):
    out = tmp_path / "c.trace"
    assert _cli("--generate", "conflict", 64, out).returncode == 0
    p = _cli(out, "--standard", "hbm3", "--refresh", "off", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("cycles_ck", "requests", "commands", "row_hits", "row_misses", "row_conflicts",
                "avg_read_latency_ck", "wall_s"):
        assert key in d
    assert set(d["commands"]) >= {"ACT", "PRE", "PREA", "RD", "WR", "REF"}
    assert d["requests"] == 64 and d["commands"]["ACT"] == 64


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.trace"
    bad.write_text("LD 1\nLOAD 2\n")
    p = _cli(bad, "--json")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == f"error: {bad}:2: malformed trace line 'LOAD 2'; expected 'LD <addr>' or " \
                               "'ST <addr>' (decimal or 0x hexadecimal, below 2^64)"
    p = _cli(bad, "--standard", "ddr9")
    assert p.returncode == 2 and "unknown DRAM standard 'ddr9'; available:" in p.stderr
    assert "Traceback" not in p.stderr
    p = _cli(bad, "--refresh", "sometimes")
    assert p.returncode == 2 and "invalid choice: 'sometimes'" in p.stderr


def test_generate_leaves_no_partial_file(tmp_path):
    p = _cli("--generate", "seq", 10**12, tmp_path / "huge.trace")
    assert p.returncode == 2 and "exceed the device" in p.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, message", [
    (["--generate", "random", "10", "OUT", "--seed", "-1"], "error: seed must be a non-negative integer, got -1"),
    (["--generate", "conflict", str(2**63 - 1), "OUT"],
     f"error: the number of requests must be a positive integer below 2^40, got {2**63 - 1}"),
    (["TRACE", "--queue-size", "3000000000"],
     "error: queue_size must be a positive integer below 2^31, got 3000000000"),
])
def test_cli_refuses_numbers_out_of_range(tmp_path, capsys, args, message):
    from sieve.dram.__main__ import main

    trace = tmp_path / "t.trace"
    trace.write_text("LD 0x0\n")
    out = tmp_path / "out.trace"
    argv = [str(out) if a == "OUT" else str(trace) if a == "TRACE" else a for a in args]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message
    assert not out.exists()


def test_generate_checks_its_arguments():
    dev = Device("hbm3")
    for kwargs, message in [(dict(seed=True), "seed must be a non-negative integer, got True"),
                            (dict(write_fraction=1.5), "write_fraction must lie in 0..1, got 1.5"),
                            (dict(write_fraction=float("nan")), "write_fraction must lie in 0..1, got nan"),
                            (dict(write_fraction="half"), "write_fraction must lie in 0..1, got 'half'")]:
        with pytest.raises(StandardError, match=f"^{message}$"):
            generate("random", 10, dev, **kwargs)


def test_requests_that_do_not_fit_are_named(monkeypatch):
    """Running out of memory while a trace is generated or the queues are allocated is reported with
    the size asked for (the allocation itself is made to fail: whether a large one fails depends on
    the machine's overcommit policy)."""
    import sieve.dram.requests as requests_mod
    import sieve.dram.tracegen as tracegen_mod

    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    dev = Device("hbm3")
    trace = generate("random", 10, dev)
    monkeypatch.setattr(tracegen_mod, "_generate", out_of_memory)
    with pytest.raises(StandardError, match=r"^549755813888 requests do not fit in memory \(their addresses "
                                            r"alone take 4096.0 GiB\)$"):
        generate("random", 2**39, dev)
    monkeypatch.setattr(requests_mod._controller, "Controller", out_of_memory)
    with pytest.raises(StandardError, match=r"^queue_size 100000000: the queues of 16 channels do not fit "
                                            r"in memory \(their entries alone take 190.7 GiB\)$"):
        run_requests(dev, trace, queue_size=100_000_000)


def test_extends_loop(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\n")
    b.write_text(f"extends: {a}\n")
    with pytest.raises(StandardError, match="'extends' loops through"):
        load_standard(a)


def test_extends_merges(tmp_path):
    derived = tmp_path / "d.yaml"
    derived.write_text("name: hbm3x\nextends: hbm3\ntiming: {nBL: 4}\n"
                       "constraints: [{level: bank, prev: [RD], next: [RD], latency: nBL}]\n")
    std = load_standard(derived)
    base = load_standard("hbm3")
    assert std.name == "hbm3x" and std.timing["nBL"] == 4 and std.timing["nCL"] == base.timing["nCL"]
    assert len(std.constraints) == len(base.constraints) + 1


def test_pim_standard_extends_dram():
    aim = load_standard("gddr6_aim")
    base = load_standard("gddr6")
    assert set(base.command_names) < set(aim.command_names)
    assert aim.command("MAC16").pim and aim.command("MAC16").scope == "channel"
