"""A run's own folder, the output folder's lock, publishing a finished run, and cleaning up after dead ones.

Everything a run writes beside the output (executed notebooks, reports, its log, the CSVs) goes first to its own
folder, `_tmp_run_<run_id>`, and reaches the published names only when every stage has succeeded: until then the
last successful run's CSV, notebooks and reports stay together. A failed run's notebooks, reports and log move to
`failed_runs/<run_id>/`. One run at a time writes to an output folder (an flock, which the operating system
releases when the process dies, however it dies), so any other `_tmp_run_*` folder there is a dead run's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from spark_etl import failures
from spark_etl.runtime.session import redact_text
from spark_etl.storage import filesystem

PENDING_PREFIX = "_tmp_run_"
LOCK_NAME = "_run.lock"
RUN_RECORD = "run.json"
LOG_NAME = "run.log"
FAILED_RUNS = "failed_runs"
FAILED_RUNS_KEPT = 10
PUBLISHED_FOLDERS = ("notebooks", "reports")
OUTPUT_VERSIONS = "versions"  # each warehouse version's CSVs and summary, for --rollback; the published names link here
SUMMARY_NAME = "run_summary.json"
FAULT_AT_ENV = "SPARK_ETL_FAULT_AT"  # a test hook: see fault_point


class OutputBusyError(failures.BusyError):
    """Another live run holds the output folder."""


def new_run_id() -> str:
    """Sortable by start time (UTC), unique without coordination."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}_{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunPaths:
    """Where a run reads and writes; local paths made absolute, as the kernels run in notebooks/."""

    run_id: str
    extracts: str
    warehouse: str
    output: Path

    @property
    def output_dir(self) -> Path:
        return self.output.parent

    @property
    def pending(self) -> Path:
        """The run's files wait here until every stage has succeeded."""
        return self.output_dir / f"{PENDING_PREFIX}{self.run_id}"

    @property
    def executed_notebooks(self) -> Path:
        return self.pending / "notebooks"

    @property
    def reports(self) -> Path:
        return self.pending / "reports"

    @property
    def log(self) -> Path:
        return self.pending / LOG_NAME

    @property
    def version_outputs(self) -> Path:
        """The run's CSVs and summary, written here by the stages; the published names link to them."""
        return self.output_dir / OUTPUT_VERSIONS / self.run_id

    @property
    def failed(self) -> Path:
        return self.output_dir / FAILED_RUNS / self.run_id


