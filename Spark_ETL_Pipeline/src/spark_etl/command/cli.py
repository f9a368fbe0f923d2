"""The entry script's main(): a run's lifecycle. The lock, the stage notebooks in order in one kernel, the
commit, the serving table's swap, then publishing; --rollback; a failure's one line and exit status."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pyspark

# jsonschema (under nbformat) imports rfc3987_syntax for its IRI format check, which builds an Earley parser on
# import: 2.4 s of this process's start-up, measured with `python -X importtime`. nbformat's schema checks no
# IRI, so the entry script goes without it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import spark_etl  # noqa: E402
from spark_etl import failures  # noqa: E402
from spark_etl.command import jdbc_options  # noqa: E402
from spark_etl.command.console import Console, RunFailedError, Termination  # noqa: E402
from spark_etl.command.options import DEFAULT_MASTER, check_before_spark, parse_options, spark_conf  # noqa: E402
from spark_etl.monitoring import checks, history  # noqa: E402
from spark_etl.publishing import reports, run_files, stage_metrics  # noqa: E402
from spark_etl.publishing.run_files import RunPaths  # noqa: E402
from spark_etl.runtime import runner  # noqa: E402
from spark_etl.runtime.session import SECRET_CONF_ENV, redacted_settings, secret_settings  # noqa: E402
from spark_etl.sources import extract, jdbc  # noqa: E402
from spark_etl.storage import filesystem  # noqa: E402
from spark_etl.storage.warehouse import Warehouse  # noqa: E402
from spark_etl.storage.warehouse_lock import LockFolderError  # noqa: E402

EXIT_FAILED = failures.EXIT_FAILED
EXIT_BAD_INPUT = failures.EXIT_BAD_INPUT
EXIT_LOCKED = failures.EXIT_BUSY  # another run holds the warehouse or the output folder; this one changed nothing


def driver_jit(options: argparse.Namespace, warehouse: Warehouse | None) -> str:
    """How the run's driver JVM compiles: "c1" (C1 alone) for a short run (`runner.is_quick_jit_run`: an incremental
    run over a warehouse on this machine known to hold few invoices, or a full run over small extracts on this
    machine), "tiered" (C1 then C2) otherwise, or "as set" when the run's spark.driver.extraJavaOptions replace the
    pipeline's JVM options."""
    if "spark.driver.extraJavaOptions" in spark_conf(options):
        return "as set"
    if options.separate_jvms:  # each notebook's JVM is started by PySpark, with C2
        return "tiered"
    stored_invoices = None
    if warehouse is not None:
        pointer = warehouse.pointer()
        stored_invoices = None if pointer is None else warehouse.output_rows(pointer.version)
    extract_bytes = None if options.source_is_jdbc else extract.local_extract_bytes(options.extracts)
    return "c1" if runner.is_quick_jit_run(options.incremental, stored_invoices, extract_bytes) else "tiered"


