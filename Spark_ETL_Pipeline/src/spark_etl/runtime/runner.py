"""Executing the stage notebooks with papermill, in one kernel on one Spark JVM, and reading back their metrics."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from spark_etl.publishing import stage_metrics
from spark_etl.runtime import class_archive, kernel_lifetime, stage_kernel
from spark_etl.runtime.session import prepare_jvm_launch, speed_options, start_driver_jvm

PACKAGE_SOURCE_DIR = Path(__file__).resolve().parents[2]
PROJECT_DIR = PACKAGE_SOURCE_DIR.parent.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
STAGE_NOTEBOOKS = ("01_staging.ipynb", "02_intermediate.ipynb", "03_marts.ipynb", "04_monitoring.ipynb")
KERNEL_NAME = "python3"
# how long the JVM may take to exit once asked; the first run on a machine also writes the class archive then
JVM_EXIT_SECONDS = 60
KERNEL_REPLY_SECONDS = 600  # a request to the run's kernel outside a notebook: a stage's start, a commit
# the kernels' own start-up and shutdown chatter would interleave with the stage lines; a kernel dies with the
# entry script (kernel_lifetime), which a scheduler's SIGKILL to its process group would otherwise not reach; and
# it loads what the stages import while it boots (stage_kernel), as the JVM starts
KERNEL_ARGUMENTS = [
    "--IPKernelApp.log_level=CRITICAL",
    f"--IPKernelApp.exec_lines={kernel_lifetime.STARTUP_LINE}",
    f"--IPKernelApp.exec_lines={stage_kernel.STARTUP_LINE}",
]


class NotebookError(Exception):
    """A stage notebook raised: names the notebook, the cell and the error, in one line."""

    def __init__(self, notebook: str, cell: int | None, error_name: str, error_value: str) -> None:
        self.notebook = notebook
        self.cell = cell
        self.error_name = error_name
        self.error_value = error_value
        where = f"{notebook}, cell {cell}" if cell is not None else notebook
        super().__init__(f"{where}: {error_name}: {error_value}")


class KernelCallError(Exception):
    """A step the entry script ran in the run's kernel outside the stages raised: the step and the error, in one
    line; `error_name` gives the exit status as a stage's error would (failures.exit_status_of)."""

    def __init__(self, step: str, error_name: str, error_value: str) -> None:
        self.error_name = error_name
        self.error_value = error_value
        super().__init__(f"{step}: {error_name}: {error_value}")


class SparkStartError(Exception):
    """The run's Spark JVM did not start (a bad --master, a missing Java): what it said is in the run's log."""


@dataclass(frozen=True)
class NotebookRun:
    notebook: str
    executed_path: Path
    seconds: float
    metrics: dict[str, Any]


# An incremental run over fewer invoices than this is short enough for C1 alone (`session.QUICK_JIT`). Measured on a
# day's delta, C1 alone saved about 3 s at 1x (9,700 invoices) and 100x (970,000) but cost about 7 s at 1000x
# (9.7 million), where the CSV export alone writes every invoice. Estimated from those three sizes, the saving falls
# by about a second per million invoices and is gone near 3 million.
QUICK_JIT_MAX_INVOICES = 2_000_000

# A full run over CSV extracts smaller than this is short enough for C1 alone too: measured 2 to 3 s faster from the
# real extracts (1.4 MB) to generated 10x (15 MB), even at 30x (47 MB), and much slower at 100x (docs/scaling.md
# has the runs). A run from PostgreSQL, whose size is not known before its JVM starts, keeps C2.
QUICK_JIT_MAX_EXTRACT_BYTES = 20_000_000


def is_quick_jit_run(incremental: bool, stored_invoices: int | None, extract_bytes: int | None = None) -> bool:
    """Whether the run's JVM gets C1 alone: an incremental run over a warehouse known to hold few invoices, or a
    full run over extracts known to be small."""
    if incremental:
        return stored_invoices is not None and stored_invoices < QUICK_JIT_MAX_INVOICES
    return extract_bytes is not None and extract_bytes < QUICK_JIT_MAX_EXTRACT_BYTES


