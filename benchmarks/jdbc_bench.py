"""The JDBC endpoints at a chosen scale: generated extracts copied into a throwaway PostgreSQL (typed tables),
then (1) the whole pipeline from the database with --load-jdbc-table, and (2) the extract and the load timed on
their own, in one process, with the same functions the notebooks call.

Run from the repository root (PostgreSQL 15 binaries and Debian's pgjdbc needed):
``.venv/bin/python benchmarks/jdbc_bench.py --scale 100``. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "Spark_ETL_Pipeline" / "src"))
sys.path.insert(0, str(REPO / "tools"))

import pg_server  # noqa: E402
from extracts_generator import generate  # noqa: E402
from spark_etl.publishing import serving  # noqa: E402
from spark_etl.runtime.session import spark_session  # noqa: E402
from spark_etl.sources import extract, jdbc  # noqa: E402
from spark_etl.storage import versions  # noqa: E402
from spark_etl.storage.warehouse import Warehouse  # noqa: E402


def report(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=100.0)
    parser.add_argument("--partitions", type=int, default=0, help="--jdbc-partitions (0: default parallelism)")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jdbc_bench_"))
    extracts_dir = work / "extracts"
    started = time.perf_counter()
    rows = generate(extracts_dir, seed=42, scale=options.scale)
    report(f"generated {rows} in {time.perf_counter() - started:.1f} s")
    server = pg_server.start_server()
    try:
        server.psql("create database bench")
        server.psql(
            "; ".join(f"create table {name} ({columns})" for name, columns in pg_server.TYPED_TABLES.items()), "bench"
        )
        started = time.perf_counter()
        for each in extract.EXTRACTS:
            server.psql(
                f"\\copy {each.table_name} ({', '.join(each.columns)}) from '{extracts_dir / each.file_name}' "
                "with (format csv, header)",
                "bench",
            )
        server.psql("analyze", "bench")
        report(f"copied into PostgreSQL in {time.perf_counter() - started:.1f} s")
        url = server.jdbc_url("bench")
        environment = {**os.environ, jdbc.PASSWORD_ENVIRONMENT_VARIABLE: pg_server.SUPERUSER_PASSWORD}
        output = work / "out" / "pipeline_output.csv"
        command = [
            sys.executable, str(REPO / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"),
            "--jdbc-url", url, "--jdbc-user", pg_server.SUPERUSER, "--jdbc-partitions", str(options.partitions),
            "--load-jdbc-table", "features", "--output", str(output), "--quiet",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=environment, check=True)
        report(f"whole pipeline from PostgreSQL, loading the features back: {time.perf_counter() - started:.1f} s")

        spark = spark_session("jdbc_bench", "local[*]", {"spark.jars": jdbc.DEFAULT_DRIVER_JAR})
        database = jdbc.Database(url, pg_server.SUPERUSER, pg_server.SUPERUSER_PASSWORD)
        source = jdbc.JdbcSource(database, "public", options.partitions)
        started = time.perf_counter()
        reads = jdbc.store_snapshot(spark, source, str(work / "warehouse"))
        seconds = time.perf_counter() - started
        rows_read = sum(read.rows for read in reads)
        parts = ", ".join(f"{read.table_name} {read.rows:,} rows in {read.partitions}" for read in reads)
        report(
            f"extract (one snapshot, 4 tables to Parquet): {seconds:.1f} s, {rows_read / seconds:,.0f} rows/s ({parts})"
        )
        # the features of the warehouse's current version, where the pipeline run above published them
        warehouse = str(output.parent / "warehouse")
        manifest, _ = Warehouse.open(warehouse, spark).current()
        assert manifest is not None, f"{warehouse} has no current version"
        features_df = versions.read_folders(
            spark,
            [f"{warehouse}/{folder}" for folder in manifest.folders("fct_invoice_features")],
            manifest.schema("fct_invoice_features"),
        )
        started = time.perf_counter()
        loaded = serving.load_features(spark, database, "features", features_df)
        seconds = time.perf_counter() - started
        rate = loaded / seconds
        report(
            f"load (staging write + one-transaction replace): {loaded:,} rows in {seconds:.1f} s, {rate:,.0f} rows/s"
        )
        spark.stop()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
