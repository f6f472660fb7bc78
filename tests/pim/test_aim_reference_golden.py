"""AiM traces against the AiM simulator's published cycles and command logs (its ``test/example.yaml``
configuration, ``memory_system_cycles``; every clock ratio 1).

Decode costs: one short trace per instruction kind; GEMV traces of four shapes with per-channel command
counts; and the exact command sequence of a five-line trace. The reference counts cycles from 1, so its
tick n is sieve's tick n - 1.
"""

from __future__ import annotations

import hashlib
import math

import pytest

from sieve.dram import Device, check_log
from sieve.pim.aim_trace import run_aim_trace


@pytest.fixture(scope="module")
def aim():
    return Device("gddr6_aim")


# (trace lines, memory_system_cycles, {channel: commands} or the same commands on every channel: "all")
DECODE = [
    (["AiM EOC"], 2, {}),
    (["W GPR 0", "AiM EOC"], 3, {}),
    (["R GPR 0", "AiM EOC"], 3, {}),
    (["W GPR 0", "W GPR 1", "AiM EOC"], 4, {}),
    (["W CFR 0 1", "AiM EOC"], 3, {}),
    (["W CFR 2 1", "AiM EOC"], 3, {}),
    (["R CFR 0 0", "AiM EOC"], 3, {}),
    (["AiM EWADD 16 0 1", "AiM EOC"], 3, {}),
    (["AiM EWADD 64 0 1", "AiM EOC"], 3, {}),
    (["AiM SYNC", "AiM EOC"], 4, {}),
    (["AiM SYNC", "AiM SYNC", "AiM EOC"], 6, {}),
    (["# comment line", "", "AiM EOC"], 2, {}),
    (["AiM WR_GB 1 0 0x1", "AiM EOC"], 37, {31: {"TMOD": 1, "WRGB": 1}}),
    (["AiM WR_BIAS 0 0x1", "AiM EOC"], 37, {31: {"TMOD": 1, "WRMAC16": 1}}),
    (["AiM RD_MAC 0 0x1", "AiM EOC"], 37, {31: {"TMOD": 1, "RDMAC16": 1}}),
    (["AiM MAC_ABK 1 0x1 0", "AiM EOC"], 59, {31: {"ACT16": 1, "MAC16": 1}}),
    (["AiM MAC_ABK 1 0xffffffff 0", "AiM EOC"], 59, {c: {"ACT16": 1, "MAC16": 1} for c in range(32)}),
    # EOC waits only for commands already issued; the request past its ACT loses its WR / RD
    (["W MEM 0 0 0", "AiM EOC"], 3, {0: {"ACT": 1}}),
    (["R MEM 0 0 0", "AiM EOC"], 3, {0: {"ACT": 1}}),
]


def _per_channel(result) -> dict[int, dict[str, int]]:
    by_name = result.channel_commands  # command name -> count per channel
    channels = len(result.channel_instructions)
    return {ch: counts for ch in range(channels)
            if (counts := {n: int(c[ch]) for n, c in by_name.items() if c[ch]})}


@pytest.mark.parametrize("lines,cycles,commands", DECODE, ids=[" / ".join(d[0]) for d in DECODE])
def test_decode_costs(aim, lines, cycles, commands):
    """A line that issues nothing costs one cycle, comments none, SYNC and EOC two."""
    r = run_aim_trace("\n".join(lines) + "\n", aim)
    assert r.cycles == cycles
    assert _per_channel(r) == commands


# ---- GEMV traces ---------------------------------------------------------------------------------

def gemv_trace(out_dim: int, in_dim: int, tokens: int) -> str:
    """The shared GEMV layout: 64 W GPR lines, then per token and tile of 16 x 32 output rows, per
    input chunk of up to 1024 elements, WR_GB and MAC_ABK of ceil(elements / 16) columns (DRAM row =
    tile * chunks + chunk), then RD_MAC; a partial last tile masks only the channels it needs."""
    tile_rows, chunk = 16 * 32, 1024
    tiles, chunks = math.ceil(out_dim / tile_rows), math.ceil(in_dim / chunk)
    lines = [f"# GEMV {out_dim}x{in_dim} (out x in) bf16, {tokens} token(s), up to 32 channel(s)",
             f"# tiles {tiles}, chunks {chunks}"]
    lines += [f"W GPR {g}" for g in range(64)]
    for _ in range(tokens):
        for t in range(tiles):
            mask = hex((1 << math.ceil(min(tile_rows, out_dim - t * tile_rows) / 16)) - 1)
            for c in range(chunks):
                cols = math.ceil(min(chunk, in_dim - c * chunk) / 16)
                lines += [f"AiM WR_GB {cols} 0 {mask}", f"AiM MAC_ABK {cols} {mask} {t * chunks + c}"]
            lines.append(f"AiM RD_MAC 0 {mask}")
    lines.append("AiM EOC")
    return "\n".join(lines) + "\n"


