"""The entry script's options and main(): run the stage notebooks in order, then publish the run's files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import spark_etl
from spark_etl import runner
from spark_etl.models import parse_as_of

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
BAD_INPUT_ERRORS = {"ExtractError", "ReconciliationError"}


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python Spark_ETL_Pipeline/src/Spark_ETL_Pipeline.py",
        description=(
            "Build the late-payment feature table (one row per invoice) from the accounts, skus, invoices "
            "and invoice_line_items CSV extracts, by running the staging, intermediate and marts notebooks."
        ),
    )
    parser.add_argument(
        "--extracts", default="data_extracts", metavar="DIR", help="folder of the four CSV extracts"
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
    parser.add_argument(
        "--master", default="local[*]", metavar="URL", help="Spark master (default: local[*])"
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for every stage's session, e.g. --conf spark.driver.memory=4g (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    options = parser.parse_args(argv)
    try:
        parse_as_of(options.as_of)
    except ValueError as error:
        parser.error(str(error))
    for setting in options.conf:
        if "=" not in setting or not setting.split("=", 1)[0].strip():
            parser.error(f"--conf: {setting!r} is not KEY=VALUE")
    return options


def is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("file:")


def spark_conf(options: argparse.Namespace) -> dict[str, str]:
    conf = dict(setting.split("=", 1) for setting in options.conf)
    conf.setdefault("spark.master", options.master)
    return conf


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write beside the target, then move into place, so a reader never sees half a file."""
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8"
    ) as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def run_summary(
    options: argparse.Namespace, runs: list[runner.NotebookRun], seconds: float
) -> dict[str, Any]:
    staging, intermediate, marts = (run.metrics for run in runs)
    import pyspark

    return {
        "status": "succeeded",
        "as_of": intermediate["as_of"],
        "as_of_given": options.as_of is not None,
        "extracts": options.extracts,
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


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    stop_on_sigterm()
    started = time.perf_counter()
    output_path = Path(options.output).absolute() if is_local(options.output) else None
    if output_path is None:
        print("error: --output must be a local file (the warehouse may be any Hadoop URI)", file=sys.stderr)
        return EXIT_BAD_INPUT
    output_dir = output_path.parent
    warehouse = options.warehouse or str(output_dir / "warehouse")
    extracts = str(Path(options.extracts).absolute()) if is_local(options.extracts) else options.extracts
    if is_local(warehouse):
        warehouse = str(Path(warehouse).absolute())
    executed_dir = output_dir / "notebooks"
    pending_dir = output_dir / f"_tmp_run_{uuid.uuid4().hex[:12]}"
    runner.quiet_papermill()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(executed_dir, ignore_errors=True)
        executed_dir.mkdir()
        pending_dir.mkdir()
        conf = spark_conf(options)
        common = {"master": options.master, "spark_conf": conf, "warehouse_dir": warehouse}
        stage_parameters = {
            "01_staging.ipynb": {**common, "extracts_dir": extracts},
            "02_intermediate.ipynb": {**common, "as_of": options.as_of or ""},
            "03_marts.ipynb": {
                **common,
                "output_path": str(pending_dir / output_path.name),
                "rejects_path": str(pending_dir / "rejects.csv"),
            },
        }
        runs = []
        with runner.shared_spark_jvm(conf):
            for notebook in runner.STAGE_NOTEBOOKS:
                run = runner.execute_notebook(notebook, executed_dir, stage_parameters[notebook])
                runs.append(run)
                log(options, f"{notebook:<24} {run.seconds:7.2f} s")
                for model in run.metrics["models"]:
                    rows = "-" if model["rows"] is None else f"{model['rows']:,}"
                    log(options, f"  {model['model']:<32} rows={rows:>12} {model['seconds']:7.2f} s")
        summary = run_summary(options, runs, time.perf_counter() - started)
        write_json(pending_dir / "run_summary.json", summary)
        # publish only now that every stage succeeded: the data first, the summary that describes it last
        for name in (output_path.name, "rejects.csv", "run_summary.json"):
            os.replace(pending_dir / name, output_dir / name)
    except runner.NotebookError as error:
        print(f"error: {error} (executed notebook: {executed_dir / error.notebook})", file=sys.stderr)
        return EXIT_BAD_INPUT if error.error_name in BAD_INPUT_ERRORS else EXIT_FAILED
    finally:
        shutil.rmtree(pending_dir, ignore_errors=True)
    log(
        options,
        f"done: {summary['output_rows']:,} invoices -> {output_path} "
        f"({summary['rejects_total']:,} rejected rows, as_of {summary['as_of']}) "
        f"in {summary['seconds']:.1f} s",
    )
    return 0
