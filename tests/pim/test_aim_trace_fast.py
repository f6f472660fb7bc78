"""The compiled AiM-trace executor against the Python runner (its oracle, ``fast=False``).

Random programs mix every opcode, masks over a few channels, opsizes, banks, rows that alias AF's
stand-in rows, CFR writes, SYNC and conventional requests, so that runs of compiled lines alternate
with lines left to the Python runner. Cycles, counters, per-channel tables and the command log must be
identical, command for command.
"""

from __future__ import annotations

import numpy as np
import pytest

from sieve.dram import Device
from sieve.pim.aim_trace import AimTraceError, run_aim_trace
from tests import scripts

OPCODES = ["MAC_ABK", "MAC_SBK", "EWMUL", "WR_GB", "WR_BIAS", "RD_MAC", "RD_AF", "AF", "COPY_BKGB",
           "COPY_GBBK", "WR_ABK", "WR_SBK", "RD_SBK", "EWADD", "SYNC", "W_CFR", "W_GPR", "W_MEM", "R_MEM"]


@pytest.fixture(scope="module")
def dev() -> Device:
    return Device("gddr6_aim")


def _line(rng: np.random.Generator, op: str, rows: int) -> str:
    mask = int(rng.choice([0x80000000, 0x40000000, 0xC0000000, 0x1, 0x80000001]))
    single = int(rng.choice([0x80000000, 0x40000000, 0x1]))
    size = int(rng.integers(1, 5))
    bank = int(rng.integers(0, 16))
    row = int(rng.choice([0, 1, 2, rows - 1, rows - 2, rows - 4]))  # AF's stand-ins: rows - 1 - afm
    return {
        "MAC_ABK": f"AiM MAC_ABK {size} {mask:#x} {row}", "MAC_SBK": f"AiM MAC_SBK {size} {mask:#x} {bank} {row}",
        "EWMUL": f"AiM EWMUL {size} {mask:#x} {row}", "WR_GB": f"AiM WR_GB {size} 0 {mask:#x}",
        "WR_BIAS": f"AiM WR_BIAS 0 {mask:#x}", "RD_MAC": f"AiM RD_MAC 0 {mask:#x}", "RD_AF": f"AiM RD_AF 0 {mask:#x}",
        "AF": f"AiM AF {mask:#x}", "COPY_BKGB": f"AiM COPY_BKGB {size} {mask:#x} {bank} {row}",
        "COPY_GBBK": f"AiM COPY_GBBK {size} {mask:#x} {bank} {row}", "WR_ABK": f"AiM WR_ABK 0 {mask:#x} {row}",
        "WR_SBK": f"AiM WR_SBK 0 {single:#x} {bank} {row}", "RD_SBK": f"AiM RD_SBK 0 {single:#x} {bank} {row}",
        "EWADD": "AiM EWADD 4 8 12", "SYNC": "AiM SYNC", "W_CFR": f"W CFR {int(rng.integers(0, 3))} {int(rng.choice([0, 1, 3]))}",
        "W_GPR": "W GPR 1", "W_MEM": f"W MEM {int(rng.choice([0, 1, 31]))} {bank} {row}",
        "R_MEM": f"R MEM {int(rng.choice([0, 1, 31]))} {bank} {row}",
    }[op]


def random_program(seed: int, rows: int, n: int = 40) -> str:
    rng = np.random.default_rng(seed)
    weights = np.ones(len(OPCODES))
    weights[OPCODES.index("SYNC")] = 0.3
    ops = rng.choice(OPCODES, size=n, p=weights / weights.sum())
    return "".join(_line(rng, str(op), rows) + "\n" for op in ops) + "AiM EOC\n"


def assert_same(fast, slow) -> None:
    assert fast.cycles == slow.cycles
    assert fast.commands == slow.commands
    assert fast.instructions == slow.instructions
    for name in ("tick", "cmd", "addr", "row", "col"):
        np.testing.assert_array_equal(getattr(fast.log, name), getattr(slow.log, name), err_msg=name)
    assert fast.channel_commands.keys() == slow.channel_commands.keys()
    for name, counts in slow.channel_commands.items():
        np.testing.assert_array_equal(fast.channel_commands[name], counts)
    np.testing.assert_array_equal(fast.channel_instructions, slow.channel_instructions)
    np.testing.assert_array_equal(fast.channel_completion_cycle, slow.channel_completion_cycle)
    assert fast.energy_by_command_pj == slow.energy_by_command_pj
    assert fast.channel_energy_pj.keys() == slow.channel_energy_pj.keys()
    for name, values in slow.channel_energy_pj.items():
        np.testing.assert_array_equal(fast.channel_energy_pj[name], values, err_msg=name)


