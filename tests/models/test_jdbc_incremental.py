"""Incremental runs from PostgreSQL (spark_etl/sources/source_state.py): the database compared with the source state the
previous version stored, by row hashes PostgreSQL computes; deletions and rows changed into rejected ones withdraw
the stored rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from support.pg_tables import (
    create_database,
    create_tables,
    database,
)
from support.spark_views import (
    begin_version,
    collect_sorted,
    commit_version,
    inline_rows,
    raw_columns,
    register_stored,
    register_strings,
    run_view,
)

import pg_server
from spark_etl.incremental import increments
from spark_etl.modelling import registry
from spark_etl.sources import jdbc, source_state
from spark_etl.storage import load, versions

# ---------------------------------------------------------------------------------------------------------------
# the source state: groups, hashes, comparison


def snapshot_state(spark: SparkSession, url: str, folder: Path) -> tuple[DataFrame, DataFrame]:
    """The accounts as one run stores them: the snapshot's rows with their group, and the table's state."""
    jdbc.store_snapshot(spark, jdbc.JdbcSource(database(url), "raw", partitions=1), str(folder))
    snapshot_df = load.read_parquet(spark, jdbc.extract_path(str(folder), "accounts"))
    grouped_df = source_state.grouped_rows(snapshot_df, "accounts")
    state_df = source_state.group_state(grouped_df)
    load.write_parquet(state_df, str(folder / "state"))
    return grouped_df, load.read_parquet(spark, str(folder / "state"))


def test_groups_hashes_and_changes_of_a_table(
    spark: SparkSession, postgres: pg_server.PostgresServer, tmp_path: Path
) -> None:
    """A key's copies are one group (` 2 ` and `2` too), a key staging rejects is a group per row hash, a null and
    an empty text hash apart, row order does not matter; the comparison names each group added, changed or
    deleted, and nothing else."""
    url = create_database(postgres, "state_test")
    create_tables(postgres, "state_test", "raw", typed=False)
    postgres.psql(
        "insert into raw.accounts values "
        "('1', 'Acme', 'Road 1', 'Ann', '555', 'F', '2019-01-01'), "
        "(' 2 ', 'Bolt', 'Road 2', 'Bob', '556', 'M', '2019-02-01'), "
        "('2', 'Bolt', 'Road 2', 'Bob', '556', 'M', '2019-02-01'), "
        "('x', 'Crow', 'Road 3', 'Cy', '557', 'M', '2019-03-01'), "
        "('3', 'Dune', 'Road 4', 'Di', '', 'F', '2019-04-01'), "
        "('4', 'Echo', 'Road 5', 'Ed', null, 'M', '2019-05-01')",
        "state_test",
    )
    grouped_df, before = snapshot_state(spark, url, tmp_path / "before")
    groups = collect_sorted(before, ["group_id", "source_key"])
    [bad_key_hash] = [row[0] for row in grouped_df.where("account_id = 'x'").select("_row_hash").collect()]
    assert groups == [("h" + bad_key_hash, None), ("k1", "1"), ("k2", "2"), ("k3", "3"), ("k4", "4")]
    expected_hash = postgres.psql(
        "select md5(cast(row('x', 'Crow', 'Road 3', 'Cy', '557', 'M', '2019-03-01') as text))", "state_test"
    ).strip()
    assert bad_key_hash == expected_hash  # md5 of the row's text as a row value, computed by PostgreSQL

    # the same rows in another physical order, read again: no change
    postgres.psql(
        "create table raw.accounts_copy as select * from raw.accounts order by account_id desc; "
        "truncate raw.accounts; insert into raw.accounts select * from raw.accounts_copy; drop table raw.accounts_copy",
        "state_test",
    )
    _, reordered = snapshot_state(spark, url, tmp_path / "reordered")
    assert source_state.compare(reordered, before).count() == 0

    postgres.psql(
        "update raw.accounts set company_name = 'Acme Ltd' where account_id = '1'; "
        "delete from raw.accounts where account_id = ' 2 '; "  # one copy of key 2 goes: key 2 changed
        "update raw.accounts set contact_phone = '' where account_id = '4'; "  # null -> empty text
        "delete from raw.accounts where account_id = '3'; "
        "insert into raw.accounts values ('5', 'Fern', 'Road 6', 'Flo', '558', 'F', '2019-06-01')",
        "state_test",
    )
    _, after = snapshot_state(spark, url, tmp_path / "after")
    changes = collect_sorted(source_state.compare(after, before), ["group_id", "source_key", "change"])
    assert changes == [
        ("k1", "1", "changed"),
        ("k2", "2", "changed"),
        ("k3", "3", "deleted"),
        ("k4", "4", "changed"),
        ("k5", "5", "added"),
    ]


def test_the_grouping_keys_are_the_keys_staging_parses(spark: SparkSession) -> None:
    """id_key and text_key give every value the key the *_checked models give it (as text)."""
    session = spark.newSession()
    ids = [" 12 ", "0012", "12", "12a", "", None, "1234567890123456789", "123456789012345678", "-1", " "]
    accounts = [(value, f"row{n}", None, None, None, None, "2019-01-01", None) for n, value in enumerate(ids)]
    register_strings(session, "raw_accounts", raw_columns("accounts"), accounts)
    item_ids = [" A ", "A", "", None, "  ", "b c"]
    skus = [(value, f"row{n}", None, "1.00", "2.00", None) for n, value in enumerate(item_ids)]
    register_strings(session, "raw_skus", raw_columns("skus"), skus)
    found: dict[str, dict[str, str | None]] = {}
    for table, key_column, name_column in (
        ("accounts", "account_id", "company_name"),
        ("skus", "item_id", "item_name"),
    ):
        checked = run_view(session, "staging", f"stg_{table}_checked")
        staging_keys: dict[str, str | None] = dict(
            checked.selectExpr(name_column, f"cast({key_column} as string)").collect()
        )
        raw_df = session.table(f"raw_{table}")
        parse = source_state.GROUP_COLUMNS[table][1]
        found[table] = dict(raw_df.select(raw_df[name_column], parse(raw_df[key_column])).collect())
        assert found[table] == staging_keys
    assert found["accounts"] == {
        "row0": "12", "row1": "12", "row2": "12", "row3": None, "row4": None, "row5": None, "row6": None,
        "row7": "123456789012345678", "row8": None, "row9": None,
    }  # fmt: skip
    assert found["skus"] == {"row0": "A", "row1": "A", "row2": None, "row3": None, "row4": None, "row5": "b c"}


def test_a_version_commits_its_source_state_and_one_made_from_csv_extracts_has_none(
    spark: SparkSession, tmp_path: Path
) -> None:
    """The state a run from the database records is committed with its models and read by the next incremental
    run; after a run from CSV extracts (no state), an incremental run from the database is refused in one line."""
    warehouse = str(tmp_path / "warehouse")
    invoices_df = spark.createDataFrame(
        [(1, 1, date(2021, 1, 1), None, "2021-01")], registry.schema_ddl(registry.model("stg_invoices"))
    )
    state_df = spark.createDataFrame([("k1", "1", "0cc175b9c0f1b6a831c399e269772661")], source_state.STATE_SCHEMA)
    from_database = begin_version(spark, warehouse, "v1", incremental=False)
    versions.write_model(from_database, "staging", "stg_invoices", invoices_df, "partition_month")
    for table_name in ("accounts", "skus", "invoices", "invoice_line_items"):
        versions.write_model(from_database, versions.SOURCE_LAYER, source_state.state_name(table_name), state_df)
    manifest = commit_version(from_database, ["stg_invoices"], {})
    assert sorted(manifest.models) == [
        "source_accounts", "source_invoice_line_items", "source_invoices", "source_skus", "stg_invoices",
    ]  # fmt: skip
    assert manifest.models["source_skus"]["layer"] == "source"

    from_csv = begin_version(spark, warehouse, "v2", incremental=True)
    previous = source_state.previous_states(from_csv)
    assert previous is not None
    assert collect_sorted(previous["skus"], ["group_id", "source_key", "group_hash"]) == [
        ("k1", "1", "0cc175b9c0f1b6a831c399e269772661")
    ]
    versions.write_model(
        from_csv, "staging", "stg_invoices", invoices_df, "partition_month"
    )  # a CSV run records no source state
    assert sorted(commit_version(from_csv, ["stg_invoices"], {}).models) == ["stg_invoices"]
    after_csv = begin_version(spark, warehouse, "v3", incremental=True)
    with pytest.raises(versions.VersionError, match=r"version v2 has none \(it was made from CSV extracts\)"):
        source_state.previous_states(after_csv)
    assert source_state.previous_states(begin_version(spark, warehouse, "v4", incremental=False)) is None


# ---------------------------------------------------------------------------------------------------------------
# the merging models and the months to rewrite, with keys withdrawn


def withdraw(session: SparkSession, table_name: str, keys: list[Any]) -> None:
    ddl = registry.WITHDRAWN_VIEWS[f"withdrawn_{table_name}"]
    inline_rows(session, [(key,) for key in keys], ddl).createOrReplaceTempView(f"withdrawn_{table_name}")


def test_withdrawn_keys_drop_their_stored_rows_even_when_the_delta_row_is_rejected(spark: SparkSession) -> None:
    """Stored accounts 1 to 4; the delta changes 2 and turns 3 into a rejected row. From the database 2 and 3
    changed and 4 was deleted: 3 and 4 go, as in a full run. On the CSV path (nothing withdrawn) the stored 3
    stays and 4 stays."""
    session = spark.newSession()
    register_strings(
        session,
        "raw_accounts",
        raw_columns("accounts"),
        [
            ("2", "Bolt Ltd", None, None, None, None, "2019-02-01", None),
            ("3", "Crow", None, None, None, None, "2019-02-30", None),  # not a date: rejected
        ],
    )
    run_view(session, "staging", "stg_accounts_checked")
    register_stored(
        session,
        "stg_accounts",
        [
            (n, name, None, None, None, None, date(2019, n, 1))
            for n, name in ((1, "Acme"), (2, "Bolt"), (3, "Crow"), (4, "Dune"))
        ],
        "account_id bigint, company_name string, company_address string, contact_person string, "
        "contact_phone string, gender string, joining_date date",
    )
    for withdrawn, expected in (
        ([2, 3, 4], [(1, "Acme"), (2, "Bolt Ltd")]),
        ([], [(1, "Acme"), (2, "Bolt Ltd"), (3, "Crow"), (4, "Dune")]),
    ):
        withdraw(session, "accounts", withdrawn)
        accounts = run_view(session, "staging", "stg_accounts")
        assert collect_sorted(accounts, ["account_id", "company_name"]) == expected


INVOICES_DDL = "invoice_id bigint, account_id bigint, issue_date date, payment_date date"
SKUS_DDL = (
    "item_id string, item_name string, item_description string, item_cost_price decimal(21,6), "
    "item_retail_price decimal(21,6)"
)
LINES_DDL = "invoice_id bigint, item_id string, quantity int, is_known_sku boolean, partition_month string"


def stage_lines(session: SparkSession, invoices: list[tuple[Any, ...]], lines: list[tuple[Any, ...]]) -> None:
    """Stored SKUs A and B, the given stored invoices and lines, no delta SKU: what the lines' models need."""
    register_strings(session, "raw_skus", raw_columns("skus"), [])
    register_strings(session, "raw_accounts", raw_columns("accounts"), [])
    register_stored(session, "stg_invoices", invoices, INVOICES_DDL)
    register_stored(session, "stg_skus", [(sku, sku, sku, Decimal("1"), Decimal("2")) for sku in "AB"], SKUS_DDL)
    register_stored(session, "stg_invoice_line_items", lines, LINES_DDL)
    withdraw(session, "skus", [])
    for model in ("stg_accounts_checked", "stg_accounts", "stg_skus_checked", "stg_skus"):
        run_view(session, "staging", model)
    for model in ("stg_invoices_checked", "stg_invoices", "stg_invoice_line_items_checked"):
        run_view(session, "staging", model)


