"""The suite's fixtures, one per shared resource or data set: one local SparkSession and one stage kernel per
pytest-xdist worker (Spark start-up costs seconds, so a worker pays it once), the PostgreSQL server, the real
extracts and the one run over them, the generated extracts, and the processes a test starts to contend for a
warehouse's lock. Session fixtures are made once per worker, and a module's tests all run on one worker
(`--dist loadfile`), so a module's fixtures are made once. Helpers are in the `support` package."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from support.pipeline import REAL_EXTRACTS_DIR, VIEWFS_MOUNT_SETTING, FinishedRun, run_in_kernel
from support.warehouse_locks import Contender

import pg_server
from extracts_generator import generate
from spark_etl.runtime import runner
from spark_etl.runtime.session import spark_session
from spark_etl.sources import jdbc


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    conf = {"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false", "spark.default.parallelism": "2"}
    if Path(jdbc.DEFAULT_DRIVER_JAR).is_file():  # the JDBC tests' driver; it must be there when the JVM starts
        conf["spark.jars"] = jdbc.DEFAULT_DRIVER_JAR
    session = spark_session("tests", "local[2]", conf)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def viewfs_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local folder the session's kernel mounts at VIEWFS_WAREHOUSES: a Hadoop URI that is not `file:`, so the
    entry script cannot reach it, as it cannot reach hdfs: or s3a: on a cluster."""
    return tmp_path_factory.mktemp("viewfs")


@pytest.fixture(scope="session")
def stage_kernel(viewfs_folder: Path) -> Iterator[runner.SharedKernel]:
    """One kernel on one Spark JVM for the session, as one run of the entry script has, for the runs that are a
    test's oracle or its subject (`run_in_kernel`): warm, it runs the four notebooks in about half the time a
    fresh process takes. It has the JDBC driver and the test server's password, so it can read from the session's
    PostgreSQL too, and viewfs://etl/warehouses/ mounted on `viewfs_folder`."""
    conf = {"spark.master": "local[2]", "spark.sql.shuffle.partitions": "4"}
    conf[VIEWFS_MOUNT_SETTING] = viewfs_folder.as_uri()
    if Path(jdbc.DEFAULT_DRIVER_JAR).is_file():
        conf["spark.jars"] = jdbc.DEFAULT_DRIVER_JAR
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as kernel:
        patch.setenv(jdbc.PASSWORD_ENVIRONMENT_VARIABLE, pg_server.SUPERUSER_PASSWORD)  # what the kernel inherits
        shared = kernel.enter_context(runner.shared_kernel(conf))
        patch.undo()
        yield shared


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


@pytest.fixture(scope="session")
def real_run(
    real_extracts_dir: Path, tmp_path_factory: pytest.TempPathFactory, stage_kernel: runner.SharedKernel
) -> FinishedRun:
    """One --quiet full run over the real extracts (`pipeline_output.csv`) in the session's kernel, shared by the
    tests that read its files (the entry script in a process of its own runs them in the no-Java test)."""
    output_dir = tmp_path_factory.mktemp("real_run")
    result = run_in_kernel(
        stage_kernel,
        "--extracts", str(real_extracts_dir), "--output", str(output_dir / "pipeline_output.csv"), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return FinishedRun(output_dir, result)


@pytest.fixture(scope="session")
def small_extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated extract (about 6 accounts, 300 invoices) with bad rows of every kind and unpaid invoices,
    for runs whose subject is not the data: failures, locks, header-only tables. Read only."""
    folder = tmp_path_factory.mktemp("small_extracts")
    generate(folder, seed=5, scale=0.03, unpaid_rate=0.2, bad_rows=12)
    return folder


@pytest.fixture(scope="session")
def generated_extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The daily simulations' first load (8 accounts, about 390 invoices): every kind of bad row and many unpaid
    invoices, so a seeded day's delta (support.daily_deltas.make_delta) has every change to make. Read only."""
    folder = tmp_path_factory.mktemp("generated_extracts")
    generate(folder, seed=7, scale=0.04, unpaid_rate=0.2, bad_rows=24)
    return folder


@pytest.fixture
def contenders() -> Iterator[list[Contender]]:
    """The lock contenders a test starts (support.warehouse_locks.take); any still running at its end is killed."""
    started: list[Contender] = []
    yield started
    for contender in started:
        if contender.process.poll() is None:
            contender.process.kill()
            contender.process.wait()
