"""PostgreSQL as source and destination, against a real server (tests/pg_server.py): the snapshot extract, the
atomic and idempotent load, the load lock, a killed load, a load whose task was retried, and the entry script's
one-line error when the driver is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from support.pg_tables import (
    SERVER_PASSWORD,
    copy_extracts,
    create_database,
    create_tables,
    database,
    run_with_password,
)
from support.pipeline import PROJECT_DIR
from support.spark_views import run_view

import pg_server
from spark_etl.publishing import serving
from spark_etl.sources import extract, jdbc
from spark_etl.storage import load

# ---------------------------------------------------------------------------------------------------------------
# extract: one snapshot while a writer commits


def test_extract_reads_one_snapshot_while_a_writer_commits(
    spark: SparkSession, postgres: pg_server.PostgresServer, real_extracts_dir: Path, tmp_path: Path
) -> None:
    """A writer inserts invoices with their lines, one transaction each, during the extract: the stored extract
    is exactly the rows committed before the snapshot (all invoices up to one id, each with all its lines), and
    the staging models find no unknown invoice."""
    url = create_database(postgres, "snapshot_test")
    create_tables(postgres, "snapshot_test", "public", typed=True)
    copy_extracts(postgres, "snapshot_test", "public", real_extracts_dir)
    [first_new_id] = postgres.psql("select max(invoice_id) + 1 from invoices", "snapshot_test").split()
    [sku] = postgres.psql("select min(item_id) from skus", "snapshot_test").split()
    writer_connection = jdbc.connect(spark, database(url))
    writer_connection.set_autocommit(False)
    stop = threading.Event()
    committed: list[int] = []

    def write() -> None:
        invoice_id = int(first_new_id)
        while not stop.is_set():
            writer_connection.execute("insert into invoices values (?, 1, date '2021-06-01', null)", invoice_id)
            for item in range(3):
                writer_connection.execute("insert into invoice_line_items values (?, ?, ?)", invoice_id, sku, item + 1)
            writer_connection.commit()
            committed.append(invoice_id)
            invoice_id += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(committed) < 20:  # the writer is well under way before the snapshot is taken
            time.sleep(0.05)
        source = jdbc.JdbcSource(database(url), "public", partitions=4, fetch_size=500)
        reads = jdbc.store_snapshot(spark, source, str(tmp_path))
        committed_during_extract = len(committed)
    finally:
        stop.set()
        writer.join()
        writer_connection.close()
    assert {read.table_name: read.partitions for read in reads} == {
        "accounts": 4,
        "skus": 1,
        "invoices": 4,
        "invoice_line_items": 4,
    }
    stored = {
        each.table_name: load.read_parquet(spark, jdbc.extract_path(str(tmp_path), each.table_name))
        for each in extract.EXTRACTS
    }
    invoice_ids = sorted(int(row[0]) for row in stored["invoices"].select("invoice_id").collect())
    last_id = invoice_ids[-1]
    assert int(first_new_id) + 20 <= last_id < int(first_new_id) + committed_during_extract - 1
    # every invoice committed before the snapshot, and none after it
    in_snapshot = postgres.psql(f"select count(*) from invoices where invoice_id <= {last_id}", "snapshot_test")
    assert len(invoice_ids) == int(in_snapshot) == len(set(invoice_ids))
    assert {read.table_name: read.rows for read in reads}["invoices"] == int(in_snapshot)
    new_lines = stored["invoice_line_items"].where(f"cast(invoice_id as bigint) >= {first_new_id}").count()
    assert new_lines == 3 * (last_id - int(first_new_id) + 1)
    total_now = int(postgres.psql("select count(*) from invoices", "snapshot_test"))
    assert total_now > len(invoice_ids)  # the writer did commit after the snapshot

    for each in extract.EXTRACTS:
        stored[each.table_name].createOrReplaceTempView(f"raw_{each.table_name}")
    for model in ("stg_skus_checked", "stg_skus", "stg_invoices_checked", "stg_invoices"):
        run_view(spark, "staging", model)
    lines_checked = run_view(spark, "staging", "stg_invoice_line_items_checked")
    reasons = {row[0]: row[1] for row in lines_checked.groupBy("reject_reason").count().collect()}
    assert "unknown_invoice" not in reasons
    assert sum(reasons.values()) == stored["invoice_line_items"].count()


def test_missing_table_and_column_are_named(spark: SparkSession, postgres: pg_server.PostgresServer) -> None:
    url = create_database(postgres, "incomplete")
    create_tables(postgres, "incomplete", "public", typed=True)
    postgres.psql("alter table skus drop column item_retail_price; drop table invoice_line_items", "incomplete")
    source = jdbc.JdbcSource(database(url), "public")
    with pytest.raises(extract.ExtractError, match=r"table public\.skus: missing column item_retail_price"):
        jdbc.store_snapshot(spark, source, "/nonexistent")
    postgres.psql("alter table skus add column item_retail_price numeric(12,2)", "incomplete")
    with pytest.raises(extract.ExtractError, match=r"table public\.invoice_line_items not found"):
        jdbc.store_snapshot(spark, source, "/nonexistent")


def test_connection_errors_are_one_line_without_the_password(
    spark: SparkSession, postgres: pg_server.PostgresServer
) -> None:
    wrong = jdbc.Database(postgres.jdbc_url(), pg_server.SUPERUSER, "not-the-password-123")
    with pytest.raises(jdbc.JdbcError) as failure:
        jdbc.connect(spark, wrong)
    assert str(failure.value) == (
        f"cannot connect to {postgres.jdbc_url()} as postgres: "
        'FATAL: password authentication failed for user "postgres"'
    )
    unreachable = jdbc.Database(f"jdbc:postgresql://127.0.0.1:{pg_server.free_port()}/db", "etl", "x")
    with pytest.raises(jdbc.JdbcError, match=r"cannot connect to .* as etl: Connection to 127\.0\.0\.1:\d+ refused"):
        jdbc.connect(spark, unreachable)


def test_urls_with_credentials_or_odd_identifiers_are_refused() -> None:
    assert jdbc.check_url("jdbc:postgresql://db:5432/prod?sslmode=require")
    assert jdbc.public_url("jdbc:postgresql://db:5432/prod?sslmode=require") == "jdbc:postgresql://db:5432/prod"
    for url in ("jdbc:postgresql://db/prod?password=x3cr3t", "jdbc:postgresql://u:x3cr3t@db/prod"):
        with pytest.raises(ValueError) as refused:
            jdbc.check_url(url)
        assert "x3cr3t" not in str(refused.value)  # the error never repeats a password
    with pytest.raises(ValueError, match="is not jdbc:postgresql://HOST"):
        jdbc.check_url("jdbc:mysql://db/prod")
    assert jdbc.quote_identifier("features_v2") == '"features_v2"'
    for name in ('x"; drop table y; --', "a b", "", "1abc"):
        with pytest.raises(ValueError):
            jdbc.quote_identifier(name)
    assert serving.parse_table_name("serving.features") == ("serving", "features")
    with pytest.raises(ValueError):
        serving.parse_table_name("features__load_1")


# ---------------------------------------------------------------------------------------------------------------
# load: atomic, idempotent, serialised


def features(spark: SparkSession, first_id: int, count: int, total_cents: int) -> DataFrame:
    """A features frame of `count` invoices; `total_cents` tells two versions apart."""
    return spark.sql(
        f"""
        select id as inv_id, id % 50 as acct_id,
               cast({total_cents} / 100 as decimal(38, 2)) as inv_total, cast(id % 7 as int) as inv_items,
               if(id % 11 = 0, null, cast(id % 900 as int)) as acct_age, cast(id % 5 as int) as num_inv_120d,
               cast(id % 13 as int) as cum_tot_inv_acct, if(id % 17 = 0, null, cast(id % 2 as int)) as is_late,
               date_add(date '2021-01-01', cast(id % 180 as int)) as issue_date, date '2021-07-01' as as_of_date
        from range({first_id}, {first_id + count})
        """
    )


def table_rows(connection: jdbc.Connection, table: str) -> list[tuple[object, ...]]:
    return connection.query(
        f"select inv_id, acct_id, inv_total::text, inv_items, acct_age, num_inv_120d, cum_tot_inv_acct, is_late, "
        f"issue_date::text, as_of_date::text from {table} order by inv_id"
    )


def frame_rows(frame: DataFrame) -> list[tuple[object, ...]]:
    return [
        (r.inv_id, r.acct_id, f"{r.inv_total:.2f}", r.inv_items, r.acct_age, r.num_inv_120d, r.cum_tot_inv_acct,
         r.is_late, r.issue_date.isoformat(), r.as_of_date.isoformat())
        for r in frame.orderBy("inv_id").collect()
    ]  # fmt: skip


@pytest.fixture(scope="module")
def serving_database(postgres: pg_server.PostgresServer) -> str:
    return create_database(postgres, "serving_test")


@pytest.fixture
def connection(spark: SparkSession, serving_database: str) -> Iterator[jdbc.Connection]:
    opened = jdbc.connect(spark, database(serving_database))
    yield opened
    opened.close()


def test_load_types_rerun_and_no_staging_left(
    spark: SparkSession, serving_database: str, connection: jdbc.Connection
) -> None:
    first = features(spark, 1, 500, 1234)
    assert serving.load_features(spark, database(serving_database), "features_rerun", first) == 500
    second = features(spark, 100, 700, 99)
    for _ in range(2):  # a rerun gives the same table, no duplicates
        assert serving.load_features(spark, database(serving_database), "public.features_rerun", second) == 700
        assert table_rows(connection, "features_rerun") == frame_rows(second)
    types = connection.query(
        "select column_name, data_type, numeric_precision, numeric_scale from information_schema.columns "
        "where table_name = 'features_rerun' order by ordinal_position"
    )
    assert [(name, kind) for name, kind, _, _ in types] == [
        ("inv_id", "bigint"), ("acct_id", "bigint"), ("inv_total", "numeric"), ("inv_items", "integer"),
        ("acct_age", "integer"), ("num_inv_120d", "integer"), ("cum_tot_inv_acct", "integer"),
        ("is_late", "smallint"), ("issue_date", "date"), ("as_of_date", "date"),
        ("loaded_at", "timestamp with time zone"),
    ]  # fmt: skip
    assert types[2][2:] == (18, 2)
    assert connection.query(
        "select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
        "and a.attnum = any(i.indkey) where i.indrelid = 'features_rerun'::regclass and i.indisprimary"
    ) == [("inv_id",)]
    assert connection.query("select count(distinct loaded_at) from features_rerun") == [(1,)]
    assert serving.stale_staging_tables(connection, "public", "features_rerun") == []


def test_a_polling_reader_sees_the_old_or_the_new_table_only(
    spark: SparkSession, serving_database: str, connection: jdbc.Connection
) -> None:
    old, new = features(spark, 1, 3000, 500), features(spark, 1001, 4000, 700)
    signature = "select count(*), count(distinct inv_id), min(inv_id), max(inv_id), sum(inv_total) from features_poll"
    assert serving.load_features(spark, database(serving_database), "features_poll", old) == 3000
    old_signature = connection.query(signature)[0]
    assert old_signature == (3000, 3000, 1, 3000, "15000.00")
    seen: list[tuple[object, ...]] = []
    errors: list[str] = []
    stop = threading.Event()
    reader = jdbc.connect(spark, database(serving_database))

    def poll() -> None:
        while not stop.is_set():
            try:
                seen.append(reader.query(signature)[0])
            except Exception as error:  # any error is a failure of the load's atomicity
                errors.append(jdbc.java_message(error))

    polling = threading.Thread(target=poll)
    polling.start()
    try:
        for version in (new, old, new):
            serving.load_features(spark, database(serving_database), "features_poll", version)
    finally:
        stop.set()
        polling.join()
        reader.close()
    new_signature = (4000, 4000, 1001, 5000, "28000.00")
    assert errors == []
    assert len(seen) > 20
    assert set(seen) == {old_signature, new_signature}
    assert table_rows(connection, "features_poll") == frame_rows(new)


def test_concurrent_loads_are_serialised_by_the_lock(
    spark: SparkSession, serving_database: str, connection: jdbc.Connection
) -> None:
    first = features(spark, 1, 200, 100)
    serving.load_features(spark, database(serving_database), "features_lock", first)
    holder = jdbc.connect(spark, database(serving_database))
    try:  # a load in progress elsewhere holds the lock: the second fails after its wait and changes nothing
        holder.query("select pg_advisory_lock(?, hashtext(?))", serving.LOCK_NAMESPACE, "public.features_lock")
        with pytest.raises(serving.LoadError, match=r"another load into public\.features_lock is running"):
            serving.load_features(
                spark, database(serving_database), "features_lock", features(spark, 5, 10, 1), lock_wait_seconds=1
            )
        assert table_rows(connection, "features_lock") == frame_rows(first)
    finally:
        holder.close()  # a dead session releases its lock
    results: list[int] = []
    versions = [features(spark, 1, 300, 200), features(spark, 1, 300, 300)]
    threads = [
        threading.Thread(
            target=lambda v=version: results.append(
                serving.load_features(spark, database(serving_database), "features_lock", v)
            )
        )
        for version in versions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [300, 300]
    rows = table_rows(connection, "features_lock")
    assert rows in (frame_rows(versions[0]), frame_rows(versions[1]))
    assert serving.stale_staging_tables(connection, "public", "features_lock") == []


KILLED_LOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    from spark_etl.publishing import serving
    from spark_etl.sources import jdbc
    from spark_etl.runtime.session import spark_session

    url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    conf = {"spark.jars": jdbc.DEFAULT_DRIVER_JAR, "spark.ui.enabled": "false"}
    spark = spark_session("killed_load", "local[2]", conf)
    frame = spark.sql(
        "select id as inv_id, id as acct_id, cast(1 as decimal(38, 2)) as inv_total, 1 as inv_items, 1 as acct_age, "
        "1 as num_inv_120d, 1 as cum_tot_inv_acct, 0 as is_late, date '2021-01-01' as issue_date, "
        "date '2021-07-01' as as_of_date from range(0, 3000000, 1, 8)"
    )
    serving.load_features(spark, jdbc.Database(url, user, password), "features_killed", frame)
    """
)


