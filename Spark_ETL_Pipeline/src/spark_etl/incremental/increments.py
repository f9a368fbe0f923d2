"""What an incremental run must recompute: the issue months of the partitioned models that its delta can change,
and the accounts whose daily counts it recomputes.

Staging keeps the invoices and accounts the delta changes (INVOICE_CHANGES, ACCOUNT_CHANGES) in the run's version,
a few rows read by the later stages; from them each function answers one model's question. The rules, model by
model, and why every other month's stored rows are what a full run would compute again, are told once, in
docs/design.md ("What is recomputed, and why it equals a full run").

Each function answers None in a full run (there is no previous version: everything is computed) and otherwise
sorted months or a count: a handful of short values, the only ones brought to the driver.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_etl.modelling.models import query_text
from spark_etl.storage import load
from spark_etl.storage.versions import RunVersion

# The months whose lines an incremental run rewrites, besides those naming a SKU that came or went. Views: the
# delta's stg_invoice_line_items_checked (partition_month: its invoice's month now), changed_invoices (INVOICE_CHANGES),
# withdrawn_invoice_line_items and stored_stg_invoices. An invoice that did not move keeps its month, so the month
# its delta lines are filed under is also the month its stored lines are in; a moved or withdrawn invoice's months
# before and after are in changed_invoices. No stored row is scanned but those of invoices whose lines the database
# withdrew.
LINE_MONTHS = query_text("line_months")

# The months of the invoices that are new (a totals row to add). View: changed_invoices.
NEW_INVOICE_MONTHS = query_text("new_invoice_months")

CHANGED_SKUS = query_text("changed_skus")


def _months(spark: SparkSession, query: str) -> set[str]:
    return {str(row["month"]) for row in spark.sql(query).collect()}


def changed_skus(spark: SparkSession, skus_kept: bool = False) -> tuple[list[str], list[str]]:
    """SKUs added or removed, and SKUs whose price changed: a few ids, from the two small SKU tables; none, and no
    job, when the run kept stg_skus whole (`skus_kept`: its delta changed no SKU)."""
    if skus_kept:
        return [], []
    rows = spark.sql(CHANGED_SKUS).collect()
    added_or_removed = sorted(str(row["item_id"]) for row in rows if row["is_added_or_removed"])
    repriced = sorted(str(row["item_id"]) for row in rows if not row["is_added_or_removed"])
    return added_or_removed, repriced


def months_naming(spark: SparkSession, lines_view: str, item_ids: list[str]) -> set[str]:
    """The months holding a line (of the registered `lines_view`) that names one of `item_ids`; scans the lines'
    item_id only when there is something to look for."""
    if not item_ids:
        return set()
    lines_df = spark.table(lines_view)
    rows = lines_df.where(lines_df["item_id"].isin(item_ids)).select("partition_month").distinct().collect()
    return {str(row["partition_month"]) for row in rows}


def line_months(spark: SparkSession, is_incremental: bool, skus_kept: bool = False) -> list[str] | None:
    """The months of stg_invoice_line_items the run rewrites (LINE_MONTHS, and those holding a stored line that
    names a SKU added or removed). Needs the delta's checked models, changed_invoices, the merged stg_skus,
    stored_stg_invoices, stored_stg_skus and (all months of) stored_stg_invoice_line_items, and the withdrawn_<table>
    views registered."""
    if not is_incremental:
        return None
    months = _months(spark, LINE_MONTHS)
    added_or_removed, _ = changed_skus(spark, skus_kept)
    months |= months_naming(spark, "stored_stg_invoice_line_items", added_or_removed)
    return sorted(months)


def total_months(
    spark: SparkSession, is_incremental: bool, line_months: list[str] | None, skus_kept: bool = False
) -> list[str] | None:
    """The months of int_invoice_totals the run recomputes: every month whose lines the staging stage rewrote
    (`line_months`), those of new invoices, and those holding a line that names a SKU added, removed or repriced.
    A changed invoice that stays in its month keeps its totals row (it holds nothing of the invoice but its month).
    Needs changed_invoices, the SKU views CHANGED_SKUS reads and the run's stg_invoice_line_items (all months)."""
    if not is_incremental:
        return None
    months = _months(spark, NEW_INVOICE_MONTHS) | set(line_months or [])
    added_or_removed, repriced = changed_skus(spark, skus_kept)
    months |= months_naming(spark, "stg_invoice_line_items", added_or_removed + repriced)
    return sorted(months)


@contextlib.contextmanager
def invoices_in(spark: SparkSession, run_version: RunVersion, months: list[str] | None) -> Iterator[None]:
    """Within the block, the registered stg_invoices holds only the given issue months (None: it stays whole), read
    from those months' folders of the run's version, so a partitioned model built from it computes only those
    months and joins a fraction of the invoices; the whole view is registered again after."""
    narrowed_df = None if months is None else run_version.read("staging", "stg_invoices", months)
    with _invoices_as(spark, narrowed_df):
        yield


