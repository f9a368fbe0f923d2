"""The benchmark: the pipeline against a bare Spark job and DuckDB, at growing sizes, written to Markdown.

Why: the project has its performance targets (overhead over Spark's own start-up at 1x, distance from a
single-node engine at 100x, linear scaling from 10x to 100x, robustness to one account holding 5% of the
invoices, a day's incremental run costing a fraction of a full run). This measures them on the machine it runs
on, each engine in a fresh process so JVM and interpreter start-up are part of the time, and writes only
measured numbers to docs/benchmarks.md.

Run from the repository root: ``.venv/bin/python benchmarks/bench.py`` (scales 1, 10, 100; BENCH_SCALE=1000
adds 1000), or ``--scales 1,10`` for a quick run. Generated extracts are cached by scale, seed, skew and the
generator's source, so a rerun measures the same files without regenerating them; so are their day-0 and
delta folders (bench_delta.py) for the incremental run.

By concern: bench_measure.py measures one process, bench_jobs.py holds the jobs measured and runs one size,
bench_delta.py splits extracts into day 0 and a day's delta, bench_report.py writes the report; this file is the
command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench_jobs import (
    CONTRACT_MAX_SCALE,
    RUN_NAMES,
    SKEW_SCALE,
    SKEW_SHARE,
    ScaleResult,
    contract_job,
    floor_job,
    load_results,
    naive_job,
    prime_class_archive,
    run_scale,
    save_results,
)
from bench_report import DEFAULT_REPO, reproduce_command, scale_label, write_report


def parse_scales(text: str) -> list[float]:
    try:
        scales = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scales: {text!r} is not a list of numbers like 1,10") from None
    if not scales or any(scale <= 0 for scale in scales):
        raise argparse.ArgumentTypeError("--scales: give one or more sizes > 0, e.g. 1,10,100")
    return scales


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench.py",
        description="Time the pipeline against a bare Spark job and DuckDB; write docs/benchmarks.md.",
    )
    parser.add_argument(
        "--scales",
        type=parse_scales,
        default=[1.0, 10.0, 100.0],
        help="comma-separated sizes (default 1,10,100); BENCH_SCALE=N in the environment adds N",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_REPO / "docs" / "benchmarks.md", help="report")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/tmp/spark_etl_bench"),
        help="where generated extracts are cached and runs write their output (default /tmp/spark_etl_bench)",
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=DEFAULT_REPO,
        help="checkout whose pipeline is measured (default: this one), e.g. a clean clone of a commit",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds after which one run is killed (default 3600)"
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=25.0,
        metavar="PERCENT",
        help="before each run, wait until the CPUs are less busy than this (default 25)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="longest wait for a quiet machine before a run starts anyway; 0 never waits (default 300)",
    )
    parser.add_argument("--no-skew", action="store_true", help=f"skip the skewed {SKEW_SCALE:g}x run")
    parser.add_argument(
        "--no-incremental",
        action="store_true",
        help="skip (e), the incremental run of one day's delta (and the full run on day 0 it updates)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from the last run's saved measurements (CACHE_DIR/runs/results.json)",
    )
    parser.add_argument("--floor", metavar="DIR", help=argparse.SUPPRESS)  # internal: run (a) in this process
    parser.add_argument("--contract", nargs=2, metavar=("DIR", "OUT"), help=argparse.SUPPRESS)  # internal: (d)
    parser.add_argument("--naive", nargs=2, metavar=("DIR", "OUT"), help=argparse.SUPPRESS)  # internal: (f)
    options = parser.parse_args(argv)
    extra = os.environ.get("BENCH_SCALE", "").strip()
    if extra:
        options.scales = [*options.scales, *parse_scales(extra)]
    options.scales = sorted(set(options.scales))
    options.repo = options.repo.resolve()
    options.cache_dir = options.cache_dir.resolve()
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    source = str(options.repo / "Spark_ETL_Pipeline" / "src")
    sys.path.insert(0, source)  # the reader of the checkout under test
    sys.path.insert(0, str(options.repo / "tools"))  # and its extracts generator
    if options.floor:
        return floor_job(options.floor)
    if options.contract:
        return contract_job(*options.contract)
    if options.naive:
        return naive_job(*options.naive)
    results_path = options.cache_dir / "runs" / "results.json"
    if options.report_only:
        saved, command = load_results(results_path)
        write_report(options.out, saved, options, command, finished=True)
        return 0
    results: list[ScaleResult] = []
    plan: list[tuple[str, float, float]] = [(scale_label(s), s, 0.0) for s in options.scales]
    if SKEW_SCALE in options.scales and not options.no_skew:
        plan.append((f"{scale_label(SKEW_SCALE)} skewed", SKEW_SCALE, SKEW_SHARE))
    prime_class_archive(options)
    for label, scale, skew_share in plan:
        print(f"{label}:", file=sys.stderr, flush=True)
        engines: tuple[str, ...] = RUN_NAMES
        if skew_share:
            engines = ("pipeline",)
        elif scale >= CONTRACT_MAX_SCALE:
            # (d) would only lengthen the run; (f)'s toPandas collects every row to its driver
            engines = tuple(name for name in RUN_NAMES if name not in ("contract", "naive"))
        if options.no_incremental:
            engines = tuple(name for name in engines if name != "incremental")
        results.append(run_scale(label, scale, skew_share, options, engines))
        save_results(results_path, results, reproduce_command())
        write_report(options.out, results, options, reproduce_command(), finished=False)
    write_report(options.out, results, options, reproduce_command(), finished=True)
    print(f"wrote {options.out}", file=sys.stderr)
    failed = [result.label for result in results if result.pipeline is None or not result.pipeline.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