def run_summary(
    options: argparse.Namespace,
    runs: list[runner.NotebookRun],
    seconds: float,
    jit: str = "tiered",
    kept_csv_version: str | None = None,
    warehouse: str | None = None,
) -> dict[str, Any]:
    """`kept_csv_version`: the version whose CSV a --no-csv run kept (None: the run wrote its own); `warehouse`:
    the run's, qualified (a later --no-csv run keeps the CSV only if it is its warehouse's)."""
    staging, intermediate, marts, monitoring = stage_metrics.of_stages([run.metrics for run in runs])
    outcomes = monitoring["checks"]
    features_written = next(m["rows"] for m in marts["models"] if m["model"] == "fct_invoice_features")
    return {
        "status": "succeeded",
        "mode": "incremental" if options.incremental else "full",
        "version": marts["version"],
        "delta_rows": {table: counts["read"] for table, counts in staging["tables"].items()}
        if options.incremental
        else None,
        "rows_merged": {table: counts["kept"] for table, counts in staging["tables"].items()},
        # from the database: per table, the groups of rows added, changed, deleted or delivered again
        "source_changes": staging.get("source_changes"),
        "invoice_months_rewritten": staging["invoice_months"],
        "line_months_rewritten": staging["line_months"],
        "total_months_recomputed": intermediate["total_months"],
        "daily_months_recomputed": intermediate["daily_months"],
        "feature_months_recomputed": marts["feature_months"],
        "invoices_recomputed": features_written,
        "accounts_recomputed": intermediate["accounts_recomputed"],
        "as_of": intermediate["as_of"],
        "as_of_given": options.as_of is not None,
        "latest_data_date": intermediate["latest_data_date"],
        "is_as_of_after_data": intermediate["is_as_of_after_data"],
        **jdbc_options.summary(options, marts),
        "output": options.output,
        "warehouse": warehouse,
        # the rows of the version's feature table: the CSV's when the run wrote it
        "output_rows": monitoring["output_rows"] if marts["output_rows"] is None else marts["output_rows"],
        "csv_version": kept_csv_version or marts["version"],  # the version the feature CSV holds (--no-csv)
        "tables": staging["tables"],
        "rejects": staging["rejects"],
        "rejects_total": sum(staging["rejects"].values()),
        "invoices_with_unknown_account": marts["invoices_with_unknown_account"],
        "invoices_with_unknown_sku": intermediate["invoices_with_unknown_sku"],
        # the run's checks (monitoring/checks.py): warnings published; errors only with --accept-failed-checks
        "checks": outcomes,
        "checks_file": monitoring["checks_file"],
        "check_warnings": [outcome["name"] for outcome in checks.failed_at("warn", outcomes)],
        "check_errors": [outcome["name"] for outcome in checks.failed_at("error", outcomes)],
        "checks_override_reason": options.accept_failed_checks,
        "stages": [
            {"notebook": run.notebook, "seconds": round(run.seconds, 3), "models": run.metrics["models"]}
            for run in runs
        ],
        "seconds": round(seconds, 3),
        "driver_jit": jit,  # how the driver JVM compiled: c1, tiered or as set (driver_jit)
        "versions": {
            "spark_etl": spark_etl.__version__,
            "pyspark": pyspark.__version__,
            "spark": marts["spark_version"],
            "python": platform.python_version(),
        },
    }


def run_paths(options: argparse.Namespace) -> RunPaths:
    output = Path(options.output).absolute()
    warehouse = options.warehouse or str(output.parent / "warehouse")
    return RunPaths(
        run_id=run_files.new_run_id(),
        extracts=filesystem.qualify(options.extracts),
        warehouse=filesystem.qualify(warehouse),
        output=output,
    )


def stage_parameters(options: argparse.Namespace, paths: RunPaths, write_csv: bool = True) -> dict[str, dict[str, Any]]:
    """What each notebook's parameters cell receives (`write_csv` false: a --no-csv run that keeps the published
    CSV). Secret settings are shown redacted: the kernels take their values from the environment
    (session.with_secrets), so they are never written into a notebook."""
    common = {
        "master": options.master,
        "spark_conf": redacted_settings(spark_conf(options)),
        "warehouse_dir": paths.warehouse,
    }
    source, load = jdbc_options.notebook_parameters(options, paths.extracts)
    common["version"] = paths.run_id
    common["incremental"] = options.incremental
    return {
        "01_staging.ipynb": {
            **common,
            **source,
            "encoding": options.encoding or "",
        },
        "02_intermediate.ipynb": {**common, "as_of": options.as_of or ""},
        "03_marts.ipynb": {
            **common,
            "output_path": str(paths.version_outputs / paths.output.name),
            "rejects_path": str(paths.version_outputs / "rejects.csv"),
            "write_csv": write_csv,
            **load,
        },
        "04_monitoring.ipynb": {
            **common,
            "keep_versions": options.keep_versions,
            "commit": False,  # the entry script commits, once the run's summary is kept (commit)
            "checks_path": "" if options.checks is None else str(Path(options.checks).absolute()),
        },
    }


def run_environment(paths: RunPaths, console: Console) -> dict[str, str]:
    """What the run's kernels learn from the environment: the run's id (in every temporary name) and the secret
    settings' values (`session.with_secrets`), never written to a file."""
    return {filesystem.RUN_ID_ENV: paths.run_id, SECRET_CONF_ENV: json.dumps(console.secret_settings)}