# The invoice ids a delta's lines name, parsed as stg_invoice_line_items_checked parses a valid one: a superset of
# the ids it looks up (a value it rejects may be here too, which only keeps one more invoice in view).
NAMED_INVOICES = query_text("named_invoices")


@contextlib.contextmanager
def invoices_named_by_lines(spark: SparkSession, run_version: RunVersion) -> Iterator[None]:
    """Within the block (an incremental run's check of its delta's lines), the registered stg_invoices holds only
    the invoices those lines name, found through a broadcast of their few ids: the check joins them instead of
    shuffling every stored invoice. A full run's lines name nearly every invoice, and it stays whole."""
    narrowed_df = None
    if run_version.base is not None:
        named_df = F.broadcast(spark.sql(NAMED_INVOICES))
        narrowed_df = spark.table("stg_invoices").join(named_df, "invoice_id", "left_semi")
    with _invoices_as(spark, narrowed_df):
        yield


@contextlib.contextmanager
def _invoices_as(spark: SparkSession, narrowed_df: DataFrame | None) -> Iterator[None]:
    """Within the block, stg_invoices is `narrowed_df` (None: it stays whole); the whole view is registered again
    after."""
    whole_df = spark.table("stg_invoices")
    if narrowed_df is not None:
        narrowed_df.createOrReplaceTempView("stg_invoices")
    try:
        yield
    finally:
        whole_df.createOrReplaceTempView("stg_invoices")


# The invoices an incremental run changes, kept in its version (CHANGES_DIR) for the stages after staging: one row
# per accepted delta invoice, with its stored account and issue date (null for a new one), and one per invoice the
# database withdrew that is not back as a usable row (new columns null). Views: the delta's stg_invoices_checked,
# stored_stg_invoices and withdrawn_invoices.
INVOICE_CHANGES = query_text("changed_invoices")

# The accounts whose row an incremental run changes: accepted delta rows and, from the database, withdrawn keys.
# Views: the delta's stg_accounts_checked and withdrawn_accounts.
ACCOUNT_CHANGES = query_text("changed_accounts")

# The (account, issue day) pairs whose invoice count changed: where a new, moved, re-assigned or withdrawn invoice
# was and is. A payment changes none. View: changed_invoices.
CHANGED_ACCOUNT_DAYS = query_text("changed_account_days")

CHANGES_DIR = "changes"  # beside a version's layers: what its run changed, read by the stages after staging
CHANGE_VIEWS = {"changed_invoices": INVOICE_CHANGES, "changed_accounts": ACCOUNT_CHANGES}
# a change view that is empty whenever the run kept a staging model whole (changed_accounts, when stg_accounts
# was kept: no accepted account and none withdrawn); it is not stored then, each stage registers it empty
EMPTY_WHEN_KEPT = {"changed_accounts": ("stg_accounts", "account_id bigint")}


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


def register_changes(spark: SparkSession) -> None:
    """Register INVOICE_CHANGES and ACCOUNT_CHANGES as views, computed where they are read (tests; a run keeps
    them: keep_changed_keys)."""
    for view, query in CHANGE_VIEWS.items():
        spark.sql(query).createOrReplaceTempView(view)


def keep_changed_keys(spark: SparkSession, run_version: RunVersion) -> None:
    """Keep the keys an incremental run's delta changes in its version and register them as views (see
    INVOICE_CHANGES, ACCOUNT_CHANGES); a full run changes everything and keeps none. Staging calls this once
    stg_accounts is built or kept and before stg_invoices is (whose months come from changed_invoices), while the
    delta and the withdrawn keys are registered."""
    if run_version.base is None:
        return
    for view, query in CHANGE_VIEWS.items():
        if not _is_empty_when_kept(run_version, view):
            load.write_parquet(spark.sql(query), _change_path(run_version, view))
    use_changes(spark, run_version)


def use_changes(spark: SparkSession, run_version: RunVersion) -> None:
    """Register what staging kept of an incremental run's changes (keep_changed_keys); nothing in a full run."""
    if run_version.base is None:
        return
    for view in CHANGE_VIEWS:
        if _is_empty_when_kept(run_version, view):
            load.empty_frame(spark, EMPTY_WHEN_KEPT[view][1]).createOrReplaceTempView(view)
        else:
            load.read_parquet(spark, _change_path(run_version, view)).createOrReplaceTempView(view)


def _change_path(run_version: RunVersion, view: str) -> str:
    return f"{run_version.folder}/{CHANGES_DIR}/{view}"


def _is_empty_when_kept(run_version: RunVersion, view: str) -> bool:
    return view in EMPTY_WHEN_KEPT and run_version.is_kept("staging", EMPTY_WHEN_KEPT[view][0])


