"""A Spark standalone cluster on this machine (a master and workers on 127.0.0.1), started from the installed
pyspark and stopped by process id: the same code path as a real cluster, with executors in their own JVMs.

    python -m spark_etl.devtools.cluster up [--workers 2] [--port 7077]   # prints the master URL
    python -m spark_etl.devtools.cluster down
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyspark

from spark_etl.devtools.ports import free_port
from spark_etl.runtime.session import ensure_java_home

SPARK_HOME = Path(pyspark.__file__).resolve().parent
DEFAULT_STATE_DIR = Path(__file__).resolve().parents[4] / ".cluster"


@dataclass(frozen=True)
class Cluster:
    master_url: str
    pids: list[int]
    log_dir: str


def wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.25)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")


def _spark_class(main_class: str, arguments: list[str], log_path: Path, environment: dict[str, str]) -> int:
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), main_class, *arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,  # its own process group, so `down` stops the JVM and its launcher
        )
    return process.pid


class ClusterStateError(Exception):
    """The state folder already records a cluster (or cannot be used): `up` would lose track of processes."""


def up(state_dir: Path, workers: int = 2, port: int = 0, cores_per_worker: int = 1, memory: str = "2g") -> Cluster:
    """Start the master, wait until it listens, then the workers; remember their process ids."""
    if (state_dir / "cluster.json").exists():
        raise ClusterStateError(f"a cluster is already recorded in {state_dir}; run `make cluster-down` first")
    ensure_java_home()
    state_dir.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"}
    master_port = port or free_port()
    master_url = f"spark://127.0.0.1:{master_port}"
    pids = [
        _spark_class(
            "org.apache.spark.deploy.master.Master",
            ["--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(free_port())],
            state_dir / "master.log",
            environment,
        )
    ]
    cluster = Cluster(master_url, pids, str(state_dir))
    (state_dir / "cluster.json").write_text(json.dumps(asdict(cluster)), encoding="utf-8")
    wait_for_port(master_port, 60)
    for number in range(workers):
        pids.append(
            _spark_class(
                "org.apache.spark.deploy.worker.Worker",
                [
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    str(cores_per_worker),
                    "--memory",
                    memory,
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(state_dir / f"worker-{number}"),
                    master_url,
                ],
                state_dir / f"worker-{number}.log",
                environment,
            )
        )
    cluster = Cluster(master_url, pids, str(state_dir))
    (state_dir / "cluster.json").write_text(json.dumps(asdict(cluster)), encoding="utf-8")
    wait_until_workers_registered(state_dir / "master.log", workers, 60)
    return cluster


def wait_until_workers_registered(master_log: Path, workers: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if master_log.read_text(encoding="utf-8", errors="replace").count("Registering worker") >= workers:
            return
        time.sleep(0.25)
    raise TimeoutError(f"{workers} workers did not register with the master in {seconds:.0f} s (see {master_log})")


def down(state_dir: Path) -> int:
    """Stop every recorded process group (workers first), then forget the cluster. Returns processes stopped."""
    state_file = state_dir / "cluster.json"
    if not state_file.exists():
        return 0
    cluster = Cluster(**json.loads(state_file.read_text(encoding="utf-8")))
    stopped = 0
    for pid in reversed(cluster.pids):
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped += 1
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 30
    for pid in cluster.pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    state_file.unlink()
    return stopped


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel instead
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_etl.devtools.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=7077, help="master port (0: any free port)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where pids and logs are kept")
    options = parser.parse_args(argv)
    try:
        if options.action == "up":
            cluster = up(options.state_dir, options.workers, options.port)
            print(cluster.master_url)
            print(f"master and {options.workers} workers started; logs in {cluster.log_dir}", file=sys.stderr)
        else:
            print(f"stopped {down(options.state_dir)} processes", file=sys.stderr)
    except ClusterStateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as error:  # a process that would not start, a port nothing listens on
        print(f"error: cluster {options.action} failed: {error} (logs in {options.state_dir})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
