"""The merge rules of an incremental run on inline rows: the staging models merging a delta into the previous
version (stored_<model>), and the months increments.py says the delta changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession

from conftest import collect_sorted, raw_columns, register_strings, run_view
from spark_etl import increments, registry


def register_stored(spark: SparkSession, model_name: str, rows: list[tuple[object, ...]]) -> None:
    """The previous version of a model, with its documented schema."""
    schema = registry.schema_ddl(registry.model(model_name))
    spark.createDataFrame(rows, schema).createOrReplaceTempView(f"stored_{model_name}")


@pytest.fixture(scope="module")
def merged(spark: SparkSession) -> SparkSession:
    """A previous version and a delta holding one case of each merge rule; the staging models run on them in a
    session of their own (its views do not leak into other tests)."""
    session = spark.newSession()
    register_stored(session, "stg_accounts", [(1, "Acme", "Road", "Ann", "555", "F", date(2019, 1, 1))])
    register_stored(
        session,
        "stg_skus",
        [("A", "a", "a", Decimal("1.000000"), Decimal("10.000000")), ("B", "b", "b", Decimal(1), Decimal(2))],
    )
    register_stored(
        session,
        "stg_invoices",
        [
            (10, 1, date(2021, 1, 10), None),  # paid by the delta
            (11, 1, date(2021, 1, 11), None),  # the delta's copy of it is invalid: it stays as it is
            (12, 1, date(2021, 2, 1), None),  # moved to another month and account by the delta
            (16, 1, date(2021, 1, 20), None),  # untouched
        ],
    )
    register_stored(
        session,
        "stg_invoice_line_items",
        [
            (10, "A", 1, True, "2021-01"),  # replaced by the delta's lines of invoice 10
            (10, "B", 2, True, "2021-01"),
            (11, "A", 5, True, "2021-01"),  # the delta's only line of 11 is invalid: these stay
            (12, "Z", 1, False, "2021-02"),  # names a SKU the delta brings: known now, and moves to 2020-12
            (16, "B", 1, True, "2021-01"),
        ],
    )
    register_strings(
        session,
        "raw_accounts",
        raw_columns("accounts"),
        [("2", "New", "Street", "Bob", "556", "M", "2020-06-01", None)],
    )
    register_strings(
        session,
        "raw_skus",
        raw_columns("skus"),
        [("Z", "z", "z", "1.00", "3.50", None), ("B", "b", "b", "1", "2.5", None)],  # a new SKU; B repriced
    )
    register_strings(
        session,
        "raw_invoices",
        raw_columns("invoices"),
        [
            ("10", "1", "2021-01-10", "2021-02-15", None),  # paid
            ("11", "1", "2021-01-11", "not a date", None),  # invalid: replaces nothing
            ("12", "2", "2020-12-30", "", None),  # back-dated into another month, moved to account 2
            ("13", "2", "2021-02-03", "", None),  # new, twice, exactly: collapses
            ("13", "2", "2021-02-03", "", None),
            ("14", "2", "2021-02-04", "", None),  # new, conflicting copies: both rejected
            ("14", "2", "2021-02-05", "", None),
        ],
    )
    register_strings(
        session,
        "raw_invoice_line_items",
        raw_columns("invoice_line_items"),
        [
            ("10", "B", "3", None),  # replaces both stored lines of 10
            ("11", "A", "x", None),  # invalid: 11 keeps its stored line
            ("13", "Q", "1", None),  # unknown SKU: quarantined and kept
            ("14", "A", "1", None),  # 14 was rejected and never stored: unknown_invoice
        ],
    )
    for model in registry.layer_models("staging"):
        if model.name in ("stg_checked_rows", "stg_rejects", "stg_row_counts"):
            continue
        run_view(session, "staging", model.name)
    increments.register_changes(session)
    return session


def test_keyed_models_take_accepted_delta_rows_and_keep_the_rest(merged: SparkSession) -> None:
    assert collect_sorted(merged.table("stg_invoices"), ["invoice_id", "account_id", "issue_date", "payment_date"]) == [
        (10, 1, date(2021, 1, 10), date(2021, 2, 15)),
        (11, 1, date(2021, 1, 11), None),
        (12, 2, date(2020, 12, 30), None),
        (13, 2, date(2021, 2, 3), None),
        (16, 1, date(2021, 1, 20), None),
    ]
    assert collect_sorted(merged.table("stg_accounts"), ["account_id", "joining_date"]) == [
        (1, date(2019, 1, 1)),
        (2, date(2020, 6, 1)),
    ]
    assert collect_sorted(merged.table("stg_skus"), ["item_id", "item_retail_price"]) == [
        ("A", Decimal("10.000000")),
        ("B", Decimal("2.500000")),
        ("Z", Decimal("3.500000")),
    ]


def test_an_invoices_delta_lines_replace_all_of_its_lines(merged: SparkSession) -> None:
    columns = ["invoice_id", "item_id", "quantity", "is_known_sku", "partition_month"]
    assert collect_sorted(merged.table("stg_invoice_line_items"), columns) == [
        (10, "B", 3, True, "2021-01"),
        (11, "A", 5, True, "2021-01"),
        (12, "Z", 1, True, "2020-12"),
        (13, "Q", 1, False, "2021-02"),
        (16, "B", 1, True, "2021-01"),
    ]
    rejected = collect_sorted(merged.table("stg_invoice_line_items_checked"), ["invoice_id", "reject_reason"])
    assert rejected == [(10, None), (11, "invalid_value"), (13, "unknown_sku"), (14, "unknown_invoice")]


def test_the_months_a_delta_changes(merged: SparkSession) -> None:
    # lines: 10 and 13 get delta lines (2021-01, 2021-02), 12 moves from 2021-02 to 2020-12, and Z, which a
    # stored line of 12 names, arrives
    assert increments.line_months(merged, is_incremental=True) == ["2020-12", "2021-01", "2021-02"]
    # totals: those, and the months of lines naming B, repriced (2021-01)
    line_months = increments.line_months(merged, is_incremental=True)
    assert increments.total_months(merged, True, line_months) == ["2020-12", "2021-01", "2021-02"]
    assert increments.changed_skus(merged) == (["Z"], ["B"])
    assert increments.line_months(merged, is_incremental=False) is None


def test_a_month_only_a_reprice_touches_is_recomputed_for_totals_only(spark: SparkSession) -> None:
    session = spark.newSession()
    register_stored(session, "stg_skus", [("B", "b", "b", Decimal(1), Decimal(2))])
    register_stored(session, "stg_invoices", [(16, 1, date(2021, 1, 20), None)])
    register_stored(session, "stg_invoice_line_items", [(16, "B", 1, True, "2021-01")])
    for table in ("accounts", "invoices", "invoice_line_items"):
        register_strings(session, f"raw_{table}", raw_columns(table), [])
    register_strings(session, "raw_skus", raw_columns("skus"), [("B", "b", "b", "1", "2.01", None)])
    for model in (
        "stg_accounts_checked",
        "stg_accounts",
        "stg_skus_checked",
        "stg_skus",
        "stg_invoices_checked",
        "stg_invoices",
    ):
        run_view(session, "staging", model)
    run_view(session, "staging", "stg_invoice_line_items_checked")
    increments.register_changes(session)
    run_view(session, "staging", "stg_invoice_line_items")
    assert increments.line_months(session, is_incremental=True) == []
    assert increments.total_months(session, True, []) == ["2021-01"]
