"""One full run and one day's incremental run (then the same day with --no-csv) at a size `make bench` does not
reach (10,000x: about 97 million invoices), measured once: wall time, CPU, peak memory, spill, failed tasks, disk.

Why a command of its own: at that size a second full run (the day-0 run `make bench` makes for (e)) and the
comparison jobs would take hours. Here the full run reads the generated extracts into a warehouse, and the
incremental run then merges the day's delta that `bench_delta.split` cuts from the same extracts: the new
invoices of the latest issue day with their lines, and the 1% most recent payments, as generated. Those rows are
already in the full run's input, so the incremental run recomputes what a real day's delta of that shape makes
it recompute (the merge and the months to rewrite go by keys, not by whether a value changed), and the data it
publishes is the full run's input: its feature CSV must equal the full run's, byte for byte.

    .venv/bin/python benchmarks/scale_run.py --scale 10000 --work /tmp/spark_etl_scale --out /tmp/scale.md

The extracts and the split are kept under --work and reused; runs write there too (about 4.5 times the
extracts' size at the peak). The report is markdown, for docs/scaling.md.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench_delta import DaySplit, split
from bench_jobs import SEED, clean_env, pipeline_command, spark_metrics
from bench_measure import ProcessRun, gib, measure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from extracts_generator import generate  # noqa: E402  (a development tool, imported from tools/)


class DiskWatch:
    """The lowest free space seen on a file system while a run ran, sampled every second in a thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.start_free = self.lowest_free = shutil.disk_usage(folder).free
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(1.0):
            self.lowest_free = min(self.lowest_free, shutil.disk_usage(self.folder).free)

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


@dataclass
class MeasuredRun:
    name: str
    run: ProcessRun
    disk_peak: int  # bytes: free space at the start less the lowest free space seen during the run
    metrics: dict[str, int] | None
    summary: dict[str, object] | None