def run_stages(
    options: argparse.Namespace,
    paths: RunPaths,
    renderer: reports.ReportRenderer,
    console: Console,
    termination: Termination,
    kernel: runner.SharedKernel | None,
    environment: dict[str, str],
    write_csv: bool = True,
) -> list[runner.NotebookRun]:
    """The stage notebooks in order, in the run's kernel (None with --separate-jvms: a fresh one each), one log
    line per notebook and per model; each finished notebook's report is rendered while the next one runs."""
    parameters = stage_parameters(options, paths, write_csv)
    runs = []
    termination.kernel = kernel
    try:
        for notebook in runner.STAGE_NOTEBOOKS:
            termination.check()
            run = runner.execute_notebook(
                notebook, paths.executed_notebooks, parameters[notebook], kernel=kernel, environment=environment
            )
            run_files.redact_files([run.executed_path], console.secret_values)
            runs.append(run)
            renderer.submit(run.executed_path)
            console.line(f"{notebook:<24} {run.seconds:7.2f} s")
            for model in run.metrics["models"]:
                rows = "-" if model["rows"] is None else f"{model['rows']:,}"
                console.line(f"  {model['model']:<32} rows={rows:>12} {model['seconds']:7.2f} s")
        termination.check()
    finally:
        termination.kernel = None
    return runs


def failure_of(
    error: BaseException, options: argparse.Namespace, paths: RunPaths, termination: Termination
) -> RunFailedError:
    """What the terminal is told, and the exit status, for whatever stopped the run."""
    if isinstance(error, RunFailedError):
        return error
    if isinstance(error, failures.RunError):  # the entry script's own (a check at error level failed)
        return RunFailedError(str(error), error.exit_status)
    if isinstance(error, runner.NotebookError):
        if termination.signal_number is not None:
            where = f" in {error.notebook}" + (f", cell {error.cell}" if error.cell is not None else "")
            return termination.failure(where)
        return RunFailedError(str(error), failures.exit_status_of(error.error_name))
    if isinstance(error, runner.KernelCallError):
        return RunFailedError(str(error), failures.exit_status_of(error.error_name))
    if isinstance(error, SystemExit) and termination.signal_number is not None:
        return termination.failure("")
    if isinstance(error, KeyboardInterrupt):
        return RunFailedError("stopped by SIGINT", 128 + signal.SIGINT)
    if isinstance(error, runner.SparkStartError):
        reason = run_files.log_reason(paths.log) or str(error)
        given = options.master != DEFAULT_MASTER
        return RunFailedError(
            f"Spark could not start with --master {options.master}: {reason}",
            EXIT_BAD_INPUT if given else EXIT_FAILED,
        )
    if isinstance(error, OSError):
        where = error.filename or f"the run's files in {paths.output_dir}"
        return RunFailedError(f"cannot write {where}: {error.strerror or error}", EXIT_FAILED)
    return RunFailedError(f"{type(error).__name__}: {runner.first_line(str(error))}", EXIT_FAILED)