def test_an_invoice_whose_lines_were_withdrawn_keeps_none_of_its_stored_lines(spark: SparkSession) -> None:
    """Invoice 10's lines were all deleted in the source, 11's changed into a rejected line (quantity 0), 12's
    changed into one new line, 13's were left alone: 10 and 11 have no line, 12 its new one, 13 its stored one."""
    session = spark.newSession()
    register_strings(session, "raw_invoices", raw_columns("invoices"), [])
    lines = [("11", "A", "0", None), ("12", "B", "5", None)]
    register_strings(session, "raw_invoice_line_items", raw_columns("invoice_line_items"), lines)
    withdraw(session, "invoices", [])
    withdraw(session, "invoice_line_items", [10, 11, 12])
    march = date(2021, 3, 1)
    stage_lines(
        session,
        [(n, 1, march, None) for n in (10, 11, 12, 13)],
        [
            (n, sku, quantity, True, "2021-03")
            for n, sku, quantity in ((10, "A", 1), (10, "B", 2), (11, "A", 3), (12, "A", 4), (13, "B", 6))
        ],
    )
    lines_df = run_view(session, "staging", "stg_invoice_line_items")
    assert collect_sorted(lines_df, ["invoice_id", "item_id", "quantity"]) == [(12, "B", 5), (13, "B", 6)]


