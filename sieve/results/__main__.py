"""python -m sieve.results SWEEP_DIR [--out table.csv|table.parquet]: one table from a sweep's run directories."""

import sys

from .collect import main

sys.exit(main())
