"""One command at a time per warehouse (a run, full or incremental; later a rollback): the lock file `_lock`.

Two runs writing one warehouse would overwrite each other's models, so the second is refused before it changes
anything. The lock is a small JSON document naming its holder: host, pid, the process's start time (so a pid
reused by a later process is not taken for the holder), the boot it ran in, run_id, when it was taken and for
which output. It is taken by writing a complete temporary file and hard-linking it to `_lock`: the link fails
when a lock is there, and a lock is never seen half written. The holder deletes it when its `with` block ends,
however it ends (the entry script turns SIGTERM and Ctrl-C into exceptions); a process killed by a signal it does
not catch (SIGKILL), or with its machine, leaves it behind, stale.

A lock is stale when it was taken on this host and its process is gone: the pid runs no more, runs a process
started at another time, or the machine has rebooted since. The next run takes a stale lock over. Two runs
that find the same stale lock at once take turns under an flock on the stale lock file itself, and each checks,
holding it, that `_lock` is still that file and still stale before renaming its own file over it; the rename
is atomic, so `_lock` never goes missing for a third run to take meanwhile, and exactly one wins. A lock taken
on another host is never stale: from here nobody can tell whether its process still runs.

Where the lock lives: a local warehouse (a path or a `file:` URI) holds its own `_lock`; the folder is created
first if it does not exist, as nobody can hold a lock in a folder that does not exist. Any other Hadoop URI
(`hdfs:`, `s3a:`, ...) cannot be reached from the entry script without a JVM, so its lock is a file in the output
folder named after the URI. That only keeps out a second run given the same output folder (which the output
folder's own lock does anyway); runs into such a warehouse from other output folders or other machines are not
kept apart: schedule them so they cannot overlap (one DAG with max_active_runs=1).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType

from spark_etl import failures
from spark_etl.storage import filesystem

LOCK_NAME = "_lock"
# each attempt either takes the lock, is refused, or saw the lock change hands; a bound keeps a pathological
# stream of very short runs from holding a starting run in the loop
ATTEMPTS = 100
PROC = Path("/proc")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what the lock file holds."""

    run_id: str
    host: str
    pid: int
    pid_start: int | None  # clock ticks after boot (/proc/<pid>/stat, field 22); None without /proc
    boot_id: str | None
    started_at: str  # UTC, ISO 8601
    output: str

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on host {self.host}, started {self.started_at})"


class WarehouseLockedError(failures.BusyError):
    """Another live run holds the warehouse; the message names it."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


def locked_error(warehouse: str, lock_path: Path, holder: Holder | None) -> WarehouseLockedError:
    """The refusal, naming the run that holds the warehouse and, for a lock nobody can judge, what to do."""
    if holder is None:
        return WarehouseLockedError(
            f"the warehouse {warehouse} is locked by {lock_path}, which names no run (delete it if none is going)",
            None,
        )
    message = f"the warehouse {warehouse} is locked by {holder.describe()}"
    if holder.host != socket.gethostname():
        message += f"; a lock from another host is never taken over: delete {lock_path} once that run is over"
    return WarehouseLockedError(message, holder)


class LockFolderError(Exception):
    """The folder that would hold the lock cannot be created or written; `folder` is the one that failed."""

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(f"{folder}: {reason}")
        self.folder = folder
        self.reason = reason


def lock_path(warehouse: str, output_dir: Path) -> Path:
    """`_lock` in a local warehouse; for other URIs, a file in the output folder named after the URI."""
    folder = filesystem.local_folder(warehouse)
    if folder is not None:
        return folder / LOCK_NAME
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", warehouse).strip("_")[:80]
    digest = hashlib.sha256(warehouse.encode()).hexdigest()[:12]
    return output_dir / f"{LOCK_NAME}_warehouse_{readable}_{digest}"


def process_start(pid: int) -> int | None:
    """When the process started, in clock ticks after boot; None when no such process runs or it has died and
    waits to be reaped (a zombie)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rpartition(")")[2].split()  # the command name before it may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def boot_id() -> str | None:
    try:
        return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def pid_exists(pid: int) -> bool:
    """Without /proc: signal 0 checks the pid without touching the process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(holder: Holder) -> bool:
    """Taken on this host by a process that is gone; a lock from another host is never stale."""
    if holder.host != socket.gethostname():
        return False
    if holder.boot_id is not None and holder.boot_id != boot_id():
        return True
    if not (PROC / "self" / "stat").exists():
        return not pid_exists(holder.pid)
    start = process_start(holder.pid)
    return start is None or (holder.pid_start is not None and start != holder.pid_start)


def this_process(run_id: str, output: str) -> Holder:
    pid = os.getpid()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Holder(run_id, socket.gethostname(), pid, process_start(pid), boot_id(), started_at, output)


def read_holder(text: bytes) -> Holder | None:
    """The holder a lock file names; None for a file that names none (not written by this module)."""
    try:
        document = json.loads(text)
        return Holder(**{field.name: document[field.name] for field in fields(Holder)})
    except (ValueError, TypeError, KeyError):
        return None


def make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return those this call created, outermost first (another
    process may create some of them at the same moment: those are not this call's to remove)."""
    missing = []
    current = folder
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    created = []
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        created.append(path)
    return created