def invoice_months(spark: SparkSession, run_version: RunVersion) -> list[str] | None:
    """The months of stg_invoices an incremental run rewrites: where a changed invoice (changed_invoices) was and
    is. Every other stored invoice stays as it is, in its month. None in a full run: every month."""
    if run_version.base is None:
        return None
    return sorted(_distinct_months(spark.table("changed_invoices"), "old_issue_date", "new_issue_date"))


@dataclass(frozen=True)
class DailyChanges:
    """What an incremental run recomputes of int_account_daily_invoices: the months it rewrites, from the earliest
    changed account-day on (a day's counts depend on the account's days before it only), and how many accounts."""

    months: list[str]
    accounts: int


def daily_changes(spark: SparkSession, run_version: RunVersion) -> DailyChanges | None:
    """The months and accounts (CHANGED_ACCOUNT_DAYS), from one query over the few changed invoices. None in a full
    run: every month, every account."""
    if run_version.base is None:
        return None
    days_df = spark.sql(CHANGED_ACCOUNT_DAYS)
    found = days_df.agg(
        F.count_distinct(days_df["account_id"]).alias("accounts"),
        F.collect_set(F.date_format(days_df["issue_date"], "yyyy-MM")).alias("months"),
    ).first()
    assert found is not None  # a global aggregate has one row
    changed = {str(month) for month in found["months"]}
    if not changed:
        return DailyChanges([], int(found["accounts"]))
    first = min(changed)
    stored = run_version.base.partitions("int_account_daily_invoices")
    return DailyChanges(sorted({month for month in stored if month >= first} | changed), int(found["accounts"]))


def restrict_to_changed_accounts(spark: SparkSession, run_version: RunVersion) -> None:
    """For an incremental run's int_account_daily_invoices: narrow stg_invoices to the accounts whose days changed
    (recomputed from their whole history) and stored_int_account_daily_invoices to the other accounts (their
    stored rows of the months rewritten stay). Nothing in a full run (every account is computed)."""
    if run_version.base is None:
        return
    accounts_df = spark.sql(CHANGED_ACCOUNT_DAYS).select("account_id").distinct()
    invoices_df = spark.table("stg_invoices")
    invoices_df.join(F.broadcast(accounts_df), "account_id", "left_semi").createOrReplaceTempView("stg_invoices")
    stored_df = spark.table("stored_int_account_daily_invoices")
    stored_df.join(F.broadcast(accounts_df), "account_id", "left_anti").createOrReplaceTempView(
        "stored_int_account_daily_invoices"
    )


def as_of_months(old: date | None, new: date | None, months: list[str]) -> set[str]:
    """The months (of `months`) holding an unpaid invoice whose is_late a move of as_of from `old` to `new` can
    flip: issued in [earlier - 30, later - 31] (late once as_of is more than 30 days after issue)."""
    if old == new or old is None or new is None:
        return set(months) if old != new else set()
    first, last = month_of(min(old, new) - timedelta(days=30)), month_of(max(old, new) - timedelta(days=31))
    return {month for month in months if first <= month <= last}


def feature_months(spark: SparkSession, run_version: RunVersion) -> list[str] | None:
    """The months of fct_invoice_features an incremental run recomputes: those of every changed invoice (before
    and after, a payment too), of the invoices of a changed account (acct_age), those whose totals or daily counts
    the run rewrote, and those whose is_late the move of as_of (stored_int_as_of_date to int_as_of_date) can flip.
    None in a full run: every month."""
    if run_version.base is None:
        return None
    months = set(run_version.base.partitions("fct_invoice_features"))
    old_as_of, new_as_of = (_as_of(spark, view) for view in ("stored_int_as_of_date", "int_as_of_date"))
    changed = as_of_months(old_as_of, new_as_of, sorted(months))
    # every changed invoice, a payment too, is in a month of stg_invoices the run rewrote (invoice_months)
    for layer, model_name in (
        ("staging", "stg_invoices"),
        ("intermediate", "int_invoice_totals"),
        ("intermediate", "int_account_daily_invoices"),
    ):
        rewritten = run_version.rewritten(layer, model_name)
        changed |= set(months if rewritten is None else rewritten)
    accounts_df = spark.table("changed_accounts")
    if accounts_df.take(1):
        invoices_df = spark.table("stg_invoices").join(F.broadcast(accounts_df), "account_id", "left_semi")
        changed |= _distinct_months(invoices_df, "issue_date")
    return sorted(changed)


def _as_of(spark: SparkSession, view: str) -> date | None:
    row = spark.table(view).select("as_of_date").first()
    return None if row is None else row["as_of_date"]


def _distinct_months(df: DataFrame, *date_columns: str) -> set[str]:
    """The months of a few rows' dates (in any of `date_columns`; unknown dates skipped), in one job: short
    strings, the only values brought to the driver."""
    months = F.explode(F.array(*[F.date_format(df[column], "yyyy-MM") for column in date_columns]))
    return {str(row[0]) for row in df.select(months).distinct().collect() if row[0] is not None}
