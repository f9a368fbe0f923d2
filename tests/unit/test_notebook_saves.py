"""A stage's executed copy is written when the stage starts, at most once a second while its cells run, and always
in full when it ends."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from spark_etl.runtime import notebook_saves


def cell_statuses(path: Path) -> list[str]:
    saved = json.loads(path.read_text(encoding="utf-8"))
    return [cell["metadata"]["papermill"]["status"] for cell in saved["cells"]]


def test_cells_that_end_within_a_second_are_written_once_the_second_is_up_and_the_end_always(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = new_notebook(cells=[new_code_cell("1"), new_code_cell("2"), new_code_cell("3")])
    notebook.metadata["papermill"] = {}
    output = tmp_path / "executed.ipynb"
    record = notebook_saves.ThrottledSaves(notebook, output_path=str(output), progress_bar=False)
    clock = [record.now()]
    monkeypatch.setattr(record, "now", lambda: clock[0])

    record.notebook_start()
    assert cell_statuses(output) == ["pending"] * 3  # the start is always written
    first, second, third = notebook.cells
    record.cell_start(first, 0)
    record.cell_complete(first, 0)
    record.cell_start(second, 1)
    assert cell_statuses(output) == ["pending"] * 3  # all within the second: not written

    clock[0] += datetime.timedelta(seconds=notebook_saves.SAVE_EVERY_SECONDS)
    record.cell_complete(second, 1)
    assert cell_statuses(output) == ["completed", "completed", "pending"]

    record.cell_start(third, 2)
    record.cell_exception(third, 2)
    record.cell_complete(third, 2)
    assert cell_statuses(output) == ["completed", "completed", "pending"]  # within the next second
    record.notebook_complete()
    assert cell_statuses(output) == ["completed", "completed", "failed"]  # the end, at once
    nbformat.validate(nbformat.read(output, as_version=4))
