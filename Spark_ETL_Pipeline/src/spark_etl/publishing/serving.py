"""Loading the features into a PostgreSQL serving table in two steps, so the table always holds the version the run's
summary names (the CSV too, unless --no-csv kept an earlier one). The marts stage has Spark append the version's
features into a staging table named for the version (`stage_features`); once the warehouse has committed the
version, the entry script swaps them in (`publish_current`): one transaction on the driver replaces the serving
table's rows and marks the table with the version (its comment). Readers see the old rows until that commit and the
new ones after (MVCC), never an empty, partial or missing table. A run that died between its commit and its swap, or
a --rollback, leaves the table a version off the warehouse's; the next run that loads the table swaps the current
version in first, rebuilding its staged rows from the warehouse when they are gone."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_etl.sources.jdbc import Connection, Database, JdbcError, connect, java_message, public_url, quote_identifier
from spark_etl.storage import versions

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
# the comment a staging table and the serving table carry: the version whose rows they hold, and how many
VERSION_COMMENT = re.compile(r"^spark_etl version ([A-Za-z0-9_.-]+) rows ([0-9]+)$")


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


def staging_table_name(table: str, version: str) -> str:
    """The staging table of one version of the features (a digest: a run id would not fit in 63 characters)."""
    return f"{table}{STAGING_MARKER}{hashlib.sha256(version.encode('utf-8')).hexdigest()[:12]}"


def version_comment(version: str, rows: int) -> str:
    """The comment naming a table's version. COMMENT ON takes no parameters, so the text is checked to be a
    plain literal (a run id and a count) before it is written into the statement."""
    text = f"spark_etl version {version} rows {rows}"
    if VERSION_COMMENT.match(text) is None:
        raise ValueError(f"{version!r} cannot name a version in a table's comment")
    return f"'{text}'"


def table_version(connection: Connection, qualified_table: str) -> tuple[str, int] | None:
    """The version and row count a table's comment names; None for a table without one, or no table.
    `qualified_table` as SQL writes it (`_qualified`: quoted, so a mixed-case name is found as created)."""
    [(comment,)] = connection.query("select obj_description(to_regclass(?), 'pg_class')", qualified_table)
    matched = VERSION_COMMENT.match(str(comment or ""))
    return None if matched is None else (matched.group(1), int(matched.group(2)))


@contextlib.contextmanager
def _locked(
    spark: SparkSession, database: Database, table_name: str, wait_seconds: float
) -> Iterator[tuple[Connection, str, str]]:
    """A driver connection holding the load lock of the serving table: (connection, schema, table)."""
    schema_name, table = parse_table_name(table_name)
    with _driver_connection(spark, database) as connection:
        if schema_name is None:
            [(schema_name,)] = connection.query("select current_schema()")
        schema = str(schema_name)
        acquire_load_lock(connection, f"{schema}.{table}", wait_seconds)
        yield connection, schema, table


def stage_features(
    spark: SparkSession,
    database: Database,
    table_name: str,
    features_df: DataFrame,
    version: str,
    lock_wait_seconds: float = 900.0,
) -> int:
    """The marts stage's step: under the load lock, drop earlier runs' staging tables (a pending swap was made at
    this run's start, `publish_current`), create this version's and let Spark append into it; the staging table's
    comment names the version and its rows. Returns the rows written; the serving table is untouched."""
    with _locked(spark, database, table_name, lock_wait_seconds) as (connection, schema, table):
        for stale in stale_staging_tables(connection, schema, table):
            connection.execute(f"drop table if exists {_qualified(schema, stale)}")
        staging_table = staging_table_name(table, version)
        staging = _qualified(schema, staging_table)
        connection.execute(create_table_sql(staging, serving=False))
        try:
            written = _write_staging(features_df, database, f"{schema}.{staging_table}")
            connection.execute(f"comment on table {staging} is {version_comment(version, written)}")
        except Exception as error:
            with contextlib.suppress(Exception):
                connection.execute(f"drop table if exists {staging}")
            target = f"{schema}.{table}"
            raise LoadError(f"loading {target} at {public_url(database.url)} failed: {java_message(error)}") from None
        return written


def swap(
    spark: SparkSession,
    database: Database,
    table_name: str,
    version: str,
    staged_rows: DataFrame | None = None,
    lock_wait_seconds: float = 900.0,
) -> int:
    """Make the serving table hold `version`: its staged rows replace the table's in one transaction that also
    sets the table's comment, then the staging table goes. Nothing to do when the table holds it already. When
    the version has no staging table (a run that died after staging it and before its swap had it dropped by
    another's staging), `staged_rows` are staged again first. Returns the rows the table holds."""
    with _locked(spark, database, table_name, lock_wait_seconds) as (connection, schema, table):
        serving = _qualified(schema, table)
        held = table_version(connection, serving)
        if held is not None and held[0] == version:
            return held[1]
        staging_table = staging_table_name(table, version)
        staging = _qualified(schema, staging_table)
        staged = table_version(connection, staging)
        if staged is None or staged[0] != version:
            if staged_rows is None:
                raise LoadError(f"{schema}.{table}: version {version} has no staged rows; nothing changed")
            connection.execute(f"drop table if exists {staging}")
            connection.execute(create_table_sql(staging, serving=False))
            written = _write_staging(staged_rows, database, f"{schema}.{staging_table}")
            staged = (version, written)
        try:
            loaded = _replace_from_staging(connection, serving, staging, staged[1], version)
        except LoadError:
            raise
        except Exception as error:
            target = f"{schema}.{table}"
            raise LoadError(f"loading {target} at {public_url(database.url)} failed: {java_message(error)}") from None
        finally:
            with contextlib.suppress(Exception):
                connection.set_autocommit(True)
                connection.execute(f"drop table if exists {staging}")
        return loaded


def load_features(
    spark: SparkSession,
    database: Database,
    table_name: str,
    features_df: DataFrame,
    lock_wait_seconds: float = 900.0,
) -> int:
    """Replace the serving table's rows with `features_df` at once (staged, then swapped, as a run does in two
    steps); returns the rows it now holds. Any failure before the swap's commit leaves the table as it was. A
    concurrent load's staging may drop this one's staging table between the two steps (it clears earlier
    staging tables), so the swap is given the rows to stage again."""
    version = f"adhoc_{uuid.uuid4().hex[:12]}"
    stage_features(spark, database, table_name, features_df, version, lock_wait_seconds)
    return swap(spark, database, table_name, version, features_df, lock_wait_seconds)


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


def _replace_from_staging(connection: Connection, serving: str, staging: str, expected_rows: int, version: str) -> int:
    """One transaction: delete + insert + the table's version (readers keep seeing the old rows, unblocked, until
    commit)."""
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
        connection.execute(f"comment on table {serving} is {version_comment(version, inserted)}")
        connection.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            connection.rollback()
        raise
    return inserted


def database_from_parameters(url: str, user: str) -> Database:
    """The serving database; the password comes from the environment."""
    try:
        return Database.from_environment(url, user)
    except ValueError as error:
        raise JdbcError(str(error)) from None


def with_as_of(spark: SparkSession, features_df: DataFrame, as_of_df: DataFrame) -> DataFrame:
    """The run's one as_of (fct_invoice_features leaves it to int_as_of_date) in every served row."""
    return features_df.crossJoin(F.broadcast(as_of_df.select("as_of_date")))


def stage_from_parameters(
    spark: SparkSession, url: str, user: str, table_name: str, features_df: DataFrame, version: str
) -> int:
    """What the marts notebook calls: this version's features staged for the swap after the commit."""
    served_df = with_as_of(spark, features_df, spark.table("int_as_of_date"))
    return stage_features(spark, database_from_parameters(url, user), table_name, served_df, version)


def publish_current(
    url: str, user: str, table_name: str, warehouse_dir: str, master: str, spark_conf: dict[str, str]
) -> None:
    """The entry script's step, in the run's kernel (`runner.SharedKernel.call`): make the serving table hold the
    warehouse's current version. After the run's commit, that swaps its staged rows in; at the start of a run,
    it completes a swap an earlier run did not make (killed after its commit, or a --rollback since), from the
    staged rows or, when they are gone, the version's stored features."""
    from spark_etl.runtime.session import spark_session
    from spark_etl.storage.warehouse import Warehouse

    spark = SparkSession.getActiveSession() or spark_session("serving", master, spark_conf)
    warehouse = Warehouse.open(warehouse_dir, spark)
    manifest, _ = warehouse.current()
    if manifest is None:
        return
    root = warehouse.root

    def stored(model_name: str) -> DataFrame:
        folders = [f"{root}/{folder}" for folder in manifest.folders(model_name)]
        return versions.read_folders(spark, folders, manifest.schema(model_name))

    served_df = with_as_of(spark, stored("fct_invoice_features"), stored("int_as_of_date"))
    swap(spark, database_from_parameters(url, user), table_name, manifest.version, served_df)
