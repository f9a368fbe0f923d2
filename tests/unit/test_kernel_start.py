"""A run's kernel, as the runner starts it, has loaded what the stages import before their first cell runs, and
each stage starts in it with none of the previous stage's names and the run's JVM gateway and id in its
environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from jupyter_client.manager import KernelManager

from spark_etl.runtime import runner

PROBE = (
    "import json, os, sys\n"
    "print(json.dumps({'modules': sorted(sys.modules), 'names': sorted(n for n in dir() if not n.startswith('_')),"
    " 'gateway': os.environ.get('PYSPARK_GATEWAY_PORT'), 'run_id': os.environ.get('SPARK_ETL_RUN_ID')}))"
)
IPYTHON_NAMES = {"In", "Out", "exit", "get_ipython", "open", "quit"}


def run_code(manager: KernelManager, code: str) -> str:
    client = manager.blocking_client()
    client.start_channels()
    try:
        printed: list[str] = []
        client.execute_interactive(code, timeout=60, output_hook=lambda m: printed.append(m["content"].get("text", "")))
        return "".join(printed)
    finally:
        client.stop_channels()


def test_the_kernel_preloads_the_stage_modules_and_each_stage_starts_with_no_names() -> None:
    runner._kernel_environment()
    manager = runner.StageKernelManager(kernel_name=runner.KERNEL_NAME)
    manager.start_kernel(extra_arguments=runner.KERNEL_ARGUMENTS)
    try:
        kernel = runner.SharedKernel(manager, {"PYSPARK_GATEWAY_PORT": "12345"}, "tiered")
        kernel.prepare_stage({"SPARK_ETL_RUN_ID": "run_a"})  # waits for the kernel to be ready, the first time
        first = json.loads(run_code(manager, PROBE))
        run_code(manager, "left_by_a_stage = 1\nimport pathlib")
        kernel.prepare_stage({"SPARK_ETL_RUN_ID": "run_b"})  # a later run's stage, in the same kernel
        second = json.loads(run_code(manager, PROBE))
    finally:
        manager.shutdown_kernel(now=True)
    for module in (
        "spark_etl.runtime.stage_kernel",
        "spark_etl.publishing.notebook_display",
        "spark_etl.sources.source_state",
        "IPython.display",
    ):
        assert module in first["modules"]
    assert "spark_etl.runtime.kernel_lifetime" in first["modules"]  # the other start-up line ran too
    # IPython's own names and the probe's: nothing from the start-up lines, nothing from the previous stage
    assert set(first["names"]) == IPYTHON_NAMES | {"json", "os", "sys"}
    assert set(second["names"]) == IPYTHON_NAMES | {"json", "os", "sys"}
    assert first["gateway"] == second["gateway"] == "12345"
    assert (first["run_id"], second["run_id"]) == ("run_a", "run_b")  # each stage knows its run


def test_the_clients_a_notebook_made_for_the_shared_kernel_are_closed_after_it() -> None:
    """nbclient leaves open the channels of a client it made for a kernel it does not own; the runner closes them
    (StageKernelManager.stop_clients), or a kernel shared by many runs piles up file descriptors."""
    manager = runner.StageKernelManager(kernel_name=runner.KERNEL_NAME)
    manager.start_kernel(extra_arguments=runner.KERNEL_ARGUMENTS)
    try:
        made = [manager.client() for _ in range(2)]  # what nbclient does, once per notebook
        for client in made:
            client.start_channels()
        assert all(client.channels_running for client in made)
        manager.stop_clients()
        assert not any(client.channels_running for client in made) and manager.made_clients == []
    finally:
        manager.shutdown_kernel(now=True)


def test_clients_of_the_shared_kernel_started_and_stopped_at_once_leave_no_failed_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client stopped before its heartbeat thread had opened its socket left that thread to fail with "Too many
    open files" (1 client in 8); the shared kernel's clients have no heartbeat, and ask the manager whether the
    kernel lives."""
    failed: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda hooked: failed.append(str(hooked.exc_value)))
    manager = runner.StageKernelManager(kernel_name=runner.KERNEL_NAME)
    manager.start_kernel(extra_arguments=runner.KERNEL_ARGUMENTS)
    try:
        made = []
        for number in range(100):  # a SharedKernel.execute's client, then nbclient's, in turn
            client = manager.blocking_client() if number % 2 else manager.client()
            client.start_channels()
            client.stop_channels()
            made.append(client)
        assert made[0].is_alive() and made[1].is_alive()
    finally:
        manager.shutdown_kernel(now=True)
    assert failed == []
    assert {type(client) for client in made} == {runner.StageKernelClient}
    assert not made[0].is_alive()  # the manager's answer once the kernel is gone


def test_the_entry_script_loads_none_of_what_the_kernel_preloads() -> None:
    """The runner reads the kernel's start-up line from stage_kernel; the entry script draws no chart."""
    probe = (
        "import sys, spark_etl.command.cli\n"
        "print('IPython.display' in sys.modules, 'spark_etl.publishing.notebook_display' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(runner.PACKAGE_SOURCE_DIR)}
    printed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert printed.stdout.split() == ["False", "False"]
