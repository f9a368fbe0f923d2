"""The daily-counts increment on inline rows, shared by the increments' tests and the planner's: account 1 gets a
new invoice, account 3's only invoice moves to account 1 in a month the base does not hold, and account 2 only pays
one of its invoices. The base stores every month of accounts 1 to 3; the values of some of its rows are
deliberately not what the model computes, so a result tells a kept row from a recomputed one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pyspark.sql import SparkSession

from spark_etl.modelling import registry
from support.spark_views import inline_rows

CHANGED_INVOICES_DDL = (
    "invoice_id bigint, old_account_id bigint, old_issue_date date, new_account_id bigint, new_issue_date date"
)
Change = tuple[int, int | None, date | None, int | None, date | None]
DailyRow = tuple[int, date, int, int, int, str]

# changed_invoices, as staging keeps it (increments.INVOICE_CHANGES)
CHANGES: list[Change] = [
    (107, None, None, 1, date(2021, 3, 20)),  # new
    (301, 3, date(2021, 4, 5), 1, date(2021, 5, 2)),  # moved to account 1 and to 2021-05
    (202, 2, date(2021, 3, 15), 2, date(2021, 3, 15)),  # paid: account 2's days do not change
]
# the merged stg_invoices (invoice_id, account_id, issue_date, payment_date), every account and month
MERGED_INVOICES = [
    (101, 1, date(2020, 10, 1), None),  # over 120 days before every rewritten day: in to_date only
    (102, 1, date(2021, 1, 15), None),  # two invoices on a day of a month kept as stored
    (103, 1, date(2021, 1, 15), None),
    (104, 1, date(2021, 3, 10), None),
    (107, 1, date(2021, 3, 20), None),
    (301, 1, date(2021, 5, 2), None),
    (201, 2, date(2021, 2, 10), None),
    (202, 2, date(2021, 3, 15), date(2021, 3, 16)),
]
# the base's int_account_daily_invoices
STORED: list[DailyRow] = [
    (1, date(2020, 10, 1), 1, 0, 1, "2020-10"),
    (1, date(2021, 1, 15), 2, 1, 3, "2021-01"),
    (1, date(2021, 3, 10), 1, 55, 55, "2021-03"),  # stale: replaced by the recomputed row
    (2, date(2021, 2, 10), 1, 0, 1, "2021-02"),
    (2, date(2021, 3, 15), 1, 7, 99, "2021-03"),  # not what the model computes (0, 2): kept as it is
    (3, date(2021, 4, 5), 1, 0, 1, "2021-04"),  # its invoice moved away: account 3 has no day left
]


def register_model_rows(spark: SparkSession, view: str, model_name: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Rows of a model, with its documented schema, registered under `view`."""
    inline_rows(spark, rows, registry.schema_ddl(registry.model(model_name))).createOrReplaceTempView(view)


def with_months(invoice_rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """stg_invoices rows (invoice_id, account_id, issue_date, payment_date) with their partition_month."""
    return [(*row, row[2].strftime("%Y-%m")) for row in invoice_rows]


def register_changed_invoices(spark: SparkSession, rows: Sequence[Change]) -> None:
    """The changed_invoices view staging keeps (increments.INVOICE_CHANGES), from inline rows."""
    inline_rows(spark, rows, CHANGED_INVOICES_DDL).createOrReplaceTempView("changed_invoices")