def run(
    options: argparse.Namespace,
    paths: RunPaths,
    console: Console,
    termination: Termination,
    kernel: runner.SharedKernel | None = None,
) -> int:
    """One run in its own folder: its stages, the commit, then publishing; on any failure its notebooks, reports
    and log are kept under failed_runs/ and named in the error line."""
    started = time.perf_counter()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    warehouse = Warehouse.on_this_machine(paths.warehouse)  # None: elsewhere, reached through Spark alone
    summary: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None  # the monitoring stage's metrics: what the run's record keeps
    run_files.remove(run_files.dead_runs(paths))  # in the warehouse, a dead run's version goes at the next commit
    repair_published(paths, console, warehouse)
    # --no-csv: the published CSV stays, and is this version's too; a run with none to keep writes one
    kept_csv = None
    if options.no_csv:
        kept_csv = run_files.published_csv_version(paths.output_dir, paths.output.name, paths.warehouse)
    jit = driver_jit(options, warehouse) if kernel is None else kernel.jit
    run_files.start(paths)

    def failed_record(failure: RunFailedError) -> dict[str, Any]:
        """The record of this run, failed: with its metrics and checks when it got as far as being judged."""
        seconds = time.perf_counter() - started
        return history.run_record(paths.run_id, history.FAILED, started_at, seconds, summary, monitoring, str(failure))

    with run_files.output_to_log(paths.log) as terminal:
        console.terminal = terminal
        try:
            with contextlib.ExitStack() as run_kernel:
                if kernel is None and not options.separate_jvms:
                    kernel = run_kernel.enter_context(runner.shared_kernel(spark_conf(options), quick_jit=jit == "c1"))
                environment = run_environment(paths, console)
                with reports.ReportRenderer(paths.reports) as renderer:
                    try:
                        publish_to_serving(options, paths, kernel, environment)  # an earlier run's swap, if missed
                        runs = run_stages(
                            options, paths, renderer, console, termination, kernel, environment, kept_csv is None
                        )
                        monitoring = dict(runs[-1].metrics)
                        summary = run_summary(
                            options, runs, time.perf_counter() - started, jit, kept_csv, paths.warehouse
                        )
                        stop_on_failed_checks(options, summary)
                        renderer.finish(paths.executed_notebooks, summary)
                    except BaseException as error:
                        failure = failure_of(error, options, paths, termination)
                        failed = {"status": "failed", "error": str(failure), **jdbc_options.summary(options, None)}
                        if monitoring is not None:  # the index opens with the checks that stopped it
                            failed["checks"] = monitoring["checks"]
                        try:
                            run_files.redact_files([paths.executed_notebooks], console.secret_values)
                            renderer.finish(paths.executed_notebooks, failed)
                        except Exception as render_error:  # the stage's error is the one to report and exit with
                            console.line(f"warning: the reports could not be rendered: {render_error}")
                        if warehouse is None and monitoring is not None and termination.signal_number is None:
                            # a warehouse out of this process's reach keeps a judged run's record through the
                            # kernel, while it runs, unless the run is being stopped (one on this machine: below,
                            # whatever stopped the run)
                            keep_run_record(
                                options, paths, console, failed_record(failure), monitoring, kernel, environment
                            )
                        raise failure from error
                sys.stderr.flush()
                run_files.redact_files([paths.reports, paths.log], console.secret_values)
                if kept_csv is not None:
                    run_files.keep_published_csv(paths)
                run_files.keep_summary(paths, summary)  # before the commit: a current version has all its files
                commit(options, paths, warehouse, kernel, environment)
                run_files.fault_point("swap")
                publish_to_serving(options, paths, kernel, environment)
                record = history.run_record(
                    paths.run_id, history.SUCCEEDED, started_at, time.perf_counter() - started, summary, monitoring,
                    override_reason=options.accept_failed_checks,
                )  # fmt: skip
                keep_run_record(options, paths, console, record, monitoring, kernel, environment)
            run_files.publish(paths, [paths.output.name, "rejects.csv"])
            pointer = None if warehouse is None else warehouse.pointer()
            # the kept versions' files stay; elsewhere the pointer is out of reach: the newest N (run ids sort by time)
            kept = pointer.history if pointer is not None else run_files.newest_versions(paths, options.keep_versions)
            run_files.remove_output_versions(paths.output_dir, kept)
        except BaseException as error:
            failure = failure_of(error, options, paths, termination)
            pointer = None if warehouse is None else warehouse.pointer()
            if warehouse is not None and (pointer is None or pointer.version != paths.run_id):
                run_files.remove_uncommitted(paths)  # never committed: its CSVs go with it
            console.detail(traceback.format_exc())
            console.line(f"error: {failure} ({keep_failed_run(paths, console)})", is_error=True)
            is_recorded = monitoring is not None or pointer is not None  # a failed first run leaves no warehouse
            if warehouse is not None and is_recorded and (pointer is None or pointer.version != paths.run_id):
                keep_run_record(options, paths, console, failed_record(failure), monitoring)
            return failure.status
        finally:
            run_files.remove([paths.pending])
            console.terminal = sys.stderr
    assert summary is not None
    for outcome in summary["checks"]:
        if outcome["status"] == "failed":
            accepted = " (accepted: --accept-failed-checks)" if outcome["level"] == "error" else ""
            console.line(f"warning: check {outcome['name']} ({outcome['level']}){accepted}: {outcome['message']}")
    if summary["is_as_of_after_data"]:
        console.line(
            f"warning: --as-of {summary['as_of']} is after the latest date in the data ({summary['latest_data_date']})"
        )
    csv_note = "" if kept_csv is None else f" (not rewritten, --no-csv: it holds version {kept_csv})"
    console.line(
        f"done ({summary['mode']}, version {summary['version']}): "
        f"{summary['output_rows']:,} invoices -> {paths.output}{csv_note} "
        f"({summary['rejects_total']:,} rejected rows, as_of {summary['as_of']}) "
        f"in {summary['seconds']:.1f} s; reports: {paths.output_dir / 'reports' / 'index.html'}"
    )
    return 0


def stop_on_failed_checks(options: argparse.Namespace, summary: dict[str, Any]) -> None:
    """A check at error level failed: the run stops before its commit (exit status 4), unless it was accepted
    for this run with a reason (--accept-failed-checks)."""
    if options.accept_failed_checks is None:
        checks.stop_on_errors(summary["checks"])


