"""Entry script; from the repository root: `python Spark_ETL_Pipeline/src/Spark_ETL_Pipeline.py --help`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from spark_etl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