@contextlib.contextmanager
def shared_spark_jvm(conf: Mapping[str, str], quick_jit: bool = False) -> Iterator[dict[str, str]]:
    """Start Spark's JVM once and yield the variables a kernel needs to attach to it.

    PySpark connects to an existing gateway when PYSPARK_GATEWAY_PORT and PYSPARK_GATEWAY_SECRET are set (as
    under spark-submit), so a kernel creates its SparkContext on a warm JVM instead of starting its own. The
    environment must be prepared first (`session.prepare_jvm_launch`), as `shared_kernel` does. With
    `quick_jit`, the JVM compiles with C1 alone (`is_quick_jit_run`).
    """
    from pyspark import SparkConf
    from pyspark.java_gateway import launch_gateway

    def launch(java_options: str) -> Any:
        launch_conf = {**conf, "spark.driver.extraJavaOptions": java_options}
        return launch_gateway(SparkConf(loadDefaults=False).setAll(list(launch_conf.items())))

    archive = None
    try:
        if "spark.driver.extraJavaOptions" in conf:  # the run's own options replace the project's
            gateway = launch(conf["spark.driver.extraJavaOptions"])
        else:
            archive = class_archive.plan(conf, may_write=True)  # this JVM writes it at exit when there is none
            gateway = start_driver_jvm(launch, speed_options(archive, quick_jit))
    except RuntimeError as error:  # pyspark's "Java gateway process exited before sending its port number"
        class_archive.publish(archive, exited_on_its_own=False)
        raise SparkStartError(str(error)) from error
    try:
        parameters = gateway.gateway_parameters
        yield {"PYSPARK_GATEWAY_PORT": str(parameters.port), "PYSPARK_GATEWAY_SECRET": parameters.auth_token}
    finally:
        gateway.shutdown()
        process = getattr(gateway, "proc", None)
        exited_on_its_own = False
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=JVM_EXIT_SECONDS)
                exited_on_its_own = True
            except Exception:
                process.kill()
        class_archive.publish(archive, exited_on_its_own)


def read_metrics(executed_path: Path) -> dict[str, Any]:
    """The metrics a notebook published (stage_metrics.publish), read from its executed copy."""
    metrics = stage_metrics.read(executed_path)
    if metrics is None:
        raise NotebookError(executed_path.name, None, "MissingMetrics", "the notebook published no stage metrics")
    return metrics


def _kernel_environment() -> None:
    """The kernels import the package from this checkout even when it is not installed."""
    environment = os.environ.get("PYTHONPATH", "")
    if str(PACKAGE_SOURCE_DIR) not in environment.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_SOURCE_DIR), environment) if p)


class StageKernelClient(BlockingKernelClient):
    """A client of the shared kernel without a heartbeat channel. Whether the kernel lives is asked of its manager
    (`is_alive` does when the client has one, as nbclient's do), and a heartbeat thread opens its socket only once
    it runs: a client stopped before that, as a short `SharedKernel.execute` often is, destroyed the ZeroMQ context
    under it, and the thread died with "Too many open files" (1 client in 8 in a loop of start and stop)."""

    def start_channels(
        self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = False, control: bool = True
    ) -> None:
        super().start_channels(shell=shell, iopub=iopub, stdin=stdin, hb=False, control=control)


class StageKernelManager(KernelManager):
    """The shared kernel's manager, which remembers the clients made for it. nbclient makes one per notebook for a
    kernel it does not own and leaves its channels open (their sockets, several file descriptors each); a kernel
    that runs many stages (the test suite's, many runs long) would pile them up until ZeroMQ has no file left to
    open. `stop_clients` closes them once a notebook has run."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(client_factory=StageKernelClient, blocking_class=StageKernelClient, **kwargs)
        self.made_clients: list[Any] = []

    def client(self, **kwargs: Any) -> Any:
        made = super().client(**kwargs)
        self.made_clients.append(made)
        return made

    def stop_clients(self) -> None:
        for made in self.made_clients:
            made.stop_channels()
        self.made_clients.clear()


@dataclass
class SharedKernel:
    """The one kernel every stage of a run executes in, and the JVM gateway it attaches to."""

    manager: StageKernelManager
    gateway: dict[str, str]
    jit: str  # how its JVM compiles: "c1", "tiered" or "as set" (cli.driver_jit)
    is_ready: bool = False

    def prepare_stage(self, environment: Mapping[str, str]) -> None:
        """Give the next stage what a fresh kernel would (`stage_kernel.start_stage`): no names left by the
        previous stage, the JVM gateway to attach to, and the run's `environment` (its id, its secret settings),
        which a kernel started before the run did not inherit."""
        variables = json.dumps({**environment, **self.gateway})
        self.execute(f"__import__('spark_etl.runtime.stage_kernel', fromlist=['_']).start_stage({variables})")

    def call(self, module: str, function: str, arguments: Mapping[str, Any]) -> None:
        """Run `module.function(**arguments)` (JSON values) in the kernel, on the Spark session its last stage
        left: what the entry script does through Spark after the stages (a commit to a warehouse it cannot reach
        itself). Raises KernelCallError with the kernel's error line when it fails."""
        step = f"{module}.{function}"
        try:
            # the arguments travel as a JSON string the kernel parses: JSON's null and true are not Python's
            decoded = f"__import__('json').loads({json.dumps(json.dumps(dict(arguments)))})"
            self.execute(f"__import__({module!r}, fromlist=['_']).{function}(**{decoded})")
        except KernelCallError as error:
            raise KernelCallError(step, error.error_name, error.error_value) from None

    def execute(self, code: str) -> None:
        """Execute `code` silently and wait for its reply (the first time, for the kernel to be ready); an error
        in it raises KernelCallError."""
        client = self.manager.blocking_client()
        client.start_channels()
        try:
            if not self.is_ready:
                client.wait_for_ready(timeout=60)
                self.is_ready = True
            request = client.execute(code, silent=True, store_history=False)
            try:
                reply = client.get_shell_msg(timeout=KERNEL_REPLY_SECONDS)
                while reply["parent_header"].get("msg_id") != request:
                    reply = client.get_shell_msg(timeout=KERNEL_REPLY_SECONDS)
            except queue.Empty:
                raise RuntimeError(f"the run's kernel did not answer within {KERNEL_REPLY_SECONDS} s") from None
            content = reply["content"]
            if content["status"] != "ok":
                name, value = str(content.get("ename", "Error")), str(content.get("evalue", ""))
                raise KernelCallError("the run's kernel", name, error_line(name, value))
        finally:
            client.stop_channels()


