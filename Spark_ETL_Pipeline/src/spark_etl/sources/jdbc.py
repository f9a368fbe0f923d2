"""PostgreSQL over JDBC as the source: one consistent snapshot of the four tables, read as text in parallel
partitions and stored as Parquet before the snapshot is released, so the staging models are the CSV path's."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_etl import failures
from spark_etl.sources.extract import CORRUPT_RECORD_COLUMN, EXTRACTS, Extract, ExtractError
from spark_etl.storage import load

PASSWORD_ENVIRONMENT_VARIABLE = "ETL_JDBC_PASSWORD"
DEFAULT_DRIVER_JAR = "/usr/share/java/postgresql.jar"
DRIVER_CLASS = "org.postgresql.Driver"
FETCH_SIZE = 10_000
# The numeric key each large table is read in partitions on; skus is a few hundred rows, read whole.
PARTITION_KEYS = {"accounts": "account_id", "invoices": "invoice_id", "invoice_line_items": "invoice_id"}
INTEGER_TYPES = {"smallint", "integer", "bigint"}
URL_PATTERN = re.compile(r"^jdbc:postgresql://(?P<server>[^/?#@\s]+)/(?P<database>[^/?#\s]+)(?:\?(?P<query>[^#\s]*))?$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
SNAPSHOT_ID_PATTERN = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
CREDENTIAL_PARAMETERS = {"user", "password", "sslpassword", "sslkey", "sslcert"}
# each row's hash, computed by PostgreSQL in the snapshot: what an incremental run compares (source_state.py)
ROW_HASH_COLUMN = "_row_hash"


class JdbcError(failures.BadInputError):
    """The database cannot be used: no driver, unreachable, refused the login. One line, no password."""


def check_url(url: str) -> str:
    """A `jdbc:postgresql://HOST[:PORT]/DB` URL without credentials (they would be written into the executed
    notebooks as a parameter); the error says what is wrong."""
    match = URL_PATTERN.match(url)
    if match is None:
        if "@" in url:  # user:password@host: say so without repeating the URL, which holds the password
            raise ValueError("the URL must not hold credentials: pass --jdbc-user and set ETL_JDBC_PASSWORD")
        raise ValueError(f"{url!r} is not jdbc:postgresql://HOST[:PORT]/DATABASE")
    query = match.group("query") or ""
    names = {pair.split("=", 1)[0].lower() for pair in query.split("&") if pair}
    if names & CREDENTIAL_PARAMETERS:
        raise ValueError("the URL must not hold credentials: pass --jdbc-user and set ETL_JDBC_PASSWORD")
    return url


def public_url(url: str) -> str:
    """The URL as reports name it: server and database only (no query parameters)."""
    return url.split("?", 1)[0]


def quote_identifier(name: str) -> str:
    """A validated PostgreSQL identifier, quoted, so it can only ever name an object."""
    if not IDENTIFIER_PATTERN.match(name):
        raise ValueError(f"{name!r} is not a plain identifier (letters, digits, _ and $, at most 63)")
    return '"' + name + '"'


def driver_jar(path: str | None) -> str:
    """The pgjdbc jar the run's JVM needs; a missing one is a one-line error saying how to get it."""
    jar = path or DEFAULT_DRIVER_JAR
    if not Path(jar).is_file():
        raise JdbcError(
            f"PostgreSQL JDBC driver not found at {jar}: install it with `apt-get install libpostgresql-jdbc-java` "
            "or pass --jdbc-driver-jar PATH"
        )
    return str(Path(jar).resolve())


@dataclass(frozen=True)
class Database:
    """Where to connect and as whom; the password is taken from the environment, never from a file or flag."""

    url: str
    user: str
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, url: str, user: str) -> Database:
        return cls(check_url(url), user, os.environ.get(PASSWORD_ENVIRONMENT_VARIABLE))

    def spark_options(self) -> dict[str, str]:
        """Options for Spark's JDBC source and sink (the `driver` class makes Spark load it from spark.jars)."""
        options = {"url": self.url, "driver": DRIVER_CLASS, "user": self.user}
        if self.password is not None:
            options["password"] = self.password
        return options


def java_message(error: BaseException) -> str:
    """The first line of the Java exception's message behind a py4j error (its stack trace is no use here)."""
    java_exception = getattr(error, "java_exception", None)
    message = str(java_exception.getMessage()) if java_exception is not None else str(error)
    return (message.strip().splitlines() or [type(error).__name__])[0]


