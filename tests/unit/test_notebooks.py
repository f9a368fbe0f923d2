"""The notebooks as committed: valid nbformat, no outputs, parameters first, runnable on their defaults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import papermill
import pytest
from support.pipeline import PROJECT_DIR

NOTEBOOKS = sorted((PROJECT_DIR / "notebooks").glob("*.ipynb"))


def test_three_stage_notebooks_are_committed() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_staging.ipynb",
        "02_intermediate.ipynb",
        "03_marts.ipynb",
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


@pytest.mark.e2e
def test_notebooks_run_top_to_bottom_on_their_defaults(tmp_path: Path) -> None:
    """As in JupyterLab: no parameters passed, paths relative to notebooks/, the bundled extracts."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "notebooks", project / "notebooks")
    shutil.copytree(PROJECT_DIR / "data_extracts", project / "data_extracts")
    for path in NOTEBOOKS:  # each in a fresh kernel with its own JVM, nothing carried over from the one before
        papermill.execute_notebook(
            str(project / "notebooks" / path.name),
            str(tmp_path / path.name),
            kernel_name="python3",
            cwd=str(project / "notebooks"),
            progress_bar=False,
        )
    outputs = project / "data_outputs"
    header = (outputs / "pipeline_output.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "inv_id,acct_id,inv_total,inv_items,acct_age,num_inv_120d,cum_tot_inv_acct,is_late"
    assert (outputs / "rejects.csv").read_text(encoding="utf-8").startswith("table_name,reject_reason,source_record")
    warehouse = outputs / "warehouse"
    assert sorted(p.name for p in warehouse.iterdir()) == ["_current.json", "versions"]  # 03 made its version current
    version = json.loads((warehouse / "_current.json").read_text(encoding="utf-8"))["version"]
    assert version.startswith("manual_")  # run by hand: 01 named it, 02 and 03 found it
    version_dir = warehouse / "versions" / version
    assert sorted(p.name for p in version_dir.iterdir()) == ["_manifest.json", "intermediate", "marts", "staging"]
