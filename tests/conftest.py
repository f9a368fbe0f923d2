"""One local SparkSession for the whole suite: Spark start-up costs seconds, so it is paid once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from pyspark.sql import DataFrame, SparkSession

import pg_server
from spark_etl import jdbc, load, models, registry
from spark_etl.extract import CORRUPT_RECORD_COLUMN, EXTRACTS
from spark_etl.session import spark_session

PROJECT_DIR = Path(__file__).resolve().parent.parent
REAL_EXTRACTS_DIR = PROJECT_DIR.parent / "shared" / "data_extracts"


ENTRY_SCRIPT = PROJECT_DIR / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"
NOTEBOOKS = ("01_staging.ipynb", "02_intermediate.ipynb", "03_marts.ipynb")


def run_pipeline(
    *args: str, timeout: float = 900, env: dict[str, str] | None = None, unset: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """The entry script in a process of its own, as a scheduler runs it (`unset`: variables it does not get)."""
    environment = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})}
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, str(ENTRY_SCRIPT), *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_pipeline(*args: str) -> subprocess.Popen[str]:
    """The entry script started in the background, for tests that act on a run while it runs."""
    return subprocess.Popen(
        [sys.executable, str(ENTRY_SCRIPT), *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_notebooks_clean(output_dir: Path) -> None:
    """Each executed notebook is kept, is valid nbformat and holds no error output."""
    for name in NOTEBOOKS:
        notebook = nbformat.read(output_dir / "notebooks" / name, as_version=4)
        nbformat.validate(notebook)
        errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert errors == [], name
        assert any(o.get("output_type") == "display_data" for cell in notebook.cells for o in cell.get("outputs", []))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    conf = {"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false", "spark.default.parallelism": "2"}
    if Path(jdbc.DEFAULT_DRIVER_JAR).is_file():  # the JDBC tests' driver; it must be there when the JVM starts
        conf["spark.jars"] = jdbc.DEFAULT_DRIVER_JAR
    session = spark_session("tests", "local[2]", conf)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg_server.PostgresServer]:
    """One real PostgreSQL server for the session; skipped where the binaries or the driver are missing, unless
    REQUIRE_POSTGRES=1 (CI), where that is a failure."""
    missing = pg_server.binaries_missing()
    if missing is None and not Path(jdbc.DEFAULT_DRIVER_JAR).is_file():
        missing = (
            f"the PostgreSQL JDBC driver is not at {jdbc.DEFAULT_DRIVER_JAR} (apt-get install libpostgresql-jdbc-java)"
        )
    if missing is not None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {missing}")
        pytest.skip(missing)
    server = pg_server.start_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_extracts_dir() -> Path:
    """The real extracts beside the clone; CI always has them, so there they must be present."""
    if not (REAL_EXTRACTS_DIR / "invoices.csv").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the real extracts are missing at {REAL_EXTRACTS_DIR}")
        pytest.skip(f"the real extracts are not at {REAL_EXTRACTS_DIR} (they are outside the repository)")
    return REAL_EXTRACTS_DIR


def raw_columns(table_name: str) -> tuple[str, ...]:
    """The columns an extract's raw view has (extract.read_extract): its required columns, then _corrupt_record."""
    (extract,) = [extract for extract in EXTRACTS if extract.table_name == table_name]
    return (*extract.columns, CORRUPT_RECORD_COLUMN)


def register_strings(spark: SparkSession, view: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Register inline rows as an all-string view, the shape extract.read_extract gives the staging models."""
    schema = ", ".join(f"{name} string" for name in columns)
    spark.createDataFrame([tuple(row) for row in rows], schema).createOrReplaceTempView(view)


def run_view(spark: SparkSession, layer: str, model_name: str) -> DataFrame:
    """Run one model's SQL and register it under its name, as a stage does; a model that merges into its
    previous version (stored_<model>) gets an empty one, and no key withdrawn by the source (withdrawn_<table>),
    as in a full run, unless the test registered them."""
    declared = registry.model(model_name)
    for name in declared.inputs:
        if name.startswith(registry.STORED_PREFIX) and not spark.catalog.tableExists(name):
            load.empty_frame(spark, registry.schema_ddl(declared)).createOrReplaceTempView(name)
        if name in registry.WITHDRAWN_VIEWS and not spark.catalog.tableExists(name):
            load.empty_frame(spark, registry.WITHDRAWN_VIEWS[name]).createOrReplaceTempView(name)
    model_df = spark.sql(models.sql_text(layer, model_name))
    model_df.createOrReplaceTempView(model_name)
    return model_df


def collect_sorted(model_df: DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The chosen columns of every row, sorted (None first), for whole-table comparisons."""
    selected = [tuple(row) for row in model_df.select(*columns).collect()]
    return sorted(selected, key=lambda row: tuple((value is not None, value) for value in row))


def jobs_in_group(spark: SparkSession, group: str) -> list[int]:
    """The jobs Spark ran under a job group, once its listener bus has delivered every event posted so far
    (job starts reach the status tracker asynchronously)."""
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()
    return list(spark.sparkContext.statusTracker().getJobIdsForGroup(group))