class Connection:
    """A JDBC connection on the driver's JVM, with parameterised statements only."""

    def __init__(self, java_connection: Any) -> None:
        self._connection = java_connection

    def _prepare(self, sql: str, parameters: tuple[object, ...]) -> Any:
        statement = self._connection.prepareStatement(sql)
        for index, value in enumerate(parameters, start=1):
            statement.setObject(index, value)
        return statement

    def execute(self, sql: str, *parameters: object) -> int:
        """Run one statement; returns its update count."""
        statement = self._prepare(sql, parameters)
        try:
            statement.execute()
            return int(statement.getUpdateCount())
        finally:
            statement.close()

    def query(self, sql: str, *parameters: object) -> list[tuple[Any, ...]]:
        """Rows as tuples of Python values (numbers and dates come back as their text)."""
        statement = self._prepare(sql, parameters)
        try:
            result = statement.executeQuery()
            width = int(result.getMetaData().getColumnCount())
            rows = []
            while result.next():
                rows.append(tuple(_python_value(result.getObject(i)) for i in range(1, width + 1)))
            return rows
        finally:
            statement.close()

    def set_autocommit(self, autocommit: bool) -> None:
        self._connection.setAutoCommit(autocommit)

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()


def _python_value(value: Any) -> Any:
    """Plain Python values; numerics (py4j's Decimal), dates and other Java objects as their text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    return str(value.toString())


def connect(spark: SparkSession, database: Database) -> Connection:
    """Open a connection from the driver's JVM. The driver class is instantiated directly: with the jar given in
    spark.jars it sits in a child class loader that java.sql.DriverManager does not search."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    properties = jvm.java.util.Properties()
    properties.setProperty("user", database.user)
    if database.password is not None:
        properties.setProperty("password", database.password)
    properties.setProperty("connectTimeout", "30")
    properties.setProperty("ApplicationName", "spark_etl")
    try:
        java_connection = jvm.org.postgresql.Driver().connect(database.url, properties)
    except Exception as error:
        raise JdbcError(
            f"cannot connect to {public_url(database.url)} as {database.user}: {java_message(error)}"
        ) from None
    if java_connection is None:
        raise JdbcError(f"{public_url(database.url)}: the PostgreSQL driver does not accept this URL")
    return Connection(java_connection)


@dataclass(frozen=True)
class JdbcSource:
    """The four tables in one schema of one database, and how to read them."""

    database: Database
    schema: str = "public"
    partitions: int = 0  # 0: the session's default parallelism
    fetch_size: int = FETCH_SIZE

    def describe(self) -> str:
        return f"{public_url(self.database.url)} schema {self.schema}"


@contextlib.contextmanager
def exported_snapshot(spark: SparkSession, database: Database) -> Iterator[tuple[Connection, str]]:
    """A REPEATABLE READ transaction on the driver and the id of its exported snapshot, held until the block
    ends; every partition imports it, so all four tables and all partitions see the same committed rows."""
    connection = connect(spark, database)
    try:
        connection.set_autocommit(False)
        connection.execute("set transaction isolation level repeatable read")
        [(snapshot_id,)] = connection.query("select pg_export_snapshot()")
        if not SNAPSHOT_ID_PATTERN.match(str(snapshot_id)):
            raise JdbcError(f"unexpected snapshot id from the server: {snapshot_id!r}")
        yield connection, str(snapshot_id)
    finally:
        with contextlib.suppress(Exception):
            connection.rollback()
        connection.close()


def table_columns(connection: Connection, schema: str, table: str) -> dict[str, str]:
    """Column name -> data type of a table, as information_schema lists it (empty: no such table)."""
    rows = connection.query(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ?",
        schema,
        table,
    )
    return {str(name): str(data_type) for name, data_type in rows}


def check_tables(connection: Connection, source: JdbcSource) -> dict[str, dict[str, str]]:
    """Every table and column the pipeline needs, or an ExtractError naming the first missing one."""
    found = {}
    for extract in EXTRACTS:
        columns = table_columns(connection, source.schema, extract.table_name)
        where = f"{source.describe()}: table {source.schema}.{extract.table_name}"
        if not columns:
            raise ExtractError(f"{where} not found")
        for column in extract.columns:
            if column not in columns:
                raise ExtractError(f"{where}: missing column {column} (columns: {','.join(sorted(columns))})")
        found[extract.table_name] = columns
    return found


