"""AiM traces: parsing both file forms, unrolling per opcode, exact command timelines, bad input.

Expected ticks are derived from the gddr6_aim standard's timing values, not stored numbers. Every
command log obtained here is replayed by the protocol checker (tests/conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieve.dram import Device, check_log
from sieve.pim.__main__ import main as cli_main
from sieve.pim.aim_trace import (COMMAND_LATENCY, OPCODE_FIELDS, AimTraceError, parse_aim_trace,
                                 run_aim_trace, unroll)


@pytest.fixture(scope="module")
def dev() -> Device:
    return Device("gddr6_aim")


@pytest.fixture(scope="module")
def T(dev) -> dict:
    return {k: int(v) for k, v in dev.standard.timing.items()}


# A trace's cycles, counted from 1 as the reference does, end with EOC's completion: one cycle after
# the last command's completion (counted from 0). So cycles = last completion + 2.
EOC_CK = 2


def timeline(result, channel=None):
    """[(tick, command, row, column)] of the log, optionally for one channel."""
    df = result.log.to_frame()
    if channel is not None:
        df = df[df.channel == channel]
    return [(int(t), c, int(r), int(k)) for t, c, r, k in zip(df.tick, df.command, df.row, df.column)]


def cmds(result, channel=None):
    return [c for _, c, _, _ in timeline(result, channel)]


# ---- parsing --------------------------------------------------------------------------------------

SPACE = """\
# a GEMV tile
AiM WR_GB 2 0 0x80000000
AiM ISR_MAC_ABK 2 2147483648 5   # decimal mask, ISR_ prefix
W CFR 2 1
AiM AF 0x80000000
AiM RD_AF 4 0x80000000
W MEM 0 2 8
R GPR 3
AiM EWADD 4 8 12
AiM SYNC
AiM EOC
AiM GARBAGE after the end is never read
"""

COMMA = """\
#,AiM,[opcode],[opsize],[GPR_id_0],[channel_mask]
,,,,,
,AiM,WR_GB,2,0,0x80000000,
AiM,ISR_MAC_ABK,2,2147483648,5,,
,W,CFR,2,1,,,
AiM,AF,0x80000000,,
,AiM,RD_AF,4,0x80000000,
,W,MEM,0,2,8,,,
,R,GPR,3,,,,,
,AiM,EWADD,4,8,12,,,
AiM,SYNC,,,
,AiM,ISR_EOC,,,,
"""


def _fields(program):
    return [(i.opcode, i.opsize, i.gpr0, i.gpr1, i.channel_mask, i.channel, i.bank, i.row, i.cfr_addr,
             i.cfr_data) for i in program]


def test_both_forms_parse_to_the_same_instructions():
    space, comma = parse_aim_trace(SPACE), parse_aim_trace(COMMA)
    assert _fields(space) == _fields(comma)
    assert [i.opcode for i in space] == ["WR_GB", "MAC_ABK", "W_CFR", "AF", "RD_AF", "W_MEM", "R_GPR",
                                         "EWADD", "SYNC", "EOC"]
    wr_gb, mac = space[0], space[1]
    assert (wr_gb.opsize, wr_gb.gpr0, wr_gb.channel_mask) == (2, 0, 0x80000000)
    assert (mac.opsize, mac.channel_mask, mac.row) == (2, 0x80000000, 5)
    assert (space[5].channel, space[5].bank, space[5].row) == (0, 2, 8)
    assert space[1].line_no == 3 and "ISR_MAC_ABK" in space[1].text


def test_parse_reads_files_and_stops_at_eoc(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(COMMA)
    assert _fields(parse_aim_trace(path)) == _fields(parse_aim_trace(str(path)))


def test_legacy_single_bank_form_with_opsize():
    (ins, _) = parse_aim_trace(",AiM,WR_SBK,2,0,1,3,7,\nAiM EOC\n")
    assert (ins.opsize, ins.gpr0, ins.channel_mask, ins.bank, ins.row) == (2, 0, 1, 3, 7)
    (ins, _) = parse_aim_trace("AiM RD_SBK 5 1 3 7\nAiM EOC\n")
    assert (ins.opsize, ins.gpr0, ins.channel_mask, ins.bank, ins.row) == (1, 5, 1, 3, 7)


# ---- unrolling ------------------------------------------------------------------------------------

def _one(line: str):
    return parse_aim_trace(line + "\nAiM EOC\n")[0]


@pytest.mark.parametrize("line, command, n, bank", [
    ("AiM MAC_ABK 4 0x80000000 9", "MAC16", 4, None),
    ("AiM MAC_SBK 3 0x80000000 6 9", "MAC", 3, 6),
    ("AiM EWMUL 5 0x80000000 9", "EWMUL16", 5, None),
    ("AiM WR_GB 7 0 0x80000000", "WRGB", 7, None),
    ("AiM COPY_BKGB 2 0x80000000 13 9", "RDCP", 2, 13),
    ("AiM COPY_GBBK 2 0x80000000 13 9", "WRCP", 2, 13),
    ("AiM WR_SBK 0 0x80000000 13 9", "WR", 1, 13),
    ("AiM RD_SBK 0 0x80000000 13 9", "RD", 1, 13),
    ("AiM WR_ABK 0 0x80000000 9", "WRA16", 1, None),
    ("AiM WR_BIAS 0 0x80000000", "WRMAC16", 1, None),
    ("AiM RD_MAC 0 0x80000000", "RDMAC16", 1, None),
    ("AiM RD_AF 0 0x80000000", "RDAF16", 1, None),
    ("AiM AF 0x80000000", "AF16", 1, None),
    ("W MEM 0 13 9", "WR", 1, 13),
    ("R MEM 0 13 9", "RD", 1, 13),
])
def test_unroll_per_opcode(dev, line, command, n, bank):
    names, addr, row, col = unroll(_one(line), dev)
    assert names == [command] * n
    assert list(col) == list(range(n))  # opsize = consecutive columns from column 0
    assert set(addr[:, 0]) == {0}
    if bank is None:
        assert (addr[:, 1:] == -1).all()
    else:
        assert (addr[:, 1] == bank // 4).all() and (addr[:, 2] == bank % 4).all()
    if command != "AF16" and command not in ("WRGB", "WRMAC16", "RDMAC16", "RDAF16"):
        assert (row == 9).all()


@pytest.mark.parametrize("line", ["AiM EWADD 4 8 12", "W GPR 3", "R GPR 3", "R CFR 0 0", "W CFR 0 1",
                                  "AiM SYNC"])
def test_instructions_without_device_commands(dev, line):
    assert unroll(_one(line), dev)[0] == []


def test_channel_mask_bit_i_is_channel_31_minus_i(dev):
    ch = lambda mask: list(unroll(_one(f"AiM WR_BIAS 0 {mask:#x}"), dev)[1][:, 0])  # noqa: E731
    assert ch(0x80000000) == [0]
    assert ch(0x1) == [31]
    assert ch(0x3) == [31, 30]  # mask bits from bit 0 upward
    assert sorted(ch(0xFFFFFFFF)) == list(range(32))
    names, addr, _, col = unroll(_one("AiM MAC_ABK 2 0xC0000000 0"), dev)
    assert list(zip(addr[:, 0], col)) == [(1, 0), (0, 0), (1, 1), (0, 1)]  # columns outer, channels inner


def test_every_opcode_has_a_field_list_and_every_final_command_a_latency(dev):
    assert set(OPCODE_FIELDS) >= {"MAC_ABK", "MAC_SBK", "WR_GB", "WR_BIAS", "RD_MAC", "RD_AF", "AF", "EWMUL",
                                  "EWADD", "WR_ABK", "WR_SBK", "RD_SBK", "COPY_BKGB", "COPY_GBBK", "SYNC", "EOC"}
    for name in COMMAND_LATENCY:
        assert name in dev.standard.command_names


# ---- exact timelines ------------------------------------------------------------------------------

def test_mac_abk_on_a_closed_channel(dev, T):
    r = run_aim_trace("AiM MAC_ABK 4 0x80000000 0\nAiM EOC\n", dev)
    t0 = T["nRCDRDMAC"]
    assert timeline(r) == [(0, "ACT16", 0, 0)] + [(t0 + k * T["nCCDL"], "MAC16", 0, k) for k in range(4)]
    assert r.cycles == t0 + 3 * T["nCCDL"] + 1 + EOC_CK
    assert r.commands == {"ACT16": 1, "MAC16": 4}
    assert r.instructions == {"MAC_ABK": 1, "EOC": 1}
    assert not check_log(dev.standard, r.log)


def test_mac_abk_on_another_row_precharges_all_banks(dev, T):
    r = run_aim_trace("AiM MAC_ABK 64 0x80000000 0\nAiM MAC_ABK 64 0x80000000 1\nAiM EOC\n", dev)
    last = T["nRCDRDMAC"] + 63 * T["nCCDL"]
    prea = last + T["nRTP"]
    act = prea + T["nRP"]
    tl = timeline(r)
    assert [c for _, c, _, _ in tl] == ["ACT16"] + ["MAC16"] * 64 + ["PREA", "ACT16"] + ["MAC16"] * 64
    assert tl[65][:2] == (prea, "PREA") and tl[66][:3] == (act, "ACT16", 1)
    assert tl[67][0] == act + T["nRCDRDMAC"]
    # the same row again is a row hit: no PREA, no ACT16
    r2 = run_aim_trace("AiM MAC_ABK 2 0x80000000 0\nAiM MAC_ABK 2 0x80000000 0\nAiM EOC\n", dev)
    assert cmds(r2) == ["ACT16"] + ["MAC16"] * 4


def test_mode_switches_issue_tmod_when_the_command_would_be_ready(dev, T):
    trace = """AiM MAC_ABK 2 0x80000000 0
