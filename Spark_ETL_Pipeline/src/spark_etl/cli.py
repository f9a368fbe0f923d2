"""The entry script's options and main(): run the stage notebooks in order, then publish the run's files."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark

# jsonschema (under nbformat) imports rfc3987_syntax for its IRI format check, which builds an Earley parser on
# import: 2.4 s of this process's start-up, measured with `python -X importtime`. nbformat's schema checks no
# IRI, so the entry script goes without it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import spark_etl  # noqa: E402
from spark_etl import filesystem, jdbc_options, reports, runner  # noqa: E402
from spark_etl.models import parse_as_of  # noqa: E402

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
BAD_INPUT_ERRORS = {"ExtractError", "ReconciliationError", "JdbcError"}


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
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
        help="feature CSV; run_summary.json, rejects.csv and the executed notebooks go in its folder",
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
    parser.add_argument("--master", default="local[*]", metavar="URL", help="Spark master (default: local[*])")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for every stage's session, e.g. --conf spark.driver.memory=4g (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--separate-jvms",
        action="store_true",
        help="run each notebook in its own kernel and Spark JVM instead of sharing one (slower; for comparison)",
    )
    jdbc_options.add_options(parser)
    options = parser.parse_args(argv)
    try:
        parse_as_of(options.as_of)
    except ValueError as error:
        parser.error(str(error))
    jdbc_options.check_options(parser, options)
    if not filesystem.is_local(options.output):
        parser.error("--output must be a local file (--warehouse may be any Hadoop URI)")
    for setting in options.conf:
        if "=" not in setting or not setting.split("=", 1)[0].strip():
            parser.error(f"--conf: {setting!r} is not KEY=VALUE")
    return options


def spark_conf(options: argparse.Namespace) -> dict[str, str]:
    conf = dict(setting.split("=", 1) for setting in options.conf)
    conf.setdefault("spark.master", options.master)
    return jdbc_options.add_driver_jar(conf, options)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write beside the target, then move into place, so a reader never sees half a file."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def run_summary(options: argparse.Namespace, runs: list[runner.NotebookRun], seconds: float) -> dict[str, Any]:
    staging, intermediate, marts = (run.metrics for run in runs)
    return {
        "status": "succeeded",
        "as_of": intermediate["as_of"],
        "as_of_given": options.as_of is not None,
        **jdbc_options.summary(options, marts),
        "output": options.output,
        "output_rows": marts["output_rows"],
        "tables": staging["tables"],
        "rejects": staging["rejects"],
        "rejects_total": sum(staging["rejects"].values()),
        "invoices_with_unknown_account": marts["invoices_with_unknown_account"],
        "invoices_with_unknown_sku": intermediate["invoices_with_unknown_sku"],
        "stages": [
            {"notebook": run.notebook, "seconds": round(run.seconds, 3), "models": run.metrics["models"]}
            for run in runs
        ],
        "seconds": round(seconds, 3),
        "versions": {
            "spark_etl": spark_etl.__version__,
            "pyspark": pyspark.__version__,
            "spark": marts["spark_version"],
            "python": platform.python_version(),
        },
    }


def log(options: argparse.Namespace, line: str) -> None:
    if not options.quiet:
        print(line, file=sys.stderr, flush=True)


def stop_on_sigterm() -> None:
    """Turn SIGTERM (a scheduler cancelling the run) into SystemExit, so temporary files are cleaned up."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


@dataclass(frozen=True)
class RunPaths:
    """Where a run reads and writes; local paths made absolute, as the kernels run in notebooks/."""

    extracts: str
    warehouse: str
    output: Path
    pending: Path  # the run's files wait here until every stage has succeeded

    @property
    def output_dir(self) -> Path:
        return self.output.parent

    @property
    def executed_notebooks(self) -> Path:
        return self.output_dir / "notebooks"

    @property
    def reports(self) -> Path:
        return self.output_dir / "reports"


