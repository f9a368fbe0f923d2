"""One run at a time per warehouse: the lock on its own (processes of its own, no Spark)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from support.warehouse_locks import HOST, Contender, lock_of, lock_of_path, take

from spark_etl.storage import warehouse_lock
from spark_etl.storage.warehouse_lock import Holder, LockFolderError, WarehouseLock, WarehouseLockedError


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
