"""Write sieve's copies of the AiM simulator's test traces (its ``test/`` folder), in their own form.

The reference ships these as CSV files generated from simple patterns; they are rebuilt here from those
patterns, byte for byte in layout (leading commas, field-template comment rows, trailing empty fields,
``ISR_EOC``), so that ``python -m sieve.pim`` is exercised on exactly the shapes existing AiM workloads
use::

    python scripts/aim_reference_traces.py OUT_DIR [--rows N]

``--rows`` shortens the 1024-iteration micro-benchmarks (for quick tests); the default is the
reference's 1024.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ALL = 0xFFFFFFFF
FULL_ROWS = 1024


def _micro(header: list[str], body: list[str], eoc: str) -> str:
    return "".join(line + "\n" for line in header + body + [eoc])


def macab(rows: int) -> str:
    """MAC_ABK over full rows (64 columns) of all 16 banks of all 32 channels, rows 0..rows-1."""
    return _micro(["#,AiM,[opcode],[opsize],[channel_mask],[row_addr]", ",,,,,"],
                  [f",AiM,MAC_ABK,64,{ALL:#x},{r}" for r in range(rows)], ",AiM,ISR_EOC,,,")


def ewmul(rows: int) -> str:
    """EWMUL over full rows of all channels, rows 0..rows-1."""
    return _micro(["#,AiM,[opcode],[opsize],[channel_mask],[row_id]", ",,,,,"],
                  [f",AiM,EWMUL,64,{ALL:#x},{r}" for r in range(rows)], ",AiM,ISR_EOC,,,")


def rdmac(rows: int) -> str:
    """Back-to-back MAC-register reads (blocking) from all channels into GPR 8."""
    return _micro(["#,AiM,[opcode],[GPR_id_0],[channel_mask]", ",,,,"],
                  [f",AiM,RD_MAC,8,{ALL:#x}" for _ in range(rows)], ",AiM,ISR_EOC,,")


def wrbias(rows: int) -> str:
    """Back-to-back MAC-register writes (bias) from GPR 4 to all channels."""
    return _micro(["#,AiM,[opcode],[GPR_id_0],[channel_mask]", ",,,,"],
                  [f",AiM,WR_BIAS,4,{ALL:#x}" for _ in range(rows)], ",AiM,ISR_EOC,,")


def wrab(rows: int) -> str:
    """All-bank writes (write, then precharge all) to channel 0, one row each."""
    return _micro(["#,AiM,[opcode],[GPR_id_0],[channel_mask],[row_id]", ",,,,,"],
                  [f",AiM,WR_ABK,4,0x80000000,{r}" for r in range(rows)], ",AiM,ISR_EOC,,,")


def wrbias_mac_af_rdaf(rows: int) -> str:
    """A GEMV layer: bias, MAC over row 0, activation function, read the activations back."""
    group = [f"AiM,WR_BIAS,4,{ALL:#x},", f"AiM,MAC_ABK,64,{ALL:#x},0", f"AiM,AF,{ALL:#x},,",
             f"AiM,RD_AF,4,{ALL:#x},"]
    return _micro([], group * rows, "AiM,ISR_EOC,,,")


def wrbias_mac_rdmac_mac(rows: int) -> str:
    """Bias, MAC over row 0, read the MAC registers back, MAC over row 1."""
    group = [f"AiM,WR_BIAS,4,{ALL:#x},", f"AiM,MAC_ABK,64,{ALL:#x},0", f"AiM,RD_MAC,4,{ALL:#x},",
             f"AiM,MAC_ABK,64,{ALL:#x},1"]
    return _micro([], group * rows, "AiM,ISR_EOC,,,")


def wrgb_gbbk_bggb(rows: int) -> str:
    """Fill the global buffer, copy it into bank 0 of row r, copy bank 8's row r back into it."""
    body = []
    for r in range(rows):
        body += [f"AiM,WR_GB,64,0,{ALL:#x},", f"AiM,COPY_GBBK,64,{ALL:#x},0,{r}",
                 f"AiM,COPY_BKGB,64,{ALL:#x},8,{r}"]
    return _micro([], body, "AiM,ISR_EOC,,,,")


