"""The monitoring's SQL on inline feature rows: the per-month metrics (a null, a negative value, the bin
boundaries), the rows a run added or changed and the payments it cleared."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pyspark.sql import SparkSession
from support.spark_views import collect_sorted, run_view

from spark_etl.modelling import models, registry
from spark_etl.monitoring import feature_metrics

FEATURE_DDL = registry.schema_ddl(registry.model("fct_invoice_features"))


def feature_row(
    inv_id: int,
    inv_total: str | None,
    month: str = "2021-01",
    is_late: int | None = 0,
    acct_age: int | None = 10,
    payment_date: date | None = None,
) -> tuple[object, ...]:
    day = date.fromisoformat(f"{month}-15")
    total = None if inv_total is None else Decimal(inv_total)
    return (inv_id, 1, total, 3, acct_age, 0, 1, is_late, day, payment_date, month)


def test_the_month_metrics_count_sum_and_bin_each_feature(spark: SparkSession) -> None:
    session = spark.newSession()
    rows = [
        feature_row(1, "0.00"),  # bin 0: [0, 2^(1/4) - 1)
        feature_row(2, "1.00", is_late=1),  # log2(2) * 4 = 4: the first value of bin 4
        feature_row(3, None, is_late=None, acct_age=None),  # unknown: counted as a null, in no bin
        feature_row(4, "-2.50"),  # a broken invariant: bin -1
        feature_row(5, "1000000000000.00", month="2021-02"),  # beyond 2^31.75 - 1: the last bin
    ]
    session.createDataFrame(rows, FEATURE_DDL).createOrReplaceTempView("fct_invoice_features")
    metrics_df = run_view(session, "monitoring", "mon_feature_month_metrics")
    columns = ["partition_month", "feature", "row_count", "null_count", "value_sum", "value_square_sum"]
    columns += ["min_value", "max_value", "bin_counts"]
    january = {row[1]: row[2:] for row in collect_sorted(metrics_df, columns) if row[0] == "2021-01"}
    d = Decimal
    assert january == {
        "acct_age": (4, 1, d("30.00"), d("300.0000"), d("10.00"), d("10.00"), {13: 3}),
        "cum_tot_inv_acct": (4, 0, d("4.00"), d("4.0000"), d("1.00"), d("1.00"), {4: 4}),
        "inv_items": (4, 0, d("12.00"), d("36.0000"), d("3.00"), d("3.00"), {8: 4}),
        "inv_total": (4, 1, d("-1.50"), d("7.2500"), d("-2.50"), d("1.00"), {-1: 1, 0: 1, 4: 1}),
        "is_late": (4, 1, d("1.00"), d("1.0000"), d("0.00"), d("1.00"), {0: 2, 4: 1}),
        "num_inv_120d": (4, 0, d("0.00"), d("0.0000"), d("0.00"), d("0.00"), {0: 4}),
    }
    february_total = metrics_df.where("partition_month = '2021-02' and feature = 'inv_total'").collect()[0]
    assert february_total["bin_counts"] == {feature_metrics.LAST_BIN: 1}
    # the columns and types its .md states
    assert [(field.name, field.dataType.simpleString()) for field in metrics_df.schema.fields] == [
        (name, type_.replace(" ", ""))
        for name, type_ in registry.doc_columns(registry.model("mon_feature_month_metrics"))
    ]


def test_the_rows_a_run_changed_are_those_not_stored_as_they_are_now(spark: SparkSession) -> None:
    session = spark.newSession()
    stored = [feature_row(1, "5.00"), feature_row(2, "6.00", is_late=None), feature_row(3, None)]
    now = [
        feature_row(1, "5.00"),  # unchanged
        feature_row(2, "6.00", is_late=1),  # judged late as as_of moved: changed
        feature_row(3, None),  # an unknown total still unknown: unchanged
        feature_row(4, "7.00"),  # new
    ]
    session.createDataFrame(stored, FEATURE_DDL).createOrReplaceTempView("stored_fct_invoice_features")
    session.createDataFrame(now, FEATURE_DDL).createOrReplaceTempView("fct_invoice_features")
    changed_df = session.sql(models.query_text("changed_feature_rows"))
    assert collect_sorted(changed_df, ["inv_id", "is_late"]) == [(2, 1), (4, 0)]
    assert changed_df.columns == [name for name, _ in registry.doc_columns(registry.model("fct_invoice_features"))]


def test_a_cleared_payment_is_a_paid_invoice_the_run_holds_unpaid(spark: SparkSession) -> None:
    session = spark.newSession()
    paid, late = date(2021, 1, 20), date(2021, 3, 1)
    stored = [
        feature_row(1, "5.00", is_late=1, payment_date=late),  # paid late: cleared below, still late
        feature_row(2, "6.00", payment_date=paid),  # paid on time: cleared below, now late
        feature_row(3, "7.00", payment_date=paid),  # paid: paid again on another day
        feature_row(4, "8.00", is_late=1),  # unpaid: still unpaid
        feature_row(5, "9.00", payment_date=paid),  # paid: gone from the run (deleted upstream)
        feature_row(6, "1.00"),  # unpaid: paid now
    ]
    now = [
        feature_row(1, "5.00", is_late=1),
        feature_row(2, "6.00", is_late=1),
        feature_row(3, "7.00", payment_date=late, is_late=1),
        feature_row(4, "8.00", is_late=1),
        feature_row(6, "1.00", payment_date=paid),
        feature_row(7, "2.00"),  # new and unpaid
    ]
    session.createDataFrame(stored, FEATURE_DDL).createOrReplaceTempView("stored_fct_invoice_features")
    session.createDataFrame(now, FEATURE_DDL).createOrReplaceTempView("fct_invoice_features")
    cleared_df = session.sql(models.query_text("cleared_payments"))
    assert collect_sorted(cleared_df, ["inv_id", "base_payment_date"]) == [(1, late), (2, paid)]
