"""What an incremental run must recompute: the issue months of the partitioned models that its delta can change.

A month's lines change when an invoice of it gets lines from the delta (they replace its stored ones), when an
invoice moves in or out of it (a changed issue date), or when a SKU its lines name appears or disappears (a line's
`is_known_sku` is judged against today's SKUs). From the database (source_state.py) also when an invoice of it is
withdrawn and not back as a usable row (deleted, or changed into a rejected row: its lines and totals row go) or
when its lines are withdrawn (changed or all deleted). A month's totals change with its lines, with its invoices
(a new or changed invoice has a totals row) and with the price of a SKU its lines name. Every other month's stored
rows are exactly what a full run would compute again, so the run's version takes them from the previous version.

Each function answers None in a full run (there is no previous version: every month is computed) and otherwise
the sorted months, a handful of short strings: the only values brought to the driver.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

# the staging models holding the delta, which the intermediate stage reads to find the months to recompute
DELTA_MODELS = ("stg_invoices_checked", "stg_invoice_line_items_checked")

# views: the delta's checked models, the run's merged stg_invoices and stg_skus, and stored_<model> (the previous
# version); the query texts are constants, no value is formatted into them
DELTA_MONTHS = """
with

delta_invoices as (
    select invoice_id, issue_date from stg_invoices_checked
    where reject_reason is null and not is_collapsed
),

delta_line_invoices as (
    select distinct invoice_id from stg_invoice_line_items_checked
    where reject_reason is null or reject_reason = 'unknown_sku'
),

line_months as (
    -- an invoice whose lines the delta replaces: its month now and the month its stored lines are in
    select date_format(stg_invoices.issue_date, 'yyyy-MM') as new_month,
        date_format(stored_stg_invoices.issue_date, 'yyyy-MM') as old_month
    from delta_line_invoices
    inner join stg_invoices
        on delta_line_invoices.invoice_id = stg_invoices.invoice_id
    left join stored_stg_invoices
        on delta_line_invoices.invoice_id = stored_stg_invoices.invoice_id
),

invoice_months as (
    -- a new or changed invoice: its month now, and the month it was in
    select date_format(delta_invoices.issue_date, 'yyyy-MM') as new_month,
        date_format(stored_stg_invoices.issue_date, 'yyyy-MM') as old_month,
        stored_stg_invoices.invoice_id is not null
            and date_format(delta_invoices.issue_date, 'yyyy-MM')
            <> date_format(stored_stg_invoices.issue_date, 'yyyy-MM') as is_moved
    from delta_invoices
    left join stored_stg_invoices
        on delta_invoices.invoice_id = stored_stg_invoices.invoice_id
),

months as (
    select new_month as month, 'lines' as reason from line_months
    union all
    select old_month as month, 'lines' as reason from line_months
    union all
    select new_month as month, if(is_moved, 'lines', 'invoices') as reason from invoice_months
    union all
    select old_month as month, if(is_moved, 'lines', 'invoices') as reason from invoice_months
)

select distinct month, reason from months where month is not null
"""

# views: as DELTA_MONTHS's, and withdrawn_invoices and withdrawn_invoice_line_items (registry.WITHDRAWN_VIEWS), which
# only the staging stage has: the intermediate stage takes the line months the staging stage rewrote
WITHDRAWN_MONTHS = """
with

delta_invoices as (
    select invoice_id from stg_invoices_checked
    where reject_reason is null and not is_collapsed
),

gone_invoices as (
    -- withdrawn and not back as a usable row: its stored lines and totals row leave the month it was in
    select withdrawn_invoices.invoice_id
    from withdrawn_invoices
    left anti join delta_invoices
        on withdrawn_invoices.invoice_id = delta_invoices.invoice_id
),

months as (
    select date_format(stored_stg_invoices.issue_date, 'yyyy-MM') as month
    from gone_invoices
    inner join stored_stg_invoices
        on gone_invoices.invoice_id = stored_stg_invoices.invoice_id
    union all
    -- an invoice whose lines were withdrawn: the month its stored lines are in, and its month now
    select date_format(stored_stg_invoices.issue_date, 'yyyy-MM') as month
    from withdrawn_invoice_line_items
    inner join stored_stg_invoices
        on withdrawn_invoice_line_items.invoice_id = stored_stg_invoices.invoice_id
    union all
    select date_format(stg_invoices.issue_date, 'yyyy-MM') as month
    from withdrawn_invoice_line_items
    inner join stg_invoices
        on withdrawn_invoice_line_items.invoice_id = stg_invoices.invoice_id
)

select distinct month from months where month is not null
"""

CHANGED_SKUS = """
select coalesce(stg_skus.item_id, stored_stg_skus.item_id) as item_id,
    stg_skus.item_id is null or stored_stg_skus.item_id is null as is_added_or_removed
from stg_skus
full outer join stored_stg_skus
    on stg_skus.item_id = stored_stg_skus.item_id
where stg_skus.item_id is null
    or stored_stg_skus.item_id is null
    or stg_skus.item_retail_price <> stored_stg_skus.item_retail_price
"""


def _months(spark: SparkSession, query: str) -> list[tuple[str, str]]:
    return [(str(row["month"]), str(row["reason"])) for row in spark.sql(query).collect()]


def changed_skus(spark: SparkSession) -> tuple[list[str], list[str]]:
    """SKUs added or removed, and SKUs whose price changed: a few ids, from the two small SKU tables."""
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


def line_months(spark: SparkSession, is_incremental: bool) -> list[str] | None:
    """The months of stg_invoice_line_items the run rewrites. Needs the delta's checked models, the merged
    stg_invoices and stg_skus, stored_stg_invoices, stored_stg_skus and (all months of)
    stored_stg_invoice_line_items, and the withdrawn_<table> views registered."""
    if not is_incremental:
        return None
    months = {month for month, reason in _months(spark, DELTA_MONTHS) if reason == "lines"}
    months |= {str(row["month"]) for row in spark.sql(WITHDRAWN_MONTHS).collect()}
    added_or_removed, _ = changed_skus(spark)
    months |= months_naming(spark, "stored_stg_invoice_line_items", added_or_removed)
    return sorted(months)


def total_months(spark: SparkSession, is_incremental: bool, line_months: list[str] | None) -> list[str] | None:
    """The months of int_invoice_totals the run recomputes: every month whose lines the staging stage rewrote
    (`line_months`), and those whose invoices or prices changed. Needs the views DELTA_MONTHS and CHANGED_SKUS
    read, with the run's stg_invoice_line_items (all months)."""
    if not is_incremental:
        return None
    months = {month for month, _ in _months(spark, DELTA_MONTHS)} | set(line_months or [])
    added_or_removed, repriced = changed_skus(spark)
    months |= months_naming(spark, "stg_invoice_line_items", added_or_removed + repriced)
    return sorted(months)


def restrict_invoices(spark: SparkSession, months: list[str] | None) -> None:
    """Narrow the registered stg_invoices to the given issue months (None: leave it whole), so a partitioned
    model built from it computes only those months."""
    if months is None:
        return
    invoices_df = spark.table("stg_invoices")
    month = F.date_format(invoices_df["issue_date"], "yyyy-MM")
    invoices_df.where(month.isin(months)).createOrReplaceTempView("stg_invoices")