def all_isr() -> str:
    """Every instruction once, as the reference's test/all_isr.csv lays it out (its masks select
    channels 28-31)."""
    t = [
        "#,AiM,[opcode],[opsize],[GPR_id_0],[GPR_id_1],[channel_mask],[bank_id],[row_id]",
        "#,R/W,GPR,[GPR_id],,,,,",
        '#,R/W,CFR,"[CFR_id (0: broadcast, 1: EWUL_bg, 2: afm)]",[data],,,,',
        "#,R/W,MEM,[channel_id],[bank_id],[row_id],,,",
        "#,Access granularity [GPR: BURST bytes] [CFR: 2 bytes] [MEM: Burst bytes] where BURST = 32 bytes,,,,,,,",
        ",,,,,,,,",
        "#,Regular write to row [8-11] in bank [2] of channels [0-3],,,,,,,",
        "#,R/W,MEM,[channel_id],[bank_id],[row_id],,,",
    ]
    t += [f",W,MEM,{c},2,{8 + c},,," for c in range(4)]
    t += [",,,,,,,,", "#,Writing to GPR [0-1] for bank data,,,,,,,", "#,R/W,GPR,[GPR_id],,,,,"]
    t += [f",W,GPR,{g},,,,," for g in range(2)]
    t += [",,,,,,,,", "#,Writing to GPR [2-3] for global buffer data,,,,,,,", "#,R/W,GPR,[GPR_id],,,,,"]
    t += [f",W,GPR,{g},,,,," for g in range(2, 4)]
    t += [",,,,,,,,", "#,Writing to GPR [4-7] for bias data,,,,,,,", "#,R/W,GPR,[GPR_id],,,,,"]
    t += [f",W,GPR,{g},,,,," for g in range(4, 8)]
    t += [",,,,,,,,",
          '#,"Write [2-data = 512 bits] from GPR[0, 1] to channels [0-3] bank [0] row [0] (channel mask must '
          'only specify 1 channel)",,,,,,,',
          "#,AiM,[opcode],[opsize],[GPR_id_0],[channel_mask],[bank_id],[row_id],"]
    t += [f",AiM,WR_SBK,2,0,{m},0,0," for m in (1, 2, 4, 8)]
    cfr = '#,R/W,CFR,"[CFR_id (0: broadcast, 1: EWUL_bg, 2: afm)]",[data],,,,'
    t += [",,,,,,,,", '#,"Write [2-data = 512 bits] from GPR[2, 3] to channels [0-3] global buffers",,,,,,,',
          "#,AiM,[opcode],[opsize],[GPR_id_0],[channel_mask],,,", ",AiM,WR_GB,2,2,15,,,",
          ",,,,,,,,", "#,Write [4-data = 1024 bits] from GPR[4-7] to channels [0-3] * 16 MAC accumulators,,,,,,,",
          "#,AiM,[opcode],[GPR_id_0],[channel_mask],,,,", ",AiM,WR_BIAS,4,15,,,,"]
    mac_abk = "#,AiM,[opcode],[opsize],[channel_mask],[row_id],,,"
    mac_sbk = "#,AiM,[opcode],[opsize],[channel_mask],[bank_id],[row_id],,"
    for data, what, tmpl, line in [
        (1, "MAC operation between 2 columns of all banks in channels [0-3] with 2 columns of global buffer",
         mac_abk, ",AiM,MAC_ABK,2,15,0,,,"),
        (0, "MAC operation between 2 columns of half of the banks in channels [0-3] with 2 columns of the "
            "next banks", mac_abk, ",AiM,MAC_ABK,2,15,0,,,"),
        (1, "MAC operation between 2 columns of bank [0] in channels [0-3] with 2 columns of global buffer",
         mac_sbk, ",AiM,MAC_SBK,2,15,0,0,,"),
        (0, "MAC operation between 2 columns of bank [0] in channels [0-3] with 2 columns of the next banks",
         mac_sbk, ",AiM,MAC_SBK,2,15,0,0,,"),
    ]:
        mode = "MAC from global buffer" if data else "MAC from next bank"
        t += [",,,,,,,,", f"#,set CFR[mr13.broadcast at address 0x0010] to {data} ({mode}),,,,,,,", cfr,
              f",W,CFR,0,{data},,,,", ",,,,,,,,", f"#,{what},,,,,,,", tmpl, line]
    for data, what in [(1, '"ELMUL operation between 1 bank group, 2 columns of channels [0-3] with 2 columns '
                           'of the next banks"'),
                       (0, '"ELMUL operation between all bank groups, 2 columns of channels [0-3] with 2 '
                           'columns of the next banks"')]:
        scope = "EWMUL only 1 bankgroup" if data else "EWMUL in all bankgroups"
        t += [",,,,,,,,", f"#,set CFR[mr14.ewmul_bg at address 0x0018] to {data} ({scope}),,,,,,,", cfr,
              f",W,CFR,1,{data},,,,", ",,,,,,,,", f"#,{what},,,,,,,", mac_abk, ",AiM,EWMUL,2,15,0,,,"]
    t += [",,,,,,,,", "#,set CFR[mr13.afm at address 0x001C] to 1 (AF number 1),,,,,,,", cfr,
          ",W,CFR,2,1,,,,", ",,,,,,,,", "#,AF operation in all banks of channels [0-3],,,,,,,",
          "#,AiM,[opcode],[channel_mask],,,,,", ",AiM,AF,15,,,,,",
          ",,,,,,,,", "#,Reading MAC accumulators of all banks of channels [0-3] to GPRs[8-11],,,,,,,",
          "#,AiM,[opcode],[GPR_id_0],[channel_mask],,,,", ",AiM,RD_MAC,8,15,,,,",
          ",,,,,,,,", "#,Reading AF results of all banks of channels [0-3] to GPRs[12-15],,,,,,,",
          "#,AiM,[opcode],[GPR_id_0],[channel_mask],,,,", ",AiM,RD_AF,12,15,,,,",
          ",,,,,,,,", "#,ELADD operation between GPRs[8-11] and GPRs[12-15],,,,,,,",
          "#,AiM,[opcode],[opsize],[GPR_id_0],[GPR_id_1],,,", ",AiM,EWADD,4,8,12,,,",
          ",,,,,,,,", "#,Copying 2 columns from bank 0 row 0 to global buffers in channels [0-3],,,,,,,",
          mac_sbk, ",AiM,COPY_BKGB,2,15,0,0,,",
          ",,,,,,,,", "#,Copying 2 columns from global buffers to bank 0 row 0 in channels [0-3],,,,,,,",
          mac_sbk, ",AiM,COPY_GBBK,2,15,0,0,,",
          ",,,,,,,,",
          "#,Read [2-data = 512 bits] from channels [0-3] bank [0] row [0] to GPR[20-27] (channel mask must "
          "only specify 1 channel),,,,,,,",
          "#,AiM,[opcode],[opsize],[GPR_id_0],[channel_mask],[bank_id],[row_id],"]
    t += [f",AiM,RD_SBK,2,{20 + 2 * i},{m},0,0," for i, m in enumerate((1, 2, 4, 8))]
    t += [",,,,,,,,", "#,Finishing compute (MUST have this instruction at the end of the trace file),,,,,,,",
          "#,AiM,[opcode],,,,,,", ",AiM,EOC,,,,,,", ",,,,,,,,", ",,,,,,,,", ",,,,,,,,",
          "#,AiM,WR_AFLUT,Not supported yet,,,,,"]
    return "\r\n".join(t)  # saved by a spreadsheet: CRLF line ends, no final line end


