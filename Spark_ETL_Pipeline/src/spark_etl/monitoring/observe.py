"""What the checks judge, computed in Spark: only metrics reach the driver (a few rows per issue month and
feature), never the rows themselves."""

from __future__ import annotations

from pyspark.sql import SparkSession

from spark_etl.incremental.planning import restored
from spark_etl.modelling import models, quality, registry
from spark_etl.modelling.models import Stage
from spark_etl.monitoring import feature_metrics
from spark_etl.monitoring.checks import Observation
from spark_etl.monitoring.feature_metrics import FeatureMetrics

METRICS_MODEL = "mon_feature_month_metrics"
FEATURES_MODEL = "fct_invoice_features"


def table_metrics(spark: SparkSession) -> dict[str, FeatureMetrics]:
    """The whole feature table's metrics: the sum of the stored months of mon_feature_month_metrics."""
    return feature_metrics.from_month_rows(row.asDict() for row in spark.table(METRICS_MODEL).collect())


def run_rows_metrics(stage: Stage, whole: dict[str, FeatureMetrics]) -> dict[str, FeatureMetrics]:
    """The metrics of the rows this run added or changed. A full run's rows are the whole table (`whole`); an
    incremental run's are its rewritten months' rows that differ from the base's (changed_feature_rows.sql),
    measured by the same SQL as the stored metrics."""
    version = stage.version
    if version.base is None:
        return whole
    months = version.rewritten("marts", FEATURES_MODEL) or []
    if not months:
        return feature_metrics.from_month_rows([])
    spark = stage.spark
    with restored(spark, FEATURES_MODEL, f"{registry.STORED_PREFIX}{FEATURES_MODEL}"):
        stage.use_stored("marts", FEATURES_MODEL, months=months)  # this run's rewritten months
        stage.use_base(FEATURES_MODEL, months=months)  # the same months as the base holds them
        spark.sql(models.query_text("changed_feature_rows")).createOrReplaceTempView(FEATURES_MODEL)
        rows = spark.sql(models.sql_text("monitoring", METRICS_MODEL)).collect()
    return feature_metrics.from_month_rows(row.asDict() for row in rows)


def observe(stage: Stage) -> Observation:
    """This run as the checks see it. Needs the views fct_invoice_features, stg_row_counts and the built
    mon_feature_month_metrics."""
    table_counts, _ = quality.table_counts(stage.spark)
    whole = table_metrics(stage.spark)
    return Observation(
        mode="incremental" if stage.version.is_incremental else "full",
        tables=quality.counts_as_dicts(table_counts),
        output_rows=whole["inv_total"].row_count,
        table_metrics=whole,
        run_rows_metrics=run_rows_metrics(stage, whole),
    )
