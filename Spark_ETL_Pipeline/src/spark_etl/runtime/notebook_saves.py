"""How often a stage's executed copy is written while the stage runs: at most once a second, not twice per cell.

Papermill rewrites the whole executed notebook (outputs, charts and all, validated against nbformat's schema) as
each cell starts and as it ends, so that the copy shows how far a stage has got. A run's three stages have about
45 cells: about 95 writes, 0.6 s of a 7 s run on a small extract. Written at most every SAVE_EVERY_SECONDS as
cells start and end, the copy still lags the kernel by about a second, and it is always written in full when the
stage starts and when it ends, whether it succeeded, failed or was interrupted (papermill's `notebook_complete`).
Registered with papermill as the engine ENGINE_NAME, on top of its default engine (nbclient).
"""

from __future__ import annotations

from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

ENGINE_NAME = "spark_etl"
SAVE_EVERY_SECONDS = 1.0


class ThrottledSaves(NotebookExecutionManager):  # type: ignore[misc]  # papermill ships no annotations
    """Papermill's execution record of one notebook, written less often while its cells run."""

    has_saved = False

    def save(self, **kwargs: Any) -> None:
        is_finished = self.end_time is not None  # set by notebook_complete just before its last save
        waited = (self.now() - self.last_save_time).total_seconds()
        if is_finished or not self.has_saved or waited >= SAVE_EVERY_SECONDS:
            super().save(**kwargs)
            self.has_saved = True


class ThrottledSavesEngine(NBClientEngine):  # type: ignore[misc]
    """Papermill's nbclient engine with ThrottledSaves as the record it keeps of the notebook."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        record = ThrottledSaves(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        record.notebook_start()
        try:
            cls.execute_managed_notebook(record, kernel_name, log_output=log_output, **kwargs)
        finally:
            record.cleanup_pbar()
            record.notebook_complete()  # the last write, whatever happened in the cells
        return record.nb


papermill_engines.register(ENGINE_NAME, ThrottledSavesEngine)