def keep_run_record(
    options: argparse.Namespace,
    paths: RunPaths,
    console: Console,
    record: dict[str, Any],
    monitoring: dict[str, Any] | None,
    kernel: runner.SharedKernel | None = None,
    environment: dict[str, str] | None = None,
) -> None:
    """The run's record in the warehouse's history: here for a warehouse on this machine, through Spark in the
    run's kernel for any other (with --separate-jvms, one started for it, as for the commit). A record that cannot
    be written is a warning: the run has committed or failed already, and says so."""
    keep_runs = checks.DEFAULT_KEEP_RUNS if monitoring is None else int(monitoring["keep_runs"])
    try:
        if filesystem.is_local(paths.warehouse):
            history.RunHistory(paths.warehouse, filesystem.LocalFiles()).write(record, keep_runs)
        else:
            arguments = {"root": paths.warehouse, "record": record, "keep_runs": keep_runs}
            module = "spark_etl.monitoring.history"
            call_in_kernel(options, kernel, environment or {}, module, "write_in_kernel", arguments)
    except Exception as error:
        console.line(f"warning: the run's history record could not be written: {runner.first_line(str(error))}")


def call_in_kernel(
    options: argparse.Namespace,
    kernel: runner.SharedKernel | None,
    environment: dict[str, str],
    module: str,
    function: str,
    arguments: dict[str, Any],
) -> None:
    """What the entry script does through Spark outside the stages (a remote warehouse's commit, the serving
    table's swap): in the run's kernel, or with --separate-jvms in one started for it."""
    with contextlib.ExitStack() as scope:
        if kernel is None:
            kernel = scope.enter_context(runner.shared_kernel(spark_conf(options)))
        kernel.prepare_stage(environment)
        spark = {"master": options.master, "spark_conf": redacted_settings(spark_conf(options))}
        kernel.call(module, function, {**arguments, **spark})


def commit(
    options: argparse.Namespace,
    paths: RunPaths,
    warehouse: Warehouse | None,
    kernel: runner.SharedKernel | None,
    environment: dict[str, str],
) -> None:
    """The run's version becomes current, by the one commit (`Warehouse.commit`): here for a warehouse on this
    machine, in the run's kernel through Hadoop for any other."""
    if warehouse is not None:
        warehouse.commit(paths.run_id, options.keep_versions)
        return
    arguments = {"root": paths.warehouse, "version": paths.run_id, "keep_versions": options.keep_versions}
    call_in_kernel(options, kernel, environment, "spark_etl.storage.warehouse", "commit_in_kernel", arguments)


def publish_to_serving(
    options: argparse.Namespace, paths: RunPaths, kernel: runner.SharedKernel | None, environment: dict[str, str]
) -> None:
    """With --load-jdbc-table: the serving table holds the warehouse's current version (`serving.publish_current`),
    at a run's start (completing an earlier run's swap) and after its commit (swapping its own in)."""
    if options.load_jdbc_table is None:
        return
    arguments = {
        "url": options.jdbc_url,
        "user": options.jdbc_user,
        "table_name": options.load_jdbc_table,
        "warehouse_dir": paths.warehouse,
    }
    call_in_kernel(options, kernel, environment, "spark_etl.publishing.serving", "publish_current", arguments)


def repair_published(paths: RunPaths, console: Console, warehouse: Warehouse | None) -> None:
    """Before a run: publish the current version's files again if a run was killed between its commit and the
    end of its publishing, and drop the files of versions no longer kept or never committed."""
    pointer = None if warehouse is None else warehouse.pointer()
    if pointer is None:
        return
    names = [paths.output.name, "rejects.csv"]
    is_stale = run_files.published_version(paths.output_dir) != pointer.version
    if is_stale and run_files.republish(paths.output_dir, pointer.version, names):
        console.line(f"re-published version {pointer.version}: a run stopped before publishing it")
    run_files.remove_output_versions(paths.output_dir, pointer.history)


