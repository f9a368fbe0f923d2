"""The entry script run by an interpreter without the project's dependencies (python -S: no site-packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support.pipeline import PROJECT_DIR

ENTRY_SCRIPT = PROJECT_DIR / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"


def run_bare(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -S`: this interpreter without its site-packages, as a system python without pyspark would be."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SPARK_ETL_REEXEC")}
    return subprocess.run(
        [sys.executable, "-S", str(script), *args],
        cwd=script.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_it_reruns_itself_under_the_projects_venv() -> None:
    assert (PROJECT_DIR / ".venv" / "bin" / "python").exists()
    result = run_bare(ENTRY_SCRIPT, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python Spark_ETL_Pipeline/src/Spark_ETL_Pipeline.py")


def test_without_a_venv_it_says_to_run_make_run_in_one_line(tmp_path: Path) -> None:
    script = tmp_path / "project" / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"
    script.parent.mkdir(parents=True)
    shutil.copy(ENTRY_SCRIPT, script)
    result = run_bare(script, "--help")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "run `make run` first" in lines[0], result.stderr
    assert str(tmp_path / "project" / ".venv" / "bin" / "python") in lines[0]
