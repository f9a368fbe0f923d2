"""The entry script end to end (papermill and the three notebooks included), against the reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import nbformat
import pytest

import reference_contract
from conftest import PROJECT_DIR
from contract_compare import assert_run_matches_reference
from spark_etl.generate import generate

pytestmark = pytest.mark.e2e
ENTRY_SCRIPT = PROJECT_DIR / "Spark_ETL_Pipeline" / "src" / "Spark_ETL_Pipeline.py"
NOTEBOOKS = ("01_staging.ipynb", "02_intermediate.ipynb", "03_marts.ipynb")


def run_pipeline(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run(
        [sys.executable, str(ENTRY_SCRIPT), *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def assert_notebooks_clean(output_dir: Path) -> None:
    """Each executed notebook is kept, is valid nbformat and holds no error output."""
    for name in NOTEBOOKS:
        notebook = nbformat.read(output_dir / "notebooks" / name, as_version=4)
        nbformat.validate(notebook)
        errors = [
            o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"
        ]
        assert errors == [], name
        assert any(
            o.get("output_type") == "display_data" for cell in notebook.cells for o in cell.get("outputs", [])
        )


@pytest.fixture(scope="module")
def messy_extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generator data with many same-day and unpaid invoices and every kind of bad row."""
    folder = tmp_path_factory.mktemp("messy_extracts")
    generate(folder, seed=11, scale=0.5, same_day_rate=0.35, unpaid_rate=0.15, bad_rows=80)
    return folder


def test_generated_extracts_match_the_reference_on_every_row(messy_extracts: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "features.csv"
    result = run_pipeline("--extracts", str(messy_extracts), "--output", str(output), "--as-of", "2021-07-01")
    assert result.returncode == 0, result.stderr
    expected = reference_contract.compute(messy_extracts, as_of=date(2021, 7, 1))
    assert len(expected.rejects) == 9  # every reason in every table it applies to was injected
    assert_run_matches_reference(output.parent, "features.csv", expected)
    assert_notebooks_clean(output.parent)
    # one line per notebook and per model on stderr, then the closing line
    assert "01_staging.ipynb" in result.stderr and "fct_invoice_features" in result.stderr
    assert f"done: {len(expected.rows):,} invoices" in result.stderr
    leftovers = sorted(p.name for p in output.parent.iterdir())
    assert leftovers == ["features.csv", "notebooks", "rejects.csv", "run_summary.json", "warehouse"]
    summary = json.loads((output.parent / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["as_of_given"] is True
    assert [stage["notebook"] for stage in summary["stages"]] == list(NOTEBOOKS)
    assert summary["versions"]["pyspark"] == "3.4.0"
    assert summary["invoices_with_unknown_account"] == sum(1 for row in expected.rows if row[4] == "")
    warehouse = output.parent / "warehouse"
    assert sorted(p.name for p in (warehouse / "intermediate").iterdir()) == [
        "int_account_daily_invoices",
        "int_as_of_date",
        "int_invoice_totals",
    ]


def test_real_extracts_match_the_reference(real_extracts_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "pipeline_output.csv"
    result = run_pipeline("--extracts", str(real_extracts_dir), "--output", str(output), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "done:" not in result.stderr  # --quiet
    expected = reference_contract.compute(real_extracts_dir)
    assert len(expected.rows) == 9685
    assert_run_matches_reference(tmp_path, "pipeline_output.csv", expected)


def test_missing_extract_stops_with_status_2_and_writes_nothing(messy_extracts: Path, tmp_path: Path) -> None:
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    for name in ("accounts.csv", "skus.csv", "invoice_line_items.csv"):
        (extracts / name).write_bytes((messy_extracts / name).read_bytes())
    output = tmp_path / "out" / "pipeline_output.csv"
    result = run_pipeline("--extracts", str(extracts), "--output", str(output))
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert f"{extracts}/invoices.csv: file not found" in error_lines[0]
    assert "01_staging.ipynb, cell" in error_lines[0]
    assert not output.exists()
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "notebooks"
    ]  # the failed notebook, as evidence


def test_missing_column_stops_with_status_2_naming_file_and_column(
    messy_extracts: Path, tmp_path: Path
) -> None:
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    for name in ("accounts.csv", "skus.csv", "invoices.csv", "invoice_line_items.csv"):
        (extracts / name).write_bytes((messy_extracts / name).read_bytes())
    lines = (extracts / "skus.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].replace("item_retail_price", "retail")
    (extracts / "skus.csv").write_text("\n".join([header, *lines[1:]]) + "\n", encoding="utf-8")
    output = tmp_path / "out" / "pipeline_output.csv"
    result = run_pipeline("--extracts", str(extracts), "--output", str(output))
    assert result.returncode == 2
    assert f"{extracts}/skus.csv: missing column item_retail_price" in result.stderr
    assert not output.exists()
    assert not (output.parent / "run_summary.json").exists()


def test_bad_options_exit_2_with_usage() -> None:
    result = run_pipeline("--as-of", "yesterday")
    assert result.returncode == 2
    assert "--as-of: 'yesterday' is not a date in YYYY-MM-DD form" in result.stderr


def test_help_lists_every_option() -> None:
    result = run_pipeline("--help")
    assert result.returncode == 0
    for option in ("--extracts", "--output", "--warehouse", "--as-of", "--master", "--conf", "--quiet"):
        assert option in result.stdout