@pytest.mark.parametrize("seed", range(60))
def test_random_programs_match_the_python_runner(dev, seed):
    text = random_program(seed, dev.standard.rows)
    assert_same(run_aim_trace(text, dev, fast=True), run_aim_trace(text, dev, fast=False))


def test_a_device_keeps_no_state_between_runs(dev):
    first, second = random_program(101, dev.standard.rows), random_program(102, dev.standard.rows)
    run_aim_trace(first, dev)
    assert_same(run_aim_trace(second, dev), run_aim_trace(second, Device("gddr6_aim"), fast=False))


def test_long_runs_of_compiled_lines_match(dev):
    rng = np.random.default_rng(7)
    ops = ["MAC_ABK", "EWMUL", "WR_GB", "WR_BIAS", "RD_MAC", "RD_AF", "AF", "COPY_BKGB", "MAC_SBK", "W_CFR"]
    text = "".join(_line(rng, str(op), 64) + "\n" for op in rng.choice(ops, size=300)) + "AiM EOC\n"
    assert_same(run_aim_trace(text, dev, fast=True), run_aim_trace(text, dev, fast=False))


@pytest.mark.parametrize("bad", ["AiM MAC_ABK 99999999999999999999999 0x1 0", "AiM MAC_ABK 1 0xFFFFFFFFFFFFFFFFFFFF 0",
                                 "AiM MAC_ABK 65 0x1 0", "AiM MAC_ABK 1 0x0 0", "AiM AF 0x100000000",
                                 "W CFR 2 200", "AiM COPY_BKGB 1 0x1 16 0", "AiM EWMUL 1 0x1 99999",
                                 "W CFR 3 0", "R CFR 4 0", "AiM EWADD 0 1 2", "AiM WR_AFLUT 3", "AiM WR_GB 0 0 0x1",
                                 "AiM MAC_SBK 1 0x1 16 0", "AiM WR_ABK 0 0x1 16384", "AiM RD_AF 1 0x1FFFFFFFF"])
def test_a_bad_line_after_compiled_lines_gives_the_same_error(dev, bad):
    text = f"AiM MAC_ABK 2 0x3 0\nAiM WR_GB 1 0 0x3\n{bad}\nAiM EOC\n"
    messages = []
    for fast in (True, False):
        with pytest.raises(AimTraceError) as e:
            run_aim_trace(text, dev, fast=fast)
        messages.append(str(e.value))
    assert messages[0] == messages[1] and messages[0].startswith("line 3: ")


# ---- the compiled reader against the Python parser ------------------------------------------------

def _comma_form(text: str) -> str:
    """The same program in the reference's comma layout: leading comma, trailing empty fields, CRLF."""
    return "\r\n".join("," + ",".join(line.split()) + ",,," for line in text.splitlines())


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("layout", ["blank", "comma"])
def test_the_compiled_reader_reads_what_the_python_parser_reads(dev, seed, layout):
    from sieve.pim.aim_trace import _Program, parse_aim_trace

    text = random_program(seed, dev.standard.rows).replace("AiM SYNC", "AiM ISR_SYNC  # hold")
    text = "# header\n\n" + (text if layout == "blank" else _comma_form(text))
    program = _Program.read(text)
    assert program._parsed is None  # the compiled reader took it
    assert [program.instruction(i) for i in range(len(program))] == parse_aim_trace(text)
    _assert_counts(program)


def _assert_counts(program) -> None:
    """The reader's lines per opcode are those of the codes it read, in order of first appearance."""
    from sieve._core import aimparse
    from sieve.pim.aim_trace import _CODES

    assert program._counts == aimparse.opcode_counts(program.code, len(_CODES))