@contextlib.contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """Hold the output folder for this run; a second run fails at once instead of mixing its files in."""
    lock_path = output_dir / LOCK_NAME
    with lock_path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise OutputBusyError(
                f"another run is writing to {output_dir} (process {holder}, lock {lock_path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def dead_runs(paths: RunPaths) -> list[Path]:
    """The folders of runs that died in this output folder (call while holding its lock)."""
    return sorted(path for path in paths.output_dir.glob(f"{PENDING_PREFIX}*") if path != paths.pending)


def run_ids(folders: list[Path]) -> list[str]:
    return [folder.name.removeprefix(PENDING_PREFIX) for folder in folders]


def remove(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def start(paths: RunPaths) -> None:
    """Make the run's folder, with a record saying what it is and where its warehouse is, and its log."""
    for folder in (paths.executed_notebooks, paths.reports):
        folder.mkdir(parents=True)
    record = {"run_id": paths.run_id, "pid": os.getpid(), "warehouse": paths.warehouse}
    (paths.pending / RUN_RECORD).write_text(json.dumps(record) + "\n", encoding="utf-8")
    paths.log.touch(mode=0o600)


def _replace_folder(source: Path, target: Path, aside: Path) -> None:
    """Move `source` to `target`, the old `target` moved aside first and deleted after: each step a rename."""
    if target.exists():
        os.replace(target, aside)
    os.replace(source, target)
    shutil.rmtree(aside, ignore_errors=True)


def keep_summary(paths: RunPaths, summary: dict[str, Any]) -> None:
    """The summary beside the version's CSVs, before the version is made current: a current version always has
    every file `republish` needs."""
    paths.version_outputs.mkdir(parents=True, exist_ok=True)
    filesystem.write_json(filesystem.LocalFiles(), str(paths.version_outputs / SUMMARY_NAME), summary, sort_keys=False)


def publish(paths: RunPaths, data_names: list[str]) -> None:
    """Put the run's files in place (its warehouse version is already current, its summary kept beside its
    CSVs): the data first, then the notebooks, reports and log that describe it, the summary last, so whoever
    sees the new summary finds everything it describes."""
    # the notebooks and reports name the run's folder where they wrote; once published, the files are here
    published = [paths.pending / name for name in PUBLISHED_FOLDERS]
    rewrite_files(published, lambda text: text.replace(str(paths.pending), str(paths.output_dir)))
    link_published(paths.version_outputs, paths.output_dir, data_names)
    fault_point("publish")
    for name in PUBLISHED_FOLDERS:
        _replace_folder(paths.pending / name, paths.output_dir / name, paths.pending / f"previous_{name}")
    os.replace(paths.log, paths.output_dir / LOG_NAME)
    link_published(paths.version_outputs, paths.output_dir, [SUMMARY_NAME])


def fault_point(name: str) -> None:
    """A test hook: with SPARK_ETL_FAULT_AT=<name>, SIGKILL the run's process group here, as a scheduler would, to
    test a window too short to hit from outside (`publish`: the data published, the summary not yet; `swap`:
    the version committed, the serving table not yet swapped). It kills only this process when the process does
    not lead its group, so a test cannot kill its own runner."""
    if os.environ.get(FAULT_AT_ENV) != name:
        return
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def link_published(source_dir: Path, output_dir: Path, names: list[str]) -> None:
    """Make each published name the version's file: a hard link (no copy of a large CSV) made beside the
    name and renamed over it, so a reader sees the old file or the new one, whole."""
    for name in names:
        temporary = output_dir / f".{name}.tmp_{uuid.uuid4().hex[:12]}"
        try:
            os.link(source_dir / name, temporary)
        except OSError:  # a file system without hard links
            shutil.copy2(source_dir / name, temporary)
        os.replace(temporary, output_dir / name)


def published_csv_version(output_dir: Path, csv_name: str, warehouse: str) -> str | None:
    """The version whose features the published CSV `csv_name` holds, when it can be trusted: the published
    summary describes that CSV and `warehouse`, and the CSV is the very file kept with the summary's version (a
    run killed between publishing its CSV and its summary leaves them apart). None otherwise: a --no-csv run
    then writes the CSV."""
    published = published_summary(output_dir)
    if published is None or "version" not in published:
        return None
    version = str(published["version"])
    if Path(str(published.get("output", ""))).name != csv_name or published.get("warehouse") != warehouse:
        return None
    try:
        if not os.path.samefile(output_dir / csv_name, output_dir / OUTPUT_VERSIONS / version / csv_name):
            return None
    except OSError:  # either file missing
        return None
    return str(published.get("csv_version") or version)


def keep_published_csv(paths: RunPaths) -> None:
    """A run that leaves the CSV out (--no-csv) keeps the published one as its version's: a hard link where the
    file system has them (`link_published`), so publishing the version, re-publishing it and a rollback to it all
    leave the file as it is."""
    paths.version_outputs.mkdir(parents=True, exist_ok=True)
    link_published(paths.output_dir, paths.version_outputs, [paths.output.name])


def published_summary(output_dir: Path) -> dict[str, Any] | None:
    """The published run_summary.json; None when there is none, or it is not a JSON object."""
    try:
        loaded = json.loads((output_dir / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def published_version(output_dir: Path) -> str | None:
    """The version the published summary describes."""
    published = published_summary(output_dir)
    return None if published is None else str(published.get("version"))


def republish(output_dir: Path, version: str, data_names: list[str]) -> bool:
    """Publish the kept files of `version` again (a rollback, or a run killed after its commit and before its
    files were in place); False when they are not all kept here."""
    source_dir = output_dir / OUTPUT_VERSIONS / version
    names = [*data_names, SUMMARY_NAME]
    if not all((source_dir / name).is_file() for name in names):
        return False
    link_published(source_dir, output_dir, names)
    return True


def remove_uncommitted(paths: RunPaths) -> None:
    """A failed run's CSVs, which no version will ever name, and their folder if that leaves it empty."""
    remove([paths.version_outputs])
    with contextlib.suppress(OSError):
        paths.version_outputs.parent.rmdir()


def newest_versions(paths: RunPaths, count: int) -> list[str]:
    """The newest `count` versions whose files are kept here, this run's among them (run ids sort by start
    time): what stays when the warehouse's pointer cannot be read from here."""
    root = paths.output_dir / OUTPUT_VERSIONS
    names = sorted({paths.run_id, *(folder.name for folder in root.iterdir() if folder.is_dir())})
    return names[-max(1, count) :]


def remove_output_versions(output_dir: Path, kept: list[str]) -> None:
    """Delete the kept files of versions the warehouse no longer keeps, and of runs that never committed."""
    root = output_dir / OUTPUT_VERSIONS
    if root.is_dir():
        for folder in root.iterdir():
            if folder.name not in kept:
                shutil.rmtree(folder, ignore_errors=True)
    for leftover in output_dir.glob(".*.tmp_*"):
        leftover.unlink(missing_ok=True)


def keep_failed(paths: RunPaths) -> Path:
    """Move a failed run's notebooks, reports and log to failed_runs/<run_id>/ (the data it wrote is dropped),
    keeping the newest FAILED_RUNS_KEPT failed runs."""
    paths.failed.mkdir(parents=True, exist_ok=True)
    for name in (*PUBLISHED_FOLDERS, LOG_NAME):
        if (paths.pending / name).exists():
            os.replace(paths.pending / name, paths.failed / name)
    for old in sorted(paths.failed.parent.iterdir())[:-FAILED_RUNS_KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    return paths.failed


def rewrite_files(paths: list[Path], rewrite: Callable[[str], str]) -> None:
    """Apply `rewrite` to the given text files, or to the files under the given folders (notebooks, reports,
    logs), writing back only those it changes."""
    for top in paths:
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="surrogateescape")
                rewritten = rewrite(text)
                if rewritten != text:
                    path.write_text(rewritten, encoding="utf-8", errors="surrogateescape")


def redact_files(paths: list[Path], secret_values: list[str]) -> None:
    """Scrub every secret value from the given files: whatever a kernel or a JVM printed is scrubbed before
    anyone is shown it."""
    if any(secret_values):
        rewrite_files(paths, lambda text: redact_text(text, secret_values))


@contextlib.contextmanager
def output_to_log(log_path: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr, and so every child's (kernels, JVMs: Spark's log, Java stacks), to
    the run's log; yield the terminal's stderr for the run's own lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_stdout, saved_stderr = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    terminal = os.fdopen(os.dup(saved_stderr), "w", buffering=1, encoding="utf-8")
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_stdout, 1)
        os.dup2(saved_stderr, 2)
        os.close(saved_stdout)
        os.close(saved_stderr)
        terminal.close()


def log_reason(log_path: Path) -> str | None:
    """The last line of the log that states an exception or error (what a JVM that would not start said)."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("Exception in thread") or text.startswith("Error:") or "Exception: " in text:
            return text.split(" ", 4)[-1] if text.startswith("Exception in thread") else text
    return None