def all_isr_trace() -> str:
    """The same program in the layout of the reference's current ``test/all_isr.trace`` (fields separated
    by blanks; WR_SBK / RD_SBK without an opsize, each line one column; RD_SBK into GPRs 20-27; four
    WR_ABK to row 5, one per channel, before EOC). Its comment lines are left out."""
    t = ["# Every AiM instruction once, on channels 28-31 (masks 1, 2, 4, 8 select channels 31-28)"]
    t += [f"W MEM {c} 2 {8 + c}" for c in range(4)]
    t += [f"W GPR {g}" for g in range(8)]
    t += [f"AiM WR_SBK {g} {m} 0 0" for g in (0, 1) for m in (1, 2, 4, 8)]
    t += ["AiM WR_GB 2 2 15", "AiM WR_BIAS 4 15"]
    t += ["W CFR 0 1", "AiM MAC_ABK 2 15 0", "W CFR 0 0", "AiM MAC_ABK 2 15 0",
          "W CFR 0 1", "AiM MAC_SBK 2 15 0 0", "W CFR 0 0", "AiM MAC_SBK 2 15 0 0",
          "W CFR 1 1", "AiM EWMUL 2 15 0", "W CFR 1 0", "AiM EWMUL 2 15 0",
          "W CFR 2 1", "AiM AF 15", "AiM RD_MAC 8 15", "AiM RD_AF 12 15", "AiM EWADD 4 8 12",
          "AiM COPY_BKGB 2 15 0 0", "AiM COPY_GBBK 2 15 0 0"]
    t += [f"AiM RD_SBK {20 + i} {m} 0 0" for i, m in enumerate((1, 1, 2, 2, 4, 4, 8, 8))]
    t += [f"AiM WR_ABK {4 + i} {m} 5" for i, m in enumerate((1, 2, 4, 8))]
    t += ["AiM EOC"]
    return "".join(line + "\n" for line in t)


MICRO = {
    "micro_macab_1024_16banks.csv": macab,
    "micro_ewmul_16banks.csv": ewmul,
    "micro_rdmac_1024_16banks.csv": rdmac,
    "micro_wrbias_1024_16banks.csv": wrbias,
    "micro_wrab_1024_1bank.csv": wrab,
    "micro_wrbias_mac_af_rdaf_16banks.csv": wrbias_mac_af_rdaf,
    "micro_wrbias_mac_rdmac_mac_16banks.csv": wrbias_mac_rdmac_mac,
    "micro_wrgb_gbbk_bggb_16banks.csv": wrgb_gbbk_bggb,
}


def write_all(out: Path, rows: int = FULL_ROWS) -> list[Path]:
    """Write every reference test trace into ``out``; returns the paths (all_isr.csv and all_isr.trace
    first)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "all_isr.csv", out / "all_isr.trace"]
    paths[0].write_text(all_isr())
    paths[1].write_text(all_isr_trace())
    for name, make in MICRO.items():
        path = out / name
        path.write_text(make(rows))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="directory to write the traces into")
    p.add_argument("--rows", type=int, default=FULL_ROWS,
                   help=f"iterations of each micro-benchmark (reference: {FULL_ROWS})")
    args = p.parse_args(argv)
    if args.rows < 1:
        p.error("--rows must be at least 1")
    for path in write_all(args.out, args.rows):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