def test_a_killed_load_leaves_the_table_and_the_next_load_cleans_up(
    spark: SparkSession, serving_database: str, connection: jdbc.Connection, tmp_path: Path
) -> None:
    before = features(spark, 1, 100, 4200)
    serving.load_features(spark, database(serving_database), "features_killed", before)
    script = tmp_path / "killed_load.py"
    script.write_text(KILLED_LOAD_SCRIPT, encoding="utf-8")
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_DIR / "Spark_ETL_Pipeline" / "src")}
    process = subprocess.Popen(
        [sys.executable, str(script), serving_database, pg_server.SUPERUSER, SERVER_PASSWORD],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        staged = 0
        while staged < 20_000 and time.monotonic() < deadline and process.poll() is None:
            staging = serving.stale_staging_tables(connection, "public", "features_killed")
            if staging:
                staged = int(connection.query(f'select count(*) from "{staging[0]}"')[0][0])
            time.sleep(0.1)
        assert staged >= 20_000, "the load never got under way"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the load, its JVM and everything under it, mid-write
        process.wait()
    assert table_rows(connection, "features_killed") == frame_rows(before)
    assert len(serving.stale_staging_tables(connection, "public", "features_killed")) == 1
    after = features(spark, 7, 50, 1)
    assert serving.load_features(spark, database(serving_database), "features_killed", after) == 50
    assert table_rows(connection, "features_killed") == frame_rows(after)
    assert serving.stale_staging_tables(connection, "public", "features_killed") == []


# ---------------------------------------------------------------------------------------------------------------
# the entry script without the driver; a load whose task was retried


def test_a_missing_driver_is_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    result = run_with_password(
        "--jdbc-url", "jdbc:postgresql://127.0.0.1:5432/db", "--jdbc-user", "etl",
        "--jdbc-driver-jar", str(tmp_path / "postgresql.jar"), "--output", str(tmp_path / "out" / "o.csv"),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: PostgreSQL JDBC driver not found at {tmp_path}/postgresql.jar: install it with "
        "`apt-get install libpostgresql-jdbc-java` or pass --jdbc-driver-jar PATH"
    ]
    assert not (tmp_path / "out").exists()


def test_rows_a_retried_task_staged_twice_reach_the_table_once(
    spark: SparkSession, serving_database: str, connection: jdbc.Connection
) -> None:
    """A task retried after its commit leaves its rows twice in the staging table: the move keeps one per inv_id,
    and a staging table short of the rows written is refused with the serving table untouched."""
    frame = features(spark, 1, 40, 250)
    serving.load_features(spark, database(serving_database), "features_retry", frame)
    connection.execute(serving.create_table_sql('"public"."features_retry__load_retried"', serving=False))
    options = {**database(serving_database).spark_options(), "dbtable": "public.features_retry__load_retried"}
    columns = [name for name, _, _ in serving.SERVING_COLUMNS]
    twice = features(spark, 1, 60, 300)
    for _ in range(2):
        twice.select(*columns).write.format("jdbc").options(**options).mode("append").save()
    with pytest.raises(serving.LoadError, match="60 distinct invoices staged, 61 written; nothing changed"):
        serving._replace_from_staging(
            connection, '"public"."features_retry"', '"public"."features_retry__load_retried"', 61, "v_retried"
        )
    connection.set_autocommit(True)
    assert table_rows(connection, "features_retry") == frame_rows(frame)
    moved = serving._replace_from_staging(
        connection, '"public"."features_retry"', '"public"."features_retry__load_retried"', 60, "v_retried"
    )
    connection.set_autocommit(True)
    assert moved == 60
    assert serving.table_version(connection, "public.features_retry") == ("v_retried", 60)
    assert table_rows(connection, "features_retry") == frame_rows(twice)
