"""The committed notebooks run by hand as in JupyterLab: top to bottom on their defaults, one after another."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import papermill
import pytest
from support.pipeline import COMMITTED_NOTEBOOKS as NOTEBOOKS
from support.pipeline import PROJECT_DIR

pytestmark = pytest.mark.e2e


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
    assert sorted(p.name for p in warehouse.iterdir()) == ["_current.json", "versions"]  # 04 made its version current
    version = json.loads((warehouse / "_current.json").read_text(encoding="utf-8"))["version"]
    assert version.startswith("manual_")  # run by hand: 01 named it, 02 to 04 found it
    version_dir = warehouse / "versions" / version
    assert sorted(p.name for p in version_dir.iterdir()) == [
        "_manifest.json",
        "intermediate",
        "marts",
        "monitoring",
        "staging",
    ]