def run_paths(options: argparse.Namespace) -> RunPaths:
    output = Path(options.output).absolute()
    warehouse = options.warehouse or str(output.parent / "warehouse")
    return RunPaths(
        extracts=filesystem.qualify(options.extracts),
        warehouse=filesystem.qualify(warehouse),
        output=output,
        pending=output.parent / f"_tmp_run_{uuid.uuid4().hex[:12]}",
    )


def stage_parameters(options: argparse.Namespace, paths: RunPaths) -> dict[str, dict[str, Any]]:
    """What each notebook's parameters cell receives."""
    common = {"master": options.master, "spark_conf": spark_conf(options), "warehouse_dir": paths.warehouse}
    source, load = jdbc_options.notebook_parameters(options, paths.extracts)
    return {
        "01_staging.ipynb": {**common, **source},
        "02_intermediate.ipynb": {**common, "as_of": options.as_of or ""},
        "03_marts.ipynb": {
            **common,
            "output_path": str(paths.pending / paths.output.name),
            "rejects_path": str(paths.pending / "rejects.csv"),
            **load,
        },
    }


def run_stages(
    options: argparse.Namespace, paths: RunPaths, renderer: reports.ReportRenderer
) -> list[runner.NotebookRun]:
    """The stage notebooks in order, in one kernel on one JVM, one log line per notebook and per model; each
    finished notebook's report is rendered while the next one runs."""
    parameters = stage_parameters(options, paths)
    runs = []
    with contextlib.ExitStack() as shared:
        kernel = None if options.separate_jvms else shared.enter_context(runner.shared_kernel(spark_conf(options)))
        for notebook in runner.STAGE_NOTEBOOKS:
            run = runner.execute_notebook(notebook, paths.executed_notebooks, parameters[notebook], kernel=kernel)
            runs.append(run)
            renderer.submit(run.executed_path)
            log(options, f"{notebook:<24} {run.seconds:7.2f} s")
            for model in run.metrics["models"]:
                rows = "-" if model["rows"] is None else f"{model['rows']:,}"
                log(options, f"  {model['model']:<32} rows={rows:>12} {model['seconds']:7.2f} s")
    return runs


def publish(paths: RunPaths, summary: dict[str, Any]) -> None:
    """Move the run's files into place: the data first, the summary that describes it last."""
    write_json(paths.pending / "run_summary.json", summary)
    for name in (paths.output.name, "rejects.csv", "run_summary.json"):
        os.replace(paths.pending / name, paths.output_dir / name)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    missing_driver = jdbc_options.missing_driver(options)
    if missing_driver is not None:
        print(f"error: {missing_driver}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stop_on_sigterm()
    runner.quiet_papermill()
    started = time.perf_counter()
    paths = run_paths(options)
    for folder in (paths.executed_notebooks, paths.reports):
        shutil.rmtree(folder, ignore_errors=True)  # a previous run's copies would mix with this run's
        folder.mkdir(parents=True)
    paths.pending.mkdir()
    with reports.ReportRenderer(paths.reports) as renderer:
        try:
            runs = run_stages(options, paths, renderer)
            summary = run_summary(options, runs, time.perf_counter() - started)
            publish(paths, summary)
        except runner.NotebookError as error:
            message = f"{error} (executed notebook: {paths.executed_notebooks / error.notebook})"
            failed = {"status": "failed", "error": message, **jdbc_options.summary(options, None)}
            print(f"error: {message}", file=sys.stderr)
            try:
                renderer.finish(paths.executed_notebooks, failed)
            except Exception as render_error:  # the stage's error is the one to report and exit with
                print(f"warning: the reports could not be rendered: {render_error}", file=sys.stderr)
            return EXIT_BAD_INPUT if error.error_name in BAD_INPUT_ERRORS else EXIT_FAILED
        finally:
            shutil.rmtree(paths.pending, ignore_errors=True)
        renderer.finish(paths.executed_notebooks, summary)
    log(
        options,
        f"done: {summary['output_rows']:,} invoices -> {paths.output} "
        f"({summary['rejects_total']:,} rejected rows, as_of {summary['as_of']}) "
        f"in {summary['seconds']:.1f} s; reports: {paths.reports / 'index.html'}",
    )
    return 0
