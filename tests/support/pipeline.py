"""Running the pipeline from a test: the entry script in a process of its own, or its main() in this process with
the stages in the kernel the session shares (`run_in_kernel`), and what every finished run must have written."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from spark_etl.command import cli
from spark_etl.runtime import runner, session
from spark_etl.storage import filesystem

PROJECT_DIR = Path(__file__).resolve().parents[2]
REAL_EXTRACTS_DIR = PROJECT_DIR.parent / "shared" / "data_extracts"
ENTRY_SCRIPT = PROJECT_DIR / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"
# a Hadoop URI that is not file:, mounted by the session's kernel (conftest.stage_kernel) on a local folder
VIEWFS_WAREHOUSES = "viewfs://etl/warehouses"
VIEWFS_MOUNT_SETTING = "spark.hadoop.fs.viewfs.mounttable.etl.link./warehouses"
NOTEBOOKS = ("01_staging.ipynb", "02_intermediate.ipynb", "03_marts.ipynb", "04_monitoring.ipynb")
# the notebooks as committed in notebooks/, whatever they are named (NOTEBOOKS: the four a run executes)
COMMITTED_NOTEBOOKS = sorted((PROJECT_DIR / "notebooks").glob("*.ipynb"))


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
    import nbformat  # here, after spark_etl.command.cli (imported above) has kept its schemas' IRI parser out

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


def run_in_kernel(
    kernel: runner.SharedKernel, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The entry script's main() in this process, its stages in the session's warm kernel: the whole run (lock,
    stages, commit, publishing, clean-up, exit status) at about half a fresh process's cost. What it prints is
    captured as `run_pipeline` captures a process's stderr. For runs whose subject is not the process itself
    (a kill, a signal, a missing Java, the JIT it chose: those are `run_pipeline`'s)."""
    argv = list(args)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as captured, pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        for name in (filesystem.RUN_ID_ENV, session.SECRET_CONF_ENV):  # main() sets them; restored after
            patch.delenv(name, raising=False)
        patch.chdir(PROJECT_DIR)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        # sys.stdout and sys.stderr write to file descriptors 1 and 2, as in a process of its own: while the run
        # sends them to its log (run_files.output_to_log), what it prints there goes to the log, not to the capture
        streams = [
            io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", line_buffering=True) for fd in (1, 2)
        ]
        try:
            with contextlib.redirect_stdout(streams[0]), contextlib.redirect_stderr(streams[1]):
                try:
                    status = cli.main(argv, kernel=kernel)
                except SystemExit as exit:  # the options' errors and --help, as the script exits with them
                    status = exit.code if isinstance(exit.code, int) else 1
                for stream in streams:
                    stream.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        captured.seek(0)
        printed = captured.read()
    return subprocess.CompletedProcess([str(ENTRY_SCRIPT), *argv], status, "", printed)


def warn_only_checks(folder: Path) -> Path:
    """The default checks with every level set to warn: for runs whose subject is not the checks but whose data is
    deliberately bad (a delta of a dozen rows with a bad row of every reason, an account joining after its
    invoices), so that they publish as before. The checks themselves are tested in test_watched_runs."""
    import yaml

    from spark_etl.monitoring import checks

    document = yaml.safe_load(Path(checks.default_path()).read_text(encoding="utf-8"))
    for check in document["checks"]:
        check["level"] = "warn"
    path = folder / "warn_only_checks.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path
