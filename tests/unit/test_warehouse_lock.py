"""One run at a time per warehouse: the lock on its own (processes of its own, no Spark), then entry-script runs:
two started together, and one after the lock's holder was SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from support.pipeline import PROJECT_DIR, run_pipeline, start_pipeline

from spark_etl import run_files, warehouse_lock
from spark_etl.warehouse_lock import Holder, LockFolderError, WarehouseLock, WarehouseLockedError

SOURCE_DIR = PROJECT_DIR / "Spark_ETL_Pipeline" / "src"
# A command contending for a warehouse: says `ready`, takes the lock when its stdin says so, says `took` or
# `refused: <why>`, and holds the lock until its stdin gives another line (or closes).
CONTENDER = """
import sys
from pathlib import Path
from spark_etl.warehouse_lock import WarehouseLock, WarehouseLockedError

warehouse, run_id = sys.argv[1:]
print("ready", flush=True)
sys.stdin.readline()
try:
    with WarehouseLock(warehouse, run_id, Path(warehouse).parent / run_id / "features.csv"):
        print("took", flush=True)
        sys.stdin.readline()
except WarehouseLockedError as error:
    print(f"refused: {error}", flush=True)
"""
HOST = socket.gethostname()


class Contender:
    def __init__(self, warehouse: Path, run_id: str) -> None:
        self.run_id = run_id
        self.process = subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(warehouse), run_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(SOURCE_DIR)},
        )

    def wait_ready(self) -> None:
        assert self.said() == "ready"

    def tell(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def said(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().rstrip("\n")

    def end(self) -> int:
        self.process.communicate(timeout=30)
        return self.process.returncode


@pytest.fixture
def contenders() -> Iterator[list[Contender]]:
    started: list[Contender] = []
    yield started
    for contender in started:
        if contender.process.poll() is None:
            contender.process.kill()
            contender.process.wait()


def take(warehouse: Path, run_id: str, contenders: list[Contender]) -> Contender:
    contender = Contender(warehouse, run_id)
    contenders.append(contender)
    contender.wait_ready()
    contender.tell()
    assert contender.said() == "took"
    return contender


@pytest.fixture
def gone_pid() -> tuple[int, int | None]:
    """The pid and start time of a process that ran and has ended (and been reaped)."""
    child = subprocess.Popen(["sleep", "60"])
    start = warehouse_lock.process_start(child.pid)
    child.kill()
    child.wait()
    return child.pid, start


@pytest.fixture
def live_pid() -> Iterator[tuple[int, int | None]]:
    child = subprocess.Popen(["sleep", "60"])
    yield child.pid, warehouse_lock.process_start(child.pid)
    child.kill()
    child.wait()


def fabricated(warehouse: Path, pid: int, pid_start: int | None, host: str = HOST) -> Holder:
    """Write a lock as another run would have left it."""
    holder = Holder(
        run_id="20991231T235959Z_0ld0ne",
        host=host,
        pid=pid,
        pid_start=pid_start,
        boot_id=warehouse_lock.boot_id(),
        started_at="2099-12-31T23:59:59Z",
        output="/elsewhere/features.csv",
    )
    warehouse.mkdir(parents=True, exist_ok=True)
    (warehouse / "_lock").write_text(json.dumps(asdict(holder)), encoding="utf-8")
    return holder


def lock_of_path(path: Path) -> Holder:
    holder = warehouse_lock.read_holder(path.read_bytes())
    assert holder is not None
    return holder


def lock_of(warehouse: Path) -> Holder:
    return lock_of_path(warehouse / "_lock")


def test_a_live_holder_keeps_the_warehouse_and_the_refusal_names_its_run(
    tmp_path: Path, contenders: list[Contender]
) -> None:
    warehouse = tmp_path / "late" / "warehouse"  # does not exist yet: the first command makes it
    holder_process = take(warehouse, "20990101T000000Z_aaaaaa", contenders)
    held = (warehouse / "_lock").read_bytes()
    holder = lock_of(warehouse)
    assert holder == Holder(
        run_id="20990101T000000Z_aaaaaa",
        host=HOST,
        pid=holder_process.process.pid,
        pid_start=warehouse_lock.process_start(holder_process.process.pid),
        boot_id=warehouse_lock.boot_id(),
        started_at=holder.started_at,
        output=str(tmp_path / "late" / "20990101T000000Z_aaaaaa" / "features.csv"),
    )
    assert time.strptime(holder.started_at, "%Y-%m-%dT%H:%M:%SZ")

    with pytest.raises(WarehouseLockedError) as refused, WarehouseLock(str(warehouse), "r2", tmp_path / "o" / "f.csv"):
        pass
    assert str(refused.value) == (
        f"the warehouse {warehouse} is locked by run 20990101T000000Z_aaaaaa "
        f"(pid {holder_process.process.pid} on host {HOST}, started {holder.started_at})"
    )
    assert (warehouse / "_lock").read_bytes() == held
    assert [path.name for path in warehouse.iterdir()] == ["_lock"]  # the refused one's own record is gone
    assert not (tmp_path / "o").exists()

    holder_process.tell()
    assert holder_process.end() == 0
    assert not (tmp_path / "late").exists()  # the folders made for the lock alone go with it


@pytest.mark.parametrize("ending", [RuntimeError, KeyboardInterrupt, SystemExit])
def test_the_lock_is_deleted_however_the_command_ends(tmp_path: Path, ending: type[BaseException]) -> None:
    warehouse = tmp_path / "warehouse"
    with pytest.raises(ending), WarehouseLock(str(warehouse), "r1", tmp_path / "features.csv"):
        assert lock_of(warehouse).pid == os.getpid()
        (warehouse / "staging").mkdir()  # the command wrote something: the warehouse stays
        raise ending()
    assert [path.name for path in warehouse.iterdir()] == ["staging"]


def test_a_lock_whose_process_is_gone_is_taken_over(tmp_path: Path, gone_pid: tuple[int, int | None]) -> None:
    warehouse = tmp_path / "warehouse"
    fabricated(warehouse, *gone_pid)
    with WarehouseLock(str(warehouse), "20990101T000000Z_bbbbbb", tmp_path / "features.csv"):
        holder = lock_of(warehouse)
        assert (holder.run_id, holder.pid, holder.output) == (
            "20990101T000000Z_bbbbbb",
            os.getpid(),
            str(tmp_path / "features.csv"),
        )
    assert list(warehouse.iterdir()) == []


def test_a_pid_now_running_another_process_is_not_the_holder(tmp_path: Path, live_pid: tuple[int, int | None]) -> None:
    """The lock's pid runs, but a process started at another time than the lock's holder: that pid was reused."""
    pid, start = live_pid
    assert start is not None
    warehouse = tmp_path / "warehouse"
    fabricated(warehouse, pid, start)
    with pytest.raises(WarehouseLockedError), WarehouseLock(str(warehouse), "r1", tmp_path / "features.csv"):
        pass
    fabricated(warehouse, pid, start - 1)
    with WarehouseLock(str(warehouse), "r2", tmp_path / "features.csv"):
        assert lock_of(warehouse).run_id == "r2"


def test_a_lock_from_another_host_is_never_taken_over(tmp_path: Path, gone_pid: tuple[int, int | None]) -> None:
    warehouse = tmp_path / "warehouse"
    fabricated(warehouse, *gone_pid, host="etl-02.example.com")  # that pid runs nothing here: it says nothing
    held = (warehouse / "_lock").read_bytes()
    with pytest.raises(WarehouseLockedError) as refused, WarehouseLock(str(warehouse), "r1", tmp_path / "f.csv"):
        pass
    assert str(refused.value) == (
        f"the warehouse {warehouse} is locked by run 20991231T235959Z_0ld0ne (pid {gone_pid[0]} on host "
        f"etl-02.example.com, started 2099-12-31T23:59:59Z); a lock from another host is never taken over: "
        f"delete {warehouse / '_lock'} once that run is over"
    )
    assert (warehouse / "_lock").read_bytes() == held


def test_a_lock_file_naming_no_run_is_left_alone(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    (warehouse / "_lock").write_text("", encoding="utf-8")
    with pytest.raises(WarehouseLockedError) as refused, WarehouseLock(str(warehouse), "r1", tmp_path / "f.csv"):
        pass
    assert str(refused.value) == (
        f"the warehouse {warehouse} is locked by {warehouse / '_lock'}, which names no run (delete it if none is going)"
    )


def test_exactly_one_of_several_runs_takes_over_a_stale_lock(
    tmp_path: Path, gone_pid: tuple[int, int | None], contenders: list[Contender]
) -> None:
    warehouse = tmp_path / "warehouse"
    for attempt in range(10):
        fabricated(warehouse, *gone_pid)
        ready = [Contender(warehouse, f"20990101T00000{attempt}Z_run{index:03d}") for index in range(6)]
        contenders.extend(ready)
        for contender in ready:  # started together, each waits for its signal with the lock not yet tried
            contender.wait_ready()
        for contender in ready:  # all at once: each finds the same stale lock
            contender.tell()
        said = {contender.run_id: contender.said() for contender in ready}
        (winner,) = [contender for contender in ready if said[contender.run_id] == "took"]
        holder = lock_of(warehouse)
        assert (holder.run_id, holder.pid) == (winner.run_id, winner.process.pid)
        refusal = f"refused: the warehouse {warehouse} is locked by {holder.describe()}"
        assert sorted(said.values()) == sorted(["took"] + [refusal] * 5)
        winner.tell()
        assert [contender.end() for contender in ready] == [0] * 6
        assert list(warehouse.iterdir()) == []  # no lock, no contender's record left behind


def test_other_hadoop_uris_lock_in_the_output_folder(tmp_path: Path, contenders: list[Contender]) -> None:
    output = tmp_path / "out" / "features.csv"
    assert warehouse_lock.lock_path(f"file://{tmp_path}/wh", output.parent) == tmp_path / "wh" / "_lock"
    assert warehouse_lock.lock_path(f"file:{tmp_path}/wh", output.parent) == tmp_path / "wh" / "_lock"
    path = warehouse_lock.lock_path("hdfs://nn:8020/late/wh_1", output.parent)
    assert path.parent == output.parent
    assert path.name.startswith("_lock_warehouse_hdfs_nn_8020_late_wh_1_")
    assert warehouse_lock.lock_path("hdfs://nn:8020/late/wh/1", output.parent) != path  # same readable part

    with WarehouseLock("s3a://bucket/wh", "r1", output) as held:
        assert held.path.parent == output.parent  # made for the lock: the command would make it anyway
        assert warehouse_lock.read_holder(held.path.read_bytes()) == held.holder
        with pytest.raises(WarehouseLockedError) as refused:
            WarehouseLock("s3a://bucket/wh", "r2", output).acquire()
        assert str(refused.value) == f"the warehouse s3a://bucket/wh is locked by {lock_of_path(held.path).describe()}"
    assert not output.parent.exists()


def test_a_folder_that_cannot_hold_the_lock_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    with pytest.raises(LockFolderError) as failed:
        WarehouseLock(str(tmp_path / "a_file" / "x" / "warehouse"), "r1", tmp_path / "f.csv").acquire()
    assert (failed.value.folder, failed.value.reason) == (tmp_path / "a_file" / "x", "not a directory")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"]


def test_a_killed_holders_lock_is_stale(tmp_path: Path, contenders: list[Contender]) -> None:
    warehouse = tmp_path / "warehouse"
    killed = take(warehouse, "20990101T000000Z_k1ll3d", contenders)
    os.kill(killed.process.pid, signal.SIGKILL)
    killed.process.wait()
    assert lock_of(warehouse).run_id == "20990101T000000Z_k1ll3d"
    with WarehouseLock(str(warehouse), "r2", tmp_path / "f.csv"):
        assert (lock_of(warehouse).run_id, lock_of(warehouse).pid) == ("r2", os.getpid())


# End to end: the entry script


def assert_only_models(warehouse: Path) -> None:
    """What a finished run leaves in its warehouse: its version's models by layer, the pointer naming it, no lock,
    no temporary folder."""
    assert sorted(path.name for path in warehouse.iterdir()) == ["_current.json", "versions"]
    (version,) = [path for path in (warehouse / "versions").iterdir()]
    assert sorted(path.name for path in version.iterdir()) == ["_manifest.json", "intermediate", "marts", "staging"]
    assert [path for path in warehouse.rglob("*") if path.name.startswith(("_tmp_", "_lock"))] == []


@pytest.mark.e2e
def test_two_runs_started_together_one_runs_and_the_other_is_refused_changing_nothing(
    small_extracts: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    outputs = [tmp_path / "out_a" / "features.csv", tmp_path / "out_b" / "features.csv"]
    runs = [
        start_pipeline(
            "--extracts", str(small_extracts), "--output", str(output), "--warehouse", str(warehouse), "--quiet"
        )
        for output in outputs
    ]
    try:
        deadline = time.monotonic() + 300
        while all(run.poll() is None for run in runs) and time.monotonic() < deadline:
            time.sleep(0.1)
        ended = [index for index, run in enumerate(runs) if run.poll() is not None]
        assert len(ended) == 1, "one run must be refused at once, while the other runs"
        refused_index = ended[0]
        refused, running = runs[refused_index], runs[1 - refused_index]
        _, refused_stderr = refused.communicate()
        assert refused.returncode == 3, refused_stderr
        assert running.poll() is None  # still at work, holding the warehouse
        holder = lock_of(warehouse)
        assert (holder.pid, holder.output) == (running.pid, str(outputs[1 - refused_index]))
        assert refused_stderr == (
            f"error: the warehouse {warehouse} is locked by run {holder.run_id} "
            f"(pid {running.pid} on host {HOST}, started {holder.started_at}); nothing was changed\n"
        )
        assert not outputs[refused_index].parent.exists()
        _, running_stderr = running.communicate(timeout=600)
        assert running.returncode == 0, running_stderr
        assert running_stderr == ""
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert_only_models(warehouse)
    assert outputs[1 - refused_index].read_text(encoding="utf-8").startswith("inv_id,acct_id,inv_total,")


@pytest.mark.e2e
def test_a_lock_left_by_a_sigkilled_run_does_not_block_the_next_run(
    small_extracts: Path, tmp_path: Path, contenders: list[Contender]
) -> None:
    warehouse = tmp_path / "warehouse"
    killed = take(warehouse, "20990101T000000Z_k1ll3d", contenders)
    os.kill(killed.process.pid, signal.SIGKILL)
    killed.process.wait()
    assert lock_of(warehouse).pid == killed.process.pid  # left behind, naming a process that is gone
    output = tmp_path / "out" / "features.csv"
    result = run_pipeline(
        "--extracts", str(small_extracts), "--output", str(output), "--warehouse", str(warehouse), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_only_models(warehouse)
    assert json.loads((output.parent / "run_summary.json").read_text(encoding="utf-8"))["status"] == "succeeded"


@pytest.mark.e2e
def test_a_warehouse_on_another_file_system_is_locked_in_the_output_folder(tmp_path: Path) -> None:
    """An hdfs: warehouse: its lock is a file in the output folder, which refuses a second run there; the
    unreachable warehouse itself is the staging notebook's one-line error, and the lock goes with the run."""
    output = tmp_path / "out" / "features.csv"
    port = socket.socket()  # bound, not listening: connections are refused, and no test's server can take the port
    port.bind(("127.0.0.1", 0))
    warehouse = f"hdfs://127.0.0.1:{port.getsockname()[1]}/late/warehouse"
    args = ["--output", str(output), "--warehouse", warehouse, "--quiet"]
    args += ["--conf", "spark.hadoop.ipc.client.connect.max.retries=0"]  # refused at once, not after ten tries
    with port, WarehouseLock(warehouse, "20990101T000000Z_h0ld3r", output) as held:
        refused = run_pipeline(*args, timeout=120)
        assert refused.returncode == 3, refused.stderr
        holder = lock_of_path(held.path)
        assert (
            refused.stderr
            == f"error: the warehouse {warehouse} is locked by {holder.describe()}; nothing was changed\n"
        )
        assert [path.name for path in output.parent.iterdir()] == [held.path.name]
        held.release()
        assert not output.parent.exists()

        unreachable = run_pipeline(*args)
    assert unreachable.returncode == 2, unreachable.stderr
    (line,) = unreachable.stderr.splitlines()
    assert line.startswith("error: 01_staging.ipynb, cell ")
    assert f": WarehouseError: cannot write the warehouse at {warehouse}: " in line, line
    assert sorted(path.name for path in output.parent.iterdir()) == ["_run.lock", "failed_runs"]  # no lock left


@pytest.mark.e2e
def test_a_run_refused_by_the_output_folders_lock_changes_nothing_either(tmp_path: Path) -> None:
    """Two warehouses, one output folder: the output folder's own lock refuses the second run, which leaves its
    warehouse as it found it (here: not there)."""
    output = tmp_path / "out" / "features.csv"
    output.parent.mkdir()
    with run_files.output_lock(output.parent):
        before = {path.name: path.read_bytes() for path in output.parent.iterdir()}
        refused = run_pipeline("--output", str(output), "--warehouse", str(tmp_path / "warehouse_b"), timeout=120)
        assert refused.returncode == 3, refused.stderr
        assert refused.stderr == (
            f"error: another run is writing to {output.parent} (process {os.getpid()}, lock "
            f"{output.parent / '_run.lock'}); nothing was changed\n"
        )
        assert {path.name: path.read_bytes() for path in output.parent.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
