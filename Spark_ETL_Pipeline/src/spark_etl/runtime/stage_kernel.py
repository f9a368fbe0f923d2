"""What a run's kernel does besides the stages' cells: load what they import while it boots, and start each stage
with an empty namespace attached to the run's JVM.

The runner starts the kernel and the Spark JVM together, so the imports (PySpark, IPython's display, the
package) overlap the JVM's start instead of delaying the first stage's first cell. This module itself
imports nothing heavy: the entry script reads STARTUP_LINE from it and needs none of what the kernel loads.
"""

from __future__ import annotations

import importlib
import os

# What the runner has each kernel run at start-up (IPKernelApp.exec_lines), leaving no name behind.
STARTUP_LINE = "__import__('spark_etl.runtime.stage_kernel', fromlist=['_']).preload()"

# what the stage notebooks import
STAGE_MODULES = (
    "IPython.display",
    "spark_etl.incremental.increments",
    "spark_etl.modelling.models",
    "spark_etl.modelling.quality",
    "spark_etl.modelling.registry",
    "spark_etl.publishing.notebook_display",
    "spark_etl.publishing.serving",
    "spark_etl.publishing.stage_metrics",
    "spark_etl.runtime.session",
    "spark_etl.sources.extract",
    "spark_etl.sources.jdbc",
    "spark_etl.sources.source_state",
    "spark_etl.sources.staging_source",
    "spark_etl.storage.filesystem",
    "spark_etl.storage.load",
    "spark_etl.storage.versions",
    "spark_etl.storage.warehouse",
)


def preload() -> None:
    """Import the modules the stages will import, so their first cells find them loaded."""
    for module in STAGE_MODULES:
        importlib.import_module(module)


def start_stage(variables: dict[str, str]) -> None:
    """Give the next stage what a fresh kernel would: none of the previous stage's names (a stage may only use
    what its own cells define; IPython's own names stay), and the run's variables: its JVM gateway, its id and
    secret settings. Unlike %reset,
    no garbage collection pass (0.1 to 0.2 s a stage): the previous stage's objects go when they are collected."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("start_stage runs in the run's IPython kernel")
    for name in [name for name in shell.user_ns if name not in shell.user_ns_hidden]:
        del shell.user_ns[name]
    os.environ.update(variables)