class WarehouseLock:
    """Hold a warehouse for one command: `with WarehouseLock(warehouse, run_id, output):` takes the lock or
    raises WarehouseLockedError, and deletes it when the block ends. Folders it had to create for the lock are
    removed again if they are still empty then, so a refused command leaves none behind."""

    def __init__(self, warehouse: str, run_id: str, output: Path) -> None:
        self.warehouse = warehouse
        self.run_id = run_id
        self.output = output
        self.path = lock_path(warehouse, output.parent)
        self.holder: Holder | None = None
        self._created: list[Path] = []

    def __enter__(self) -> WarehouseLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            for _ in range(ATTEMPTS):
                self._created += self._make_folder()
                if self._attempt():
                    return
            holder = self._current_holder()
            if holder is None:
                raise WarehouseLockedError(
                    f"the warehouse {self.warehouse} is locked: its lock {self.path} changed hands {ATTEMPTS} times "
                    "while this run tried to take it",
                    None,
                )
            raise locked_error(self.warehouse, self.path, holder)
        except BaseException:
            self._remove_created_folders()
            raise

    def release(self) -> None:
        """Delete the lock if it is still this run's (it always is while this process lives)."""
        if self.holder is not None:
            with contextlib.suppress(OSError):  # a lock left behind is stale once this process is gone
                if self._current_holder() == self.holder:
                    self.path.unlink()
            self.holder = None
        self._remove_created_folders()

    def _make_folder(self) -> list[Path]:
        try:
            return make_folders(self.path.parent)
        except OSError as error:
            failed = Path(error.filename) if error.filename else self.path.parent
            raise LockFolderError(failed, (error.strerror or str(error)).lower()) from None

    def _attempt(self) -> bool:
        """One try: link a complete lock file into place, or take over a stale one; False when the lock changed
        hands meanwhile (or the folder vanished) and another try is due."""
        holder = this_process(self.run_id, str(self.output))
        try:
            record = self._write_record(holder)
        except FileNotFoundError:  # the folder was removed by a run that had created it and ended
            return False
        try:
            try:
                os.link(record, self.path)
            except FileExistsError:
                if not self._take_over_if_stale(record):
                    return False
            self.holder = holder
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):  # renamed into place by a takeover
                os.unlink(record)

    def _write_record(self, holder: Holder) -> Path:
        """The holder's record, complete and on disk beside the lock, before it is linked or renamed into place."""
        try:
            return filesystem.write_beside(self.path, json.dumps(asdict(holder)) + "\n")
        except OSError as error:
            if isinstance(error, FileNotFoundError):  # the caller makes the folder again
                raise
            raise LockFolderError(self.path.parent, (error.strerror or str(error)).lower()) from None

    def _take_over_if_stale(self, record: Path) -> bool:
        """With the lock file's flock held: if `_lock` is still that file and its holder is gone, rename this
        run's record over it. Raises WarehouseLockedError when the holder lives."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:  # released meanwhile
            return False
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # takers-over of this file, one at a time; released with the file
            try:
                current = self.path.stat()
            except FileNotFoundError:
                return False
            opened = os.fstat(handle.fileno())
            if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
                return False  # taken over or released and taken since it was opened: look again
            holder = read_holder(handle.read())
            if holder is None or not is_stale(holder):
                raise locked_error(self.warehouse, self.path, holder)
            os.replace(record, self.path)
            return True

    def _current_holder(self) -> Holder | None:
        try:
            return read_holder(self.path.read_bytes())
        except FileNotFoundError:
            return None

    def _remove_created_folders(self) -> None:
        """Innermost first, and only while empty: another run may have put its own lock or models there."""
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []
