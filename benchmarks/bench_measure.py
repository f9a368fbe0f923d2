"""Measuring one process of the benchmark: wall clock, peak memory of its whole tree, CPU, the machine's other
load; waiting for a quiet machine first."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.2


@dataclass
class ProcessRun:
    """One timed process: wall clock from start to exit, peak RSS of its whole tree, and the machine's load.

    Other processes on the machine compete for its cores, so each run also records how many cores they kept
    busy on average while it ran (all busy CPU time minus the run's own, over the wall time).
    """

    command: list[str]
    seconds: float
    peak_rss: int
    cpu_seconds: float
    other_cores: float
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure(self) -> str:
        """One line saying how the run ended, for the report."""
        if self.returncode is None:
            return f"killed at the timeout after {self.seconds:.1f} s"
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        error_lines = [line for line in lines if line.startswith("error")] or lines[-3:]
        return f"exit status {self.returncode} after {self.seconds:.1f} s: " + " / ".join(error_lines)


class TreeSampler:
    """Samples a process and all its descendants (the JVM and notebook kernels are children of the script).

    RSS is summed over the tree, so pages shared between processes count once per process and the peak errs
    high. CPU time is the last value seen per process id, so a process living under one sample is missed.
    """

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak_rss = 0
        self.cpu_by_pid: dict[int, float] = {}

    def sample(self) -> None:
        try:
            members = [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for member in members:
            with contextlib.suppress(psutil.Error):  # exited between listing and reading
                with member.oneshot():
                    total += member.memory_info().rss
                    times = member.cpu_times()
                self.cpu_by_pid[member.pid] = times.user + times.system
        self.peak_rss = max(self.peak_rss, total)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_pid.values())


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent running code since boot (idle, I/O wait and steal excluded)."""
    times = psutil.cpu_times()
    return sum(float(getattr(times, name, 0.0)) for name in ("user", "nice", "system", "irq", "softirq"))


def kill_tree(process: psutil.Process) -> None:
    """End a timed-out run: the process this benchmark started and its descendants, by id."""
    try:
        members = [*process.children(recursive=True), process]
    except psutil.Error:
        return
    for member in members:
        with contextlib.suppress(psutil.Error):
            member.kill()


def wait_for_quiet(busy_below: float, max_wait: float) -> None:
    """Wait (at most max_wait seconds) until the machine's CPUs are less than busy_below % busy.

    Other work on a shared machine inflates every number; waiting for a quiet moment keeps it out where it
    can, and the report shows how much remained.
    """
    deadline = time.monotonic() + max_wait
    while True:
        busy = psutil.cpu_percent(interval=2.0)
        if busy < busy_below or time.monotonic() >= deadline:
            return
        print(f"  waiting for a quiet machine: CPUs {busy:.0f}% busy", file=sys.stderr, flush=True)


def measure(command: list[str], cwd: Path, env: dict[str, str], timeout: float, log_dir: Path) -> ProcessRun:
    """Run `command`, sampling its tree every SAMPLE_SECONDS in a thread while the main thread waits.

    Output goes to files, not pipes, so a chatty process can never block on a full pipe.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    done = threading.Event()
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        busy_before = busy_cpu_seconds()
        started = time.perf_counter()
        popen = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
        sampler = TreeSampler(psutil.Process(popen.pid))

        def sample_until_done() -> None:
            while not done.is_set():
                sampler.sample()
                done.wait(SAMPLE_SECONDS)

        thread = threading.Thread(target=sample_until_done, daemon=True)
        thread.start()
        returncode: int | None
        try:
            returncode = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(sampler.process)
            popen.wait()
            returncode = None
        seconds = time.perf_counter() - started
        busy = busy_cpu_seconds() - busy_before
        done.set()
        thread.join()
    return ProcessRun(
        command=command,
        seconds=seconds,
        peak_rss=sampler.peak_rss,
        cpu_seconds=sampler.cpu_seconds,
        other_cores=max(0.0, busy - sampler.cpu_seconds) / seconds if seconds > 0 else 0.0,
        returncode=returncode,
        stdout=stdout_path.read_text(encoding="utf-8", errors="replace"),
        stderr=stderr_path.read_text(encoding="utf-8", errors="replace"),
    )


def gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"
