"""python -m sieve.results SWEEP_DIR [--out table.csv|table.parquet]: one table from a sweep's run directories."""

from sieve._cli import exit_with

from .collect import main

exit_with(main, "no table was written")
