"""Loading the features into a PostgreSQL serving table: Spark appends into a staging table named for the run,
then one transaction on the driver replaces the serving table's rows from it. Readers see the old rows until
that commit and the new ones after (MVCC), never an empty, partial or missing table."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_etl.jdbc import Connection, Database, JdbcError, connect, java_message, public_url, quote_identifier

# The serving table's columns and types: the contract's eight, the invoice's issue date and the run's as_of.
SERVING_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (column, PostgreSQL type, Spark type written into the staging table)
    ("inv_id", "bigint", "bigint"),
    ("acct_id", "bigint", "bigint"),
    ("inv_total", "numeric(18,2)", "decimal(18,2)"),
    ("inv_items", "integer", "int"),
    ("acct_age", "integer", "int"),
    ("num_inv_120d", "integer", "int"),
    ("cum_tot_inv_acct", "integer", "int"),
    ("is_late", "smallint", "smallint"),
    ("issue_date", "date", "date"),
    ("as_of_date", "date", "date"),
)
STAGING_MARKER = "__load_"
MAX_TABLE_NAME = 40  # leaves room for the staging suffix within PostgreSQL's 63 characters
LOCK_NAMESPACE = 0x5E71  # the first key of the two-key advisory lock: this pipeline's loads
WRITE_BATCH_SIZE = 10_000


class LoadError(Exception):
    """The features could not be loaded; the serving table is as it was."""


def parse_table_name(name: str) -> tuple[str | None, str]:
    """`table` or `schema.table`, each a plain identifier; the table name leaves room for the staging suffix."""
    schema, _, table = name.rpartition(".")
    for part in (schema, table) if schema else (table,):
        quote_identifier(part)
    if len(table) > MAX_TABLE_NAME or STAGING_MARKER in table:
        raise ValueError(f"{name!r}: a table name of at most {MAX_TABLE_NAME} characters without {STAGING_MARKER!r}")
    return (schema or None), table


def _qualified(schema: str, table: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


def acquire_load_lock(connection: Connection, target: str, wait_seconds: float) -> None:
    """Serialise loads into one table with an advisory lock on this session (released by PostgreSQL if the
    connection dies, so a killed run never leaves it held); wait for a running load up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        [(acquired,)] = connection.query("select pg_try_advisory_lock(?, hashtext(?))", LOCK_NAMESPACE, target)
        if acquired:
            return
        if time.monotonic() >= deadline:
            raise LoadError(
                f"another load into {target} is running (advisory lock held for {wait_seconds:.0f} s); nothing changed"
            )
        time.sleep(0.5)


def stale_staging_tables(connection: Connection, schema: str, table: str) -> list[str]:
    """Staging tables of this serving table left by earlier runs (only called under the load lock, so no
    running load owns one)."""
    rows = connection.query(
        "select table_name from information_schema.tables where table_schema = ? and starts_with(table_name, ?)",
        schema,
        table + STAGING_MARKER,
    )
    return sorted(str(name) for (name,) in rows)


def create_table_sql(qualified_table: str, serving: bool) -> str:
    """The serving table has the key and loaded_at; the staging table neither, so a retried task's duplicate
    rows land there and are dropped on the way out."""
    columns = [f"{quote_identifier(name)} {pg_type}" for name, pg_type, _ in SERVING_COLUMNS]
    if serving:
        columns[0] += " primary key"
        columns.append('"loaded_at" timestamptz not null')
        return f"create table if not exists {qualified_table} ({', '.join(columns)})"
    return f"create table {qualified_table} ({', '.join(columns)})"


@contextlib.contextmanager
def _driver_connection(spark: SparkSession, database: Database) -> Iterator[Connection]:
    connection = connect(spark, database)
    try:
        yield connection
    finally:
        connection.close()


def load_features(
    spark: SparkSession,
    database: Database,
    table_name: str,
    features_df: DataFrame,
    lock_wait_seconds: float = 900.0,
) -> int:
    """Replace the serving table's rows with `features_df`; returns the rows it now holds.

    Under the load lock: drop stale staging tables, create this run's, let Spark append into it, then in one
    transaction create the serving table if needed, delete its rows and insert the staged ones (one per inv_id),
    and check the count before committing. Any failure before the commit leaves the serving table as it was.
    """
    schema_name, table = parse_table_name(table_name)
    with _driver_connection(spark, database) as connection:
        if schema_name is None:
            [(schema_name,)] = connection.query("select current_schema()")
        schema = str(schema_name)
        target = f"{schema}.{table}"
        acquire_load_lock(connection, target, lock_wait_seconds)
        for stale in stale_staging_tables(connection, schema, table):
            connection.execute(f"drop table if exists {_qualified(schema, stale)}")
        staging_table = f"{table}{STAGING_MARKER}{uuid.uuid4().hex[:12]}"
        staging = _qualified(schema, staging_table)
        connection.execute(create_table_sql(staging, serving=False))
        try:
            written = _write_staging(features_df, database, f"{schema}.{staging_table}")
            loaded = _replace_from_staging(connection, _qualified(schema, table), staging, written)
        except LoadError:
            raise
        except Exception as error:
            raise LoadError(f"loading {target} at {public_url(database.url)} failed: {java_message(error)}") from None
        finally:
            with contextlib.suppress(Exception):
                connection.set_autocommit(True)
                connection.execute(f"drop table if exists {staging}")
        return loaded


def _write_staging(features_df: DataFrame, database: Database, staging_table: str) -> int:
    """Spark's JDBC append, batched (pgjdbc rewrites a batch into multi-row inserts); returns the rows the frame
    holds. (An observation would never report here: the JDBC sink runs the plan as a nested job.)"""
    columns = [F.col(name).cast(spark_type).alias(name) for name, _, spark_type in SERVING_COLUMNS]
    (
        features_df.select(*columns)
        .write.format("jdbc")
        .options(**database.spark_options())
        .option("dbtable", staging_table)
        .option("batchsize", str(WRITE_BATCH_SIZE))
        .option("reWriteBatchedInserts", "true")
        .option("isolationLevel", "READ_COMMITTED")
        .mode("append")
        .save()
    )
    return features_df.count()


def _replace_from_staging(connection: Connection, serving: str, staging: str, expected_rows: int) -> int:
    """One transaction: delete + insert (readers keep seeing the old rows, unblocked, until commit)."""
    names = ", ".join(quote_identifier(name) for name, _, _ in SERVING_COLUMNS)
    connection.set_autocommit(False)
    try:
        connection.execute(create_table_sql(serving, serving=True))
        connection.execute(f"delete from {serving}")
        inserted = connection.execute(
            f"insert into {serving} ({names}, loaded_at) "
            f'select distinct on ("inv_id") {names}, now() from {staging} order by "inv_id"'
        )
        if inserted != expected_rows:
            raise LoadError(f"{serving}: {inserted} distinct invoices staged, {expected_rows} written; nothing changed")
        connection.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            connection.rollback()
        raise
    return inserted


def load_from_parameters(spark: SparkSession, url: str, user: str, table_name: str, features_df: DataFrame) -> int:
    """What the marts notebook calls; the password comes from the environment."""
    try:
        database = Database.from_environment(url, user)
    except ValueError as error:
        raise JdbcError(str(error)) from None
    # the run's one as_of (fct_invoice_features leaves it to int_as_of_date) goes into every served row
    as_of_df = F.broadcast(spark.table("int_as_of_date").select("as_of_date"))
    return load_features(spark, database, table_name, features_df.crossJoin(as_of_df))
