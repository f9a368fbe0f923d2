"""Entry script; from the repository root: `python Spark_ETL_Pipeline/src/Spark_ETL_Pipeline.py --help`.

Run by an interpreter without the project's dependencies (a plain system python), it runs itself again under the
project's `.venv/bin/python` when that exists, and otherwise says in one line to run `make run` first (exit 2),
instead of ending in an import traceback.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = SOURCE_DIR.parent.parent
VENV_PYTHON = PROJECT_DIR / ".venv" / "bin" / "python"
REEXEC_MARK = "SPARK_ETL_REEXEC"  # set for the re-run, so a broken .venv cannot make it loop
EXIT_NO_ENVIRONMENT = 2


def dependencies_missing() -> bool:
    return any(importlib.util.find_spec(name) is None for name in ("pyspark", "papermill"))


def ensure_environment() -> None:
    """Return when the dependencies import; otherwise re-run under .venv/bin/python, or exit 2 with one line."""
    if not dependencies_missing():
        return
    if VENV_PYTHON.exists() and os.environ.get(REEXEC_MARK) != "1":
        os.environ[REEXEC_MARK] = "1"
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    where = f"{VENV_PYTHON} lacks them" if VENV_PYTHON.exists() else f"{VENV_PYTHON} does not exist"
    print(
        f"{sys.executable} lacks the project's dependencies and {where}: run `make run` first in {PROJECT_DIR}",
        file=sys.stderr,
    )
    raise SystemExit(EXIT_NO_ENVIRONMENT)


if __name__ == "__main__":
    ensure_environment()
    sys.path.insert(0, str(SOURCE_DIR))
    from spark_etl.command.cli import main

    raise SystemExit(main())
