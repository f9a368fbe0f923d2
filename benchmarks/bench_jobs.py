"""The jobs the benchmark measures at each size: (a) bare Spark, (b) the pipeline, (c) DuckDB, (d) the contract
alone, (e) the pipeline's incremental run of one day on the warehouse of a full run of the day before; the
generated extracts they read, and the measurements they leave."""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench_delta import DaySplit, cached_split
from bench_measure import ProcessRun, gib, measure, wait_for_quiet

BENCH_DIR = Path(__file__).resolve().parent
SEED = 42
SKEW_SCALE = 100.0
SKEW_SHARE = 0.05
# The driver memory the project allows itself at 1000x; smaller sizes run on Spark's default (1g).
DRIVER_MEMORY_1000X = "4g"


def floor_job(extracts_dir: str) -> int:
    """The floor, in its own process: start a session and read each extract once with the pipeline's reader.

    Prints the Spark and Java versions as JSON, for the report's machine section.
    """
    from spark_etl.runtime.session import spark_session
    from spark_etl.sources.extract import EXTRACTS, register_extracts

    spark = spark_session("benchmark_floor")
    register_extracts(spark, extracts_dir)
    for extract in EXTRACTS:
        spark.table(f"raw_{extract.table_name}").write.format("noop").mode("overwrite").save()
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    java = jvm.java.lang.System.getProperty("java.version")
    print(json.dumps({"spark": spark.version, "java": str(java)}))
    spark.stop()
    return 0


# The contract's models are the feature table and what it reads, in build order (registry.upstream); the rejects,
# the row counts and the notebooks' profiles are left out. The staging models are views that several models read,
# so the *_checked model under each is computed once (localCheckpoint) and its duplicate-check window runs once
# (the pipeline stores every model instead).
CONTRACT_MODEL = "fct_invoice_features"


def contract_job(extracts_dir: str, output_path: str) -> int:
    """The contract alone, in its own process: the pipeline's reader and SQL models as views in one session,
    written once by the pipeline's exporter.

    No notebooks, kernels, stored models, profiles, charts or reports, so its time is what this SQL costs Spark
    with nothing around it, set beside the pipeline's in the report.
    """
    from spark_etl.modelling import models, registry
    from spark_etl.runtime.session import spark_session
    from spark_etl.sources import source_state
    from spark_etl.sources.extract import register_extracts
    from spark_etl.storage import filesystem, load

    spark = spark_session("benchmark_contract")
    register_extracts(spark, extracts_dir)
    models.register_parameters(spark, None)
    source_state.register_withdrawn(spark, {})  # a full run from files: no key is withdrawn
    for model in registry.upstream(CONTRACT_MODEL):
        for name in model.inputs:
            if name.startswith(registry.STORED_PREFIX):  # a full run: no previous version to merge into
                base = registry.model(name.removeprefix(registry.STORED_PREFIX))
                load.empty_frame(spark, registry.schema_ddl(base)).createOrReplaceTempView(name)
        model_df = spark.sql(models.sql_text(model.layer, model.name))
        if model.name.endswith("_checked"):
            # computed once, now; not cache(): Spark 3.4.0 joins a cached plan whose last shuffle adaptive
            # execution coalesced as if it were not (SPARK-45282, fixed in 3.4.2), which gave wrong totals at 100x,
            # and keeping adaptive execution off cached plans made this job 2.6 times slower at 1x
            model_df = model_df.localCheckpoint()
        model_df.createOrReplaceTempView(model.name)
    rows = load.export_features(spark, filesystem.qualify(output_path))
    print(json.dumps({"rows": rows}))
    spark.stop()
    return 0


NAIVE_SQL = BENCH_DIR / "naive_reference.sql"
NAIVE_TABLES = ("accounts", "skus", "invoices", "invoice_line_items")