def _counts(act16, prea, mac16, wrgb, rdmac16, tmod):
    return {"ACT16": act16, "PREA": prea, "MAC16": mac16, "WRGB": wrgb, "RDMAC16": rdmac16, "TMOD": tmod}


# shape, md5 of the trace, memory_system_cycles, per-channel commands (channels 0-31 unless split)
GEMV = {
    (1024, 1536, 1): ("bcd30e88d704f2591536e9bf69c97e6e", 1_444, {range(32): _counts(4, 3, 192, 192, 2, 9)}),
    (1024, 1536, 3): ("ebd14e89eabefc88870059a7e3618089", 4_204, {range(32): _counts(12, 11, 576, 576, 6, 25)}),
    (2880, 2880, 1): ("8d5e9761890b3398d95367dff4de6ae0", 7_120,
                      {range(12, 32): _counts(18, 17, 1080, 1080, 6, 37),
                       range(0, 12): _counts(15, 14, 900, 900, 5, 31)}),
    (512, 4096, 2): ("5676bd8b17772299fbfdcb2c65450a94", 3_324, {range(32): _counts(8, 7, 512, 512, 2, 17)}),
}


@pytest.mark.parametrize("shape", list(GEMV), ids=[f"{o}x{i}_t{t}" for o, i, t in GEMV])
def test_gemv_traces(aim, shape):
    md5, cycles, counts = GEMV[shape]
    text = gemv_trace(*shape)
    assert hashlib.md5(text.encode()).hexdigest() == md5  # the reference's trace, byte for byte
    r = run_aim_trace(text, aim, log=False)  # the logs of these commands are checked in test_aim_trace.py
    assert r.cycles == cycles
    want = {c: dict(v) for chans, v in counts.items() for c in chans}
    assert _per_channel(r) == want


# ---- exact command sequence ----------------------------------------------------------------------

TINY = "AiM WR_GB 4 0 0x1\nAiM MAC_ABK 4 0x1 0\nAiM MAC_ABK 4 0x1 1\nAiM RD_MAC 0 0x1\nAiM EOC\n"
# (reference tick, command, row or None, column or None) on channel 31; every command of the run
TINY_LOG = [
    (1, "TMOD", None, 0), (33, "WRGB", None, 0), (35, "WRGB", None, 1), (37, "WRGB", None, 2),
    (39, "WRGB", None, 3), (40, "TMOD", 0, 0), (72, "ACT16", 0, None), (128, "MAC16", 0, 0),
    (130, "MAC16", 0, 1), (132, "MAC16", 0, 2), (134, "MAC16", 0, 3), (146, "PREA", 1, None),
    (178, "ACT16", 1, None), (234, "MAC16", 1, 0), (236, "MAC16", 1, 1), (238, "MAC16", 1, 2),
    (240, "MAC16", 1, 3), (242, "TMOD", None, 0), (274, "RDMAC16", None, 0),
]


def test_tiny_trace_command_sequence(aim):
    assert hashlib.md5(TINY.encode()).hexdigest() == "965c97c246c84249cd1b8cbf99a1a28c"
    r = run_aim_trace(TINY, aim)
    assert r.cycles == 278
    df = r.log.to_frame()
    assert set(df.channel) == {31}
    assert list(df.tick + 1) == [t for t, *_ in TINY_LOG]
    assert list(df.command) == [c for _, c, *_ in TINY_LOG]
    assert list(df["column"][df.command.isin(["WRGB", "MAC16", "RDMAC16"])]) == \
        [col for _, c, _, col in TINY_LOG if c in ("WRGB", "MAC16", "RDMAC16")]
    rows = [row for _, c, row, _ in TINY_LOG if c in ("ACT16", "MAC16")]
    assert list(df["row"][df.command.isin(["ACT16", "MAC16"])]) == rows
    assert not check_log(aim.standard, r.log)
