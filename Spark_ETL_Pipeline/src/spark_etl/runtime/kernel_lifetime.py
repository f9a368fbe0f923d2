"""A stage kernel dies with the entry script that started it, however the entry script dies.

jupyter_client starts every kernel in a session of its own (so that an interrupt reaches the kernel's children),
which puts it outside the entry script's process group: a scheduler's SIGKILL to that group kills the entry
script and the shared Spark JVM at once, but the kernel lives on until its parent poller notices (once a
second; never, if the kernel is stopped or stuck), and with --separate-jvms it keeps its own JVM, still running
the cell: a killed run could still write, even commit its version. So on Linux each kernel asks the kernel of
the operating system to SIGKILL it when its parent dies (PR_SET_PDEATHSIG); elsewhere the poller remains.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_PID_ENV = "JPY_PARENT_PID"  # jupyter_client's launcher names the kernel's parent here

# What the runner has each kernel run at start-up (IPKernelApp.exec_lines), leaving no name behind.
STARTUP_LINE = "__import__('spark_etl.runtime.kernel_lifetime', fromlist=['_']).die_with_parent()"


def die_with_parent(parent: int = 0, signum: int = signal.SIGKILL) -> bool:
    """Have this process sent `signum` (SIGKILL) when its parent (`parent`, else JPY_PARENT_PID's) dies; True
    when that is arranged. The signal follows the parent thread that started the process, so the runner starts
    kernels from the thread that runs the stages. Also a `preexec_fn` (the lab's server asks for SIGTERM)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    parent = parent or int(os.environ.get(PARENT_PID_ENV) or 0)
    if parent and os.getppid() != parent:  # the parent died before the request was made: die as it would have
        os.kill(os.getpid(), signum)
    return True
