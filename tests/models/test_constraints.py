"""Keys and relationships from the registry, checked on built models: what fails, what it says, what it costs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from support.spark_views import begin_version, jobs_in_group

from spark_etl.modelling import constraints, models, registry
from spark_etl.sources import source_state


@pytest.fixture
def session(spark: SparkSession) -> Iterator[SparkSession]:
    """A sibling session, so these tests' views do not replace other modules' views."""
    sibling = spark.newSession()
    yield sibling
    sibling.sparkContext.setJobGroup("tests", "tests")


def invoices(session: SparkSession, rows: list[tuple[int | None, int, date, date | None]]) -> None:
    schema = "invoice_id bigint, account_id bigint, issue_date date, payment_date date"
    session.createDataFrame(rows, schema).createOrReplaceTempView("stg_invoices")


def test_a_unique_key_and_existing_parents_pass(session: SparkSession) -> None:
    invoices(session, [(1, 1, date(2021, 1, 1), None), (2, 1, date(2021, 1, 1), None)])
    session.createDataFrame(
        [(1, "A", 1, True), (1, "A", 1, True), (None, "B", 1, True)],
        "invoice_id bigint, item_id string, quantity int, is_known_sku boolean",
    ).createOrReplaceTempView("stg_invoice_line_items")
    constraints.check(session, "stg_invoices")
    constraints.check(session, "stg_invoice_line_items")  # a null invoice_id is not an orphan; no key to check
    session.sparkContext.setJobGroup("no_constraint", "a model without key or relationship")
    constraints.check(session, "stg_row_counts")  # nothing declared: no view read, no job
    assert jobs_in_group(session, "no_constraint") == []


def test_a_duplicate_key_stops_with_the_model_and_the_key(session: SparkSession) -> None:
    invoices(session, [(1, 1, date(2021, 1, 1), None), (7, 1, date(2021, 1, 1), None), (7, 2, date(2021, 1, 2), None)])
    with pytest.raises(constraints.ConstraintError, match=r'^stg_invoices: duplicate key, e\.g\. \{"invoice_id":7\}$'):
        constraints.check(session, "stg_invoices")


def test_a_null_key_column_stops_the_run(session: SparkSession) -> None:
    session.createDataFrame(
        [(1, date(2021, 1, 1), 1, 0, 1), (1, None, 1, 0, 2)],
        "account_id bigint, issue_date date, invoice_count bigint, invoices_prior_120d bigint, invoices_to_date bigint",
    ).createOrReplaceTempView("int_account_daily_invoices")
    with pytest.raises(
        constraints.ConstraintError,
        match=r'^int_account_daily_invoices: null key, e\.g\. \{"account_id":1\}$',  # to_json leaves nulls out
    ):
        constraints.check(session, "int_account_daily_invoices")


def test_an_orphan_line_stops_the_run(session: SparkSession) -> None:
    invoices(session, [(1, 1, date(2021, 1, 1), None)])
    session.createDataFrame([(1, "A"), (99, "A")], "invoice_id bigint, item_id string").createOrReplaceTempView(
        "stg_invoice_line_items"
    )
    with pytest.raises(
        constraints.ConstraintError,
        match=r'^stg_invoice_line_items: invoice_id not in stg_invoices.invoice_id, e\.g\. \{"invoice_id":99\}$',
    ):
        constraints.check(session, "stg_invoice_line_items")


def test_a_feature_row_without_its_invoice_stops_the_run(session: SparkSession) -> None:
    invoices(session, [(1, 1, date(2021, 1, 1), None)])
    session.createDataFrame([(1,), (2,)], "inv_id bigint").createOrReplaceTempView("fct_invoice_features")
    with pytest.raises(constraints.ConstraintError, match=r'not in stg_invoices.invoice_id, e\.g\. \{"inv_id":2\}$'):
        constraints.check(session, "fct_invoice_features")


def test_building_a_model_checks_its_key(session: SparkSession, tmp_path: Path) -> None:
    """stg_invoices trusts its checked model to have flagged copies; if that model is wrong, the build stops."""
    session.createDataFrame(
        [(5, 1, date(2021, 1, 1), None, None, False, None), (5, 1, date(2021, 1, 1), None, None, False, None)],
        "invoice_id bigint, account_id bigint, issue_date date, payment_date date, reject_reason string, "
        "is_collapsed boolean, source_record string",
    ).createOrReplaceTempView("stg_invoices_checked")
    stage = models.Stage(session, "staging", begin_version(session, str(tmp_path / "warehouse"), "v1", False))
    stage.use_base("stg_accounts", "stg_skus", "stg_invoices")  # empty, as in a full run
    source_state.register_withdrawn(session, {})  # nothing withdrawn, as on the CSV path
    with pytest.raises(
        constraints.ConstraintError, match=re.escape('stg_invoices: duplicate key, e.g. {"invoice_id":5}')
    ):
        stage.build("stg_invoices")


def test_every_stored_model_with_a_key_or_relationship_is_checked() -> None:
    checked = [m.name for m in registry.MODELS if m.key or m.relationships]
    assert checked == [
        "stg_accounts",
        "stg_skus",
        "stg_invoices",
        "stg_invoice_line_items",
        "int_invoice_totals",
        "int_account_daily_invoices",
        "fct_invoice_features",
    ]
    assert all(registry.model(name).materialisation == "stored" for name in checked)
