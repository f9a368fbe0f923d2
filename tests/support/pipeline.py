"""Running the pipeline from a test: the entry script in a process of its own, or the three stage notebooks in a
kernel the session shares (`run_in_kernel`), and what every finished run must have written."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from spark_etl import cli, run_files, runner

PROJECT_DIR = Path(__file__).resolve().parents[2]
REAL_EXTRACTS_DIR = PROJECT_DIR.parent / "shared" / "data_extracts"
ENTRY_SCRIPT = PROJECT_DIR / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"
NOTEBOOKS = ("01_staging.ipynb", "02_intermediate.ipynb", "03_marts.ipynb")


def run_pipeline(
    *args: str, timeout: float = 900, env: dict[str, str] | None = None, unset: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """The entry script in a process of its own, as a scheduler runs it (`unset`: variables it does not get)."""
    environment = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})}
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, str(ENTRY_SCRIPT), *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_pipeline(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The entry script started in the background, for tests that act on a run while it runs or run several
    independent runs at once (`finish`)."""
    return subprocess.Popen(
        [sys.executable, str(ENTRY_SCRIPT), *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Wait for a run `start_pipeline` started; what `run_pipeline` would have returned."""
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_notebooks_clean(output_dir: Path) -> None:
    """Each executed notebook is kept, is valid nbformat and holds no error output."""
    for name in NOTEBOOKS:
        notebook = nbformat.read(output_dir / "notebooks" / name, as_version=4)
        nbformat.validate(notebook)
        errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert errors == [], name
        assert any(o.get("output_type") == "display_data" for cell in notebook.cells for o in cell.get("outputs", []))


@dataclass(frozen=True)
class FinishedRun:
    """A run of the entry script that succeeded: its output folder and what it printed."""

    output_dir: Path
    result: subprocess.CompletedProcess[str]


def run_in_kernel(kernel: runner.SharedKernel, *args: str) -> Path:
    """The three stage notebooks with the entry script's options, in the session's kernel, published as the entry
    script publishes a run's files (its CSVs and summary, notebooks and reports); no lock, no warehouse commit
    (the pointer), so `--incremental` has nothing to build on: for full runs whose files a test compares with
    another run's. Returns the output folder."""
    options = cli.parse_options(list(args))
    paths = cli.run_paths(options)
    paths.output_dir.mkdir(parents=True, exist_ok=True)
    run_files.start(paths)
    parameters = cli.stage_parameters(options, paths)
    runs = [
        runner.execute_notebook(name, paths.executed_notebooks, parameters[name], kernel=kernel)
        for name in runner.STAGE_NOTEBOOKS
    ]
    run_files.keep_summary(paths, cli.run_summary(options, runs, 0.0))
    run_files.publish(paths, [paths.output.name, "rejects.csv"])
    run_files.remove([paths.pending])
    return paths.output_dir
