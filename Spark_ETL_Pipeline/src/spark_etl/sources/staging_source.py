"""The start of a run's staging stage: where its rows come from (the CSV extracts, or one snapshot of PostgreSQL)
and the run's warehouse version, in the order the run's guarantees need, so the staging notebook states what it
builds instead of how a run begins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import Observation, SparkSession

from spark_etl.modelling import models
from spark_etl.sources import extract, jdbc, source_state
from spark_etl.storage import filesystem, load, versions
from spark_etl.storage.warehouse import Warehouse


@dataclass(frozen=True)
class StagingStart:
    stage: models.Stage
    run_version: versions.RunVersion
    read_observations: Mapping[str, Observation | int]  # per table, its rows read (`extract.rows_read`)
    source_changes: dict[str, dict[str, int]] | None  # an incremental run from PostgreSQL: groups per change


def begin_staging(
    spark: SparkSession,
    *,
    extracts_dir: str,
    encoding: str,
    warehouse_dir: str,
    version: str,
    incremental: bool,
    jdbc_url: str,
    jdbc_user: str,
    jdbc_schema: str,
    jdbc_partitions: int,
) -> StagingStart:
    """Register the raw_<table> and withdrawn_<table> views the staging models read, and begin the run's version.

    CSV extracts are checked (headers, encoding) before anything is written; then the warehouse is checked writable
    and the version begun on the current one (`Warehouse.begin`). From
    PostgreSQL (`jdbc_url`), one snapshot of the four tables is stored in the warehouse first and, in an
    incremental run, only the rows that differ from the state the previous version stored are the delta, and the
    keys the database deleted or changed are withdrawn (`source_state`). The CSV path withdraws nothing.
    """
    warehouse = filesystem.qualify(warehouse_dir)
    read_observations: Mapping[str, Observation | int] = {}
    if not jdbc_url:
        read_observations = extract.register_extracts(spark, filesystem.qualify(extracts_dir), encoding)
    load.check_warehouse(spark, warehouse)
    run_version = Warehouse.open(warehouse, spark).begin(version, incremental)
    stage = models.Stage(spark, "staging", run_version)
    stage.use_base("stg_accounts", "stg_skus", "stg_invoices")  # the previous version; empty in a full run
    source_changes = None
    if jdbc_url:
        jdbc_source = jdbc.source_from_parameters(jdbc_url, jdbc_user, jdbc_schema, jdbc_partitions)
        read_observations = source_state.register_extracts(spark, jdbc_source, run_version)
        if incremental:
            source_changes = source_state.change_counts(spark, warehouse)
    else:
        source_state.register_withdrawn(spark, {})
    return StagingStart(stage, run_version, read_observations, source_changes)