def test_the_months_of_deleted_invoices_and_withdrawn_lines_are_rewritten(spark: SparkSession) -> None:
    """Invoice 10 (January) was deleted, 11's lines (February) were all deleted, 12 (March) was paid: lines and
    totals are rewritten in January and February; a payment changes no totals row, so March is not. With nothing
    withdrawn (the CSV path), nothing."""
    session = spark.newSession()
    register_strings(session, "raw_invoices", raw_columns("invoices"), [("12", "1", "2021-03-01", "2021-03-20", None)])
    register_strings(session, "raw_invoice_line_items", raw_columns("invoice_line_items"), [])
    invoices = [(n, 1, date(2021, n - 9, 1), None) for n in (10, 11, 12, 13)]
    lines = [(n, "A", 1, True, f"2021-{n - 9:02d}") for n in (10, 11, 12, 13)]
    for withdrawn, line_months, total_months in (
        ({"invoices": [10, 12], "invoice_line_items": [11]}, ["2021-01", "2021-02"], ["2021-01", "2021-02"]),
        ({"invoices": [], "invoice_line_items": []}, [], []),
    ):
        for table_name, keys in withdrawn.items():
            withdraw(session, table_name, keys)
        stage_lines(session, invoices, lines)
        increments.register_changes(session)
        run_view(session, "staging", "stg_invoice_line_items")
        assert increments.line_months(session, is_incremental=True) == line_months
        assert increments.total_months(session, True, line_months) == total_months
