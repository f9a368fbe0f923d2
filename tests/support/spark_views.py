"""Models on inline rows in the session's Spark: raw views as extract.read_extract gives them, one model's SQL
run as a stage runs it, whole tables collected for comparison, the jobs a step ran, versions begun and committed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from spark_etl.modelling import models, registry
from spark_etl.sources.extract import CORRUPT_RECORD_COLUMN, EXTRACTS
from spark_etl.storage import load, versions
from spark_etl.storage.warehouse import Warehouse


def raw_columns(table_name: str) -> tuple[str, ...]:
    """The columns an extract's raw view has (extract.read_extract): its required columns, then _corrupt_record."""
    (extract,) = [extract for extract in EXTRACTS if extract.table_name == table_name]
    return (*extract.columns, CORRUPT_RECORD_COLUMN)


def inline_rows(spark: SparkSession, rows: Sequence[Sequence[Any]], schema: str) -> DataFrame:
    """A test's rows as a DataFrame held in the JVM: read from Python once, here, and not again by each job of
    each query over them (a DataFrame made from Python rows is re-read through Python workers every time)."""
    return spark.createDataFrame([tuple(row) for row in rows], schema).localCheckpoint()


def register_strings(spark: SparkSession, view: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Register inline rows as an all-string view, the shape extract.read_extract gives the staging models."""
    schema = ", ".join(f"{name} string" for name in columns)
    inline_rows(spark, rows, schema).createOrReplaceTempView(view)


def run_view(spark: SparkSession, layer: str, model_name: str, is_computed: bool = True) -> DataFrame:
    """Run one model's SQL and register its rows under its name, as a stage stores a model and registers the
    stored copy: computed once (a local checkpoint), so a later query plans over those rows, not over the SQL of
    every model below it again (`is_computed` false: the view alone, for its schema, with no job). A model that
    merges into its previous version (stored_<model>) gets an empty one, and no key withdrawn by the source
    (withdrawn_<table>), as in a full run, unless the test registered them."""
    declared = registry.model(model_name)
    for name in declared.inputs:
        if name.startswith(registry.STORED_PREFIX) and not spark.catalog.tableExists(name):
            load.empty_frame(spark, registry.schema_ddl(declared)).createOrReplaceTempView(name)
        if name in registry.WITHDRAWN_VIEWS and not spark.catalog.tableExists(name):
            load.empty_frame(spark, registry.WITHDRAWN_VIEWS[name]).createOrReplaceTempView(name)
    model_df = spark.sql(models.sql_text(layer, model_name))
    if is_computed:
        model_df = model_df.localCheckpoint()
    model_df.createOrReplaceTempView(model_name)
    return model_df


def collect_sorted(model_df: DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The chosen columns of every row, sorted (None first), for whole-table comparisons."""
    selected = [tuple(row) for row in model_df.select(*columns).collect()]
    return sorted(selected, key=lambda row: tuple((value is not None, value) for value in row))


def jobs_in_group(spark: SparkSession, group: str) -> list[int]:
    """The jobs Spark ran under a job group, once its listener bus has delivered every event posted so far
    (job starts reach the status tracker asynchronously)."""
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()
    return list(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def register_stored(
    spark: SparkSession, model_name: str, rows: Sequence[tuple[Any, ...]], ddl: str | None = None
) -> None:
    """The previous version of a model (`stored_<model>`), as a stage reads it: with the model's documented schema,
    or `ddl` where a test gives only some of its columns."""
    schema = ddl or registry.schema_ddl(registry.model(model_name))
    inline_rows(spark, rows, schema).createOrReplaceTempView(f"{registry.STORED_PREFIX}{model_name}")


def begin_version(spark: SparkSession, warehouse: str, version: str, incremental: bool) -> versions.RunVersion:
    """A run's version begun on a test's warehouse, as the staging stage begins it."""
    return Warehouse.open(warehouse, spark).begin(version, incremental)


def commit_version(
    run: versions.RunVersion, model_names: list[str], details: dict[str, Any], keep_versions: int = 3
) -> versions.Manifest:
    """What a run does at its end: the marts stage finishes the version, then it is committed."""
    manifest = run.finish(model_names, details)
    Warehouse.open(run.warehouse_dir, run.spark).commit(run.version, keep_versions)
    return manifest
