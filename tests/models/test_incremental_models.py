"""The merge rules of an incremental run on inline rows: the staging models merging a delta into the previous
version (stored_<model>), and the months increments.py says the delta changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F
from support.daily_accounts import (
    CHANGES,
    MERGED_INVOICES,
    STORED,
    register_changed_invoices,
    register_model_rows,
    with_months,
)
from support.spark_views import (
    begin_version,
    collect_sorted,
    commit_version,
    jobs_in_group,
    raw_columns,
    register_stored,
    register_strings,
    run_view,
)

from spark_etl.incremental import increments, planning
from spark_etl.modelling import models, registry
from spark_etl.storage import load, versions


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
            (10, 1, date(2021, 1, 10), None, "2021-01"),  # paid by the delta
            (11, 1, date(2021, 1, 11), None, "2021-01"),  # the delta's copy of it is invalid: it stays as it is
            (12, 1, date(2021, 2, 1), None, "2021-02"),  # moved to another month and account by the delta
            (16, 1, date(2021, 1, 20), None, "2021-01"),  # untouched
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
    line_months = increments.line_months(merged, is_incremental=True)
    assert line_months == ["2020-12", "2021-01", "2021-02"]
    # totals: those, and the months of lines naming B, repriced (2021-01)
    assert increments.total_months(merged, True, line_months) == ["2020-12", "2021-01", "2021-02"]
    assert increments.changed_skus(merged) == (["Z"], ["B"])
    assert increments.line_months(merged, is_incremental=False) is None


def test_a_month_only_a_reprice_touches_is_recomputed_for_totals_only(spark: SparkSession) -> None:
    session = spark.newSession()
    register_stored(session, "stg_skus", [("B", "b", "b", Decimal(1), Decimal(2))])
    register_stored(session, "stg_invoices", [(16, 1, date(2021, 1, 20), None, "2021-01")])
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


# The incremental logic of the partitioned intermediate and mart models (increments.py): the months an as_of move
# reaches, the (account, day) pairs a change touches, and the daily counts recomputed for the changed accounts only.

MONTHS_2021 = [f"2021-{month:02d}" for month in range(1, 9)]
DAILY_COLUMNS = [
    "account_id",
    "issue_date",
    "invoice_count",
    "invoices_prior_120d",
    "invoices_to_date",
    "partition_month",
]


def incremental_version(spark: SparkSession, daily_months: list[str] | None) -> versions.RunVersion:
    """A run version building on a base whose int_account_daily_invoices is stored in `daily_months` (None: a full
    run, no base). Nothing here reads a file: daily_months and restrict_to_changed_accounts only ask the manifest."""
    base = None
    if daily_months is not None:
        folder = "versions/v1/intermediate/int_account_daily_invoices"
        folders = {month: f"{folder}/part={month}" for month in daily_months}
        base = versions.Manifest("v1", {"int_account_daily_invoices": {"folders": folders}})
    return versions.RunVersion(spark, "/nonexistent/warehouse", "v2", base, is_incremental=base is not None)


def test_as_of_months_same_as_of_or_none_at_all_flips_nothing() -> None:
    assert increments.as_of_months(date(2021, 5, 1), date(2021, 5, 1), MONTHS_2021) == set()
    assert increments.as_of_months(None, None, MONTHS_2021) == set()


def test_as_of_months_from_or_to_no_as_of_is_every_month() -> None:
    assert increments.as_of_months(None, date(2021, 5, 1), MONTHS_2021) == set(MONTHS_2021)
    assert increments.as_of_months(date(2021, 5, 1), None, MONTHS_2021) == set(MONTHS_2021)


def test_as_of_months_are_those_of_issue_days_whose_is_late_flips() -> None:
    # An unpaid invoice is late once as_of - issue_date > 30, i.e. issue_date <= as_of - 31: moving as_of from
    # 2021-03-31 to 2021-07-01 flips the issue days [2021-03-01 (earlier - 30), 2021-05-31 (later - 31)]. Both ends
    # sit on a month boundary: 2021-02-28 (earlier - 31) and 2021-06-01 (later - 30) flip nothing, so their months
    # must not be recomputed.
    expected = {"2021-03", "2021-04", "2021-05"}
    assert increments.as_of_months(date(2021, 3, 31), date(2021, 7, 1), MONTHS_2021) == expected
    assert increments.as_of_months(date(2021, 7, 1), date(2021, 3, 31), MONTHS_2021) == expected  # moved back
    # one day forward flips one issue day: 2021-03-01 (2021-03-31 - 30 = 2021-04-01 - 31)
    assert increments.as_of_months(date(2021, 3, 31), date(2021, 4, 1), MONTHS_2021) == {"2021-03"}
    # only months of `months` (the stored ones) are answered
    assert increments.as_of_months(date(2021, 3, 31), date(2021, 7, 1), ["2021-01", "2021-04", "2021-08"]) == {
        "2021-04"
    }


def test_changed_account_days_are_where_a_changed_invoice_was_and_is(spark: SparkSession) -> None:
    session = spark.newSession()
    register_changed_invoices(
        session,
        [
            (1, 10, date(2021, 1, 5), 10, date(2021, 1, 5)),  # a payment only: its day's count is the same
            (2, None, None, 20, date(2021, 2, 6)),  # new
            (3, 30, date(2021, 3, 7), 31, date(2021, 4, 8)),  # moved to another account and day
            (4, 40, date(2021, 5, 9), 40, date(2021, 5, 10)),  # moved to another day of the same account
            (5, 50, date(2021, 6, 11), 51, date(2021, 6, 11)),  # re-assigned on the same day
            (6, 60, date(2021, 7, 12), None, None),  # withdrawn
            (7, 20, date(2021, 2, 6), 20, date(2021, 2, 6)),  # a payment on a day another change touches
        ],
    )
    days = collect_sorted(session.sql(increments.CHANGED_ACCOUNT_DAYS), ["account_id", "issue_date"])
    assert days == [
        (20, date(2021, 2, 6)),  # once, though two changes name it
        (30, date(2021, 3, 7)),
        (31, date(2021, 4, 8)),
        (40, date(2021, 5, 9)),
        (40, date(2021, 5, 10)),
        (50, date(2021, 6, 11)),
        (51, date(2021, 6, 11)),
        (60, date(2021, 7, 12)),
    ]


def test_changed_account_days_of_payments_only_are_none(spark: SparkSession) -> None:
    session = spark.newSession()
    register_changed_invoices(session, [(1, 10, date(2021, 1, 5), 10, date(2021, 1, 5))])
    assert session.sql(increments.CHANGED_ACCOUNT_DAYS).collect() == []


def test_daily_changes_run_from_the_earliest_changed_month_on(spark: SparkSession) -> None:
    session = spark.newSession()
    run_version = incremental_version(session, ["2021-01", "2021-02", "2021-03", "2021-04"])
    register_changed_invoices(
        session,
        [
            (1, 10, date(2021, 1, 31), 10, date(2021, 1, 31)),  # a payment: 2021-01 stays
            (2, 20, date(2021, 2, 28), 20, date(2021, 4, 1)),  # moved: its old month is the earliest changed
            (3, None, None, 30, date(2021, 6, 1)),  # new, in a month the base does not hold
        ],
    )
    # 2021-03 holds no change but its days' windows can reach 2021-02; 2021-05 holds nothing at all; accounts 20
    # and 30 are recomputed, not 10 (a payment)
    assert increments.daily_changes(session, run_version) == increments.DailyChanges(
        ["2021-02", "2021-03", "2021-04", "2021-06"], 2
    )


def test_daily_changes_without_a_moved_day_are_none_and_a_full_run_every_month(spark: SparkSession) -> None:
    session = spark.newSession()
    register_changed_invoices(session, [(1, 10, date(2021, 1, 31), 10, date(2021, 1, 31))])
    no_move = increments.DailyChanges([], 0)
    assert increments.daily_changes(session, incremental_version(session, ["2021-01", "2021-02"])) == no_move
    assert increments.daily_changes(session, incremental_version(session, None)) is None


@pytest.fixture(scope="module")
def daily_increment(spark: SparkSession) -> tuple[SparkSession, list[str] | None, int | None]:
    """An incremental run of int_account_daily_invoices, as 02_intermediate does it, on the scenario of
    support.daily_accounts (a new invoice, a move to another account and month, a payment)."""
    session = spark.newSession()
    register_changed_invoices(session, CHANGES)
    register_model_rows(session, "stg_invoices", "stg_invoices", with_months(MERGED_INVOICES))  # use_stored
    run_version = incremental_version(session, ["2020-10", "2021-01", "2021-02", "2021-03", "2021-04"])
    changes = increments.daily_changes(session, run_version)
    assert changes is not None
    # use_base: the base's rows of the months rewritten
    in_months = [row for row in STORED if row[5] in changes.months]
    register_model_rows(session, "stored_int_account_daily_invoices", "int_account_daily_invoices", in_months)
    increments.restrict_to_changed_accounts(session, run_version)
    return session, changes.months, changes.accounts


def test_daily_increment_rewrites_the_months_from_the_earliest_change_on(
    daily_increment: tuple[SparkSession, list[str] | None, int | None],
) -> None:
    _, daily_months, accounts_recomputed = daily_increment
    assert daily_months == ["2021-03", "2021-04", "2021-05"]
    assert accounts_recomputed == 2  # accounts 1 and 3; a payment recomputes no account


def test_daily_increment_narrows_invoices_and_stored_rows_to_complementary_accounts(
    daily_increment: tuple[SparkSession, list[str] | None, int | None],
) -> None:
    session, _, _ = daily_increment
    # every invoice of the changed accounts, of every month: their windows are recomputed from the start
    assert collect_sorted(session.table("stg_invoices"), ["invoice_id", "account_id"]) == [
        (101, 1),
        (102, 1),
        (103, 1),
        (104, 1),
        (107, 1),
        (301, 1),
    ]
    assert collect_sorted(session.table("stored_int_account_daily_invoices"), DAILY_COLUMNS) == [
        (2, date(2021, 3, 15), 1, 7, 99, "2021-03"),
    ]


def test_daily_increment_recomputes_changed_accounts_from_their_whole_history_and_keeps_the_others(
    daily_increment: tuple[SparkSession, list[str] | None, int | None],
) -> None:
    session, daily_months, _ = daily_increment
    assert daily_months is not None
    model_df = session.sql(models.sql_text("intermediate", "int_account_daily_invoices"))
    rewritten_df = model_df.where(model_df["partition_month"].isin(daily_months))  # what Stage.build writes
    assert collect_sorted(rewritten_df, DAILY_COLUMNS) == [
        # prior_120d and to_date count account 1's invoices of 2021-01 (and to_date of 2020-10), months kept
        (1, date(2021, 3, 10), 1, 2, 4, "2021-03"),
        (1, date(2021, 3, 20), 1, 3, 5, "2021-03"),
        (1, date(2021, 5, 2), 1, 4, 6, "2021-05"),
        (2, date(2021, 3, 15), 1, 7, 99, "2021-03"),  # the stored row, not recomputed
        # account 3: its only invoice moved away, so nothing
    ]
    # the model computes the changed accounts' earlier months again too (Stage.build leaves them out)
    assert collect_sorted(model_df.where(~model_df["partition_month"].isin(daily_months)), DAILY_COLUMNS) == [
        (1, date(2020, 10, 1), 1, 0, 1, "2020-10"),
        (1, date(2021, 1, 15), 2, 1, 3, "2021-01"),
    ]


def test_daily_increment_with_the_kept_months_equals_a_full_run(spark: SparkSession) -> None:
    """The property the increment exists for: the rewritten months, with the base's other months, are the model a
    full run computes on the merged invoices (here with a base that a full run computed too)."""
    session = spark.newSession()
    before = [
        (1, 1, date(2021, 1, 10), None),
        (2, 1, date(2021, 2, 27), None),
        (3, 2, date(2021, 1, 31), None),
        (4, 2, date(2021, 3, 1), None),
        (5, 2, date(2021, 5, 31), None),
        (6, 3, date(2021, 2, 1), None),
        (7, 3, date(2021, 4, 30), None),
        (9, 1, date(2021, 4, 15), None),  # an unchanged account's day in a rewritten month
    ]
    after = [
        (1, 1, date(2021, 1, 10), date(2021, 2, 1)),  # paid
        (2, 1, date(2021, 2, 27), None),
        (3, 2, date(2021, 1, 31), None),
        (4, 2, date(2021, 3, 1), None),
        (5, 2, date(2021, 5, 31), None),
        (6, 3, date(2021, 2, 1), None),
        (7, 2, date(2021, 3, 2), None),  # moved from account 3 to account 2, a month earlier
        (8, 3, date(2021, 6, 1), None),  # new, in a new month
        (9, 1, date(2021, 4, 15), None),
    ]
    register_changed_invoices(
        session,
        [
            (1, 1, date(2021, 1, 10), 1, date(2021, 1, 10)),
            (7, 3, date(2021, 4, 30), 2, date(2021, 3, 2)),
            (8, None, None, 3, date(2021, 6, 1)),
        ],
    )
    sql = models.sql_text("intermediate", "int_account_daily_invoices")
    register_model_rows(session, "stored_int_account_daily_invoices", "int_account_daily_invoices", [])
    register_model_rows(session, "stg_invoices", "stg_invoices", with_months(before))
    base_rows = [tuple(row) for row in session.sql(sql).select(*DAILY_COLUMNS).collect()]
    register_model_rows(session, "stg_invoices", "stg_invoices", with_months(after))
    full = collect_sorted(session.sql(sql), DAILY_COLUMNS)

    run_version = incremental_version(session, sorted({str(row[5]) for row in base_rows}))
    assert increments.daily_changes(session, run_version) == increments.DailyChanges(
        ["2021-03", "2021-04", "2021-05", "2021-06"], 2
    )
    daily_months = ["2021-03", "2021-04", "2021-05", "2021-06"]
    in_months = [row for row in base_rows if row[5] in daily_months]
    register_model_rows(session, "stored_int_account_daily_invoices", "int_account_daily_invoices", in_months)
    increments.restrict_to_changed_accounts(session, run_version)
    model_df = session.sql(sql)
    rewritten = collect_sorted(model_df.where(model_df["partition_month"].isin(daily_months)), DAILY_COLUMNS)
    kept = [row for row in base_rows if row[5] not in daily_months]
    assert sorted(kept + rewritten, key=lambda row: (row[0], row[1])) == full


def test_a_partial_build_profiles_the_months_it_wrote_and_counts_nulls_over_the_whole_model(
    spark: SparkSession, tmp_path: Path
) -> None:
    """int_invoice_totals built whole in a first version, then only 2021-02 in an incremental one: the profile
    (and its caption) cover 2021-02, the model read back and its null count cover every month."""
    session = spark.newSession()
    warehouse = str(tmp_path / "warehouse")
    register_model_rows(session, "stg_skus", "stg_skus", [("A", "a", "a", Decimal(1), Decimal("2.5"))])
    register_model_rows(
        session,
        "stg_invoices",
        "stg_invoices",
        [
            (10, 1, date(2021, 1, 5), None, "2021-01"),
            (11, 1, date(2021, 2, 5), None, "2021-02"),
            (12, 2, date(2021, 2, 9), None, "2021-02"),
        ],
    )
    register_model_rows(
        session,
        "stg_invoice_line_items",
        "stg_invoice_line_items",
        [(10, "Q", 1, False, "2021-01"), (11, "A", 2, True, "2021-02")],
    )
    first = begin_version(session, warehouse, "v1", incremental=False)
    versions.write_model(first, "staging", "stg_invoices", session.table("stg_invoices"), "partition_month")
    stage = models.Stage(session, "intermediate", first)
    stage.use_stored("staging", "stg_invoices")
    stage.build("int_invoice_totals", profile=True)
    assert stage.profile_caption("int_invoice_totals") == "int_invoice_totals"
    assert stage.null_count("int_invoice_totals", "invoice_total") == 1  # 10 names an unknown SKU
    commit_version(first, ["int_invoice_totals", "stg_invoices"], {})

    register_model_rows(
        session,
        "stg_invoice_line_items",
        "stg_invoice_line_items",
        [(11, "A", 4, True, "2021-02"), (12, "A", 1, True, "2021-02")],
    )
    second = begin_version(session, warehouse, "v2", incremental=True)
    second.keep("staging", "stg_invoices")
    stage = models.Stage(session, "intermediate", second)
    stage.use_stored("staging", "stg_invoices")
    with increments.invoices_in(session, second, ["2021-02"]):  # read from the month's folder only
        stored_df = stage.write("int_invoice_totals", profile=True, months=["2021-02"])
        assert session.table("stg_invoices").count() == 2  # narrowed within the block
    assert session.table("stg_invoices").count() == 3  # and whole again after it

    assert collect_sorted(stored_df, ["invoice_id", "item_count", "invoice_total", "partition_month"]) == [
        (10, 1, None, "2021-01"),  # taken from v1
        (11, 4, Decimal("10.00"), "2021-02"),
        (12, 1, Decimal("2.50"), "2021-02"),
    ]
    profile = {row["column"]: row for row in stage.profile("int_invoice_totals")}
    assert (profile["invoice_id"]["non_null"], profile["invoice_id"]["min"], profile["invoice_id"]["max"]) == (
        2,
        "11",
        "12",
    )
    assert profile["invoice_total"]["null"] == 0
    assert stage.profile_caption("int_invoice_totals") == (
        "int_invoice_totals: the 1 month(s) this run rewrote (2021-02 to 2021-02)"
    )
    assert collect_sorted(stage.profiled["int_invoice_totals"], ["invoice_id"]) == [(11,), (12,)]
    assert stage.null_count("int_invoice_totals", "invoice_total") == 1  # 10's, in a month not rewritten


def test_a_kept_model_is_read_from_the_previous_version_and_profiles_nothing(
    spark: SparkSession, tmp_path: Path
) -> None:
    """stg_skus kept by an incremental run whose delta changes no SKU: its view is the previous version's rows,
    its profile is empty and says why, its null count still covers the whole model, and keeping it ran no job."""
    session = spark.newSession()
    warehouse = str(tmp_path / "warehouse")
    register_model_rows(
        session,
        "stg_skus",
        "stg_skus",
        [("A", "a", "a", Decimal(1), Decimal("2.5")), ("B", "b", None, Decimal(1), Decimal(3))],
    )
    first = begin_version(session, warehouse, "v1", incremental=False)
    versions.write_model(first, "staging", "stg_skus", session.table("stg_skus"))
    commit_version(first, ["stg_skus"], {})

    session.catalog.dropTempView("stg_skus")
    second = begin_version(session, warehouse, "v2", incremental=True)
    stage = models.Stage(session, "staging", second)
    session.sparkContext.setJobGroup("keep_skus", "kept model")
    kept_df = stage.keep("stg_skus", profile=True)
    assert jobs_in_group(session, "keep_skus") == []
    assert collect_sorted(session.table("stg_skus"), ["item_id", "item_description"]) == [("A", "a"), ("B", None)]
    assert collect_sorted(kept_df, ["item_id"]) == [("A",), ("B",)]
    assert stage.profile("stg_skus") == []
    assert stage.profile_caption("stg_skus") == (
        "stg_skus: kept whole from the previous version, nothing rewritten by this run"
    )
    assert stage.null_count("stg_skus", "item_description") == 1
    first_record = first.built("staging", "stg_skus")
    assert first_record is not None
    assert second.built("staging", "stg_skus") == {**first_record, "kept": True, "rewritten": []}


def test_a_model_kept_when_unchanged_is_kept_when_the_delta_leaves_it_unchanged(
    spark: SparkSession, tmp_path: Path
) -> None:
    """stg_skus (declared keep_when_unchanged) is kept when its delta has no accepted row and withdraws no key:
    a rejected record or an exact copy changes nothing; an accepted row or a withdrawn key does; a full run always
    builds."""
    session = spark.newSession()
    warehouse = str(tmp_path / "warehouse")
    register_model_rows(session, "stg_skus", "stg_skus", [("A", "a", "a", Decimal(1), Decimal("2.5"))])
    first = begin_version(session, warehouse, "v1", incremental=False)
    versions.write_model(first, "staging", "stg_skus", session.table("stg_skus"))
    commit_version(first, ["stg_skus"], {})
    checked_schema = "reject_reason string, is_collapsed boolean"
    withdrawn_schema = "item_id string"

    def is_kept(checked: list[tuple[str | None, bool]], withdrawn: list[tuple[str]], incremental: bool = True) -> bool:
        session.createDataFrame(checked, checked_schema).createOrReplaceTempView("stg_skus_checked")
        session.createDataFrame(withdrawn, withdrawn_schema).createOrReplaceTempView("withdrawn_skus")
        stage = models.Stage(session, "staging", begin_version(session, warehouse, "v2", incremental))
        return planning.is_unchanged(stage, "stg_skus")

    assert is_kept([("invalid_value", False), (None, True)], [])  # a rejected record, and an exact copy
    assert is_kept([], [])
    assert not is_kept([(None, False)], [])  # an accepted row
    assert not is_kept([], [("A",)])  # a key the database withdrew
    assert not is_kept([], [], incremental=False)

    session.createDataFrame([("invalid_value", False)], checked_schema).createOrReplaceTempView("stg_skus_checked")
    session.createDataFrame([], withdrawn_schema).createOrReplaceTempView("withdrawn_skus")
    stage = models.Stage(session, "staging", begin_version(session, warehouse, "v2", incremental=True))
    kept_df = stage.build("stg_skus", profile=True)
    assert collect_sorted(kept_df, ["item_id"]) == [("A",)]
    assert stage.runs[-1].is_kept
    assert stage.plan("stg_skus") == planning.Plan("keep", [])
    assert stage.rewritten_months("stg_skus") == []
    with pytest.raises(ValueError, match="stg_checked_rows is a view"):
        stage.build("stg_checked_rows")


def test_an_empty_frame_has_the_schema_and_no_python_rdd(spark: SparkSession) -> None:
    empty_df = load.empty_frame(spark, "invoice_id bigint, issue_date date")
    assert [(field.name, field.dataType.simpleString()) for field in empty_df.schema] == [
        ("invoice_id", "bigint"),
        ("issue_date", "date"),
    ]
    assert empty_df.collect() == []
    assert "ExistingRDD" not in empty_df._jdf.queryExecution().toString()  # no Python worker starts to read it


def test_delta_lines_are_checked_against_the_invoices_they_name_only(spark: SparkSession) -> None:
    """The lines' check of an incremental run sees only the invoices its lines name (ids parsed as the check
    parses them), gives the same rows as against every invoice, and the raw lines are counted once."""
    session = spark.newSession()
    lines = [
        (" 10 ", "A", "1", None),
        ("0011", "B", "2", None),  # 11, written with a leading zero
        ("99", "A", "1", None),  # no such invoice: unknown_invoice
        ("x1", "A", "1", None),  # invalid_value, names nothing
        (None, None, None, "broken,record"),
    ]
    register_strings(session, "raw_lines_unobserved", raw_columns("invoice_line_items"), lines)
    observation = Observation("read_lines")
    raw_df = session.table("raw_lines_unobserved").observe(observation, F.count(F.lit(1)).alias("rows"))
    raw_df.createOrReplaceTempView("raw_invoice_line_items")  # observed, as extract.register_extracts does
    register_model_rows(session, "stg_skus", "stg_skus", [("A", "a", "a", Decimal(1), Decimal(1))])
    invoices = [(invoice_id, 1, date(2021, 1, invoice_id - 9), None) for invoice_id in (10, 11, 12, 13)]
    register_model_rows(session, "stg_invoices", "stg_invoices", with_months(invoices))
    checked_columns = ["invoice_id", "item_id", "quantity", "reject_reason", "partition_month", "source_record"]
    against_all = collect_sorted(run_view(session, "staging", "stg_invoice_line_items_checked"), checked_columns)
    assert [(row[0], row[3], row[4]) for row in against_all] == [
        (None, "invalid_value", None),  # x1
        (None, "invalid_value", None),  # the broken record
        (10, None, "2021-01"),
        (11, "unknown_sku", "2021-01"),
        (99, "unknown_invoice", None),
    ]

    with increments.invoices_named_by_lines(session, incremental_version(session, ["2021-01"])):
        assert collect_sorted(session.table("stg_invoices"), ["invoice_id"]) == [(10,), (11,)]
        narrowed_df = run_view(session, "staging", "stg_invoice_line_items_checked")
        assert collect_sorted(narrowed_df, checked_columns) == against_all
    assert observation.get == {"rows": 5}
    assert session.table("stg_invoices").count() == 4  # whole again after the block
    with increments.invoices_named_by_lines(session, incremental_version(session, None)):
        assert session.table("stg_invoices").count() == 4  # a full run's check sees every invoice