def naive_job(extracts_dir: str, output_path: str) -> int:
    """(f) The naive reference, in its own process: the four extracts read with a header and no schema, one Spark
    SQL query (naive_reference.sql), the result written through pandas, as a one-query Spark job does it.

    The yardstick issue 24 sets the pipeline's run time against; its features are not the contract's (nothing is
    validated, quarantined or stored), so only its time and rows are reported. `multiLine` is the one option added
    to a bare header read: without it an account whose quoted address spans lines is split into broken rows.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("benchmark_naive_reference").master("local[*]")
    spark = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
    for table in NAIVE_TABLES:
        source = spark.read.csv(str(Path(extracts_dir) / f"{table}.csv"), header=True, multiLine=True, escape='"')
        source.createOrReplaceTempView(table)
    features: Any = spark.sql(NAIVE_SQL.read_text(encoding="utf-8")).toPandas()  # a pandas DataFrame
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    features.to_csv(output_path, index=False)
    print(json.dumps({"rows": len(features)}))
    spark.stop()
    return 0


@dataclass
class Extracts:
    """A generated extracts folder and the data rows per table the generator wrote."""

    path: Path
    rows: dict[str, int]


def generator_fingerprint(repo: Path) -> str:
    """The generator's source hash: a cached folder from an older generator is not reused."""
    digest = hashlib.sha256()
    for source in sorted((repo / "tools" / "extracts_generator").glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def cached_extracts(cache_dir: Path, repo: Path, scale: float, skew_share: float) -> Extracts:
    """Generate the extracts for one scale once; a marker written last says the folder is complete."""
    from extracts_generator import generate

    name = f"seed{SEED}-scale{scale:g}-skew{skew_share:g}-gen{generator_fingerprint(repo)}"
    folder = cache_dir / "extracts" / name
    marker = folder / "generated.json"
    if marker.is_file():
        return Extracts(folder, json.loads(marker.read_text(encoding="utf-8"))["rows"])
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    rows = generate(folder, seed=SEED, scale=scale, skew_share=skew_share)
    seconds = time.perf_counter() - started
    print(f"  generated {folder} in {seconds:.1f} s: {rows}", file=sys.stderr, flush=True)
    marker.write_text(json.dumps({"rows": rows, "generate_seconds": round(seconds, 1)}), encoding="utf-8")
    return Extracts(folder, rows)


@dataclass
class ScaleResult:
    """Everything measured on one extracts folder."""

    label: str
    scale: float
    skewed: bool
    extracts: Extracts
    floor: ProcessRun | None = None
    naive: ProcessRun | None = None  # (f), the naive reference
    naive_rows_out: int | None = None
    pipeline: ProcessRun | None = None
    contract: ProcessRun | None = None
    duckdb: ProcessRun | None = None
    summary: dict[str, Any] | None = None
    duckdb_summary: dict[str, Any] | None = None
    pipeline_rows_out: int | None = None
    duckdb_rows_out: int | None = None
    identical: bool | None = None
    contract_rows_out: int | None = None
    contract_identical: bool | None = None  # the contract-alone CSV against DuckDB's
    day_split: DaySplit | None = None  # day 0 and the delta of these extracts, for (e)
    day0: ProcessRun | None = None  # the full run on day 0 whose warehouse (e) updates
    incremental: ProcessRun | None = None  # (e)
    incremental_summary: dict[str, Any] | None = None
    incremental_rows_out: int | None = None
    incremental_identical: bool | None = None  # the incremental CSV against the full run's (b)
    pipeline_cells: list[dict[str, Any]] | None = None  # seconds per notebook cell of (b)
    incremental_cells: list[dict[str, Any]] | None = None  # and of (e)
    versions: dict[str, str] = field(default_factory=dict)
    driver_memory: str | None = None  # None: Spark's default
    spark_metrics: dict[str, int] | None = None  # from the pipeline's Spark event log

    @property
    def extract_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.extracts.path.glob("*.csv"))

    @property
    def rows_in(self) -> int:
        """Rows in = invoices + invoice lines (the two tables that grow with the scale)."""
        return self.extracts.rows["invoices"] + self.extracts.rows["invoice_line_items"]


RUN_NAMES = ("floor", "naive", "pipeline", "incremental", "contract", "duckdb")
PROCESS_RUNS = (*RUN_NAMES, "day0")  # the ScaleResult fields holding a ProcessRun
CONTRACT_MAX_SCALE = 1000.0  # (d) is compared at 1x and 100x; at 1000x it would only lengthen the run


