"""The entry script's PostgreSQL options, kept apart from cli.py so the CSV path's code reads as before: what
they add to the parser, the Spark settings, the notebooks' parameters and the run summary."""

from __future__ import annotations

import argparse
from typing import Any

from spark_etl.publishing import stage_metrics
from spark_etl.publishing.serving import parse_table_name
from spark_etl.sources import jdbc


def add_options(parser: argparse.ArgumentParser) -> None:
    """PostgreSQL as the source (in place of --extracts) and as the destination of the features."""
    parser.add_argument(
        "--jdbc-url",
        metavar="URL",
        help="jdbc:postgresql://HOST:PORT/DB to extract from (unless --extracts is given) and to load into; "
        "the password comes from the ETL_JDBC_PASSWORD environment variable",
    )
    parser.add_argument("--jdbc-user", metavar="USER", help="database user for --jdbc-url")
    parser.add_argument(
        "--jdbc-schema", default="public", metavar="NAME", help="schema of the four tables (default: public)"
    )
    parser.add_argument(
        "--jdbc-partitions",
        type=int,
        default=0,
        metavar="N",
        help="parallel reads per large table (default: Spark's default parallelism)",
    )
    parser.add_argument(
        "--jdbc-driver-jar", metavar="PATH", help=f"PostgreSQL JDBC driver (default: {jdbc.DEFAULT_DRIVER_JAR})"
    )
    parser.add_argument(
        "--load-jdbc-table", metavar="NAME", help="also load the features into this table ([schema.]table)"
    )


def check_options(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    """Resolve the source (the database when --jdbc-url is given without --extracts), and refuse what cannot
    work before any JVM starts."""
    options.source_is_jdbc = options.jdbc_url is not None and options.extracts is None
    if options.extracts is None:
        options.extracts = "data_extracts"
    if options.jdbc_url is None:
        if options.load_jdbc_table is not None:
            parser.error("--load-jdbc-table needs --jdbc-url")
        return
    try:
        jdbc.check_url(options.jdbc_url)
        jdbc.quote_identifier(options.jdbc_schema)
        if options.load_jdbc_table is not None:
            parse_table_name(options.load_jdbc_table)
    except ValueError as error:
        parser.error(str(error))
    if not options.jdbc_user:
        parser.error("--jdbc-url needs --jdbc-user")
    if options.jdbc_partitions < 0:
        parser.error("--jdbc-partitions must be 0 (default) or more")


def missing_driver(options: argparse.Namespace) -> str | None:
    """The one-line error for a run that needs the driver jar and has none."""
    if options.jdbc_url is None:
        return None
    try:
        jdbc.driver_jar(options.jdbc_driver_jar)
    except jdbc.JdbcError as error:
        return str(error)
    return None


def add_driver_jar(conf: dict[str, str], options: argparse.Namespace) -> dict[str, str]:
    """The driver jar must be on the JVM's class path from the start (spark.jars, kept with any given)."""
    if options.jdbc_url is not None:
        jar = jdbc.driver_jar(options.jdbc_driver_jar)
        conf["spark.jars"] = ",".join(p for p in (conf.get("spark.jars"), jar) if p)
    return conf


def notebook_parameters(options: argparse.Namespace, extracts_dir: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The staging notebook's source parameters and the marts notebook's load parameters; never the password,
    which the kernel reads from its environment."""
    database = {"jdbc_url": options.jdbc_url or "", "jdbc_user": options.jdbc_user or ""}
    source: dict[str, Any] = {"extracts_dir": extracts_dir}
    if options.source_is_jdbc:
        source = {**database, "jdbc_schema": options.jdbc_schema, "jdbc_partitions": options.jdbc_partitions}
    load = {**database, "load_table": options.load_jdbc_table} if options.load_jdbc_table else {}
    return source, load


def summary(options: argparse.Namespace, marts_metrics: stage_metrics.MartsMetrics | None) -> dict[str, Any]:
    """The run summary's `extracts`, `source` and `loaded_table`, named without credentials."""
    source: dict[str, Any] = {"kind": "csv", "extracts": options.extracts}
    if options.source_is_jdbc:
        source = {"kind": "jdbc", "url": jdbc.public_url(options.jdbc_url), "schema": options.jdbc_schema}
    loaded = None
    if options.load_jdbc_table is not None and marts_metrics is not None:
        loaded = {
            "table": options.load_jdbc_table,
            "rows": marts_metrics["loaded_rows"],
            "url": jdbc.public_url(options.jdbc_url),
            "version": marts_metrics["version"],  # the version the table holds once the run has published
        }
    return {"extracts": None if options.source_is_jdbc else options.extracts, "source": source, "loaded_table": loaded}
