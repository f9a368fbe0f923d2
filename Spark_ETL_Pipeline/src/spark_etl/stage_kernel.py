"""What a run's kernel does besides the stages' cells: load what they import while it boots, and start each stage
with an empty namespace attached to the run's JVM.

The runner starts the kernel and the Spark JVM together, so the imports (about a second: PySpark, matplotlib,
IPython's display) overlap the JVM's start instead of delaying the first stage's first cell.
"""

from __future__ import annotations

import os

import matplotlib.pyplot  # noqa: F401  # the charts' first draw
from IPython import get_ipython
from IPython.display import HTML  # noqa: F401

from spark_etl import (  # noqa: F401
    extract,
    filesystem,
    increments,
    jdbc,
    load,
    models,
    notebook_display,
    quality,
    registry,
    serving,
    source_state,
    stage_metrics,
    versions,
)
from spark_etl.session import spark_session  # noqa: F401

# What the runner has each kernel run at start-up (IPKernelApp.exec_lines), leaving no name behind.
STARTUP_LINE = "__import__('spark_etl.stage_kernel')"


def start_stage(gateway: dict[str, str]) -> None:
    """Give the next stage what a fresh kernel would: none of the previous stage's names (a stage may only use
    what its own cells define; IPython's own names stay), and the run's JVM gateway to attach to. Unlike %reset,
    no garbage collection pass (0.1 to 0.2 s a stage): the previous stage's objects go when they are collected."""
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("start_stage runs in the run's IPython kernel")
    for name in [name for name in shell.user_ns if name not in shell.user_ns_hidden]:
        del shell.user_ns[name]
    os.environ.update(gateway)
