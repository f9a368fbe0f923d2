"""The run's own lines on the terminal and in its log, SIGTERM's handling, and the one-line failure a run ends
with."""

from __future__ import annotations

import contextlib
import signal
import sys
from types import FrameType
from typing import Any, TextIO

from spark_etl import failures
from spark_etl.runtime import runner
from spark_etl.runtime.session import redact_text


class Console:
    """The run's own lines: on the terminal (errors always, the rest unless --quiet) and in the run's log, with
    every secret value redacted."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.terminal: TextIO = sys.stderr
        self.secret_values: list[str] = []
        self.secret_settings: dict[str, str] = {}  # the Spark settings among them, for the kernels

    def line(self, text: str, is_error: bool = False) -> None:
        text = redact_text(text, self.secret_values)
        if is_error or not self.quiet:
            print(text, file=self.terminal, flush=True)
        if self.terminal is not sys.stderr:  # stderr is the run's log while the run runs
            self.detail(text + "\n")

    def detail(self, text: str) -> None:
        """Into the run's log only; a log that cannot be written (a full disk) must not hide the run's error."""
        with contextlib.suppress(OSError):
            sys.stderr.write(redact_text(text, self.secret_values))
            sys.stderr.flush()


class RunFailedError(failures.RunError):
    """A run that cannot go on: one line for the terminal, and the exit status its cause's type gave."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Termination:
    """SIGTERM (a scheduler cancelling the run) interrupts the running cell, so the executed notebook shows where
    the run stopped; outside a cell it stops the run at once. Either way the run's files are kept as a failed
    run's."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self.kernel: runner.SharedKernel | None = None

    def install(self) -> Any:
        """Handle SIGTERM from now on; returns the handler it replaces."""
        return signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signal_number: int, frame: FrameType | None) -> None:
        self.signal_number = signal_number
        if self.kernel is not None and self.kernel.manager.has_kernel:
            self.kernel.manager.interrupt_kernel()
        else:
            raise SystemExit(128 + signal_number)

    def check(self) -> None:
        """Stop between stages once a signal came while no cell was running."""
        if self.signal_number is not None:
            raise SystemExit(128 + self.signal_number)

    def failure(self, where: str) -> RunFailedError:
        assert self.signal_number is not None
        name = signal.Signals(self.signal_number).name
        return RunFailedError(f"stopped by {name}{where}", 128 + self.signal_number)
