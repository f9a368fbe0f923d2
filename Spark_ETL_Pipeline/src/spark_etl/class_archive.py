"""The driver JVM's class archive (Java's application class-data sharing): the classes a run loads from Spark's
jars, stored once in the JVM's own format and mapped at the next start instead of read, verified and parsed
again.

Why: a run loads some 12,500 classes from Spark's jars; a day's incremental run does little else at the start.
Measured on a 100x incremental run, the archive took about 2 s off each run (docs/scaling.md has the runs). The
first run on a machine (or after Java or PySpark changed) writes the archive as its JVM exits; every later run uses
it.

An archive belongs to one Java and one class path: its name is a digest of both, so a changed installation gets a
new one and never maps a stale one. A truncated archive crashes the JVM that maps it, so one is only ever written
under a temporary name and renamed into place after its JVM exited on its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from spark_etl import warehouse_lock

# where archives are kept: SPARK_ETL_CACHE_DIR, else the user's cache folder (XDG_CACHE_HOME or ~/.cache)
CACHE_DIR_ENV = "SPARK_ETL_CACHE_DIR"
# "off" turns the archive off (no option added, none written)
ARCHIVE_ENV = "SPARK_ETL_CLASS_ARCHIVE"
# the JVM reports an archive it cannot use (another class path) as a warning on standard output: not worth a line
QUIET = "-Xlog:cds=off,cds+dynamic=off"
# archives kept in the cache: the one just written and the most recently used others (two checkouts on one machine,
# each with its own PySpark, each keep theirs); older ones are of a Java or PySpark since replaced
KEPT_ARCHIVES = 3


@dataclass(frozen=True)
class ArchivePlan:
    """The option a new driver JVM gets, and the archive it writes at exit when there is none yet."""

    java_option: str
    writes: Path | None = None  # the temporary file the JVM writes; `publish` renames it into place
    archive: Path | None = None


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spark_etl"


def java_executable() -> str | None:
    """The java spark-submit starts: JAVA_HOME's, else the one on the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    return os.path.realpath(java) if java and os.path.exists(java) else None


def _stat_line(path: Path) -> str:
    status = path.stat()
    return f"{path.name} {status.st_size} {status.st_mtime_ns}"


def archive_path(conf: Mapping[str, str]) -> Path | None:
    """The archive for this Java and this driver class path (Spark's jars and spark.driver.extraClassPath); None
    when either cannot be found."""
    from pyspark.find_spark_home import _find_spark_home

    java = java_executable()
    if java is None:
        return None
    java_home = Path(java).parent.parent
    jars_dir = Path(_find_spark_home()) / "jars"
    if not jars_dir.is_dir():
        return None
    modules = java_home / "lib" / "modules"  # the JDK's own classes: changed by any update of the JDK
    lines = [java, _stat_line(modules) if modules.is_file() else ""]
    lines += sorted(_stat_line(jar) for jar in jars_dir.glob("*.jar"))
    lines.append(conf.get("spark.driver.extraClassPath", ""))
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    return cache_dir() / "class-archives" / f"spark-driver-{digest}.jsa"


def plan(conf: Mapping[str, str], may_write: bool) -> ArchivePlan | None:
    """Map the archive when there is one; else, when `may_write` (the caller waits for the JVM to exit and then
    calls `publish`), have the JVM write one at exit. None: no archive option for this JVM."""
    if os.environ.get(ARCHIVE_ENV, "").lower() == "off":
        return None
    archive = archive_path(conf)
    if archive is None:
        return None
    if archive.is_file():
        with contextlib.suppress(OSError):  # its modification time says when it was last used (`publish`)
            os.utime(archive)
        return ArchivePlan(f"-XX:SharedArchiveFile={archive} {QUIET}", archive=archive)
    if not may_write:
        return None
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # no writable cache: run without one
    remove_abandoned(archive.parent)
    writes = archive.with_name(f"{archive.stem}.{os.getpid()}.tmp")
    return ArchivePlan(f"-XX:ArchiveClassesAtExit={writes} {QUIET}", writes=writes, archive=archive)


def publish(archive_plan: ArchivePlan | None, exited_on_its_own: bool) -> None:
    """After the JVM exited: move the archive it wrote into place, or remove what a killed JVM left half-written."""
    if archive_plan is None or archive_plan.writes is None or archive_plan.archive is None:
        return
    written = archive_plan.writes
    if exited_on_its_own and written.is_file() and written.stat().st_size > 0:
        others = sorted(archive_plan.archive.parent.glob("spark-driver-*.jsa"), key=_last_used, reverse=True)
        for stale in others[KEPT_ARCHIVES - 1 :]:  # the least recently used: of an earlier Java or PySpark
            stale.unlink(missing_ok=True)
        os.replace(written, archive_plan.archive)
    else:
        written.unlink(missing_ok=True)


def _last_used(archive: Path) -> float:
    try:
        return archive.stat().st_mtime
    except OSError:  # removed meanwhile by another runner
        return 0.0


def remove_abandoned(folder: Path) -> None:
    """Remove what JVMs killed while writing left: their runner (the pid in the name) is gone."""
    for leftover in folder.glob("*.tmp"):
        pid = leftover.suffixes[-2].lstrip(".") if len(leftover.suffixes) >= 2 else ""
        if pid.isdigit() and not warehouse_lock.pid_exists(int(pid)):
            leftover.unlink(missing_ok=True)
