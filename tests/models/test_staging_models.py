"""Staging models on inline rows: typing, each reject reason, duplicates, and the row accounting."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession
from support.spark_views import collect_sorted, raw_columns, register_strings, run_view

from spark_etl.modelling import constraints, registry

ACCOUNT_COLUMNS = raw_columns("accounts")
SKU_COLUMNS = raw_columns("skus")
INVOICE_COLUMNS = raw_columns("invoices")
LINE_COLUMNS = raw_columns("invoice_line_items")


def account(account_id: str | None, joining_date: str | None, name: str = "Acme") -> tuple[str | None, ...]:
    return (account_id, name, "1 Road\nTown", "Ann", "555", "F", joining_date, None)


@pytest.fixture(scope="module")
def staged(spark: SparkSession) -> SparkSession:
    """Raw views with one case per rule, then every staging model run in the stage's order."""
    register_strings(
        spark,
        "raw_accounts",
        ACCOUNT_COLUMNS,
        [
            account("1", "2019-01-01"),
            account(" 2 ", "2020-02-29"),  # spaces around an id are fine; the leap day is a date
            account("3", "2021-02-30"),  # not a calendar date
            account("x4", "2019-01-01"),  # not an id
            account(None, "2019-01-01"),  # id missing
            account("5", None),  # date missing
            account("6", "2019-01-01"),  # exact copies: one kept, one collapsed
            account("6", "2019-01-01"),
            account("7", "2019-01-01", name="Acme"),  # same key, different content: both rejected
            account("7", "2019-01-01", name="Other"),
            ("8", None, None, None, None, None, None, "8,too,few"),  # malformed record
        ],
    )
    register_strings(
        spark,
        "raw_skus",
        SKU_COLUMNS,
        [
            ("A", "a", "a", "1.00", "10.50", None),
            ("B", "b", "b", "0", "0.005", None),  # zero cost and sub-cent retail are valid
            ("C", "c", "c", "1.00", "-3.00", None),  # negative price
            ("D", "d", "d", "1.00", "1.1234567", None),  # more than 6 decimals
            ("E", "e", "e", None, "2.00", None),  # cost price missing
            ("F", "f", "f", "1.00", "abc", None),  # not a number
        ],
    )
    register_strings(
        spark,
        "raw_invoices",
        INVOICE_COLUMNS,
        [
            ("10", "1", "2021-01-10", "2021-02-01", None),
            ("11", "99", "2021-01-10", None, None),  # unknown account, unpaid: kept
            ("12", "1", "2021-01-10", "2021-13-01", None),  # payment date present but invalid
            ("13", "1", "2021-01-10", "2021-02-01", None),  # conflicting copies
            ("13", "1", "2021-01-11", "2021-02-01", None),
            ("14", "1", "2021-01-10", None, None),  # exact copies
            ("14", "1", "2021-01-10", None, None),
            ("015", "1", "2021-01-12", " ", None),  # leading zero id; blank payment is unpaid
        ],
    )
    register_strings(
        spark,
        "raw_invoice_line_items",
        LINE_COLUMNS,
        [
            ("10", "A", "2", None),
            ("10", "A", "2", None),  # identical lines are two lines
            ("10", "Z", "1", None),  # unknown SKU
            ("10", "A", "0", None),  # quantity must be positive
            ("10", "A", "2.5", None),  # and whole
            ("99", "A", "1", None),  # unknown invoice
            ("13", "A", "1", None),  # invoice rejected as a conflict: unknown
            ("99", "Z", "x", None),  # invalid_value is checked first
            ("98", "Z", "1", None),  # unknown_invoice before unknown_sku
            ("15", "C", "1", None),  # SKU rejected: unknown
        ],
    )
    for model in registry.layer_models("staging"):
        run_view(spark, "staging", model.name)
    return spark


def test_accounts_checked_names_the_first_rule_broken(staged: SparkSession) -> None:
    checked = collect_sorted(
        staged.table("stg_accounts_checked"), ["account_id", "joining_date", "reject_reason", "is_collapsed"]
    )
    assert checked == [
        (None, date(2019, 1, 1), "invalid_value", False),  # x4
        (None, date(2019, 1, 1), "invalid_value", False),  # missing id
        (1, date(2019, 1, 1), None, False),
        (2, date(2020, 2, 29), None, False),
        (3, None, "invalid_value", False),
        (5, None, "invalid_value", False),
        (6, date(2019, 1, 1), None, False),
        (6, date(2019, 1, 1), None, True),
        (7, date(2019, 1, 1), "duplicate_conflict", False),
        (7, date(2019, 1, 1), "duplicate_conflict", False),
        (8, None, "invalid_value", False),  # malformed, whatever its fields parsed to
    ]


