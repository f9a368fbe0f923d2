"""Full runs one after another in one kernel on one Spark JVM: what a run costs once the JVM is warm.

Why: a JupyterLab kernel and the test suite's stage kernel run the models many times in one JVM, and what a
warm run pays (planning, code generation, the JIT) is not what a fresh process pays, which `make bench`
measures. Each run is the entry script's main() with its stages in the shared kernel, as the suite runs them;
it prints each run's wall time and the CPU seconds of this process, the kernel and the JVM.

    .venv/bin/python benchmarks/warm_runs.py --extracts DIR --runs 4

The first run pays for the JVM's warm-up; compare the later ones. Alternate the checkouts compared
(`--repo`-less: run this file from each checkout), as the machine's speed drifts within minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

SOURCE_DIR = Path(__file__).resolve().parents[1] / "Spark_ETL_Pipeline" / "src"
sys.path.insert(0, str(SOURCE_DIR))

from spark_etl.command import cli  # noqa: E402  (this checkout's package, whatever is installed)
from spark_etl.runtime import runner  # noqa: E402


def cpu_seconds() -> dict[str, float]:
    """User and system CPU of this process, of the kernels and of the JVMs under it, so far."""
    totals = {"this process": sum(psutil.Process().cpu_times()[:2]), "kernel": 0.0, "jvm": 0.0}
    for child in psutil.Process().children(recursive=True):
        try:
            kind = "jvm" if child.name() == "java" else "kernel" if "ipykernel" in " ".join(child.cmdline()) else ""
            if kind:
                totals[kind] += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/warm_runs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--extracts", required=True, help="the extracts folder every run reads")
    parser.add_argument("--runs", type=int, default=4, help="how many full runs (default 4)")
    options = parser.parse_args()
    conf = {"spark.master": "local[2]", "spark.sql.shuffle.partitions": "4"}  # the suite's stage kernel's
    with tempfile.TemporaryDirectory() as scratch, runner.shared_kernel(conf) as kernel:
        for number in range(options.runs):
            before, started = cpu_seconds(), time.perf_counter()
            output = Path(scratch) / f"run_{number}" / "pipeline_output.csv"
            status = cli.main(["--extracts", options.extracts, "--output", str(output), "--quiet"], kernel=kernel)
            seconds, after = time.perf_counter() - started, cpu_seconds()
            used = ", ".join(f"{kind} {after[kind] - before[kind]:.1f}" for kind in after)
            print(f"run {number + 1}: status {status}, {seconds:.1f} s; CPU seconds: {used}", flush=True)
            if status != 0:
                return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
