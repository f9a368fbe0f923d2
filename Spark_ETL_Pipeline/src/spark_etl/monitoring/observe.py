"""What the checks judge, computed in Spark: only metrics reach the driver (a few rows per issue month and
feature), never the rows themselves."""

from __future__ import annotations

from pyspark.sql import SparkSession

from spark_etl.incremental.planning import restored
from spark_etl.modelling import models, quality, registry
from spark_etl.modelling.models import Stage
from spark_etl.monitoring import feature_metrics
from spark_etl.monitoring.checks import ClearedPayments, Observation
from spark_etl.monitoring.feature_metrics import FeatureMetrics

METRICS_MODEL = "mon_feature_month_metrics"
FEATURES_MODEL = "fct_invoice_features"


def table_metrics(spark: SparkSession) -> dict[str, FeatureMetrics]:
    """The whole feature table's metrics: the sum of the stored months of mon_feature_month_metrics."""
    return feature_metrics.from_month_rows(row.asDict() for row in spark.table(METRICS_MODEL).collect())


CLEARED_EXAMPLES = 5  # invoice ids a cleared_payments outcome names, for a reviewer to look up


def run_changes(
    stage: Stage, whole: dict[str, FeatureMetrics]
) -> tuple[dict[str, FeatureMetrics], ClearedPayments | None]:
    """What this run changed against the version it builds on: the metrics of the rows it added or changed, and
    the payments it cleared. A full run's rows are the whole table (`whole`), and it is compared with no version
    (None). An incremental run's are its rewritten months' rows that differ from the base's
    (changed_feature_rows.sql), measured by the same SQL as the stored metrics, and the paid invoices of those
    months it holds unpaid (cleared_payments.sql): a count and a few ids, only those reach the driver."""
    version = stage.version
    if version.base is None:
        return whole, None
    months = version.rewritten("marts", FEATURES_MODEL) or []
    if not months:
        return feature_metrics.from_month_rows([]), ClearedPayments(0, [])
    spark = stage.spark
    with restored(spark, FEATURES_MODEL, f"{registry.STORED_PREFIX}{FEATURES_MODEL}"):
        stage.use_stored("marts", FEATURES_MODEL, months=months)  # this run's rewritten months
        stage.use_base(FEATURES_MODEL, months=months)  # the same months as the base holds them
        cleared_df = spark.sql(models.query_text("cleared_payments"))
        cleared_count = cleared_df.count()
        examples = cleared_df.orderBy("inv_id").limit(CLEARED_EXAMPLES).collect() if cleared_count else []
        cleared = ClearedPayments(cleared_count, [int(row["inv_id"]) for row in examples])
        spark.sql(models.query_text("changed_feature_rows")).createOrReplaceTempView(FEATURES_MODEL)
        rows = spark.sql(models.sql_text("monitoring", METRICS_MODEL)).collect()
    return feature_metrics.from_month_rows(row.asDict() for row in rows), cleared


def observe(stage: Stage) -> Observation:
    """This run as the checks see it. Needs the views fct_invoice_features, stg_row_counts and the built
    mon_feature_month_metrics."""
    table_counts, _ = quality.table_counts(stage.spark)
    whole = table_metrics(stage.spark)
    run_rows, cleared = run_changes(stage, whole)
    return Observation(
        mode="incremental" if stage.version.is_incremental else "full",
        tables=quality.counts_as_dicts(table_counts),
        output_rows=whole["inv_total"].row_count,
        table_metrics=whole,
        run_rows_metrics=run_rows,
        cleared_payments=cleared,
    )
