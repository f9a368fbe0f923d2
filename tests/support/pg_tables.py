"""PostgreSQL tables for the JDBC tests, on the session's server (pg_server): the four tables, text-typed or
typed, filled from extracts with COPY; the entry script run with the password as a scheduler passes it; the
serving table's rows and the feature CSV's in one shape."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from pyspark.sql import SparkSession

import pg_server
from spark_etl.sources import extract, jdbc
from support.pipeline import run_pipeline, start_pipeline

SERVER_PASSWORD = pg_server.SUPERUSER_PASSWORD


def create_tables(server: pg_server.PostgresServer, database: str, schema: str, typed: bool) -> None:
    """The four tables; text-typed copies can hold the bad rows a typed table would refuse."""
    statements = [f"create schema if not exists {schema}"]
    for each in extract.EXTRACTS:
        columns = (
            pg_server.TYPED_TABLES[each.table_name] if typed else ", ".join(f"{name} text" for name in each.columns)
        )
        statements.append(f"create table {schema}.{each.table_name} ({columns})")
    server.psql("; ".join(statements), database)


def copy_extracts(server: pg_server.PostgresServer, database: str, schema: str, folder: Path) -> None:
    """Load each CSV with COPY (quoted line breaks stay in their field; an empty unquoted field is NULL, as
    Spark's CSV reader makes it null)."""
    for each in extract.EXTRACTS:
        path = folder / each.file_name
        columns = ", ".join(each.columns)
        server.psql(f"\\copy {schema}.{each.table_name} ({columns}) from '{path}' with (format csv, header)", database)


def create_database(server: pg_server.PostgresServer, name: str) -> str:
    server.psql(f"drop database if exists {name}")
    server.psql(f"create database {name}")
    return server.jdbc_url(name)


def database(url: str) -> jdbc.Database:
    return jdbc.Database(url, pg_server.SUPERUSER, SERVER_PASSWORD)


def well_formed_copy(source: Path, target: Path) -> Path:
    """The extracts without the records of the wrong field count (a table has no such rows); every other
    record as it was, bad values included."""
    target.mkdir(parents=True, exist_ok=True)
    for each in extract.EXTRACTS:
        with (source / each.file_name).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        with (target / each.file_name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(row for row in rows if len(row) == len(rows[0]))
    return target


def run_with_password(
    *args: str, password: str = SERVER_PASSWORD, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The entry script with the database password in its environment, as a scheduler passes it."""
    return run_pipeline(*args, env={jdbc.PASSWORD_ENVIRONMENT_VARIABLE: password, **(env or {})})


def start_with_password(*args: str, password: str = SERVER_PASSWORD) -> subprocess.Popen[str]:
    """`run_with_password` started in the background (support.pipeline.finish waits for it)."""
    return start_pipeline(*args, env={jdbc.PASSWORD_ENVIRONMENT_VARIABLE: password})


def csv_as_table_rows(path: Path) -> list[tuple[object, ...]]:
    """The feature CSV's rows in the shape the serving table returns them (empty field = NULL)."""
    rows: list[tuple[object, ...]] = []
    for row in csv.reader(path.open(newline="", encoding="utf-8")):
        if row[0] == "inv_id":
            continue
        rows.append(tuple(None if value == "" else (value if i == 2 else int(value)) for i, value in enumerate(row)))
    return rows


def serving_rows(spark: SparkSession, url: str, table: str) -> list[tuple[object, ...]]:
    connection = jdbc.connect(spark, database(url))
    try:
        return connection.query(
            "select inv_id, acct_id, inv_total::text, inv_items, acct_age, num_inv_120d, cum_tot_inv_acct, "
            f"is_late::int from {table} order by inv_id"
        )
    finally:
        connection.close()