def text_subquery(schema: str, extract: Extract, key: str | None) -> str:
    """The pushed-down query: each needed column cast to text (so staging validates it as it does a CSV field),
    the row's hash, plus the numeric key as it is, for the partitions' ranges.

    The hash is md5 of the row's text values as a row value's text (`("a b",,"")`): each value quoted when it
    holds a separator, a quote or a space, a null as nothing and an empty text as `""`, so two rows hash alike
    only when every needed column reads the same (columns the pipeline does not read are left out)."""
    texts = [f"cast({quote_identifier(name)} as text)" for name in extract.columns]
    columns = [f"{text} as {quote_identifier(name)}" for text, name in zip(texts, extract.columns, strict=True)]
    columns.append(f"md5(cast(row({', '.join(texts)}) as text)) as {quote_identifier(ROW_HASH_COLUMN)}")
    if key is not None:
        columns.append(f"{quote_identifier(key)} as _partition_key")
    table = f"{quote_identifier(schema)}.{quote_identifier(extract.table_name)}"
    return f"(select {', '.join(columns)} from {table}) as extract_rows"


@dataclass(frozen=True)
class TableRead:
    """How one table was read: its rows in the snapshot and the partitions used."""

    table_name: str
    rows: int
    partitions: int


def read_table(
    spark: SparkSession,
    source: JdbcSource,
    snapshot: tuple[Connection, str],
    extract: Extract,
    column_types: dict[str, str],
) -> tuple[DataFrame, TableRead]:
    """One table as all-string columns plus an empty _corrupt_record, the shape extract.read_extract gives, and
    each row's hash (`_row_hash`).

    Bounds and the row count come from the exporting transaction, so they describe the same snapshot the
    partitions read; rows outside the bounds (and null keys) still land in the first or last partition.
    """
    connection, snapshot_id = snapshot
    if source.fetch_size <= 0:  # without a fetch size autocommit stays on and the snapshot import has no effect
        raise ValueError("the fetch size must be positive")
    key = PARTITION_KEYS.get(extract.table_name)
    if key is not None and column_types.get(key) not in INTEGER_TYPES:
        key = None  # a text-typed key (a raw copy of the table) cannot be ranged: read it whole
    table = f"{quote_identifier(source.schema)}.{quote_identifier(extract.table_name)}"
    if key is not None:
        [(rows, low, high)] = connection.query(
            f"select count(*), min({quote_identifier(key)}), max({quote_identifier(key)}) from {table}"
        )
    else:
        [(rows,)] = connection.query(f"select count(*) from {table}")
        low = high = None
    wanted = source.partitions or spark.sparkContext.defaultParallelism
    options = {
        **source.database.spark_options(),
        "dbtable": text_subquery(source.schema, extract, key),
        "fetchsize": str(source.fetch_size),
        "sessionInitStatement": (
            f"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{snapshot_id}'"
        ),
    }
    partitions = 1
    if key is not None and low is not None and high is not None and wanted > 1 and int(high) > int(low):
        partitions = min(wanted, int(high) - int(low) + 1)
        options.update(
            partitionColumn="_partition_key",
            lowerBound=str(low),
            upperBound=str(int(high) + 1),
            numPartitions=str(partitions),
        )
    raw_df = spark.read.format("jdbc").options(**options).load()
    string_df = raw_df.select(
        *[raw_df[name] for name in extract.columns],
        F.lit(None).cast("string").alias(CORRUPT_RECORD_COLUMN),
        raw_df[ROW_HASH_COLUMN],
    )
    return string_df, TableRead(extract.table_name, int(rows), partitions)


def extract_path(warehouse_dir: str, table_name: str) -> str:
    return load.model_path(warehouse_dir, "extract", f"raw_{table_name}")


def store_snapshot(spark: SparkSession, source: JdbcSource, warehouse_dir: str) -> list[TableRead]:
    """Read the four tables from one snapshot and store them as Parquet while it is still held, so no later
    job (a retry, a second scan) queries the database after the snapshot is gone. Checks that each table's
    rows stored equal its count(*) in the snapshot."""
    reads = []
    with exported_snapshot(spark, source.database) as snapshot:
        column_types = check_tables(snapshot[0], source)
        for extract in EXTRACTS:
            table_df, read = read_table(spark, source, snapshot, extract, column_types[extract.table_name])
            stored = load.write_parquet(table_df, extract_path(warehouse_dir, extract.table_name))
            if stored != read.rows:
                raise JdbcError(f"{extract.table_name}: {stored} rows stored, {read.rows} in the snapshot")
            reads.append(read)
    return reads


def source_from_parameters(url: str, user: str, schema: str, partitions: int) -> JdbcSource:
    """What the staging notebook builds from its parameters; the password comes from the environment."""
    quote_identifier(schema)
    return JdbcSource(Database.from_environment(url, user), schema, int(partitions))
