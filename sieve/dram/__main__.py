"""``python -m sieve.dram TRACE --standard hbm3 --refresh off --json``: run a memory request trace.

``--energy`` adds the run's energy (:mod:`sieve.dram.energy`): by command, background, total, per bit read;
``--energy-data NAME`` takes it (and the ``--bank-csv`` energy columns) from the standard's alternative
energy data NAME instead of its default.

``python -m sieve.dram --generate {seq,conflict,random} N OUT`` writes a synthetic trace instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sieve._cli import output_path_problem, print_fields

from .device import REFRESH_MODES, Device
from .energy import load_energy
from .requests import MAPPINGS, WRITE_COMPLETIONS, TraceError, run_requests
from .spec import StandardError, available_standards
from .tracegen import GENERATORS, write_trace


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sieve.dram",
        description="Run a memory request trace (lines 'LD <addr>' / 'ST <addr>') through sieve's "
                    "cycle-level DRAM controllers, or generate a synthetic trace.",
    )
    p.add_argument("trace", nargs="?", help="trace file to run")
    p.add_argument("--standard", default="hbm3",
                   help=f"DRAM standard preset or YAML file (presets: {', '.join(available_standards())})")
    p.add_argument("--refresh", default="off", choices=REFRESH_MODES, help="refresh mode (default: off)")
    p.add_argument("--mapping", default="RoBaRaCoCh", choices=MAPPINGS, help="address mapping")
    p.add_argument("--queue-size", type=int, default=32, help="read/write queue entries per channel")
    p.add_argument("--write-completion", default="issue", choices=WRITE_COMPLETIONS,
                   help="a write completes when its WR issues (issue, as Ramulator 2; default) or at its "
                        "last data beat, WR + write latency (data)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--energy", action="store_true",
                   help="also print the energy: by command, background, total and per bit read")
    p.add_argument("--energy-data", metavar="NAME",
                   help="energy data of the standard to use (implies --energy); hbm3 has 'default', "
                        "'hbm_power' and 'hbm_power_static' (see sieve/conf/dram/energy/)")
    p.add_argument("--bank-csv", metavar="PATH", help="also write the per-bank table as CSV")
    p.add_argument("--generate", nargs=3, metavar=("KIND", "N", "OUT"),
                   help=f"write a trace of N requests of KIND ({', '.join(GENERATORS)}) to OUT and exit")
    p.add_argument("--seed", type=int, default=0, help="seed for --generate random")
    return p


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse output paths whose directory is missing before anything runs (nothing is half-written)."""
    for option, path in (("--generate OUT", args.generate[2] if args.generate else None),
                         ("--bank-csv", args.bank_csv)):
        problem = path and output_path_problem(path, option)
        if problem:
            raise StandardError(problem)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check_outputs(args)
        if args.generate:
            kind, n, out = args.generate
            try:
                count = int(n)
            except ValueError:
                raise StandardError(f"N must be an integer number of requests, got {n!r}") from None
            write_trace(out, kind, count, Device(args.standard), seed=args.seed)
            return 0
        if not args.trace:
            raise StandardError("give a trace file to run (or --generate KIND N OUT)")
        device = Device(args.standard)
        if args.energy_data:
            load_energy(device.standard, args.energy_data)  # a bad name fails before the run
        result = run_requests(device, Path(args.trace), refresh=args.refresh,
                              mapping=args.mapping, queue_size=args.queue_size,
                              write_completion=args.write_completion)
        summary = result.summary()
        if args.energy or args.energy_data:
            summary.update(result.energy(args.energy_data))
    except (StandardError, TraceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.bank_csv:
        import pandas as pd

        pd.DataFrame(result.bank_columns_with(args.energy_data)).to_csv(args.bank_csv, index=False)
    if args.json:
        print(json.dumps(summary))
    else:
        print_fields(summary, 22)
    return 0


if __name__ == "__main__":
    from sieve._cli import exit_with

    exit_with(main)
