"""The benchmark's report: docs/benchmarks.md from the measurements, with the targets and their verdicts."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench_delta import NEW_SHARE, PAID_SHARE
from bench_jobs import CONTRACT_MAX_SCALE, DRIVER_MEMORY_1000X, SKEW_SCALE, SKEW_SHARE, ScaleResult
from bench_measure import SAMPLE_SECONDS, ProcessRun, gib
from spark_etl.runtime.runner import QUICK_JIT_MAX_INVOICES

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
TABLES = ("accounts", "skus", "invoices", "invoice_line_items")

# The project's targets: ratio name -> the most it may be.
TARGET_FLOOR_1X = 1.5
TARGET_DUCKDB_100X = 8.0
TARGET_SCALING = 10.0
TARGET_SKEW = 1.3
TARGET_1000X_SECONDS = 600.0
# (e) incremental / (b) full, by scale: a day's run should cost a fraction of a full one, the more so the more
# history there is
TARGET_INCREMENTAL = {100.0: 0.5, 1000.0: 0.2}
# issue 24: the pipeline's full run against the naive reference's (f) at 1x and 100x, and a day's incremental run
# against (f)'s full run over the same day's data at 100x (a daily user of (f) recomputes everything)
TARGET_NAIVE_FULL = {1.0: 1.5, 100.0: 1.0}
TARGET_NAIVE_INCREMENTAL_100X = 0.4


def scale_label(scale: float) -> str:
    return f"{scale:g}x"


def command_output(command: list[str]) -> str | None:
    """A command's standard output, or None when it cannot run or fails."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def machine_facts(results: list[ScaleResult], repo: Path) -> list[tuple[str, str]]:
    """What the numbers were measured on, read from the machine and from the runs themselves."""
    cpu_model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(encoding="utf-8"), re.MULTILINE)
        cpu_model = match.group(1).strip() if match else cpu_model
    versions: dict[str, str] = {}
    for result in results:
        versions = {**result.versions, **versions}
        if result.summary:
            versions.setdefault("spark", str(result.summary.get("versions", {}).get("spark", "")))
    import duckdb

    commit = command_output(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    changes = command_output(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    state = "not a git checkout"
    if commit:
        state = f"commit {commit}, " + ("with uncommitted changes to tracked files" if changes else "clean")
    return [
        ("CPUs (nproc)", command_output(["nproc"]) or str(os.cpu_count())),
        ("CPU model", cpu_model),
        ("memory", gib(psutil.virtual_memory().total)),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("Java", versions.get("java", "unknown (the bare Spark run did not report it)")),
        ("Spark", versions.get("spark", "unknown")),
        ("DuckDB", duckdb.__version__),
        ("code measured", f"`{repo}` at {state}"),
    ]


def sameness(identical: bool) -> str:
    return "identical" if identical else "**different**"


def fmt_seconds(run: ProcessRun | None) -> str:
    if run is None:
        return "not run"
    return f"{run.seconds:.1f}" if run.ok else f"failed ({run.seconds:.1f})"


def fmt_rate(rows: int, run: ProcessRun | None) -> str:
    return f"{rows / run.seconds:,.0f}" if run is not None and run.ok and run.seconds > 0 else "-"


def fmt_rows(rows: int | None) -> str:
    return "-" if rows is None else f"{rows:,}"


def scale_table(result: ScaleResult) -> list[str]:
    rows_in = result.extracts.rows
    lines = [
        f"### {result.label}",
        "",
        f"Extracts: {rows_in['accounts']:,} accounts, {rows_in['skus']:,} SKUs, "
        f"{rows_in['invoices']:,} invoices, {rows_in['invoice_line_items']:,} lines "
        f"(`{result.extracts.path}`).",
        "",
        "| run | wall s | rows in (invoices + lines) | rows out | rows in per s | peak memory | CPU s "
        "| other load (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    split = result.day_split
    day0_rows = split.day0_rows if split else rows_in
    delta_rows = split.delta_rows if split else rows_in
    runs = (
        ("(a) bare Spark: start, read the four files", result.floor, None, rows_in),
        ("(b) pipeline end to end", result.pipeline, result.pipeline_rows_out, rows_in),
        ("(c) DuckDB, same contract", result.duckdb, result.duckdb_rows_out, rows_in),
        (
            "(f) naive reference: one Spark SQL query, written through pandas",
            result.naive,
            result.naive_rows_out,
            rows_in,
        ),
        (
            "(d) Spark, the contract alone: models as views, one write",
            result.contract,
            result.contract_rows_out,
            rows_in,
        ),
        ("(b') pipeline end to end on day 0, into the warehouse (e) updates", result.day0, None, day0_rows),
        ("(e) pipeline `--incremental`, one day's delta", result.incremental, result.incremental_rows_out, delta_rows),
    )
    for name, run, rows_out, rows in runs:
        if run is None:
            continue
        lines.append(
            f"| {name} | {fmt_seconds(run)} | {rows['invoices']:,} + {rows['invoice_line_items']:,} "
            f"| {fmt_rows(rows_out)} | {fmt_rate(rows['invoices'] + rows['invoice_line_items'], run)} "
            f"| {gib(run.peak_rss)} | {run.cpu_seconds:.1f} | {run.other_cores:.2f} |"
        )
    lines.append("")
    if result.spark_metrics is not None:
        metrics = result.spark_metrics
        lines += [
            f"Pipeline run, from Spark's event log: driver memory {result.driver_memory or 'default (1g)'}; "
            f"executor JVM heap peak {gib(metrics['peak_jvm_heap_bytes'])}; spilled to disk "
            f"{gib(metrics['disk_bytes_spilled'])} (the extracts are {gib(result.extract_bytes)} of CSV), "
            f"in memory {gib(metrics['memory_bytes_spilled'])}; failed tasks {metrics['failed_tasks']}.",
            "",
        ]
    lines += delta_lines(result)
    for name, run, _, _ in runs:
        if run is not None and not run.ok:
            lines += [f"**{name} failed:** {run.failure()}", ""]
    if result.day0 is not None and not result.day0.ok:
        lines += ["(e) was not run: the full run on day 0 it updates failed.", ""]
    if result.identical is not None:
        lines += [f"DuckDB's feature CSV vs the pipeline's: {sameness(result.identical)}, byte for byte.", ""]
    if result.contract_identical is not None:
        verdict = sameness(result.contract_identical)
        lines += [f"DuckDB's feature CSV vs the contract-alone run's: {verdict}, byte for byte.", ""]
    if result.incremental_identical is not None:
        verdict = sameness(result.incremental_identical)
        lines += [f"The incremental run's (e) feature CSV vs the full run's (b): {verdict}, byte for byte.", ""]
    if result.summary:
        lines += [
            "Rows per table in the pipeline's run_summary.json:",
            "",
            "| table | read | kept | collapsed | rejected |",
            "|---|---:|---:|---:|---:|",
        ]
        for table in TABLES:
            counts = result.summary.get("tables", {}).get(table, {})
            cells = " | ".join(fmt_rows(counts.get(key)) for key in ("read", "kept", "collapsed", "rejected"))
            lines.append(f"| {table} | {cells} |")
        lines.append("")
    if result.summary and result.duckdb_summary:
        same = result.summary.get("tables") == result.duckdb_summary.get("tables") and result.summary.get(
            "rejects"
        ) == result.duckdb_summary.get("rejects")
        lines += [
            "Row accounting (read / kept / collapsed / rejected per table) and reject reasons: "
            + ("the same in both engines." if same else "**differ between the engines**."),
            "",
        ]
    return lines


def delta_lines(result: ScaleResult) -> list[str]:
    """What (e)'s delta held, and what its run_summary.json says it merged and recomputed."""
    split = result.day_split
    if split is None:
        return []
    invoices = result.extracts.rows["invoices"]
    stored = split.day0_rows["invoices"]
    paid_dates = " to ".join(split.paid_issue_dates)
    lines = [
        f"(e)'s delta: {split.new_invoices:,} new invoices issued on {', '.join(split.new_issue_dates)} "
        f"({split.new_invoices / invoices:.2%} of the {invoices:,}) with their {split.new_lines:,} lines, and "
        f"{split.paid_invoices:,} invoices paid ({split.paid_invoices / stored:.2%} of the {stored:,} stored; the "
        f"most recent paid ones, issued {paid_dates}, left unpaid on day 0); accounts and SKUs unchanged "
        "(header-only files). Day 0 is the generated extracts without the new invoices and lines and without "
        "those payments, so day 0 plus the delta is what (b) read.",
        "",
    ]
    summary = result.incremental_summary
    if summary:
        lines += [
            f"(e)'s run_summary.json: mode {summary.get('mode')}, version {summary.get('version')}; "
            f"{fmt_count(summary.get('invoices_recomputed'))} invoices recomputed; issue months of invoices "
            f"rewritten {fmt_months(summary.get('invoice_months_rewritten'))}, of lines rewritten "
            f"{fmt_months(summary.get('line_months_rewritten'))}, of totals recomputed "
            f"{fmt_months(summary.get('total_months_recomputed'))}.",
            "",
        ]
    return lines


def fmt_count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def fmt_months(months: Any) -> str:
    if not isinstance(months, list):
        return "-"
    return f"{len(months)} ({', '.join(str(month) for month in months)})" if months else "0"


def pipeline_seconds(results: list[ScaleResult], scale: float, skewed: bool = False) -> float | None:
    for result in results:
        if result.scale == scale and result.skewed == skewed and result.pipeline and result.pipeline.ok:
            return result.pipeline.seconds
    return None


def engine_seconds(results: list[ScaleResult], scale: float, engine: str) -> float | None:
    for result in results:
        run = getattr(result, engine) if result.scale == scale and not result.skewed else None
        if isinstance(run, ProcessRun) and run.ok:
            return run.seconds
    return None


def ratio_row(name: str, numerator: float | None, denominator: float | None, target: float, verdicts: str) -> str:
    """One ratio against its target; `verdicts` is 'within/above', the words for each side of the target."""
    if numerator is None or denominator is None or denominator <= 0:
        return f"| {name} | - | <= {target:g} | not measured (a run was skipped or failed) |"
    value = numerator / denominator
    within, above = verdicts.split("/")
    measured = f"{value:.2f} ({numerator:.1f} s / {denominator:.1f} s)"
    return f"| {name} | {measured} | <= {target:g} | {within if value <= target else above} |"


def ratio_rows(results: list[ScaleResult]) -> list[str]:
    """The project's ratios, each with PASS/MISS against its target, or why it could not be measured."""
    scales = sorted({result.scale for result in results})
    specs: list[tuple[str, float | None, float | None, float]] = [
        (
            "pipeline / bare Spark at 1x",
            pipeline_seconds(results, 1.0),
            engine_seconds(results, 1.0, "floor"),
            TARGET_FLOOR_1X,
        ),
        (
            "pipeline / DuckDB at 100x",
            pipeline_seconds(results, 100.0),
            engine_seconds(results, 100.0, "duckdb"),
            TARGET_DUCKDB_100X,
        ),
        (
            "pipeline time(100x) / time(10x)",
            pipeline_seconds(results, 100.0),
            pipeline_seconds(results, 10.0),
            TARGET_SCALING,
        ),
    ]
    if 1000.0 in scales:
        specs.append(
            (
                "pipeline time(1000x) / time(100x)",
                pipeline_seconds(results, 1000.0),
                pipeline_seconds(results, 100.0),
                TARGET_SCALING,
            )
        )
    specs.append(
        (
            f"pipeline skewed / unskewed at 100x (one account holds {SKEW_SHARE:.0%} of the invoices)",
            pipeline_seconds(results, SKEW_SCALE, skewed=True),
            pipeline_seconds(results, SKEW_SCALE),
            TARGET_SKEW,
        )
    )
    lines = ["| ratio | measured | target | result |", "|---|---:|---:|---|"]
    lines += [ratio_row(*spec, verdicts="PASS/MISS") for spec in specs]
    return lines + thousand_rows(results) + incremental_rows(results)


def incremental_rows(results: list[ScaleResult]) -> list[str]:
    """(e) / (b) at 100x, and at 1000x when measured; a run faster than the target whose CSV differs from (b)'s
    misses it too."""
    scales = {result.scale for result in results}
    lines = []
    for scale, target in TARGET_INCREMENTAL.items():
        if scale not in scales and scale != 100.0:
            continue
        identical = next((r.incremental_identical for r in results if r.scale == scale and not r.skewed), None)
        verdicts = "PASS/MISS" if identical is not False else "MISS: the CSV differs from (b)'s/MISS"
        name = f"incremental (e) / full (b) at {scale_label(scale)}, one day's delta"
        numerator = engine_seconds(results, scale, "incremental")
        lines.append(ratio_row(name, numerator, pipeline_seconds(results, scale), target, verdicts))
    return lines


def naive_rows(results: list[ScaleResult]) -> list[str]:
    """The pipeline against (f), the naive reference, measured side by side in the same run: its full run (b) at
    1x and 100x, and a day's incremental run (e) at 100x against (f) over the whole extracts (day 0 and the delta)."""
    lines = ["| ratio | measured | target | result |", "|---|---:|---:|---|"]
    for scale, target in TARGET_NAIVE_FULL.items():
        naive = engine_seconds(results, scale, "naive")
        name = f"pipeline full run (b) / naive reference (f) at {scale_label(scale)}"
        lines.append(ratio_row(name, pipeline_seconds(results, scale), naive, target, "PASS/MISS"))
    name = "pipeline incremental run (e) / naive reference's full run (f) at 100x, one day's delta"
    incremental, naive = engine_seconds(results, 100.0, "incremental"), engine_seconds(results, 100.0, "naive")
    lines.append(ratio_row(name, incremental, naive, TARGET_NAIVE_INCREMENTAL_100X, "PASS/MISS"))
    return lines


def bound_rows(results: list[ScaleResult]) -> list[str]:
    """The 1x and 100x targets set against the contract-alone run instead of the pipeline: how much of each
    target this SQL uses up on Spark before any notebook runs."""
    specs = [
        ("contract alone / bare Spark at 1x", 1.0, "floor", TARGET_FLOOR_1X),
        ("contract alone / DuckDB at 100x", 100.0, "duckdb", TARGET_DUCKDB_100X),
    ]
    lines = ["| ratio | measured | target | the contract alone is |", "|---|---:|---:|---|"]
    for name, scale, engine, target in specs:
        numerator, denominator = engine_seconds(results, scale, "contract"), engine_seconds(results, scale, engine)
        lines.append(ratio_row(name, numerator, denominator, target, "within the target/above the target"))
    return lines


def thousand_rows(results: list[ScaleResult]) -> list[str]:
    """The 1000x target: under ten minutes, on a driver of at most 4g, no failed task, spill within the data."""
    for result in results:
        if result.scale == 1000.0 and not result.skewed and result.pipeline is not None:
            run, metrics = result.pipeline, result.spark_metrics
            if not run.ok or metrics is None:
                return [f"| 1000x in under 10 min, {DRIVER_MEMORY_1000X} driver | {run.failure()} | | MISS |"]
            within = (
                run.seconds <= TARGET_1000X_SECONDS
                and metrics["failed_tasks"] == 0
                and metrics["disk_bytes_spilled"] <= result.extract_bytes
            )
            measured = (
                f"{run.seconds:.1f} s, driver {result.driver_memory}, {metrics['failed_tasks']} failed tasks, "
                f"{gib(metrics['disk_bytes_spilled'])} spilled to disk vs {gib(result.extract_bytes)} of extracts"
            )
            target = f"<= {TARGET_1000X_SECONDS:g} s, 0 failed, spill <= extracts"
            return [f"| 1000x end to end | {measured} | {target} | {'PASS' if within else 'MISS'} |"]
    return []


def equality_lines(results: list[ScaleResult]) -> list[str]:
    """Whether DuckDB's feature CSV equals the pipeline's and the contract-alone run's, byte for byte, at each
    size where DuckDB and at least one of them completed; and whether the incremental run's equals the full
    run's."""
    compared = [r for r in results if r.identical is not None or r.contract_identical is not None]
    lines = ["Output check: not made (DuckDB and a Spark run did not both complete at any size)."]
    if compared:
        lines = ["Output check, DuckDB's feature CSV against the Spark runs', byte for byte:", ""]
    for result in compared:
        checks = []
        if result.identical is not None:
            checks.append(f"the pipeline's: {sameness(result.identical)} ({fmt_rows(result.pipeline_rows_out)} rows)")
        if result.contract_identical is not None:
            checks.append(f"the contract-alone run's: {sameness(result.contract_identical)}")
        lines.append(f"- {result.label}: " + "; ".join(checks))
    lines.append("")
    incremental = [r for r in results if r.incremental_identical is not None]
    if incremental:
        lines += [
            "Output check, the incremental run's (e) feature CSV against the full run's (b) over the same data:",
            "",
        ]
        for result in incremental:
            assert result.incremental_identical is not None
            lines.append(
                f"- {result.label}: {sameness(result.incremental_identical)}, byte for byte "
                f"({fmt_rows(result.incremental_rows_out)} rows)"
            )
        lines.append("")
    return lines


def skew_note(results: list[ScaleResult]) -> list[str]:
    """The skewed set is not the same size: the skewed account's invoices come on top of the others."""
    sizes = {result.skewed: result.extracts.rows["invoices"] for result in results if result.scale == SKEW_SCALE}
    if len(sizes) < 2:
        return []
    return [
        f"The skewed {scale_label(SKEW_SCALE)} set has {sizes[True]:,} invoices against {sizes[False]:,} "
        "unskewed (the skewed account's invoices come on top), so its ratio includes that extra "
        f"{sizes[True] / sizes[False] - 1:.1%} of data.",
        "",
    ]


MONITORING_NOTEBOOK = "04_monitoring.ipynb"


@dataclass
class Column:
    """One pipeline run in the per-notebook tables: its heading, its run_summary.json and its process."""

    label: str
    summary: dict[str, Any]
    run: ProcessRun
    cells: list[dict[str, Any]] | None = None  # seconds per notebook cell (bench_jobs.notebook_cell_seconds)


def stage_tables(results: list[ScaleResult]) -> list[str]:
    """Seconds per notebook and per model of each full run (b)."""
    measured = [Column(r.label, r.summary, r.pipeline) for r in results if r.summary and r.pipeline]
    if not measured:
        return ["No pipeline run succeeded, so there are no per-notebook seconds.", ""]
    return stage_columns(measured)


def stage_columns(measured: list[Column]) -> list[str]:
    """Seconds per notebook and per model, one column per run, from each run's run_summary.json.

    Two derived rows split the rest: time in a notebook but in no model (sessions, profiles, charts), and time
    in the process but in no notebook (kernel and JVM start, publishing, the last HTML report).
    """
    header = "| | " + " | ".join(column.label for column in measured) + " |"
    rule = "|---|" + "---:|" * len(measured)
    notebooks: dict[str, dict[str, float]] = {}
    models: dict[str, dict[str, str]] = {}
    in_models: dict[str, float] = {}
    for column in measured:
        for stage in column.summary.get("stages", []):
            notebooks.setdefault(stage["notebook"], {})[column.label] = float(stage["seconds"])
            for model in stage.get("models", []):
                key = f"{stage['notebook'].split('_')[0]} {model['model']}"
                count = model.get("rows")
                rows = "" if count is None else f" ({count:,} row{'' if count == 1 else 's'})"
                models.setdefault(key, {})[column.label] = f"{float(model['seconds']):.1f}{rows}"
                in_models[column.label] = in_models.get(column.label, 0.0) + float(model["seconds"])
    in_notebooks = {c.label: sum(seconds.get(c.label, 0.0) for seconds in notebooks.values()) for c in measured}

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | " + " | ".join(f"{value:.1f}" for value in values) + " |"

    lines = [
        "Seconds per notebook (papermill; the run's kernel starts with the JVM, before them):",
        "",
        header,
        rule,
    ]
    for notebook, seconds in notebooks.items():
        cells = " | ".join(f"{seconds[c.label]:.1f}" if c.label in seconds else "-" for c in measured)
        lines.append(f"| {notebook} | {cells} |")
    lines += [
        row("in the notebooks' models", [in_models.get(c.label, 0.0) for c in measured]),
        row(
            "in the notebooks, outside models (sessions, profiles, charts, the CSV export)",
            [in_notebooks[c.label] - in_models.get(c.label, 0.0) for c in measured],
        ),
        row(
            "outside the notebooks (kernel and JVM start, publishing, the last HTML report)",
            [c.run.seconds - in_notebooks[c.label] for c in measured],
        ),
        row("whole process (wall)", [c.run.seconds for c in measured]),
        # issue 23's budget: at most 5% of a run at 1000x, at most 1 s at 1x
        "| the monitoring's share of the wall (04_monitoring: metrics, checks, history, the version's manifest) | "
        + " | ".join(
            f"{100 * notebooks.get(MONITORING_NOTEBOOK, {}).get(c.label, 0.0) / c.run.seconds:.1f}%" for c in measured
        )
        + " |",
        "",
        "Seconds per model (rows written, where the model is stored):",
        "",
        header,
        rule,
    ]
    for model, cells_by_label in models.items():
        cells = " | ".join(cells_by_label.get(column.label, "-") for column in measured)
        lines.append(f"| {model} | {cells} |")
    return [*lines, ""]


def notebook_seconds(summary: dict[str, Any]) -> dict[str, float]:
    return {stage["notebook"]: float(stage["seconds"]) for stage in summary.get("stages", [])}


def model_run(summary: dict[str, Any], model_name: str) -> dict[str, Any] | None:
    """The model's entry in a run_summary.json: its seconds and rows written."""
    for stage in summary.get("stages", []):
        for model in stage.get("models", []):
            if model["model"] == model_name:
                return dict(model)
    return None


def export_seconds(cells: list[dict[str, Any]] | None) -> float | None:
    """Seconds of the 03_marts cell writing the sorted feature CSV (and the rejects), from papermill's timing."""
    for cell in cells or []:
        if cell["notebook"].startswith("03") and "export_features" in cell["source"]:
            return float(cell["seconds"])
    return None


# run_summary.json's driver_jit, in words
JIT_NAMES = {"c1": "C1 alone", "tiered": "C1 and C2", "as set": "the options the run set"}


def incremental_summary_line(result: ScaleResult) -> str:
    """Where (e)'s wall time went, in one sentence made from its numbers: the notebooks, the largest of them
    (said to dominate when it holds most of the wall), and in 03_marts the feature model and the CSV export."""
    assert result.incremental is not None and result.incremental_summary is not None
    wall = result.incremental.seconds
    notebooks = notebook_seconds(result.incremental_summary)
    outside = wall - sum(notebooks.values())
    parts = [
        f"{name.removesuffix('.ipynb')} {seconds:.1f} s ({seconds / wall:.0%})" for name, seconds in notebooks.items()
    ]
    parts.append(f"outside the notebooks {outside:.1f} s ({outside / wall:.0%})")
    text = f"At {result.label}, (e) took {wall:.1f} s"
    if result.pipeline is not None and result.pipeline.ok:
        text += f" against {result.pipeline.seconds:.1f} s for (b)"
    text += ": " + ", ".join(parts) + "."
    jit = result.incremental_summary.get("driver_jit")
    if jit is not None:  # C1 alone for a short incremental run, C2 too for any other (spark_etl.runtime.runner)
        text += f" Its driver JVM compiled with {JIT_NAMES.get(jit, jit)} (`driver_jit` {jit})."
    if notebooks:
        largest = max(notebooks, key=lambda name: notebooks[name])
        share = notebooks[largest] / wall
        verb = "dominates" if share > 0.5 else "is the largest part"
        text += f" {largest.removesuffix('.ipynb')} {verb} ({notebooks[largest]:.1f} s, {share:.0%} of the wall)."
    marts = next((seconds for name, seconds in notebooks.items() if name.startswith("03")), None)
    features = model_run(result.incremental_summary, "fct_invoice_features")
    export = export_seconds(result.incremental_cells)
    if marts is not None and features is not None and export is not None:
        seconds = float(features["seconds"])
        text += (
            f" Of 03_marts' {marts:.1f} s, building fct_invoice_features ({fmt_count(features.get('rows'))} rows) "
            f"took {seconds:.1f} s and writing the single sorted feature CSV "
            f"({fmt_count(result.incremental_summary.get('output_rows'))} rows, with the rejects) {export:.1f} s: "
            f"{(seconds + export) / wall:.0%} of (e)'s wall together."
        )
    return text


def cell_table(columns: list[Column]) -> list[str]:
    """Seconds per notebook cell of each run, and of them the part outside the models the cell builds: where
    the time in a notebook but in no model goes (sessions, finding what to recompute, profiles, charts, the CSV
    export). Cells under 0.1 s in every run are left out."""
    measured = [column for column in columns if column.cells]
    if not measured:
        return []
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for column in measured:
        for cell in column.cells or []:
            seconds = float(cell["seconds"])
            built = [model_run(column.summary, name) for name in cell.get("models", [])]
            in_models = sum(float(model["seconds"]) for model in built if model is not None)
            text = f"{seconds:.1f}" + (f" ({seconds - in_models:.1f})" if built else "")
            cells = rows.setdefault((cell["notebook"], cell["cell"]), {})
            cells[column.label] = text
    lines = [
        "Seconds per notebook cell (papermill's timing; a cell is named by its papermill tag, the models it "
        "builds, or its first assignment), and in brackets the part outside the models it builds:",
        "",
        "| notebook | cell | " + " | ".join(column.label for column in measured) + " |",
        "|---|---|" + "---:|" * len(measured),
    ]
    for (notebook, name), cells in rows.items():
        if all(float(text.split()[0]) < 0.1 for text in cells.values()):
            continue
        shown = name if len(name) <= 70 else name[:67] + "..."
        escaped = shown.replace("|", "\\|")  # a pipe would end the table cell
        values = " | ".join(cells.get(column.label, "-") for column in measured)
        lines.append(f"| {notebook.removesuffix('.ipynb')} | `{escaped}` | {values} |")
    return [*lines, ""]


def incremental_tables(results: list[ScaleResult]) -> list[str]:
    """(e) beside (b) at each size, per notebook, model and cell, with what dominates said in words."""
    measured = [r for r in results if r.incremental is not None and r.incremental.ok and r.incremental_summary]
    if not measured:
        return ["No incremental run (e) succeeded, so there are no per-notebook seconds for it.", ""]
    columns = []
    for result in measured:
        assert result.incremental is not None and result.incremental_summary is not None
        if result.summary and result.pipeline:
            columns.append(Column(f"{result.label} full (b)", result.summary, result.pipeline, result.pipeline_cells))
        columns.append(
            Column(
                f"{result.label} incremental (e)",
                result.incremental_summary,
                result.incremental,
                result.incremental_cells,
            )
        )
    lines = [
        "From (e)'s run_summary.json beside (b)'s at the same size, and papermill's timing of their notebook "
        "cells. The feature CSV is one file sorted by invoice, so every run, incremental or not, writes all "
        "of it again.",
        "",
    ]
    for result in measured:
        lines += [incremental_summary_line(result), ""]
    return [*lines, *stage_columns(columns), *cell_table(columns)]


def reproduce_command() -> str:
    """The command line this report came from, relative to the current folder where possible."""
    parts = []
    for part in [sys.executable, *sys.argv]:
        path = Path(part)
        try:
            parts.append(str(path.absolute().relative_to(Path.cwd())) if path.exists() else part)
        except ValueError:
            parts.append(part)
    prefix = f"BENCH_SCALE={os.environ['BENCH_SCALE']} " if os.environ.get("BENCH_SCALE") else ""
    return prefix + shlex.join(parts)


def repo_note(repo: Path) -> list[str]:
    """Say so when the measured pipeline is another checkout than the one holding this script."""
    if repo == DEFAULT_REPO:
        return []
    return [
        f"The pipeline measured is the checkout given with `--repo` (`{repo}`, see *code measured* above), "
        "not the working tree beside this script; without `--repo` the benchmark measures its own checkout.",
        "",
    ]


def write_report(
    path: Path, results: list[ScaleResult], options: argparse.Namespace, command: str, finished: bool
) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `benchmarks/bench.py` on {now}"
        + ("." if finished else " **while still running: incomplete**.")
        + " Every number below was measured in that run; rerun the command to refresh it.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in machine_facts(results, options.repo)),
        "",
        "## How to reproduce",
        "",
        "```",
        command,
        "```",
        "",
        *repo_note(options.repo),
        "Each size's extracts are made by `extracts_generator.generate(dir, seed=42, scale=N)` (tools/) (cached under "
        f"`{options.cache_dir}`), then measured in the same run, one process after the other:",
        "",
        "- (a) **bare Spark**, the floor: a fresh Python process that starts a session with "
        "`spark_etl.runtime.session.spark_session`, registers the four extracts with `spark_etl.sources.extract."
        "register_extracts` and reads each once into Spark's `noop` sink;",
        "- (b) **the pipeline**: `Spark_ETL_Pipeline.py --extracts DIR --output SCRATCH/pipeline_output.csv "
        "--quiet`, its seconds per notebook and model taken from its `run_summary.json`;",
        "- (c) **DuckDB** computing the same contract (`benchmarks/duckdb_contract.py`) in a fresh process;",
        "- (d) **Spark, the contract alone**: a fresh Python process that registers the extracts as (a) does, "
        "runs the pipeline's SQL models that the feature table depends on as temporary views in one session "
        "(each `*_checked` model computed once, with `localCheckpoint`; the pipeline stores every model) and "
        "writes the feature CSV once with `spark_etl.storage.load.export_features`. No notebooks, kernels, stored "
        "models, profiles, rejects or reports. "
        f"It runs at the unskewed sizes below {CONTRACT_MAX_SCALE:g}x; its ratios are taken at 1x and 100x.",
        "- (e) **the pipeline's incremental run of one day**, at each unskewed size (`--no-incremental` skips "
        "it): the extracts are split (`benchmarks/bench_delta.py`, cached beside them) into day 0 and the next "
        f"day's delta. The delta holds the invoices of the latest issue day(s), about {NEW_SHARE:.1%} of all "
        f"invoices, with their lines, and the rows of the {PAID_SHARE:.0%} most recent paid invoices of day 0, "
        "which day 0 holds without their payment date; accounts and SKUs are unchanged (header-only files). "
        "(b') a full run on day 0 (`--warehouse SCRATCH/warehouse`) builds the warehouse, then (e) is "
        "`--incremental --extracts DELTA` with the same warehouse and output folder, timed as (b) is. Day 0 "
        "plus the delta is the generated extracts, so (e)'s feature CSV must equal (b)'s byte for byte. (e) "
        "chooses its driver's compilers as any run does: C1 alone for an incremental run over fewer than "
        f"{QUICK_JIT_MAX_INVOICES:,} stored invoices (`spark_etl.runtime.runner.is_quick_jit_run`), "
        "C1 and C2 otherwise "
        "and for every full run; each size's paragraph under the incremental run's time says which it used.",
        "- (f) **the naive reference**, measured just before (b): a fresh Python process that reads the four "
        "extracts with a header and no schema (`spark.read.csv(header=True, multiLine=True)`, every column a "
        "string), runs one Spark SQL query (`benchmarks/naive_reference.sql`: the three joins, a group by "
        "invoice and two window counts) and writes the result through `toPandas().to_csv`, as a one-query Spark "
        "job does. It validates, quarantines and stores nothing, and its features are not the contract's; only "
        "its time is compared. "
        f"It runs at the unskewed sizes below {CONTRACT_MAX_SCALE:g}x: `toPandas` collects every row to its driver.",
        "",
        "Wall seconds are the whole process, interpreter and JVM start included. Peak memory is the highest "
        "sum of RSS over the process and all its descendants (JVM, notebook kernels), sampled every "
        f"{SAMPLE_SECONDS:g} s; shared pages count once per process, so it errs high. Rows in are the "
        "invoices and invoice lines the generator wrote; rows out are the data rows of the feature CSV. "
        "Each measurement is a single run. CPU s is the CPU time of the run's process tree; other load is "
        "the CPU time the rest of the machine used during the run, divided by its wall time (in cores, out "
        f"of {os.cpu_count()}): anything well above 0 means other work competed with the run and inflated "
        f"its wall time. Each run starts once the CPUs are under {options.quiet_below:g}% busy, or after "
        f"waiting {options.quiet_wait:g} s. Before the first size, one untimed pipeline run on the checkout's "
        "bundled extracts lets a machine's first run write the driver's class archive "
        "(`spark_etl/runtime/class_archive.py`), so every timed run maps it, as every run after a machine's first "
        "does; "
        "(a) and (d) start their JVMs through `spark_etl.runtime.session`, so they map it too.",
        "",
        "## Targets",
        "",
        *ratio_rows(results),
        "",
        *skew_note(results),
        *equality_lines(results),
        "## Against the naive reference",
        "",
        "The pipeline with every feature it has (validation and quarantine, stored models, profiles, charts, "
        "reports) against (f), one Spark SQL query written through pandas, in the same run.",
        "",
        *naive_rows(results),
        "",
        "## What Spark alone reaches",
        "",
        "The same two ratios with (d), the contract alone, in place of the pipeline: the same reads and SQL "
        "models on the feature table's path, with no notebook, stored model, profile or report around them. "
        "Where (d) is above a target, trimming what surrounds the models is unlikely to bring the pipeline "
        "within it. Each figure is a single run.",
        "",
        *bound_rows(results),
        "",
        "## Results per size",
        "",
    ]
    for result in results:
        lines += scale_table(result)
    lines += ["## Where the pipeline's time goes", "", *stage_tables(results)]
    if any(result.incremental is not None for result in results):
        lines += ["## Where the incremental run's time goes", "", *incremental_tables(results)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