@contextlib.contextmanager
def shared_kernel(
    conf: Mapping[str, str], notebooks_dir: Path = NOTEBOOKS_DIR, quick_jit: bool = False
) -> Iterator[SharedKernel]:
    """One kernel for every stage, on one Spark JVM, so a run pays once for the interpreter, its imports, the
    JVM and the SparkContext. The kernel boots while the JVM starts; each stage still gets its own executed
    copy, an empty namespace (`SharedKernel.prepare_stage`) and a new SparkSession with none of the previous
    stage's views (`session.spark_session`)."""
    _kernel_environment()
    prepare_jvm_launch(conf.get("spark.master", "local[*]"))  # the same Java and loopback for kernel and JVM
    manager = StageKernelManager(kernel_name=KERNEL_NAME)
    manager.start_kernel(cwd=str(notebooks_dir), extra_arguments=KERNEL_ARGUMENTS)
    try:
        with shared_spark_jvm(conf, quick_jit) as gateway:
            try:
                jit = "as set" if "spark.driver.extraJavaOptions" in conf else "c1" if quick_jit else "tiered"
                yield SharedKernel(manager, gateway, jit)
            finally:
                # before the JVM: every stage has saved its notebook, and a kernel killed at once runs no exit
                # code that could reach for a JVM being stopped (a graceful shutdown took 0.5 s)
                manager.shutdown_kernel(now=True)
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def execute_notebook(
    notebook: str,
    executed_dir: Path,
    parameters: dict[str, Any],
    notebooks_dir: Path = NOTEBOOKS_DIR,
    kernel: SharedKernel | None = None,
    environment: Mapping[str, str] | None = None,
) -> NotebookRun:
    """Run one stage notebook, in `kernel` when given (else in a fresh one, which inherits this process's
    environment); its executed copy is the stage's report. `environment`: the run's variables a shared kernel
    started before the run needs."""
    executed_path = executed_dir / notebook
    _kernel_environment()
    engine_options: dict[str, Any] = {"extra_arguments": KERNEL_ARGUMENTS}
    if kernel is not None:
        engine_options = {"km": kernel.manager}
    started = time.perf_counter()
    try:
        if kernel is not None:
            kernel.prepare_stage(environment or {})
        papermill.execute_notebook(
            str(notebooks_dir / notebook),
            str(executed_path),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            cwd=str(notebooks_dir),
            progress_bar=False,
            log_output=False,
            **engine_options,
        )
    except papermill.PapermillExecutionError as error:
        line = error_line(error.ename, error.evalue)
        raise NotebookError(notebook, failing_cell(executed_path, error.cell_index), error.ename, line) from None
    except (DeadKernelError, CellTimeoutError, TimeoutError, RuntimeError, KernelCallError) as error:
        # the kernel died, hung or could not be reached: no cell to blame, still a one-line failure
        raise NotebookError(notebook, None, type(error).__name__, first_line(str(error))) from None
    finally:
        if kernel is not None:
            kernel.manager.stop_clients()
    seconds = time.perf_counter() - started
    return NotebookRun(notebook, executed_path, seconds, read_metrics(executed_path))


def failing_cell(executed_path: Path, cell_index: int) -> int:
    """The failing cell's position (1-based) in the executed copy as saved, where papermill has inserted its
    error banners above it; execution counts are no guide, as they run on across the stages of a shared kernel."""
    try:
        notebook = nbformat.read(executed_path, as_version=4)
    except (OSError, ValueError):
        return cell_index + 1
    for position, cell in enumerate(notebook.cells, start=1):
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return position
    return cell_index + 1


def first_line(text: str) -> str:
    """An error's first line, for the run's one-line failure message."""
    return (text.strip().splitlines() or [""])[0]


def error_line(error_name: str, error_value: str) -> str:
    """The line of a cell's error that says what went wrong. A Py4JJavaError's first line only names the Java
    call ("An error occurred while calling o244.parquet."); the Java exception follows on a line of its own."""
    if error_name == "Py4JJavaError":
        for line in error_value.splitlines():
            if line.startswith(": "):
                return line[2:].strip()
    return first_line(error_value)


def quiet_papermill() -> None:
    """Papermill logs each cell at INFO; the entry script prints its own one line per stage instead."""
    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(logging.WARNING)
