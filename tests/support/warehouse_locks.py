"""Contending for a warehouse's lock (spark_etl/storage/warehouse_lock.py) from processes of their own, and reading
the lock a holder left: what the lock's own tests and the entry-script runs that race for it share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from spark_etl.storage import warehouse_lock
from spark_etl.storage.warehouse_lock import Holder
from support.pipeline import PROJECT_DIR

SOURCE_DIR = PROJECT_DIR / "Spark_ETL_Pipeline" / "src"
# A command contending for a warehouse: says `ready`, takes the lock when its stdin says so, says `took` or
# `refused: <why>`, and holds the lock until its stdin gives another line (or closes).
CONTENDER = """
import sys
from pathlib import Path
from spark_etl.storage.warehouse_lock import WarehouseLock, WarehouseLockedError

warehouse, run_id = sys.argv[1:]
print("ready", flush=True)
sys.stdin.readline()
try:
    with WarehouseLock(warehouse, run_id, Path(warehouse).parent / run_id / "features.csv"):
        print("took", flush=True)
        sys.stdin.readline()
except WarehouseLockedError as error:
    print(f"refused: {error}", flush=True)
"""
HOST = socket.gethostname()


class Contender:
    def __init__(self, warehouse: Path, run_id: str) -> None:
        self.run_id = run_id
        self.process = subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(warehouse), run_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(SOURCE_DIR)},
        )

    def wait_ready(self) -> None:
        assert self.said() == "ready"

    def tell(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def said(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().rstrip("\n")

    def end(self) -> int:
        self.process.communicate(timeout=30)
        return self.process.returncode


def take(warehouse: Path, run_id: str, contenders: list[Contender]) -> Contender:
    contender = Contender(warehouse, run_id)
    contenders.append(contender)
    contender.wait_ready()
    contender.tell()
    assert contender.said() == "took"
    return contender


def lock_of_path(path: Path) -> Holder:
    holder = warehouse_lock.read_holder(path.read_bytes())
    assert holder is not None
    return holder


def lock_of(warehouse: Path) -> Holder:
    return lock_of_path(warehouse / "_lock")