def prepared_extracts(work: Path, scale: float) -> tuple[Path, DaySplit]:
    """The generated extracts and their day split, made once (a marker file says each is complete)."""
    extracts, marker = work / "extracts", work / "extracts.json"
    split_marker = work / "split.json"
    if not marker.is_file() or json.loads(marker.read_text())["scale"] != scale:  # none yet, or another size's
        split_marker.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        shutil.rmtree(extracts, ignore_errors=True)
        started = time.perf_counter()
        rows = generate(extracts, seed=SEED, scale=scale)
        marker.write_text(json.dumps({"scale": scale, "rows": rows, "seconds": time.perf_counter() - started}))
        print(f"generated {rows} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if not split_marker.is_file():
        day_split = split(extracts, work / "day0", work / "delta")
        split_marker.write_text(json.dumps(day_split.__dict__))
    day_split = DaySplit.from_json(json.loads(split_marker.read_text()))
    shutil.rmtree(day_split.day0, ignore_errors=True)  # only the delta is read: the full run reads the extracts
    return extracts, day_split


def measured(name: str, command: list[str], folder: Path, work: Path) -> MeasuredRun:
    print(f"{name}: running", file=sys.stderr, flush=True)
    with DiskWatch(work) as disk:
        run = measure(command, REPO, clean_env(REPO), 4 * 3600.0, folder / f"logs-{name}")
    summary_path = folder / "run_summary.json"
    summary = json.loads(summary_path.read_text()) if run.ok and summary_path.is_file() else None
    print(f"{name}: exit {run.returncode} after {run.seconds:.0f} s", file=sys.stderr, flush=True)
    metrics = spark_metrics(folder / f"eventlog-{name}")
    return MeasuredRun(name, run, disk.start_free - disk.lowest_free, metrics, summary)


def command(extracts: Path, folder: Path, name: str, scale: float, driver_memory: str, *options: str) -> list[str]:
    """The entry script as `make bench` runs it (bench_jobs.pipeline_command), on one warehouse in `folder`."""
    output, event_log = folder / "pipeline_output.csv", folder / f"eventlog-{name}"
    command = pipeline_command(REPO, extracts, output, event_log, scale, driver_memory)
    return [*command, "--warehouse", str(folder / "warehouse"), "--keep-versions", "1", *options]


def report(
    scale: float, extracts: Path, day_split: DaySplit, runs: list[MeasuredRun], identical: bool | None, memory: str
) -> str:
    rows = json.loads((extracts.parent / "extracts.json").read_text())["rows"]
    size = sum(path.stat().st_size for path in extracts.iterdir())
    lines = [
        f"Scale {scale:g}x: {rows['invoices']:,} invoices, {rows['invoice_line_items']:,} lines, "
        f"{rows['accounts']:,} accounts; {gib(size)} of CSV. The delta: {day_split.new_invoices:,} new invoices "
        f"with {day_split.new_lines:,} lines, {day_split.paid_invoices:,} payments. Every run: local mode, "
        f"spark.driver.memory={memory}. Disk used is the file system's free space lost, whatever wrote it.",
        "",
        "| run | exit | wall s | CPU s | peak memory (process tree) | spilled to disk | failed tasks | "
        "executor heap peak | disk used at the peak | output rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for measured_run in runs:
        metrics = measured_run.metrics or {}
        output_rows = (measured_run.summary or {}).get("output_rows", "-")
        lines.append(
            f"| {measured_run.name} | {measured_run.run.returncode} | {measured_run.run.seconds:.0f} | "
            f"{measured_run.run.cpu_seconds:.0f} | {gib(measured_run.run.peak_rss)} | "
            f"{gib(metrics.get('disk_bytes_spilled', 0))} | {metrics.get('failed_tasks', '-')} | "
            f"{gib(metrics.get('peak_jvm_heap_bytes', 0))} | {gib(measured_run.disk_peak)} | {output_rows} |"
        )
    lines += [
        "",
        "The incremental run then ran the same delta again with --no-csv, which keeps the published CSV (the same "
        f"file after it). The feature CSV after both, against the full run's, byte for byte: {identical}.",
    ]
    recorded = runs[1].summary if len(runs) > 1 else None
    if recorded is not None:
        keys = ("invoices_recomputed", "accounts_recomputed", "invoice_months_rewritten", "feature_months_recomputed")
        lines += ["", "The incremental run's summary: " + "; ".join(f"{key} {recorded.get(key)}" for key in keys) + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/scale_run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10000.0, help="size against the real extracts (10000)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/spark_etl_scale"), help="extracts and runs")
    parser.add_argument("--driver-memory", default="12g", help="spark.driver.memory of both runs (12g)")
    parser.add_argument("--out", type=Path, required=True, help="the markdown report")
    options = parser.parse_args()
    work: Path = options.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    extracts, day_split = prepared_extracts(work, options.scale)
    folder = work / "runs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    full_csv = work / "full_run_output.csv"
    runs = [measured("full", command(extracts, folder, "full", options.scale, options.driver_memory), folder, work)]
    identical = None
    if runs[0].run.ok:
        full_csv.unlink(missing_ok=True)
        os.link(folder / "pipeline_output.csv", full_csv)  # the incremental run publishes a new file by rename
        delta = Path(day_split.delta)
        incremental = command(delta, folder, "incremental", options.scale, options.driver_memory, "--incremental")
        runs.append(measured("incremental", incremental, folder, work))
        if runs[1].run.ok:
            identical = filecmp.cmp(full_csv, folder / "pipeline_output.csv", shallow=False)
            # the same day's work again, leaving the CSV out (--no-csv): what a day costs where nobody reads the file
            name = "incremental-no-csv"  # the run's event log and logs are named after it
            no_csv = command(delta, folder, name, options.scale, options.driver_memory, "--incremental", "--no-csv")
            written = (folder / "pipeline_output.csv").stat().st_ino
            runs.append(measured(name, no_csv, folder, work))
            # kept, not rewritten: the same file (a rewrite of the same day would give the same bytes)
            is_kept = runs[2].run.ok and (folder / "pipeline_output.csv").stat().st_ino == written
            identical = identical and is_kept and filecmp.cmp(full_csv, folder / "pipeline_output.csv", False)
    text = report(options.scale, extracts, day_split, runs, identical, options.driver_memory)
    options.out.write_text(text, encoding="utf-8")
    print(text)
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
