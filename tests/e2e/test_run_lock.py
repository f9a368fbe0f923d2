"""Entry-script runs racing for a warehouse's lock: two started together, one after the lock's holder was
SIGKILLed, a warehouse on another file system (locked in the output folder), and a run refused by the output
folder's own lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from support.pipeline import run_in_kernel, run_pipeline, start_pipeline
from support.warehouse_locks import HOST, Contender, lock_of, lock_of_path, take

from spark_etl.publishing import run_files
from spark_etl.runtime import runner
from spark_etl.storage.warehouse_lock import WarehouseLock

pytestmark = pytest.mark.e2e


def assert_only_models(warehouse: Path) -> None:
    """What a finished run leaves in its warehouse: its version's models by layer, the pointer naming it, its
    record in the history, no lock, no temporary folder."""
    assert sorted(path.name for path in warehouse.iterdir()) == ["_current.json", "_history", "versions"]
    (version,) = [path for path in (warehouse / "versions").iterdir()]
    layers = ["_manifest.json", "intermediate", "marts", "monitoring", "staging"]
    assert sorted(path.name for path in version.iterdir()) == layers
    assert [path for path in warehouse.rglob("*") if path.name.startswith(("_tmp_", "_lock"))] == []


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


def test_a_lock_left_by_a_sigkilled_run_does_not_block_the_next_run(
    small_extracts: Path, tmp_path: Path, contenders: list[Contender], stage_kernel: runner.SharedKernel
) -> None:
    warehouse = tmp_path / "warehouse"
    killed = take(warehouse, "20990101T000000Z_k1ll3d", contenders)
    os.kill(killed.process.pid, signal.SIGKILL)
    killed.process.wait()
    assert lock_of(warehouse).pid == killed.process.pid  # left behind, naming a process that is gone
    output = tmp_path / "out" / "features.csv"
    result = run_in_kernel(
        stage_kernel,
        "--extracts",
        str(small_extracts),
        "--output",
        str(output),
        "--warehouse",
        str(warehouse),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_only_models(warehouse)
    assert json.loads((output.parent / "run_summary.json").read_text(encoding="utf-8"))["status"] == "succeeded"


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
