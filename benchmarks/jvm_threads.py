"""CPU seconds per kind of JVM thread while a command runs: where Spark's driver JVM spends its CPU.

Why: on 2 cores the JIT compilers compete with the query threads for the same CPUs, and a run's wall time
alone cannot show it. This samples /proc/<pid>/task/*/stat of every java process under the command (Linux
only) and prints, when the command ends, the CPU time of each thread kind. Linux keeps only the first 15
characters of a thread's name (`C2 CompilerThre`, `Executor task l`, `Thread-12`), so threads whose names
share those characters sum together, and the numbers left in them are folded (`Thread-N`, `GC Thread#N`).

    .venv/bin/python benchmarks/jvm_threads.py -- .venv/bin/python Spark_ETL_Pipeline/src/Spark_ETL_Pipeline.py \\
        --extracts DIR --output /tmp/out/out.csv --quiet

The sums err low: a thread that lives and dies between two samples is missed, and each thread's CPU after
its last sample (up to SAMPLE_SECONDS) is lost. The sampling itself takes a little CPU on the same cores.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Name and CPU seconds (user + system) of each live thread of a process."""
    threads: dict[int, tuple[str, float]] = {}
    task_dir = Path(f"/proc/{pid}/task")
    try:
        task_ids = [int(name) for name in os.listdir(task_dir)]
    except OSError:
        return threads
    for task_id in task_ids:
        try:
            stat = (task_dir / str(task_id) / "stat").read_text()
        except OSError:
            continue  # ended since the listing
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        threads[task_id] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)  # utime, stime
    return threads


def thread_kind(name: str) -> str:
    """Fold the numbers in a thread's (15-character) name into its kind: `Thread-12` and `GC Thread#1` become
    `Thread-N` and `GC Thread#N`; the 1 and 2 of `C1 CompilerThre` and `C2 CompilerThre` stay."""
    return re.sub(r"(?<!C)[0-9]+(\.[0-9]+)?", "N", name)


def run_sampled(command: list[str]) -> tuple[int, dict[str, float]]:
    """Run the command to its end, sampling its java descendants; its exit status and CPU seconds per kind."""
    process = subprocess.Popen(command)
    root = psutil.Process(process.pid)
    last_seen: dict[tuple[int, int], tuple[str, float]] = {}
    while process.poll() is None:
        try:
            children = root.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            try:
                if child.name() != "java":
                    continue
            except psutil.Error:
                continue
            for task_id, seen in thread_cpu(child.pid).items():
                last_seen[(child.pid, task_id)] = seen
        time.sleep(SAMPLE_SECONDS)
    by_kind: collections.defaultdict[str, float] = collections.defaultdict(float)
    for name, seconds in last_seen.values():
        by_kind[thread_kind(name)] += seconds
    return process.returncode, dict(by_kind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/jvm_threads.py", description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=12, help="kinds to print, busiest first (default 12)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    options = parser.parse_args(argv)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("give the command to run after --")
    started = time.perf_counter()
    returncode, by_kind = run_sampled(command)
    seconds = time.perf_counter() - started
    total = sum(by_kind.values())
    print(f"wall {seconds:.1f} s; JVM threads {total:.1f} CPU s; exit status {returncode}", file=sys.stderr)
    for kind, cpu in sorted(by_kind.items(), key=lambda item: -item[1])[: options.top]:
        share = cpu / total if total > 0 else 0.0
        print(f"{cpu:8.1f} CPU s  {share:4.0%}  {kind}", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
