"""The notebooks as committed: valid nbformat, no outputs, parameters first."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest
from support.pipeline import COMMITTED_NOTEBOOKS as NOTEBOOKS


def test_four_stage_notebooks_are_committed() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_staging.ipynb",
        "02_intermediate.ipynb",
        "03_marts.ipynb",
        "04_monitoring.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_valid_without_outputs_and_parameters_come_first(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    # nbformat 4.5 cells carry an id; reading fills in a missing one (with a warning in every run's log), so look
    # at the file itself
    assert all("id" in cell for cell in json.loads(path.read_text(encoding="utf-8"))["cells"])
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code_cells[0].metadata.get("tags", [])
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_papermill_documents_every_parameter_with_a_type_and_a_meaning(path: Path) -> None:
    parameters = papermill.inspect_notebook(str(path))
    assert "master" in parameters and "spark_conf" in parameters
    for name, parameter in parameters.items():
        assert parameter["inferred_type_name"] != "None", name
        assert parameter["help"], name
    assert parameters["spark_conf"]["inferred_type_name"] == "dict[str, str]"
