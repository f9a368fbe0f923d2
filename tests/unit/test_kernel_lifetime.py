"""A process that asked (kernel_lifetime.die_with_parent) dies with its parent, even in a session of its own and
stopped, where nothing of its own could notice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spark_etl.runtime import kernel_lifetime

# the parent starts the child as jupyter_client starts a kernel (a new session, JPY_PARENT_PID), then names it
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", "from spark_etl.runtime import kernel_lifetime as k; import time; "
     "print(k.die_with_parent(), flush=True); time.sleep(120)"],
    env={**os.environ, "JPY_PARENT_PID": str(os.getpid())}, start_new_session=True, stdout=subprocess.PIPE, text=True,
)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_stopped_child_in_its_own_session_dies_with_its_parent() -> None:
    source_dir = Path(kernel_lifetime.__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        env={**os.environ, "PYTHONPATH": str(source_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    child = 0
    try:
        assert parent.stdout is not None
        child_pid, arranged = parent.stdout.readline().split()
        child = int(child_pid)
        assert arranged == "True"
        os.kill(child, signal.SIGSTOP)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while is_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(child)
    finally:
        parent.kill()
        parent.wait(timeout=30)
        if child and is_alive(child):
            os.kill(child, signal.SIGKILL)
