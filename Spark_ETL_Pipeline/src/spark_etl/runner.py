"""Executing the stage notebooks with papermill, on one shared Spark JVM, and reading back their metrics."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill

from spark_etl.quality import METRICS_MIME_TYPE
from spark_etl.session import prepare_jvm_launch

PACKAGE_SOURCE_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = PACKAGE_SOURCE_DIR.parent.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
STAGE_NOTEBOOKS = ("01_staging.ipynb", "02_intermediate.ipynb", "03_marts.ipynb")


class NotebookError(Exception):
    """A stage notebook raised: names the notebook, the cell and the error, in one line."""

    def __init__(self, notebook: str, cell: int | None, error_name: str, error_value: str) -> None:
        self.notebook = notebook
        self.cell = cell
        self.error_name = error_name
        self.error_value = error_value
        where = f"{notebook}, cell {cell}" if cell is not None else notebook
        super().__init__(f"{where}: {error_name}: {error_value}")


@dataclass(frozen=True)
class NotebookRun:
    notebook: str
    executed_path: Path
    seconds: float
    metrics: dict[str, Any]


@contextlib.contextmanager
def shared_spark_jvm(conf: Mapping[str, str]) -> Iterator[None]:
    """Start Spark's JVM once and let every notebook kernel attach to it.

    PySpark connects to an existing gateway when PYSPARK_GATEWAY_PORT and PYSPARK_GATEWAY_SECRET are set (as
    under spark-submit), so each kernel creates a SparkContext on a warm JVM instead of starting its own.
    """
    from pyspark import SparkConf
    from pyspark.java_gateway import launch_gateway

    launch_conf = dict(conf)
    prepare_jvm_launch(launch_conf.get("spark.master", "local[*]"))
    log_config = Path(__file__).resolve().parent / "log4j2.properties"
    launch_conf.setdefault("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_config}")
    gateway = launch_gateway(SparkConf(loadDefaults=False).setAll(list(launch_conf.items())))
    saved = {name: os.environ.get(name) for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")}
    os.environ["PYSPARK_GATEWAY_PORT"] = str(gateway.gateway_parameters.port)
    os.environ["PYSPARK_GATEWAY_SECRET"] = str(gateway.gateway_parameters.auth_token)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        gateway.shutdown()
        process = getattr(gateway, "proc", None)
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except Exception:
                process.kill()


def stage_metrics(executed_path: Path) -> dict[str, Any]:
    """The metrics a notebook published (quality.publish_metrics), read from its executed copy."""
    notebook = nbformat.read(executed_path, as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if METRICS_MIME_TYPE in data:
                return dict(data[METRICS_MIME_TYPE])
    raise NotebookError(executed_path.name, None, "MissingMetrics", "the notebook published no stage metrics")


def execute_notebook(
    notebook: str, executed_dir: Path, parameters: dict[str, Any], notebooks_dir: Path = NOTEBOOKS_DIR
) -> NotebookRun:
    """Run one stage notebook in a fresh kernel; its executed copy is the stage's report."""
    executed_path = executed_dir / notebook
    environment = os.environ.get("PYTHONPATH", "")
    if str(PACKAGE_SOURCE_DIR) not in environment.split(os.pathsep):
        # the kernels import the package from this checkout even when it is not installed
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_SOURCE_DIR), environment) if p)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebooks_dir / notebook),
            str(executed_path),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(notebooks_dir),
            progress_bar=False,
            log_output=False,
            # the kernels' own start-up and shutdown chatter would interleave with the stage lines
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except papermill.PapermillExecutionError as error:
        raise NotebookError(
            notebook, error.exec_count, error.ename, str(error.evalue).strip().splitlines()[0]
        ) from None
    seconds = time.perf_counter() - started
    return NotebookRun(notebook, executed_path, seconds, stage_metrics(executed_path))


def quiet_papermill() -> None:
    """Papermill logs each cell at INFO; the entry script prints its own one line per stage instead."""
    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(logging.WARNING)