def test_stg_accounts_keeps_one_row_per_usable_key(staged: SparkSession) -> None:
    assert collect_sorted(staged.table("stg_accounts"), ["account_id", "company_address", "joining_date"]) == [
        (1, "1 Road\nTown", date(2019, 1, 1)),
        (2, "1 Road\nTown", date(2020, 2, 29)),
        (6, "1 Road\nTown", date(2019, 1, 1)),
    ]


def test_stg_skus_types_prices_exactly_and_rejects_bad_ones(staged: SparkSession) -> None:
    assert collect_sorted(staged.table("stg_skus"), ["item_id", "item_cost_price", "item_retail_price"]) == [
        ("A", Decimal("1.000000"), Decimal("10.500000")),
        ("B", Decimal("0.000000"), Decimal("0.005000")),
    ]
    rejected = collect_sorted(staged.table("stg_skus_checked").where("reject_reason is not null"), ["item_id"])
    assert rejected == [("C",), ("D",), ("E",), ("F",)]


def test_stg_invoices_keeps_unknown_accounts_and_unpaid(staged: SparkSession) -> None:
    assert collect_sorted(staged.table("stg_invoices"), ["invoice_id", "account_id", "issue_date", "payment_date"]) == [
        (10, 1, date(2021, 1, 10), date(2021, 2, 1)),
        (11, 99, date(2021, 1, 10), None),
        (14, 1, date(2021, 1, 10), None),
        (15, 1, date(2021, 1, 12), None),
    ]
    checked = collect_sorted(
        staged.table("stg_invoices_checked").where("reject_reason is not null or is_collapsed"),
        ["invoice_id", "reject_reason", "is_collapsed"],
    )
    assert checked == [
        (12, "invalid_value", False),
        (13, "duplicate_conflict", False),
        (13, "duplicate_conflict", False),
        (14, None, True),
    ]


def test_line_checks_apply_in_contract_order(staged: SparkSession) -> None:
    checked = collect_sorted(
        staged.table("stg_invoice_line_items_checked"), ["invoice_id", "item_id", "quantity", "reject_reason"]
    )
    assert checked == [
        (10, "A", None, "invalid_value"),  # 2.5
        (10, "A", 0, "invalid_value"),
        (10, "A", 2, None),
        (10, "A", 2, None),
        (10, "Z", 1, "unknown_sku"),
        (13, "A", 1, "unknown_invoice"),
        (15, "C", 1, "unknown_sku"),
        (98, "Z", 1, "unknown_invoice"),
        (99, "A", 1, "unknown_invoice"),
        (99, "Z", None, "invalid_value"),
    ]
    # unknown-SKU lines stay in the staged lines, flagged, because they count toward inv_items
    assert collect_sorted(staged.table("stg_invoice_line_items"), ["invoice_id", "item_id", "is_known_sku"]) == [
        (10, "A", True),
        (10, "A", True),
        (10, "Z", False),
        (15, "C", False),
    ]


def test_row_counts_account_for_every_record(staged: SparkSession) -> None:
    counts = collect_sorted(staged.table("stg_row_counts"), ["table_name", "row_status", "reject_reason", "row_count"])
    assert counts == [
        ("accounts", "collapsed", None, 1),
        ("accounts", "kept", None, 3),
        ("accounts", "rejected", "duplicate_conflict", 2),
        ("accounts", "rejected", "invalid_value", 5),
        ("invoice_line_items", "kept", None, 2),
        ("invoice_line_items", "rejected", "invalid_value", 3),
        ("invoice_line_items", "rejected", "unknown_invoice", 3),
        ("invoice_line_items", "rejected", "unknown_sku", 2),
        ("invoices", "collapsed", None, 1),
        ("invoices", "kept", None, 4),
        ("invoices", "rejected", "duplicate_conflict", 2),
        ("invoices", "rejected", "invalid_value", 1),
        ("skus", "kept", None, 2),
        ("skus", "rejected", "invalid_value", 4),
    ]


def test_rejects_keep_the_original_values(staged: SparkSession) -> None:
    rejects = staged.table("stg_rejects").where("table_name = 'accounts'").collect()
    records = sorted(json.dumps(json.loads(row["source_record"]), sort_keys=True) for row in rejects)
    assert json.loads(records[0]) == {"_corrupt_record": "8,too,few"}
    assert {
        "account_id": "x4",
        "company_name": "Acme",
        "company_address": "1 Road\nTown",
        "contact_person": "Ann",
        "contact_phone": "555",
        "gender": "F",
        "joining_date": "2019-01-01",
    } in [json.loads(record) for record in records]
    # a missing value stays visible as null, not dropped from the record
    assert any(json.loads(record).get("account_id", "absent") is None for record in records)


@pytest.mark.parametrize("model", registry.layer_models("staging"), ids=lambda model: model.name)
def test_declared_keys_and_relationships_hold(staged: SparkSession, model: registry.Model) -> None:
    constraints.check(staged, model.name)
