"""Runs killed outright at any point (SIGKILL to the whole process group, as a scheduler sends it) leave the last
committed version current and its published files whole, and the next run succeeds and removes what they left;
--rollback and --keep-versions."""

from __future__ import annotations

import contextlib
import csv
import datetime
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.contract_compare import read_csv
from support.pipeline import ENTRY_SCRIPT, PROJECT_DIR, run_in_kernel

import reference_contract
from extracts_generator import generate
from spark_etl.publishing import run_files
from spark_etl.runtime import runner
from spark_etl.storage import filesystem, versions

pytestmark = pytest.mark.e2e
AS_OF = "2030-01-01"  # fixed, so a header-only delta changes nothing and every day's features are known
OUTPUT_NAME = "features.csv"
PUBLISHED = (OUTPUT_NAME, "rejects.csv", run_files.SUMMARY_NAME)
TABLES = ("accounts", "skus", "invoices", "invoice_line_items")
PAID_LATER = 3  # invoices of the first load that are unpaid in it and paid on time in day 2's delta


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = csv.reader(handle)
    return header, rows


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated data set cut by issue date into a first load (`day0`: 70% of the invoices) and three daily
    deltas (`day1`..`day3`: the next invoices with their lines, header-only accounts and skus; day 2 also pays
    PAID_LATER invoices of the first load), plus `empty` (four header-only files) and `merged<k>`: the source as
    it stands after day k (the delta's rows replacing the stored ones), for the reference."""
    root = tmp_path_factory.mktemp("days")
    generate(root / "full", seed=7, scale=0.03, unpaid_rate=0.1)
    tables = {table: read_table(root / "full" / f"{table}.csv") for table in TABLES}
    invoice_header, invoices = tables["invoices"]
    line_header, lines = tables["invoice_line_items"]
    invoices.sort(key=lambda row: (row[2], int(row[0])))
    bounds = [0, *(len(invoices) * share // 10 for share in (7, 8, 9)), len(invoices)]
    cut = [invoices[start:end] for start, end in itertools.pairwise(bounds)]
    paid_on_time = [
        row
        for row in cut[0]
        if row[3] and (datetime.date.fromisoformat(row[3]) - datetime.date.fromisoformat(row[2])).days <= 30
    ][:PAID_LATER]
    assert len(paid_on_time) == PAID_LATER
    unpaid = {row[0]: [*row[:3], ""] for row in paid_on_time}
    day_invoices = [[unpaid.get(row[0], row) for row in cut[0]], *cut[1:]]
    day_invoices[2] = [*day_invoices[2], *paid_on_time]
    for day, rows in enumerate(day_invoices):
        new_ids = {row[0] for row in cut[day]}
        for table in ("accounts", "skus"):
            header, table_rows = tables[table]
            write_table(root / f"day{day}" / f"{table}.csv", header, table_rows if day == 0 else [])
        write_table(root / f"day{day}" / "invoices.csv", invoice_header, rows)
        day_lines = [line for line in lines if line[0] in new_ids]
        write_table(root / f"day{day}" / "invoice_line_items.csv", line_header, day_lines)
    for table in TABLES:
        write_table(root / "empty" / f"{table}.csv", tables[table][0], [])
    for day in range(4):
        merged: dict[str, list[str]] = {}
        for rows in day_invoices[: day + 1]:
            merged.update((row[0], row) for row in rows)
        for table in ("accounts", "skus"):
            write_table(root / f"merged{day}" / f"{table}.csv", *tables[table])
        write_table(root / f"merged{day}" / "invoices.csv", invoice_header, list(merged.values()))
        merged_lines = [line for line in lines if line[0] in merged]
        write_table(root / f"merged{day}" / "invoice_line_items.csv", line_header, merged_lines)
    return root


def expected_features(merged: Path) -> list[tuple[str, ...]]:
    """The feature CSV a full run over `merged` writes, as the independent reference computes it."""
    expected = reference_contract.compute(merged, as_of=datetime.date.fromisoformat(AS_OF))
    return [expected.header, *expected.rows]


def published(output_dir: Path) -> dict[str, bytes]:
    return {name: (output_dir / name).read_bytes() for name in PUBLISHED}


def kept_files(output_dir: Path, version: str) -> dict[str, bytes]:
    """The CSVs and summary a version keeps for --rollback, which the published names link to."""
    return {name: (output_dir / run_files.OUTPUT_VERSIONS / version / name).read_bytes() for name in PUBLISHED}


def manifest(warehouse: Path, version: str) -> dict[str, Any]:
    path = warehouse / versions.VERSIONS_DIR / version / versions.MANIFEST
    return dict(json.loads(path.read_text(encoding="utf-8")))


def pointer(warehouse: Path) -> dict[str, Any]:
    """The current version's pointer, which must be valid JSON naming a version whose manifest exists."""
    document = json.loads((warehouse / versions.POINTER).read_text(encoding="utf-8"))
    assert manifest(warehouse, document["version"])["version"] == document["version"]
    return dict(document)


def folder_names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def assert_only_kept_versions(output_dir: Path, warehouse: Path) -> None:
    """Nothing but the kept versions in the output's versions/ folder; in the warehouse's, those and the older
    versions whose partitions a kept incremental version still reads; no run's own folder beside the output."""
    history = pointer(warehouse)["history"]
    models = [model for version in history for model in manifest(warehouse, version)["models"].values()]
    referenced = {folder.split("/")[1] for model in models for folder in model["folders"].values()}
    assert folder_names(warehouse / versions.VERSIONS_DIR) == sorted({*history, *referenced})
    assert folder_names(output_dir / run_files.OUTPUT_VERSIONS) == sorted(history)
    assert sorted(path.name for path in output_dir.glob("_tmp_*")) == []


def run_processes(run_id: str) -> list[int]:
    """The live processes working for a run: the entry script sets SPARK_ETL_RUN_ID for its kernels and JVMs."""
    marker = f"{filesystem.RUN_ID_ENV}={run_id}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            state = (proc / "stat").read_text(encoding="utf-8").rpartition(")")[2].split()[0]
            if state != "Z" and marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
    return found


def process_group(pid: int) -> int | None:
    """The process group of a live process; None once it has ended."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def command_word(pid: int, index: int) -> bytes | None:
    """One word of a live process's command line; None once it has ended."""
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[index]
    return None


def assert_all_gone(run_id: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while run_processes(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run_processes(run_id) == [], f"processes of killed run {run_id} still alive"


class Runs:
    """Entry scripts started in process groups of their own (start_new_session), so the whole group can be killed
    as a scheduler kills it; whatever of them is still alive at the end of the test is killed."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []
        self.run_ids: list[str] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"run_{len(self.started)}.log"
        with log.open("wb") as handle:  # a file, not a pipe: a killed run's output is never waited for
            process = subprocess.Popen(
                [sys.executable, str(ENTRY_SCRIPT), *args],
                cwd=PROJECT_DIR,
                env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})},
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def kill_when(self, process: subprocess.Popen[bytes], reached: Callable[[], bool], what: str) -> None:
        """SIGKILL the run's whole process group as soon as it has reached `what`."""
        deadline = time.monotonic() + 300
        while not reached():
            assert process.poll() is None, f"the run ended (status {process.returncode}) before {what}"
            assert time.monotonic() < deadline, f"the run never reached {what}"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL

    def stop_all(self) -> None:
        for process in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        for run_id in self.run_ids:  # anything of theirs outside their groups (a kernel)
            for pid in run_processes(run_id):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    started = Runs(tmp_path)
    yield started
    started.stop_all()


def new_version(warehouse: Path, known: set[str]) -> Path | None:
    """The version folder a running run has begun, once there is one."""
    folders = [path for path in (warehouse / versions.VERSIONS_DIR).glob("*") if path.name not in known]
    return folders[0] if folders else None


def has_entry(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def test_runs_killed_while_staging_writing_marts_or_publishing_leave_the_last_version_and_the_next_run_cleans_up(
    days: Path, tmp_path: Path, runs: Runs, stage_kernel: runner.SharedKernel
) -> None:
    """The killed runs are the entry script in processes of their own; the runs that must succeed run in the
    session's kernel."""
    output_dir = tmp_path / "out"
    warehouse = output_dir / "warehouse"
    output = ["--output", str(output_dir / OUTPUT_NAME), "--as-of", AS_OF, "--quiet"]

    def next_day(day: str, merged: int) -> str:
        """An incremental run that must succeed, with the features a full run over the merged source gives;
        returns its version."""
        result = run_in_kernel(stage_kernel, "--extracts", str(days / day), *output, "--incremental")
        assert result.returncode == 0, result.stderr
        assert read_csv(output_dir / OUTPUT_NAME) == expected_features(days / f"merged{merged}")
        version = str(pointer(warehouse)["version"])
        assert published(output_dir) == kept_files(output_dir, version)
        assert json.loads((output_dir / run_files.SUMMARY_NAME).read_text(encoding="utf-8"))["version"] == version
        assert_only_kept_versions(output_dir, warehouse)
        return version

    def killed(day: str, reached: Callable[[Path], bool], what: str, env: dict[str, str] | None = None) -> str:
        """An incremental run killed once it has reached `what`; returns its run id."""
        known = set(folder_names(warehouse / versions.VERSIONS_DIR))
        process = runs.start("--extracts", str(days / day), *output, "--incremental", env=env)

        def version_reached() -> bool:
            folder = new_version(warehouse, known)
            return folder is not None and reached(folder)

        runs.kill_when(process, version_reached, what)
        folder = new_version(warehouse, known)
        assert folder is not None
        runs.run_ids.append(folder.name)
        assert_all_gone(folder.name)  # the kernel too, though it runs in a session of its own
        assert (output_dir / f"{run_files.PENDING_PREFIX}{folder.name}").is_dir()  # left for the next run
        return folder.name

    def assert_cleaned_up(dead: str) -> None:
        """Nothing the dead, uncommitted run wrote is left, in the warehouse or beside the output."""
        assert dead not in folder_names(warehouse / versions.VERSIONS_DIR)
        assert dead not in folder_names(output_dir / run_files.OUTPUT_VERSIONS)
        assert not (output_dir / f"{run_files.PENDING_PREFIX}{dead}").exists()

    full = run_in_kernel(stage_kernel, "--extracts", str(days / "day0"), *output)
    assert full.returncode == 0, full.stderr
    assert read_csv(output_dir / OUTPUT_NAME) == expected_features(days / "merged0")
    first = str(pointer(warehouse)["version"])

    # 1. killed while staging: the staging notebook has written a model of its version
    before = published(output_dir)
    dead_in_staging = killed("day1", lambda folder: has_entry(folder / "staging"), "a staging model")
    assert published(output_dir) == before
    assert pointer(warehouse)["version"] == first

    # 2. the same day again, killed while writing the marts: the marts notebook has begun writing fct_invoice_features
    dead_in_marts = killed("day1", lambda folder: (folder / "marts").is_dir(), "the marts write")
    assert published(output_dir) == before
    assert pointer(warehouse)["version"] == first
    second = next_day("day1", merged=1)
    assert_cleaned_up(dead_in_staging)
    assert_cleaned_up(dead_in_marts)

    # 3. killed while publishing (the test hook): its version is committed, the CSVs are in place, the summary not
    before = published(output_dir)
    known = set(folder_names(warehouse / versions.VERSIONS_DIR))
    process = runs.start(
        "--extracts", str(days / "day2"), *output, "--incremental", env={run_files.FAULT_AT_ENV: "publish"}
    )  # fmt: skip
    assert process.wait(timeout=900) == -signal.SIGKILL
    folder = new_version(warehouse, known)
    assert folder is not None
    dead = folder.name
    runs.run_ids.append(dead)
    assert_all_gone(dead)
    assert pointer(warehouse)["version"] == dead
    new = kept_files(output_dir, dead)
    for name, content in published(output_dir).items():  # each file whole: the old version's or the new one's
        assert content in (before[name], new[name]), name
    assert published(output_dir)[OUTPUT_NAME] == new[OUTPUT_NAME] != before[OUTPUT_NAME]
    assert published(output_dir)[run_files.SUMMARY_NAME] == before[run_files.SUMMARY_NAME]
    # the next run (a header-only delta) first re-publishes the committed version, then publishes its own
    result = run_in_kernel(stage_kernel, "--extracts", str(days / "empty"), *output[:-1], "--incremental")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"re-published version {dead}: a run stopped before publishing it\n")
    assert read_csv(output_dir / OUTPUT_NAME) == expected_features(days / "merged2")
    last = str(pointer(warehouse)["version"])
    assert published(output_dir)[OUTPUT_NAME] == new[OUTPUT_NAME]
    assert published(output_dir) == kept_files(output_dir, last)
    assert_only_kept_versions(output_dir, warehouse)
    assert pointer(warehouse)["history"] == [last, dead, second]


def test_rollback_republishes_the_previous_version_and_keep_versions_bounds_the_folders(
    days: Path, tmp_path: Path, stage_kernel: runner.SharedKernel
) -> None:
    output_dir = tmp_path / "out"
    warehouse = output_dir / "warehouse"
    output = ["--output", str(output_dir / OUTPUT_NAME), "--as-of", AS_OF, "--quiet"]
    publications = []
    for merged in range(3):
        result = run_in_kernel(
            stage_kernel, "--extracts", str(days / f"merged{merged}"), *output, "--keep-versions", "2"
        )
        assert result.returncode == 0, result.stderr
        publications.append((str(pointer(warehouse)["version"]), published(output_dir)))
    (first, _), (second, second_files), (third, third_files) = publications
    assert second_files[OUTPUT_NAME] != third_files[OUTPUT_NAME]
    assert pointer(warehouse)["history"] == [third, second]
    assert_only_kept_versions(output_dir, warehouse)
    assert first not in folder_names(warehouse / versions.VERSIONS_DIR)  # full runs: nothing of it is referenced

    rolled_back = run_in_kernel(stage_kernel, *output, "--rollback")
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert pointer(warehouse) == {"version": second, "history": [second]}
    assert published(output_dir) == second_files

    nothing_left = run_in_kernel(stage_kernel, *output, "--rollback")
    assert nothing_left.returncode == 2
    assert nothing_left.stderr == f"error: --rollback: {warehouse} has no earlier version kept\n"
    assert pointer(warehouse) == {"version": second, "history": [second]}
    assert published(output_dir) == second_files

    # the rolled-back warehouse is one to build on: day 2 again, incrementally, gives the third run's features
    again = run_in_kernel(
        stage_kernel, "--extracts", str(days / "day2"), *output, "--incremental", "--keep-versions", "2"
    )
    assert again.returncode == 0, again.stderr
    assert published(output_dir)[OUTPUT_NAME] == third_files[OUTPUT_NAME]
    fourth = str(pointer(warehouse)["version"])
    assert pointer(warehouse)["history"] == [fourth, second]
    assert folder_names(output_dir / run_files.OUTPUT_VERSIONS) == sorted([fourth, second])
    assert third not in folder_names(warehouse / versions.VERSIONS_DIR)


def test_a_killed_entry_script_takes_its_kernel_with_it(days: Path, tmp_path: Path, runs: Runs) -> None:
    """The kernel runs in a session of its own (jupyter_client starts it so), outside the process group a
    scheduler kills; it must die with the entry script even when it cannot notice by itself (here: stopped)."""
    warehouse = tmp_path / "out" / "warehouse"
    process = runs.start("--extracts", str(days / "day0"), "--output", str(tmp_path / "out" / OUTPUT_NAME))
    deadline = time.monotonic() + 300
    while (folder := new_version(warehouse, set())) is None or not has_entry(folder / "staging"):
        assert process.poll() is None and time.monotonic() < deadline, "the run never reached a staging model"
        time.sleep(0.05)
    runs.run_ids.append(folder.name)
    # a process of the run may end between the listing and the look at it (a short-lived child): skip those
    outside = [pid for pid in run_processes(folder.name) if process_group(pid) not in (None, process.pid)]
    kernels = [pid for pid in outside if command_word(pid, 2) == b"ipykernel_launcher"]
    assert len(kernels) == 1, f"expected the run's one kernel outside its process group, found {outside}"
    os.kill(kernels[0], signal.SIGSTOP)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert_all_gone(folder.name)