AiM RD_MAC 0 0x80000000
AiM WR_GB 2 0 0x80000000
AiM MAC_ABK 2 0x80000000 0
AiM EOC
"""
    r = run_aim_trace(trace, dev)
    tl = timeline(r)
    assert [c for _, c, _, _ in tl] == ["ACT16", "MAC16", "MAC16", "TMOD", "RDMAC16", "WRGB", "WRGB", "TMOD",
                                        "MAC16", "MAC16"]
    mac1 = T["nRCDRDMAC"] + T["nCCDL"]
    tmod = mac1 + T["nCCDL"]                      # RDMAC16 would be ready then (MAC16 -> RDMAC16 nCCDL)
    assert tl[3][:2] == (tmod, "TMOD")
    rd = tmod + T["nMODCH"]
    assert tl[4][:2] == (rd, "RDMAC16")
    done = rd + T["nCLREG"] + T["nBL"]            # RD_MAC blocks until its read completes
    wrgb = max(done + 1, rd + T["nCLREG"] + T["nBL"] + 3 - T["nCWLGB"] + T["nWPRE"])
    assert tl[5][:2] == (wrgb, "WRGB")            # same register mode: no TMOD
    assert tl[7][:2] == (tl[6][0] + 1, "TMOD")    # the open row is a hit: MAC16 is ready at once
    assert tl[8][0] == tl[7][0] + T["nMODCH"]
    assert r.commands["TMOD"] == 2


def test_blocking_read_holds_every_channel_but_other_instructions_do_not(dev, T):
    blocking = run_aim_trace("AiM RD_MAC 0 0x80000000\nAiM WR_BIAS 0 0x40000000\nAiM EOC\n", dev)
    rd = timeline(blocking, 0)[1][0]
    assert rd == T["nMODCH"]
    later = timeline(blocking, 1)
    assert later[0][:2] == (rd + T["nCLREG"] + T["nBL"] + 1, "TMOD")
    free = run_aim_trace("AiM WR_BIAS 0 0x80000000\nAiM WR_BIAS 0 0x40000000\nAiM EOC\n", dev)
    assert timeline(free, 1)[0][:2] == (1, "TMOD")  # its line is decoded in the second cycle


def test_a_blocking_read_waits_for_its_own_commands_only(dev, T):
    # channel 1 is in register mode when RD_MAC comes: no TMOD; channel 0's all-bank write, still in
    # flight (it completes nCWL + nBL + nRP after issue), does not hold the decoder
    trace = ("AiM WR_BIAS 0 0xC0000000\nAiM WR_ABK 0 0x80000000 3\nAiM RD_MAC 0 0x40000000\n"
             "AiM WR_BIAS 0 0x20000000\nAiM EOC\n")
    r = run_aim_trace(trace, dev)
    rd = [t for t, c, _, _ in timeline(r, 1) if c == "RDMAC16"][0]
    wra = [t for t, c, _, _ in timeline(r, 0) if c == "WRA16"][0]
    assert wra + T["nCWL"] + T["nBL"] + T["nRP"] > rd + T["nCLREG"] + T["nBL"]
    assert timeline(r, 2)[0][:2] == (rd + T["nCLREG"] + T["nBL"] + 1, "TMOD")


def test_sync_waits_for_every_channel(dev, T):
    trace = "AiM MAC_ABK 8 0x80000000 0\nAiM SYNC\nAiM MAC_ABK 1 0x40000000 0\nAiM EOC\n"
    r = run_aim_trace(trace, dev)
    done0 = T["nRCDRDMAC"] + 7 * T["nCCDL"] + 1
    # SYNC completes the cycle after the last completion; the next line is decoded the cycle after that
    assert timeline(r, 1)[0][:2] == (done0 + 2, "ACT16")
    no_sync = run_aim_trace(trace.replace("AiM SYNC\n", ""), dev)
    assert timeline(no_sync, 1)[0][:2] == (1, "ACT16")  # decoded in the second cycle


def test_wr_abk_writes_all_banks_then_closes_them(dev, T):
    r = run_aim_trace("AiM WR_ABK 0 0x80000000 3\nAiM WR_ABK 0 0x80000000 3\nAiM EOC\n", dev)
    tl = timeline(r)
    assert [c for _, c, _, _ in tl] == ["ACT16", "WRA16", "ACT16", "WRA16"]  # auto-precharge: ACT16 again
    assert tl[1][0] == T["nRCDWR"]
    assert tl[2][0] == T["nRCDWR"] + T["nCWL"] + T["nBL"] + T["nWR"] + T["nRP"]
    assert r.cycles == tl[3][0] + T["nCWL"] + T["nBL"] + T["nRP"] + EOC_CK


def test_conventional_accesses(dev, T):
    r = run_aim_trace("W MEM 3 6 7\nR MEM 3 6 7\nAiM RD_SBK 0 0x10000000 6 7\nAiM EOC\n", dev)
    df = r.log.to_frame()
    assert list(df.command) == ["ACT", "WR", "RD", "RD"]  # mask bit 28 is channel 3: a row hit
    assert list(df.channel) == [3] * 4
    assert list(df.bankgroup) == [1] * 4 and list(df.bank) == [2] * 4
    assert df.tick[1] == T["nRCDWR"]
    assert df.tick[2] == df.tick[1] + T["nCWL"] + T["nBL"] + T["nWTRL"]
    assert r.cycles == int(df.tick.iloc[-1]) + T["nCL"] + T["nBL"] + EOC_CK


def test_af_uses_its_own_row_and_never_aliases_a_data_row(dev):
    rows = dev.standard.rows
    r = run_aim_trace("W CFR 2 0\nAiM AF 0x80000000\nAiM AF 0x80000000\nW CFR 2 3\nAiM AF 0x80000000\n"
                      "AiM EOC\n", dev)
    tl = timeline(r)
    assert [(c, row if c != "PREA" else None) for _, c, row, _ in tl] == [
        ("ACT16", rows - 1), ("AF16", rows - 1), ("AF16", rows - 1), ("PREA", None), ("ACT16", rows - 4),
        ("AF16", rows - 4)]
    # a data access to the same row number is a different row: close AF's row first, and vice versa
    r = run_aim_trace(f"AiM AF 0x80000000\nAiM MAC_ABK 1 0x80000000 {rows - 1}\nAiM AF 0x80000000\nAiM EOC\n",
                      dev)
    assert cmds(r) == ["ACT16", "AF16", "PREA", "ACT16", "MAC16", "PREA", "ACT16", "AF16"]
    r = run_aim_trace(f"AiM AF 0x80000000\nAiM MAC_SBK 1 0x80000000 5 {rows - 1}\nAiM EOC\n", dev)
    assert cmds(r) == ["ACT16", "AF16", "PRE", "ACT", "MAC"]


def test_result_tables_and_peak_fraction(dev, T):
    r = run_aim_trace("AiM MAC_ABK 64 0xC0000000 0\nAiM EOC\n", dev)
    ch = r.channels.set_index("channel")
    assert ch.loc[0, "MAC16"] == 64 and ch.loc[1, "MAC16"] == 64 and ch.loc[2, "commands"] == 0
    assert ch.loc[0, "completion_cycle"] + EOC_CK == r.cycles
    assert list(ch.instructions[:3]) == [1, 1, 0]
    assert r.mac_peak_fraction == pytest.approx(2 * 64 * T["nCCDL"] / (r.cycles * 32))
    s = r.summary()
    assert s["cycles"] == r.cycles and s["commands"]["MAC16"] == 128 and s["wall_s"] >= 0
    assert s["seconds"] == pytest.approx(r.cycles * 0.5e-9)
    assert run_aim_trace("AiM MAC_ABK 64 0xC0000000 0\nAiM EOC\n", dev, log=False).log is None


def test_deterministic(dev):
    a = run_aim_trace(SPACE, dev)
    b = run_aim_trace(COMMA, dev)
    assert a.cycles == b.cycles and a.commands == b.commands
    assert np.array_equal(a.log.tick, b.log.tick)


# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("trace, line_no, words", [
    ("AiM FOO 1 2\nAiM EOC\n", 1, ["unknown opcode 'FOO'", "MAC_ABK"]),
    ("AiM MAC_ABK 4 0xZZ 0\nAiM EOC\n", 1, ["malformed operand '0xZZ'", "channel_mask", "0x-hexadecimal"]),
    ("AiM MAC_ABK 4 1.5 0\nAiM EOC\n", 1, ["malformed operand '1.5'"]),
    ("AiM MAC_ABK 4 -1 0\nAiM EOC\n", 1, ["non-negative"]),
    ("# x\nAiM MAC_ABK 4 0x1\nAiM EOC\n", 2, ["MAC_ABK takes 3 field(s), got 2", "opsize channel_mask row"]),
    ("AiM,WR_BIAS,4,0x1,7,\nAiM EOC\n", 1, ["WR_BIAS takes 2 field(s), got 3"]),
    ("W MEM 0 1\nAiM EOC\n", 1, ["W MEM takes 3 field(s)", "channel bank row"]),
    ("AiM MAC_ABK 4 0x100000000 0\nAiM EOC\n", 1, ["channel mask 0x100000000", "0xffffffff"]),
    ("AiM MAC_ABK 4 0 0\nAiM EOC\n", 1, ["selects no channel"]),
    ("AiM MAC_SBK 4 0x1 16 0\nAiM EOC\n", 1, ["bank 16", "banks 0..15"]),
    ("AiM MAC_ABK 4 0x1 16384\nAiM EOC\n", 1, ["row 16384", "rows 0..16383"]),
    ("W MEM 32 0 0\nAiM EOC\n", 1, ["channel 32", "channels 0..31"]),
    ("AiM MAC_ABK 65 0x1 0\nAiM EOC\n", 1, ["opsize 65", "1..64"]),
    ("W CFR 3 1\nAiM EOC\n", 1, ["CFR address 3", "afm"]),
    ("AiM WR_AFLUT 4\nAiM EOC\n", 1, ["WR_AFLUT is not supported"]),
    ("LD 0x40\nAiM EOC\n", 1, ["unknown line type 'LD'", "'AiM', 'R' or 'W'"]),
    ("AiM,MAC_ABK,4,,0\nAiM EOC\n", 1, ["empty field at position 4"]),
    ("AiM MAC_ABK 4 0x1 0\n\n", 2, ["ends without EOC"]),
])
def test_bad_input_names_the_line(dev, trace, line_no, words):
    with pytest.raises(AimTraceError) as info:
        run_aim_trace(trace, dev)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.line_no == line_no
    msg = str(e)
    assert msg.startswith(f"line {line_no}: ")
    for w in words:
        assert w in msg
    if "EOC" not in words[0]:
        assert trace.splitlines()[line_no - 1].strip() in msg  # the line itself is shown


def test_a_standard_without_aim_commands_is_refused():
    with pytest.raises(AimTraceError, match="lacks the AiM command"):
        run_aim_trace("AiM EOC\n", Device("gddr6"))


# ---- command line ---------------------------------------------------------------------------------

def test_cli_json(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text(SPACE)
    assert cli_main([str(path), "--hw", "gddr6_aim", "--json", "--check"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"cycles", "commands", "wall_s", "instructions", "mac_peak_fraction"} <= set(out)
    assert out["violations"] == 0 and out["commands"]["AF16"] == 1


@pytest.mark.parametrize("content, words", [
    ("AiM MAC_ABK 4 0xZZ 0\nAiM EOC\n", "malformed operand"),
    ("AiM MAC_ABK 4 0x1 0\n", "without EOC"),
    (None, "does not exist"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, content, words):
    path = tmp_path / "t.txt"
    if content is not None:
        path.write_text(content)
    assert cli_main([str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]


def test_cli_unknown_hardware(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("AiM EOC\n")
    assert cli_main([str(path), "--hw", "nonexistent"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
