"""Intermediate and mart models on inline staged rows: every boundary of the feature contract."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession
from support.spark_views import collect_sorted, run_view

from spark_etl.modelling import constraints, models, registry

D = date(2021, 6, 1)  # issue date of the invoices whose windows are checked


def days_before(days: int) -> date:
    return D - timedelta(days=days)


@pytest.fixture(scope="module")
def featured(spark: SparkSession) -> SparkSession:
    spark.createDataFrame(
        [(1, date(2020, 1, 1)), (2, date(2021, 7, 1))],
        "account_id bigint, joining_date date",
    ).createOrReplaceTempView("stg_accounts")
    spark.createDataFrame(
        [("A", Decimal("0.005")), ("B", Decimal("0.335")), ("C", Decimal("10.10"))],
        "item_id string, item_retail_price decimal(21, 6)",
    ).createOrReplaceTempView("stg_skus")
    invoices = [
        # account 1: the window around D
        (100, 1, D, D + timedelta(days=30)),  # paid after exactly 30 days: on time
        (101, 1, D, D + timedelta(days=31)),  # same day as 100; paid after 31 days: late
        (102, 1, days_before(1), days_before(1) - timedelta(days=2)),  # paid before issue: on time
        (103, 1, days_before(120), None),  # 120 days back: in the window
        (104, 1, days_before(121), None),  # 121 days back: outside
        # account 2: joins after it is invoiced (negative age); the leap day
        (200, 2, date(2020, 2, 29), date(2020, 3, 1)),
        (201, 2, date(2020, 6, 28), date(2020, 7, 1)),  # 120 days after 2020-02-29
        (202, 2, date(2020, 6, 29), date(2020, 7, 1)),  # 121 days after
        # account 3 is unknown; unpaid invoices judged at as_of
        (300, 3, date(2021, 6, 2), None),  # as_of - d = 30: not yet known
        (301, 3, date(2021, 6, 1), None),  # as_of - d = 31: late
    ]
    spark.createDataFrame(
        invoices, "invoice_id bigint, account_id bigint, issue_date date, payment_date date"
    ).createOrReplaceTempView("stg_invoices")
    lines = [
        (100, "A", 1, True),  # 0.005 -> 0.01 (half-up)
        (101, "B", 3, True),  # 1.005 -> 1.01 (half-up, exact decimal)
        (102, "C", 2, True),
        (102, "C", 2, True),  # identical lines both count: 40.40
        (103, "C", 1, True),
        (103, "Z", 4, False),  # unknown SKU: total unknown, items still counted
    ]
    spark.createDataFrame(
        lines, "invoice_id bigint, item_id string, quantity int, is_known_sku boolean"
    ).createOrReplaceTempView("stg_invoice_line_items")
    models.register_parameters(spark, date(2021, 7, 2))
    for layer in ("intermediate", "marts"):
        for model in registry.layer_models(layer):
            run_view(spark, layer, model.name)
    return spark


def test_invoice_totals_are_exact_half_up_and_unknown_with_an_unknown_sku(featured: SparkSession) -> None:
    totals = collect_sorted(
        featured.table("int_invoice_totals"), ["invoice_id", "line_count", "item_count", "invoice_total"]
    )
    assert totals == [
        (100, 1, 1, Decimal("0.01")),
        (101, 1, 3, Decimal("1.01")),
        (102, 2, 4, Decimal("40.40")),
        (103, 2, 5, None),
        (104, 0, 0, Decimal("0.00")),  # no lines
        (200, 0, 0, Decimal("0.00")),
        (201, 0, 0, Decimal("0.00")),
        (202, 0, 0, Decimal("0.00")),
        (300, 0, 0, Decimal("0.00")),
        (301, 0, 0, Decimal("0.00")),
    ]


def test_daily_series_windows_are_prior_only_and_tie_same_day(featured: SparkSession) -> None:
    daily = collect_sorted(
        featured.table("int_account_daily_invoices"),
        ["account_id", "issue_date", "invoice_count", "invoices_prior_120d", "invoices_to_date"],
    )
    assert daily == [
        (1, days_before(121), 1, 0, 1),
        (1, days_before(120), 1, 1, 2),  # 104 is 1 day earlier
        (1, days_before(1), 1, 2, 3),  # 103 (119 days earlier) and 104 (120) both count
        (1, D, 2, 2, 5),  # 102 (1 day) and 103 (120 days); not 104 (121) nor the same day
        (2, date(2020, 2, 29), 1, 0, 1),
        (2, date(2020, 6, 28), 1, 1, 2),  # the leap day is exactly 120 days back
        (2, date(2020, 6, 29), 1, 1, 3),  # the leap day is 121 days back; 2020-06-28 is 1
        (3, date(2021, 6, 1), 1, 0, 1),
        (3, date(2021, 6, 2), 1, 1, 2),
    ]


def test_features_follow_the_contract(featured: SparkSession) -> None:
    features = collect_sorted(
        featured.table("fct_invoice_features"),
        [
            "inv_id",
            "acct_id",
            "inv_total",
            "inv_items",
            "acct_age",
            "num_inv_120d",
            "cum_tot_inv_acct",
            "is_late",
        ],
    )
    joined_1 = date(2020, 1, 1)
    assert features == [
        (100, 1, Decimal("0.01"), 1, (D - joined_1).days, 2, 5, 0),
        (101, 1, Decimal("1.01"), 3, (D - joined_1).days, 2, 5, 1),
        (102, 1, Decimal("40.40"), 4, (days_before(1) - joined_1).days, 2, 3, 0),
        (103, 1, None, 5, (days_before(120) - joined_1).days, 1, 2, 1),  # unpaid, long past as_of - 30
        (104, 1, Decimal("0.00"), 0, (days_before(121) - joined_1).days, 0, 1, 1),
        (200, 2, Decimal("0.00"), 0, -488, 0, 1, 0),  # invoiced 488 days before the account joined
        (201, 2, Decimal("0.00"), 0, -368, 1, 2, 0),
        (202, 2, Decimal("0.00"), 0, -367, 1, 3, 0),
        (300, 3, Decimal("0.00"), 0, None, 1, 2, None),  # unknown account; unpaid 30 days: not yet known
        (301, 3, Decimal("0.00"), 0, None, 0, 1, 1),  # unpaid 31 days at as_of: late
    ]


def test_as_of_defaults_to_the_latest_date_in_the_data(featured: SparkSession) -> None:
    assert featured.table("int_as_of_date").collect()[0]["as_of_date"] == date(2021, 7, 2)
    models.register_parameters(featured, None)
    derived = featured.sql(models.sql_text("intermediate", "int_as_of_date")).collect()
    # the latest date anywhere: 101 is paid D + 31 = 2021-07-02; 100 D + 30
    assert [tuple(row) for row in derived] == [(D + timedelta(days=31), False, D + timedelta(days=31))]
    models.register_parameters(featured, date(2030, 1, 1))
    later = featured.sql(models.sql_text("intermediate", "int_as_of_date")).collect()
    assert [tuple(row) for row in later] == [(date(2030, 1, 1), True, D + timedelta(days=31))]
    models.register_parameters(featured, date(2021, 7, 2))


def test_parse_as_of_accepts_only_iso_dates() -> None:
    assert models.parse_as_of("2021-07-02") == date(2021, 7, 2)
    assert models.parse_as_of("") is None
    assert models.parse_as_of(None) is None
    with pytest.raises(ValueError, match="not a date in YYYY-MM-DD form"):
        models.parse_as_of("02/07/2021")


@pytest.mark.parametrize(
    "model", [*registry.layer_models("intermediate"), *registry.layer_models("marts")], ids=lambda model: model.name
)
def test_declared_keys_and_relationships_hold(featured: SparkSession, model: registry.Model) -> None:
    constraints.check(featured, model.name)