def _mutated_repeats(seed: int) -> str:
    """Lines that mostly repeat one opcode in one layout, differing in their last field or two (the reader
    compares each with the last one up to its last field but one, or up to its opcode), one of them
    with a single-byte edit near a field's end, where the comparison must tell it from the line
    before: a field that goes on (``WR_ABK00``, ``0x10``), a new cell, a comment, a line break."""
    rng = np.random.default_rng(seed)
    layouts = ["AiM WR_ABK 0 0x1 {r}", ",AiM,WR_ABK,0,0x1,{r},,", "  AiM\tWR_ABK 0 0x1 {r} # w",
               ",AiM,MAC_ABK,{s},0x1,{r}", "AiM ISR_MAC_ABK {s} 0x1 {r}", "W CFR 0 {r}", ",W,CFR,1,{r}",
               "AiM MAC_SBK {s} 0x3 {s} {r}", "AiM EOC_NOT 1", "AiM SYNC"]
    usual = int(rng.integers(len(layouts)))
    lines = [layouts[usual if rng.random() < 0.8 else int(rng.integers(len(layouts)))].format(
        r=k, s=int(rng.integers(1, 3))) for k in range(12)]
    k = int(rng.integers(1, len(lines)))
    ends = [j for j in range(1, len(lines[k]) + 1) if j == len(lines[k]) or lines[k][j] in " ,\t#"]
    end = int(rng.choice(ends))
    at = int(rng.integers(max(end - 2, 0), end + 2))
    edit = str(rng.choice([",", " ", "\t", "#", "0", "7", "X", "\r", "\n", ""]))
    lines[k] = lines[k][:at] + edit + lines[k][at + int(rng.random() < 0.5):]
    return "\n".join(lines) + "\nAiM EOC\n"


@pytest.mark.parametrize("seed", range(300))
def test_the_compiled_reader_tells_apart_lines_that_begin_alike(seed):
    from sieve.pim.aim_trace import _Program, parse_aim_trace

    text = _mutated_repeats(seed)
    if _compiled_read(text) is not None:
        program = _Program.read(text)
        assert [program.instruction(i) for i in range(len(program))] == parse_aim_trace(text)
        _assert_counts(program)


@pytest.mark.parametrize("lines", [
    ["AiM WR_SBK 1 0 0x1 2 5", "AiM WR_SBK 1 0 0x1 2", "AiM WR_SBK 1 0 0x1 2 7", "AiM WR_SBK 1 0 0x1 2 7"],
    ["AiM WR_SBK 1 0 0x1 2", "AiM WR_SBK 1 0 0x1 2 5", "AiM WR_SBK 1 0 0x1 2", "AiM WR_SBK 1 0 0x1 3"],
    [",AiM,WR_SBK,1,0,0x1,2,5", ",AiM,WR_SBK,1,0,0x1,2", ",AiM,WR_SBK,1,0,0x1,2,7", "AiM WR_SBK 1 0 0x1 2 7"],
])
def test_the_compiled_reader_follows_a_form_with_fewer_fields(lines):
    """WR_SBK takes four or five values: a line that ends where the last one's last field but one did
    is read whole, and the next line is compared with it, not with the one before."""
    from sieve.pim.aim_trace import parse_aim_trace

    text = "\n".join(lines) + "\nAiM EOC\n"
    program = _compiled_read(text)
    assert program is not None
    assert [program.instruction(i) for i in range(len(program))] == parse_aim_trace(text)


def _compiled_read(text: str):
    """The program as the compiled reader reads it, None when it leaves the text to the Python parser."""
    from sieve.pim.aim_trace import AimTraceError, _Program

    try:
        program = _Program.read(text)
    except AimTraceError:  # the Python parser's: the compiled reader did not take the text
        return None
    return program if program._parsed is None else None


def test_mutated_repeats_reach_both_readers():
    """The edits above leave some texts to the compiled reader and send others to the Python parser."""
    taken = sum(_compiled_read(_mutated_repeats(seed)) is not None for seed in range(300))
    assert 30 <= taken <= 270


@pytest.mark.parametrize("text", [
    "AiM MAC_ABK +2 0x1 0\nAiM EOC\n",        # Python's int() takes a sign: the Python parser decides
    "AiM MAC_ABK 1_0 0x1 0\nAiM EOC\n",
    "# caf\u00e9\u2028AiM MAC_ABK 2 0x1 0\nAiM EOC\n",  # a non-ASCII line break
    "AiM MAC_ABK 2 0x1 0\x0cAiM EOC\n",
    "AiM WR_GB 2 99999999999999999999999 0x1\nAiM EOC\n",  # beyond int64, but a GPR number is not checked
])
def test_unusual_text_goes_to_the_python_parser(dev, text):
    from sieve.pim.aim_trace import _Program, parse_aim_trace

    program = _Program.read(text)
    assert program._parsed == parse_aim_trace(text)
    assert_same(run_aim_trace(text, dev, fast=True), run_aim_trace(text, dev, fast=False))


