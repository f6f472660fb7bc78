"""``python -m sieve.pim TRACE --hw gddr6_aim --json``: run an AiM instruction trace on a PIM device.

Prints the cycles to completion, the commands issued, the instructions executed and the wall time
(one JSON object with ``--json``). Bad input prints one ``error: ...`` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sieve._cli import output_path_problem, print_fields
from sieve.dram import StandardError, check_log
from sieve.hw import HardwareError, load
from sieve.pim.aim_trace import AimTraceError, run_aim_trace


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sieve.pim",
        description="Run an AiM instruction trace (lines 'AiM <OPCODE> ...', 'W/R GPR|CFR|MEM ...', "
                    "'AiM EOC'; blank- or comma-separated) on sieve's cycle-level PIM device.")
    p.add_argument("trace", help="AiM trace file")
    p.add_argument("--hw", default="gddr6_aim", help="hardware preset whose PIM device runs the trace (default: gddr6_aim); AiM traces "
                        "address a GDDR6-AiM device (channel, bankgroup, bank), so only gddr6_aim runs them: "
                        "aim's HBM3E-PIM has pseudo-channels")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--check", action="store_true",
                   help="also replay the command log through the protocol checker (slower; keeps the log)")
    p.add_argument("--channel-csv", metavar="PATH", help="also write the per-channel table as CSV")
    return p


def _check_paths(args: argparse.Namespace) -> Path:
    """The trace to read; refuses a missing trace or an output path whose directory is missing."""
    path = Path(args.trace)
    if path.is_dir():
        raise AimTraceError(f"trace path {args.trace!r} is a directory; give an AiM trace file")
    if not path.exists():
        raise AimTraceError(f"trace file {args.trace!r} does not exist")
    problem = args.channel_csv and output_path_problem(args.channel_csv, "--channel-csv")
    if problem:
        raise AimTraceError(problem)
    return path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        path = _check_paths(args)
        device = load(args.hw).pim_device
        result = run_aim_trace(path, device, log=args.check)
    except (AimTraceError, HardwareError, StandardError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {"trace": str(path), "hw": args.hw, **result.summary()}
    if args.check:
        violations = check_log(device.standard, result.log)
        summary["violations"] = len(violations)
        summary["first_violations"] = [str(v) for v in violations[:5]]
    if args.channel_csv:
        result.channels.to_csv(args.channel_csv, index=False)
    if args.json:
        print(json.dumps(summary))
    else:
        print_fields(summary, 18)
    return 1 if summary.get("violations") else 0


if __name__ == "__main__":
    from sieve._cli import exit_with

    exit_with(main)
