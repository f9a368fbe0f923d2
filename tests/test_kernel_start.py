"""A run's kernel, as the runner starts it, has loaded what the stages import before their first cell runs, and
leaves no name of its own in the notebooks' namespace."""

from __future__ import annotations

import json

from jupyter_client.manager import KernelManager

from spark_etl import runner

PROBE = (
    "import json, sys\n"
    "print(json.dumps({'modules': sorted(sys.modules), 'names': sorted(n for n in dir() if not n.startswith('_'))}))"
)


def test_the_kernel_preloads_the_stage_modules_and_leaves_no_names() -> None:
    runner._kernel_environment()
    manager = KernelManager(kernel_name=runner.KERNEL_NAME)
    manager.start_kernel(extra_arguments=runner.KERNEL_ARGUMENTS)
    try:
        client = manager.blocking_client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        printed: list[str] = []
        client.execute_interactive(
            PROBE, timeout=60, output_hook=lambda m: printed.append(m["content"].get("text", ""))
        )
        client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
    state = json.loads("".join(printed))
    for module in ("spark_etl.preload", "spark_etl.notebook_display", "spark_etl.source_state", "matplotlib.pyplot"):
        assert module in state["modules"]
    assert "spark_etl.kernel_lifetime" in state["modules"]  # the other start-up line ran too
    # IPython's own names, and the probe's: nothing from the start-up lines
    assert set(state["names"]) - {"In", "Out", "exit", "get_ipython", "open", "quit", "json", "sys"} == set()