def _reference_traces() -> dict[str, str]:
    refs = scripts.load("aim_reference_traces")

    texts = {name: make(3) for name, make in refs.MICRO.items()}  # the pattern repeats per row
    texts.update({"all_isr.csv": refs.all_isr(), "all_isr.trace": refs.all_isr_trace()})
    return texts


@pytest.mark.parametrize("name", list(_reference_traces()))
def test_reference_traces_match_the_python_runner(dev, name):
    text = _reference_traces()[name]
    assert_same(run_aim_trace(text, dev, fast=True), run_aim_trace(text, dev, fast=False))


def test_compiled_background_energy_is_bank_energy_columns():
    """The AiM result computes each bank's background energy in compiled code; it must stay bit for bit
    the background of :func:`sieve.dram.energy.bank_energy_columns`, the request mode's and tables' path."""
    from sieve._core import aimrun
    from sieve.dram.energy import bank_energy_columns, load_energy

    dev = Device("gddr6_aim")
    std = dev.standard
    names = ["ACT16", "MAC16", "PREA", "ACT", "RD", "ACT4"] * 30
    rng = np.random.default_rng(3)
    addr = np.stack([rng.integers(0, f, len(names)) for f in std.fanout], axis=1)
    res = dev.execute(names, addr, rng.integers(0, 64, len(names)), auto_prereq=True)
    eng, energy = res.engine, load_energy(std.name)
    per_bank_mw = np.array([energy.precharged_mw, energy.active_mw]) / energy.banks_per_node
    assert (eng.open_rows() >= 0).any()  # rows still open at the end are counted up to it
    for end in (eng.last_issue_tick, eng.last_issue_tick + 37):
        open_ns = eng.bank_open_ticks_until(end) * std.tick_ns
        expected = bank_energy_columns(energy, eng.bank_counts(), open_ns, end * std.tick_ns)["background_pj"]
        got = aimrun.bank_background_pj(eng, end, std.tick_ns, float(per_bank_mw[0]), float(per_bank_mw[1]))
        assert (got == expected).all()
        out = np.full(len(got), np.nan)
        assert aimrun.bank_background_pj(eng, end, std.tick_ns, float(per_bank_mw[0]), float(per_bank_mw[1]), out) is out
        assert (out == expected).all()


def test_compiled_totals_are_the_engines_counts():
    """The AiM result reads the engine's counts in compiled code: totals by command, per channel (the
    issues to each channel's nodes) and each bank's command energy (the bits of `command_energy_pj` on
    :meth:`TimingEngine.bank_counts`), with commands of every scope on several channels."""
    from sieve._core import aimrun
    from sieve.dram.energy import command_energy_pj

    dev = Device("gddr6_aim")
    std = dev.standard
    names = ["ACT16", "MAC16", "PREA", "ACT", "RD", "ACT4", "PRE"] * 40
    rng = np.random.default_rng(5)
    addr = np.stack([rng.integers(0, f, len(names)) for f in std.fanout], axis=1)
    eng = dev.execute(names, addr, rng.integers(0, 64, len(names)), auto_prereq=True).engine
    pj = rng.uniform(0.1, 3.0, dev.tables.num_commands)  # values whose sums round
    totals, per_channel, bank_pj = aimrun.engine_totals(eng, std.fanout[0], pj)
    expected_bank = eng.bank_counts()
    assert bank_pj.dtype == np.float64
    assert bank_pj.tobytes() == command_energy_pj(expected_bank, pj).tobytes()
    assert (totals == eng.command_totals()).all()
    scope_banks = np.array([np.prod(std.fanout[s + 1:]) for s in dev.tables.cmd_scope])
    by_channel = expected_bank.reshape(std.fanout[0], -1, len(totals)).sum(axis=1) // scope_banks
    assert (per_channel.T == by_channel).all() and (per_channel.sum(axis=1) == totals).all()
    assert np.count_nonzero(per_channel.sum(axis=0)) > 1
    assert aimrun.engine_totals(eng, std.fanout[0])[2] is None
    with pytest.raises(ValueError, match="do not split into 5 channels"):
        aimrun.engine_totals(eng, 5)
    with pytest.raises(ValueError, match="per_bank_pj holds 3 commands"):
        aimrun.engine_totals(eng, std.fanout[0], pj[:3])
