"""The entry script's options: parsed, checked in one line each (exit status 2), and what can be known wrong before
any JVM starts."""

from __future__ import annotations

import argparse
from typing import NoReturn

from spark_etl import failures
from spark_etl.command import jdbc_options
from spark_etl.command.console import RunFailedError
from spark_etl.modelling.models import parse_as_of
from spark_etl.monitoring import checks
from spark_etl.storage import filesystem
from spark_etl.storage.warehouse import DEFAULT_KEEP_VERSIONS

DEFAULT_MASTER = "local[*]"
EXIT_BAD_INPUT = failures.EXIT_BAD_INPUT


class OneLineParser(argparse.ArgumentParser):
    """Bad options are one line too, like every other failure (the usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python Spark_ETL_Pipeline/src/Spark_ETL_Pipeline.py",
        description=(
            "Build the late-payment feature table (one row per invoice) from the accounts, skus, invoices "
            "and invoice_line_items CSV extracts, by running the staging, intermediate and marts notebooks."
        ),
    )
    parser.add_argument(
        "--extracts", metavar="DIR", help="folder of the four CSV extracts (default: data_extracts, unless --jdbc-url)"
    )
    parser.add_argument(
        "--output",
        default="data_outputs/pipeline_output.csv",
        metavar="FILE",
        help="feature CSV (default: data_outputs/pipeline_output.csv); run_summary.json, rejects.csv, the executed "
        "notebooks, reports and run.log go in its folder",
    )
    parser.add_argument(
        "--warehouse",
        metavar="DIR",
        help="Parquet warehouse of the staged models (default: warehouse/ beside --output)",
    )
    parser.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="date unpaid invoices are judged at (default: the latest issue or payment date in the data)",
    )
    parser.add_argument(
        "--encoding",
        metavar="NAME",
        help="the extracts' character encoding, e.g. ISO-8859-1 (default: UTF-8, and a file that is not valid "
        "UTF-8 stops the run naming its first bad line)",
    )
    parser.add_argument("--master", default=DEFAULT_MASTER, metavar="URL", help="Spark master (default: local[*])")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for every stage's session, e.g. --conf spark.driver.memory=4g (repeatable)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print nothing but errors, one line each (the detail is in run.log)"
    )
    parser.add_argument(
        "--separate-jvms",
        action="store_true",
        help="run each notebook in its own kernel and Spark JVM instead of sharing one (slower; for comparison)",
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="the extracts hold only rows new or changed since the last run: merge them into the warehouse's "
        "current version (which a full run must have published) and recompute only what they change; with "
        "--jdbc-url, the database is compared with what the last run from it read, deletions included",
    )
    parser.add_argument(
        "--keep-versions",
        type=int,
        default=DEFAULT_KEEP_VERSIONS,
        metavar="N",
        help=f"warehouse versions kept for --rollback (default: {DEFAULT_KEEP_VERSIONS})",
    )
    parser.add_argument(
        "--rollback",
        action="store_true",
        help="make the previous warehouse version current again and re-publish its CSVs and summary; runs no stage",
    )
    parser.add_argument(
        "--no-csv",
        action="store_true",
        help="do not rewrite the feature CSV (every invoice) in this run: the version is committed and published "
        "as usual and the CSV stays as the last run that wrote it, named by csv_version in run_summary.json; a run "
        "with no published CSV to keep writes one",
    )
    parser.add_argument(
        "--checks",
        metavar="FILE",
        help="the run's checks (YAML) instead of the package's default_checks.yml; an error-level check that fails "
        "stops the run with exit status 4 before anything is published",
    )
    parser.add_argument(
        "--accept-failed-checks",
        metavar="REASON",
        help="publish this run although error-level checks fail, after review; the reason is kept in the run's "
        "history record and run_summary.json",
    )
    jdbc_options.add_options(parser)
    options = parser.parse_args(argv)
    if options.keep_versions < 1:
        parser.error("--keep-versions must be 1 or more")
    if options.rollback and options.incremental:
        parser.error("--rollback runs no stage: it cannot be --incremental")
    if options.rollback and options.no_csv:
        parser.error("--rollback runs no stage: it re-publishes the kept CSV, --no-csv has nothing to leave out")
    if options.accept_failed_checks is not None and not options.accept_failed_checks.strip():
        parser.error("--accept-failed-checks needs a reason")
    try:
        parse_as_of(options.as_of)
    except ValueError as error:
        parser.error(str(error))
    jdbc_options.check_options(parser, options)
    if not filesystem.is_plain_path(options.output):
        parser.error("--output must be a local file (--warehouse may be any Hadoop URI)")
    for setting in options.conf:
        if "=" not in setting or not setting.split("=", 1)[0].strip():
            parser.error(f"--conf: {setting!r} is not KEY=VALUE")
    return options


def spark_conf(options: argparse.Namespace) -> dict[str, str]:
    conf = dict(setting.split("=", 1) for setting in options.conf)
    conf.setdefault("spark.master", options.master)
    return jdbc_options.add_driver_jar(conf, options)


def check_before_spark(options: argparse.Namespace) -> None:
    """What is known wrong before any JVM or kernel starts, and before any file is made: a typo in a local
    --extracts stops the run here, in a second, not in the staging notebook with a failed run's files to clean up.
    Whatever needs Spark to tell (a file's header, a remote folder) the staging notebook checks."""
    if options.rollback:
        return
    try:
        checks.load(options.checks)
    except checks.ChecksFileError as error:
        raise RunFailedError(str(error), EXIT_BAD_INPUT) from None
    if options.source_is_jdbc:
        return
    folder = filesystem.local_folder(options.extracts)
    if folder is not None and not folder.is_dir():
        # "folder not found": the staging notebook's words for a missing remote folder (extract.register_extracts)
        what = "folder not found" if not folder.exists() else "not a folder"
        raise RunFailedError(f"{filesystem.qualify(options.extracts)}: {what}", EXIT_BAD_INPUT)
