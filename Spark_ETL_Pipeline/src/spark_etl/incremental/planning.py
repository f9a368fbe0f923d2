"""How a run builds each model, as the registry declares it (`registry.Incremental`): rebuild it whole, keep it
whole from the previous version, or rewrite the months its month planner names.

`models.Stage.build` calls `build`, so a notebook's model cell holds no incremental plumbing. A plan narrows the
model's inputs to what the build needs (the base version's months, `stg_invoices` of those months or of the
changed accounts, the invoices the delta's lines name) and, once the build is done, registers every input again as
it was before: every month. A full run has no previous version: every plan builds its model whole, and the inputs
stay whole. What each planner recomputes, and why it equals a full run, is in docs/design.md ("What is
recomputed, and why it equals a full run"); the queries are in `increments`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import DataFrame, SparkSession

from spark_etl.incremental import increments
from spark_etl.modelling import registry
from spark_etl.modelling.models import Stage


@dataclass(frozen=True)
class Plan:
    """What a run does with one model: build it whole, build only `months`, or keep it from the previous version."""

    action: Literal["build", "build_months", "keep"]
    months: list[str] | None = None  # the months written: None, every month; [] when kept or nothing changed
    accounts: int | None = None  # int_account_daily_invoices: the accounts recomputed; None, every account


Planner = Callable[[Stage, registry.Model], AbstractContextManager[Plan]]


def build(stage: Stage, model_name: str, profile: bool = False) -> DataFrame:
    """Plan a stored model's build from its declaration, build (or keep) it, restore its inputs, and record the
    plan on the stage (`Stage.plan`)."""
    declared = registry.model(model_name)
    if declared.materialisation != "stored":
        raise ValueError(f"{model_name} is a view: it is computed where read (Stage.view)")
    planner = PLANNERS[declared.incremental.planner or declared.incremental.strategy]
    with planner(stage, declared) as plan:
        if plan.action == "keep":
            built_df = stage.keep(model_name, profile=profile)
        else:
            built_df = stage.write(model_name, profile=profile, months=plan.months)
    stage.plans[model_name] = plan
    return built_df


def by_months(months: list[str] | None, accounts: int | None = None) -> Plan:
    """The plan of a model rewritten by month: the months named, or (None: a full run) the whole model."""
    return Plan("build") if months is None else Plan("build_months", months, accounts)


@contextlib.contextmanager
def restored(spark: SparkSession, *views: str) -> Iterator[None]:
    """Within the block a plan may narrow `views`; after it, each is again the view it was before (every month),
    with no second read of its files, or dropped when the plan registered it."""
    before = {view: spark.table(view) for view in views if spark.catalog.tableExists(view)}
    try:
        yield
    finally:
        for view in views:
            if view in before:
                before[view].createOrReplaceTempView(view)
            else:
                spark.catalog.dropTempView(view)


@contextlib.contextmanager
def rebuild(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """Rebuilt whole: from the delta (a checked model, the rejects, the row counts) or a row (int_as_of_date)."""
    yield Plan("build")


def is_unchanged(stage: Stage, model_name: str) -> bool:
    """No accepted row in the model's checked model (none to look at when it wrote no row, the usual day for
    accounts and SKUs) and no key withdrawn from its table; never in a full run. The checked model
    (`<model>_checked`) must be registered."""
    if stage.version.base is None:
        return False
    checked = f"{model_name}_checked"
    checked_rows = next((run.rows for run in reversed(stage.runs) if run.model_name == checked), None)
    if checked_rows != 0:
        checked_df = stage.spark.table(checked)
        if checked_df.where(checked_df["reject_reason"].isNull() & ~checked_df["is_collapsed"]).take(1):
            return False
    withdrawn = f"{registry.WITHDRAWN_PREFIX}{registry.STAGED_TABLES[model_name]}"
    return not stage.spark.table(withdrawn).take(1)


@contextlib.contextmanager
def keep_when_unchanged(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """Kept whole from the previous version when the delta accepts none of its rows and withdraws no key
    (`is_unchanged`): then the model is as that version holds it. Otherwise rebuilt whole."""
    yield Plan("keep", []) if is_unchanged(stage, declared.name) else Plan("build")


@contextlib.contextmanager
def named_invoices(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """Rebuilt whole from the delta's lines, checked against the invoices they name only (a broadcast of their
    ids) instead of every stored invoice; in a full run, against every invoice."""
    with increments.invoices_named_by_lines(stage.spark, stage.version):
        yield Plan("build")


@contextlib.contextmanager
def invoice_months(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """stg_invoices: the months where a changed invoice was and is, merged with those months of the base. The
    run's changed keys are kept first: these months come from them, and the later stages read them
    (`increments.keep_changed_keys`: once stg_accounts is built or kept and the delta's invoices checked)."""
    spark, version = stage.spark, stage.version
    increments.keep_changed_keys(spark, version)
    months = increments.invoice_months(spark, version)
    if months is None:
        yield by_months(None)
        return
    with restored(spark, f"{registry.STORED_PREFIX}{declared.name}"):
        stage.use_base(declared.name, months=months)
        yield by_months(months)


@contextlib.contextmanager
def line_months(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """stg_invoice_line_items: the months of invoices the delta's lines, moves or withdrawals touch, and those of
    stored lines naming a SKU that came or went (none to look for when stg_skus was kept); built from the base's
    lines and the invoices of those months only (a stored line's invoice is in a month rewritten)."""
    spark, version = stage.spark, stage.version
    stage.use_base(declared.name)  # every stored month, to find lines naming a SKU that came or went
    skus_kept = version.base is not None and version.is_kept("staging", "stg_skus")
    months = increments.line_months(spark, version.base is not None, skus_kept)
    if months is None:
        yield by_months(None)
        return
    with restored(spark, f"{registry.STORED_PREFIX}{declared.name}"):
        stage.use_base(declared.name, months=months)
        with increments.invoices_in(spark, version, months):
            yield by_months(months)


@contextlib.contextmanager
def total_months(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """int_invoice_totals: the months whose lines staging rewrote, of new invoices, and holding a line that names a
    SKU added, removed or repriced; built from those months' lines and invoices only."""
    spark, version = stage.spark, stage.version
    if version.base is None:
        yield by_months(None)
        return
    skus_kept = version.is_kept("staging", "stg_skus")  # then no SKU came, went or changed price
    lines_rewritten = version.rewritten("staging", "stg_invoice_line_items")
    months = increments.total_months(spark, True, lines_rewritten, skus_kept)
    assert months is not None  # an incremental run's
    with restored(spark, "stg_invoice_line_items"):
        stage.use_stored("staging", "stg_invoice_line_items", months=months)
        with increments.invoices_in(spark, version, months):
            yield by_months(months)


@contextlib.contextmanager
def daily_months(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """int_account_daily_invoices: the accounts whose days changed, recomputed from their whole history
    (stg_invoices narrowed to them), and every month from their earliest changed day on, which also holds the
    other accounts' stored rows (the base of those months, narrowed to the other accounts)."""
    spark, version = stage.spark, stage.version
    changes = increments.daily_changes(spark, version)
    months = None if changes is None else changes.months
    with restored(spark, f"{registry.STORED_PREFIX}{declared.name}", "stg_invoices"):
        stage.use_base(declared.name, months=months or [])
        increments.restrict_to_changed_accounts(spark, version)
        yield by_months(months, None if changes is None else changes.accounts)


def accounts_recomputed(stage: Stage) -> int:
    """The accounts whose daily counts the stage recomputed: the plan's, or in a full run every account of the
    built model (one count)."""
    accounts = stage.plan("int_account_daily_invoices").accounts
    if accounts is not None:
        return accounts
    return stage.spark.table("int_account_daily_invoices").select("account_id").distinct().count()


@contextlib.contextmanager
def feature_months(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """fct_invoice_features: the months of every changed invoice, of a changed account's invoices, whose totals or
    daily counts were rewritten, and where the move of as_of can flip is_late; built from those months of the
    intermediate models and the invoices only."""
    spark, version = stage.spark, stage.version
    months = increments.feature_months(spark, version)
    if months is None:
        yield by_months(None)
        return
    inputs = ("int_invoice_totals", "int_account_daily_invoices")
    with restored(spark, *inputs):
        stage.use_stored("intermediate", *inputs, months=months)
        with increments.invoices_in(spark, version, months):
            yield by_months(months)


@contextlib.contextmanager
def metric_months(stage: Stage, declared: registry.Model) -> Iterator[Plan]:
    """mon_feature_month_metrics: the months the marts rewrote of fct_invoice_features, whose other months are as
    the base holds them; whole when the base has no metrics (a full run, or a warehouse an earlier release wrote)."""
    base = stage.version.base
    if base is None or declared.name not in base.models:
        yield by_months(None)
        return
    yield by_months(stage.version.rewritten("marts", "fct_invoice_features") or [])


# per registry.Incremental: its planner, or its strategy when it names none
PLANNERS: dict[str, Planner] = {
    "rebuild": rebuild,
    "keep_when_unchanged": keep_when_unchanged,
    "named_invoices": named_invoices,
    "invoice_months": invoice_months,
    "line_months": line_months,
    "total_months": total_months,
    "daily_months": daily_months,
    "feature_months": feature_months,
    "metric_months": metric_months,
}