def save_results(path: Path, results: list[ScaleResult], command: str) -> None:
    """Keep the raw measurements beside the runs, so the report can be rewritten without measuring again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"command": command, "results": [asdict(result) for result in results]}
    path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")


def load_results(path: Path) -> tuple[list[ScaleResult], str]:
    """The measurements and the command line of the run that saved them."""
    document = json.loads(path.read_text(encoding="utf-8"))
    results = []
    for item in document["results"]:
        extracts = item.pop("extracts")
        runs = {name: item.pop(name, None) for name in PROCESS_RUNS}
        day_split = item.pop("day_split", None)
        result = ScaleResult(**item, extracts=Extracts(Path(extracts["path"]), extracts["rows"]))
        result.day_split = None if day_split is None else DaySplit.from_json(day_split)
        for name, run in runs.items():
            setattr(result, name, None if run is None else ProcessRun(**run))
        results.append(result)
    return results, str(document["command"])


def data_rows(csv_path: Path) -> int | None:
    """Data rows of a written CSV (no quoted newlines in the feature file), or None when it is missing."""
    if not csv_path.is_file():
        return None
    with open(csv_path, "rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)


def spark_metrics(event_log_dir: Path) -> dict[str, int] | None:
    """Spill and task failures summed over every task of a run, and the executor JVM's peak heap, from Spark's
    event log (the same numbers as the Spark UI's stage pages)."""
    logs = [path for path in event_log_dir.glob("*") if path.is_file()]
    if not logs:
        return None
    totals = {"disk_bytes_spilled": 0, "memory_bytes_spilled": 0, "failed_tasks": 0, "peak_jvm_heap_bytes": 0}
    for log in logs:
        with open(log, encoding="utf-8") as handle:
            for line in handle:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                event = json.loads(line)
                task_metrics = event.get("Task Metrics") or {}
                totals["disk_bytes_spilled"] += int(task_metrics.get("Disk Bytes Spilled", 0))
                totals["memory_bytes_spilled"] += int(task_metrics.get("Memory Bytes Spilled", 0))
                if event.get("Task End Reason", {}).get("Reason") != "Success":
                    totals["failed_tasks"] += 1
                heap = int((event.get("Task Executor Metrics") or {}).get("JVMHeapMemory", 0))
                totals["peak_jvm_heap_bytes"] = max(totals["peak_jvm_heap_bytes"], heap)
    return totals


BUILT_MODEL = re.compile(r"""stage\.build\(\s*["']([a-z0-9_]+)["']""")


def cell_name(source: list[str], tags: list[str]) -> str:
    """A code cell's name for the report: its papermill tag, else the models it builds, else its first
    assignment (what it makes), else its first line of code."""
    if tags:
        return tags[0]
    built = BUILT_MODEL.findall("\n".join(source))
    if built:
        return "build " + ", ".join(built)
    code = [line for line in source if line.strip() and not line.lstrip().startswith("#")]
    assignments = [line for line in code if " = " in line and not line[0].isspace()]
    return (assignments or code or [""])[0]


def notebook_cell_seconds(notebooks_dir: Path) -> list[dict[str, Any]] | None:
    """Seconds per code cell of a run's executed stage notebooks, from papermill's timing in each cell's
    metadata: the time the run's summary puts in a notebook but in no model, cell by cell."""
    paths = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        return None
    cells = []
    for path in paths:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            metadata = cell.get("metadata", {})
            seconds = metadata.get("papermill", {}).get("duration")
            if cell["cell_type"] != "code" or seconds is None:
                continue
            source = "".join(cell["source"]).splitlines()
            cells.append(
                {
                    "notebook": path.name,
                    "cell": cell_name(source, metadata.get("tags", [])),
                    "models": BUILT_MODEL.findall("\n".join(source)),
                    "source": "\n".join(source),
                    "seconds": float(seconds),
                }
            )
    return cells


def clean_env(repo: Path) -> dict[str, str]:
    """The environment for a measured process: the repo under test first on the path, no inherited gateway."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY_")}
    source = str(repo / "Spark_ETL_Pipeline" / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    return env


def timed(
    command: list[str], repo: Path, env: dict[str, str], options: argparse.Namespace, log_dir: Path
) -> ProcessRun:
    """One measured run, started once the machine is quiet (or the wait is over)."""
    if options.quiet_wait > 0:
        wait_for_quiet(options.quiet_below, options.quiet_wait)
    return measure(command, repo, env, options.timeout, log_dir)


def pipeline_command(
    repo: Path, extracts_dir: Path, output: Path, event_log_dir: Path, scale: float, driver_memory: str | None = None
) -> list[str]:
    """The entry script as (b) runs it; (e) and the day-0 run it updates add their options to the same command,
    so the three pay for the same event log and driver memory (`driver_memory`, else 4g from 1000x)."""
    entry = repo / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"
    event_log_dir.mkdir(parents=True)
    command = [sys.executable, str(entry), "--extracts", str(extracts_dir), "--output", str(output), "--quiet"]
    command += ["--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={event_log_dir.as_uri()}"]
    memory = driver_memory or (DRIVER_MEMORY_1000X if scale >= 1000 else None)
    if memory is not None:
        command += ["--conf", f"spark.driver.memory={memory}"]
    return command


def prime_class_archive(options: argparse.Namespace) -> None:
    """One untimed pipeline run on the checkout's bundled extracts before anything is measured: a machine's first
    run writes the driver's class archive as its JVM exits (spark_etl/runtime/class_archive.py), and every later
    run maps
    it, so each timed run is measured as a daily run finds the machine. A checkout without the archive just runs."""
    repo: Path = options.repo
    folder = options.cache_dir / "runs" / "class-archive"
    shutil.rmtree(folder, ignore_errors=True)
    command = pipeline_command(repo, repo / "data_extracts", folder / "pipeline_output.csv", folder / "eventlog", 1)
    run = measure(command, repo, clean_env(repo), options.timeout, folder / "logs")
    report_progress("warm-up", "class archive", run)


def run_incremental(result: ScaleResult, options: argparse.Namespace, env: dict[str, str], scratch: Path) -> None:
    """(e): a full run on day 0 into a warehouse of its own, then the day's delta with --incremental on the same
    warehouse and output folder, as a daily schedule runs it. Its CSV is compared with (b)'s, which read day 0 and
    the delta together."""
    repo: Path = options.repo
    day_split = result.day_split = cached_split(result.extracts.path)
    folder = scratch / "incremental"
    output, warehouse = folder / "pipeline_output.csv", folder / "warehouse"
    command = pipeline_command(repo, Path(day_split.day0), output, folder / "eventlog-day0", result.scale)
    result.day0 = timed([*command, "--warehouse", str(warehouse)], repo, env, options, folder / "logs-day0")
    report_progress(result.label, "day 0", result.day0)
    if not result.day0.ok:
        return
    command = pipeline_command(repo, Path(day_split.delta), output, folder / "eventlog", result.scale)
    command += ["--incremental", "--warehouse", str(warehouse)]
    result.incremental = timed(command, repo, env, options, folder / "logs")
    report_progress(result.label, "incremental", result.incremental)
    summary_path = folder / "run_summary.json"
    if not result.incremental.ok or not summary_path.is_file():
        return
    result.incremental_summary = json.loads(summary_path.read_text(encoding="utf-8"))
    result.incremental_rows_out = data_rows(output)
    result.incremental_cells = notebook_cell_seconds(folder / "notebooks")
    full_csv = scratch / "pipeline" / "pipeline_output.csv"
    if result.summary is not None and full_csv.is_file():
        result.incremental_identical = filecmp.cmp(full_csv, output, shallow=False)


def spark_job(
    job: str, extracts_dir: Path, scratch: Path, options: argparse.Namespace, env: dict[str, str], label: str
) -> tuple[ProcessRun, int | None]:
    """One of the benchmark's own Spark jobs, (d) `contract` or (f) `naive`: `bench.py --<job> DIR OUT` in a
    fresh process; its run and the data rows of the CSV it wrote."""
    output = scratch / job / f"{job}_output.csv"
    command = [sys.executable, str(BENCH_DIR / "bench.py"), f"--{job}", str(extracts_dir), str(output)]
    run = timed(command, options.repo, env, options, scratch / job / "logs")
    report_progress(label, job, run)
    return run, data_rows(output) if run.ok else None


def run_scale(
    label: str,
    scale: float,
    skew_share: float,
    options: argparse.Namespace,
    engines: Sequence[str] = RUN_NAMES,
) -> ScaleResult:
    """Measure the selected engines, one after the other, on the same cached extracts."""
    repo: Path = options.repo
    extracts = cached_extracts(options.cache_dir, repo, scale, skew_share)
    result = ScaleResult(label, scale, skew_share > 0, extracts)
    scratch = options.cache_dir / "runs" / label.replace(" ", "-")
    shutil.rmtree(scratch, ignore_errors=True)
    env = clean_env(repo)
    python = sys.executable
    if "floor" in engines:
        command = [python, str(BENCH_DIR / "bench.py"), "--floor", str(extracts.path)]
        result.floor = timed(command, repo, env, options, scratch / "floor")
        report_progress(label, "bare Spark", result.floor)
        if result.floor.ok:
            result.versions = json.loads(result.floor.stdout.strip().splitlines()[-1])
    if "naive" in engines:  # just before (b), so the two are measured side by side
        result.naive, result.naive_rows_out = spark_job("naive", extracts.path, scratch, options, env, label)
    if "pipeline" in engines:
        output = scratch / "pipeline" / "pipeline_output.csv"
        event_log_dir = scratch / "pipeline" / "eventlog"
        command = pipeline_command(repo, extracts.path, output, event_log_dir, scale)
        if scale >= 1000:
            result.driver_memory = DRIVER_MEMORY_1000X
        result.pipeline = timed(command, repo, env, options, scratch / "pipeline" / "logs")
        result.spark_metrics = spark_metrics(event_log_dir)
        report_progress(label, "pipeline", result.pipeline)
        summary_path = output.parent / "run_summary.json"
        if result.pipeline.ok and summary_path.is_file():
            result.summary = json.loads(summary_path.read_text(encoding="utf-8"))
            result.pipeline_rows_out = data_rows(output)
            result.pipeline_cells = notebook_cell_seconds(output.parent / "notebooks")
    if "incremental" in engines:
        run_incremental(result, options, env, scratch)
    if "contract" in engines:
        result.contract, result.contract_rows_out = spark_job("contract", extracts.path, scratch, options, env, label)
    if "duckdb" in engines:
        output = scratch / "duckdb" / "duckdb_output.csv"
        command = [
            python,
            str(BENCH_DIR / "duckdb_contract.py"),
            "--extracts",
            str(extracts.path),
            "--output",
            str(output),
        ]
        result.duckdb = timed(command, repo, env, options, scratch / "duckdb" / "logs")
        report_progress(label, "DuckDB", result.duckdb)
        if result.duckdb.ok:
            result.duckdb_summary = json.loads(result.duckdb.stdout.strip().splitlines()[-1])
            result.duckdb_rows_out = data_rows(output)
            pipeline_csv = scratch / "pipeline" / "pipeline_output.csv"
            if result.summary is not None and pipeline_csv.is_file():
                result.identical = filecmp.cmp(pipeline_csv, output, shallow=False)
            contract_csv = scratch / "contract" / "contract_output.csv"
            if result.contract is not None and result.contract.ok and contract_csv.is_file():
                result.contract_identical = filecmp.cmp(contract_csv, output, shallow=False)
    return result


def report_progress(label: str, engine: str, run: ProcessRun) -> None:
    status = "ok" if run.ok else run.failure()
    print(
        f"  {label:<12} {engine:<10} {run.seconds:8.1f} s  peak {gib(run.peak_rss)}  "
        f"other load {run.other_cores:.2f} cores  {status}",
        file=sys.stderr,
    )
