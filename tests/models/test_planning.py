"""The plans `Stage.build` carries out (spark_etl/incremental/planning.py), on inline rows: what a full run and an
incremental one decide to build, the inputs a plan narrows, and that every input is whole again after the build."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from support.daily_accounts import (
    CHANGES,
    MERGED_INVOICES,
    STORED,
    register_changed_invoices,
    register_model_rows,
    with_months,
)
from support.spark_views import begin_version, collect_sorted, commit_version

from spark_etl.incremental import planning
from spark_etl.modelling import models, registry
from spark_etl.storage import versions

DAILY = "int_account_daily_invoices"
DAILY_COLUMNS = ["account_id", "issue_date", "invoice_count", "invoices_prior_120d", "invoices_to_date"]
MONTH_MODELS = [model for model in registry.MODELS if model.incremental.strategy == "by_month"]


@pytest.mark.parametrize("declared", MONTH_MODELS, ids=lambda model: model.incremental.planner)
def test_a_full_run_plans_every_month_and_leaves_the_inputs_whole(
    spark: SparkSession, tmp_path: Path, declared: registry.Model
) -> None:
    """No previous version: every month planner builds its model whole and asks no question of the delta."""
    session = spark.newSession()
    register_model_rows(session, "stg_invoices", "stg_invoices", with_months([(1, 1, date(2021, 1, 5), None)]))
    stage = models.Stage(session, declared.layer, begin_version(session, str(tmp_path / "warehouse"), "v1", False))
    with planning.PLANNERS[declared.incremental.planner](stage, declared) as plan:
        assert plan == planning.Plan("build")
        assert session.table("stg_invoices").count() == 1
    assert session.table("stg_invoices").count() == 1


def test_restored_registers_each_view_as_it_was_and_drops_one_the_block_added(spark: SparkSession) -> None:
    session = spark.newSession()
    session.range(3).createOrReplaceTempView("whole")
    with planning.restored(session, "whole", "added"):
        session.range(1).createOrReplaceTempView("whole")
        session.range(2).createOrReplaceTempView("added")
    assert session.table("whole").count() == 3
    assert not session.catalog.tableExists("added")


@pytest.fixture
def daily_run(spark: SparkSession, tmp_path: Path) -> tuple[SparkSession, versions.RunVersion]:
    """A committed base version holding support.daily_accounts' stored rows, and an incremental run over its
    changes (a new invoice, a move to another account and month, a payment)."""
    session = spark.newSession()
    warehouse = str(tmp_path / "warehouse")
    register_model_rows(session, DAILY, DAILY, STORED)
    first = begin_version(session, warehouse, "v1", incremental=False)
    versions.write_model(first, "intermediate", DAILY, session.table(DAILY), "partition_month")
    commit_version(first, [DAILY], {})
    session.catalog.dropTempView(DAILY)

    register_changed_invoices(session, CHANGES)
    register_model_rows(session, "stg_invoices", "stg_invoices", with_months(MERGED_INVOICES))
    return session, begin_version(session, warehouse, "v2", incremental=True)


def test_the_daily_plan_narrows_to_the_changed_accounts_and_restores_every_account(
    daily_run: tuple[SparkSession, versions.RunVersion],
) -> None:
    session, run_version = daily_run
    stage = models.Stage(session, "intermediate", run_version)
    with planning.daily_months(stage, registry.model(DAILY)) as plan:
        # from the earliest changed day on; accounts 1 and 3 (a payment recomputes no account)
        assert plan == planning.Plan("build_months", ["2021-03", "2021-04", "2021-05"], 2)
        assert {row["account_id"] for row in session.table("stg_invoices").collect()} == {1}
        stored_df = session.table(f"stored_{DAILY}")  # the base's months rewritten, of the other accounts only
        assert collect_sorted(stored_df, DAILY_COLUMNS) == [(2, date(2021, 3, 15), 1, 7, 99)]
    assert session.table("stg_invoices").count() == 8  # every account again
    assert not session.catalog.tableExists(f"stored_{DAILY}")  # registered for the build only


def test_building_the_daily_model_rewrites_the_planned_months_and_keeps_the_rest(
    daily_run: tuple[SparkSession, versions.RunVersion],
) -> None:
    session, run_version = daily_run
    stage = models.Stage(session, "intermediate", run_version)
    built_df = stage.build(DAILY, profile=True)
    assert collect_sorted(built_df, DAILY_COLUMNS) == [
        (1, date(2020, 10, 1), 1, 0, 1),  # months before the earliest change: the base's
        (1, date(2021, 1, 15), 2, 1, 3),
        (1, date(2021, 3, 10), 1, 2, 4),  # recomputed from account 1's whole history
        (1, date(2021, 3, 20), 1, 3, 5),
        (1, date(2021, 5, 2), 1, 4, 6),
        (2, date(2021, 2, 10), 1, 0, 1),
        (2, date(2021, 3, 15), 1, 7, 99),  # kept: account 2 was not recomputed
    ]
    assert stage.rewritten_months(DAILY) == ["2021-03", "2021-04", "2021-05"]
    assert stage.profile_caption(DAILY) == f"{DAILY}: the 3 month(s) this run rewrote (2021-03 to 2021-05)"
    assert planning.accounts_recomputed(stage) == 2
    assert session.table("stg_invoices").count() == 8


def test_a_full_build_of_the_daily_model_recomputes_every_account(spark: SparkSession, tmp_path: Path) -> None:
    session = spark.newSession()
    rows = [(1, 1, date(2021, 1, 5), None), (2, 2, date(2021, 2, 5), None), (3, 2, date(2021, 2, 6), None)]
    register_model_rows(session, "stg_invoices", "stg_invoices", with_months(rows))
    stage = models.Stage(session, "intermediate", begin_version(session, str(tmp_path / "warehouse"), "v1", False))
    stage.build(DAILY)
    assert stage.plan(DAILY) == planning.Plan("build")
    assert stage.rewritten_months(DAILY) is None
    assert planning.accounts_recomputed(stage) == 2