def rollback(paths: RunPaths, console: Console) -> int:
    """Make the previous committed version current again and publish its kept CSVs and summary; no Spark."""
    warehouse = Warehouse.on_this_machine(paths.warehouse)
    if warehouse is None:
        raise RunFailedError(f"--rollback needs a warehouse on this machine, not {paths.warehouse}", EXIT_BAD_INPUT)
    pointer = warehouse.pointer()
    if pointer is None or len(pointer.history) < 2:
        raise RunFailedError(f"--rollback: {paths.warehouse} has no earlier version kept", EXIT_BAD_INPUT)
    previous = pointer.history[1]
    kept = paths.output_dir / run_files.OUTPUT_VERSIONS / previous
    names = [paths.output.name, "rejects.csv", run_files.SUMMARY_NAME]
    if not all((kept / name).is_file() for name in names):
        raise RunFailedError(f"--rollback: version {previous}'s files are not kept in {kept}", EXIT_BAD_INPUT)
    left, current = warehouse.rollback()
    rolled_back_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    history.RunHistory(paths.warehouse, filesystem.LocalFiles()).mark_superseded(left, f"rollback at {rolled_back_at}")
    run_files.republish(paths.output_dir, current, names[:2])
    console.line(f"rolled back: version {current} is current again (was {left}); {paths.output} re-published")
    return 0


def keep_failed_run(paths: RunPaths, console: Console) -> str:
    """Keep a failed run's notebooks, reports and log (secrets redacted); say where, or why they could not be."""
    try:
        sys.stderr.flush()
        run_files.redact_files([paths.executed_notebooks, paths.reports, paths.log], console.secret_values)
        return f"notebooks, reports and log: {run_files.keep_failed(paths)}"
    except OSError as error:
        return f"its notebooks, reports and log could not be kept: {error.strerror or error}"


def prepare_output_dir(paths: RunPaths) -> None:
    try:
        paths.output_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(paths.output_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied", str(paths.output_dir))
    except (FileExistsError, NotADirectoryError):
        raise RunFailedError(
            f"cannot write the output at {paths.output_dir}: not a directory", EXIT_BAD_INPUT
        ) from None
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise RunFailedError(f"cannot write the output at {paths.output_dir}: {reason}", EXIT_BAD_INPUT) from None


def main(argv: list[str] | None = None, kernel: runner.SharedKernel | None = None) -> int:
    """The entry script. `kernel`: a kernel already running to execute the stages in, instead of one started for
    the run (the test suite's, warm; `runner.shared_kernel`)."""
    options = parse_options(argv)
    missing_driver = jdbc_options.missing_driver(options)
    if missing_driver is not None:
        print(f"error: {missing_driver}", file=sys.stderr)
        return EXIT_BAD_INPUT
    console = Console(options.quiet)
    termination = Termination()
    previous_handler = termination.install()
    runner.quiet_papermill()
    paths = run_paths(options)
    secrets = secret_settings(spark_conf(options))
    # the database password too: whatever a driver or a notebook printed, it is in no file the run writes
    console.secret_values = [*secrets.values(), *filter(None, [os.environ.get(jdbc.PASSWORD_ENVIRONMENT_VARIABLE)])]
    console.secret_settings = secrets
    os.environ[SECRET_CONF_ENV] = json.dumps(secrets)  # for the kernels; never written to a file
    os.environ[filesystem.RUN_ID_ENV] = paths.run_id
    try:
        check_before_spark(options)
        # the warehouse's lock first, before anything is created: a refused run changes nothing
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(Warehouse(paths.warehouse, filesystem.LocalFiles()).lock(paths.run_id, paths.output))
            except LockFolderError as error:
                at_fault = error.folder == paths.output_dir or error.folder in paths.output_dir.parents
                what = f"the output at {paths.output_dir}" if at_fault else f"the warehouse at {paths.warehouse}"
                raise RunFailedError(f"cannot write {what}: {error.reason}", EXIT_BAD_INPUT) from None
            prepare_output_dir(paths)
            held.enter_context(run_files.output_lock(paths.output_dir))
            if options.rollback:
                return rollback(paths, console)
            local_warehouse = Warehouse.on_this_machine(paths.warehouse)
            if options.incremental and local_warehouse is not None and local_warehouse.pointer() is None:
                # known before any Spark starts (a remote warehouse is checked by the staging notebook)
                raise RunFailedError(
                    f"--incremental needs a warehouse a full run has published to; {paths.warehouse} has no version "
                    "yet (run once without --incremental)",
                    EXIT_BAD_INPUT,
                )
            return run(options, paths, console, termination, kernel)
    except failures.BusyError as error:  # the warehouse's or the output folder's lock
        console.line(f"error: {error}; nothing was changed", is_error=True)
        return error.exit_status
    except RunFailedError as failure:
        console.line(f"error: {failure}", is_error=True)
        return failure.status
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
