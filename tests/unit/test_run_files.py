"""Which published CSV a --no-csv run may keep (run_files.published_csv_version), on plain files: only the file
kept with the published summary's version, for the same CSV name and the same warehouse."""

from __future__ import annotations

import json
import os
from pathlib import Path

from spark_etl.publishing import run_files

CSV = "pipeline_output.csv"
WAREHOUSE = "/srv/etl/warehouse"


def published(output_dir: Path, version: str, csv_version: str | None = None, **summary: object) -> None:
    """A run's files as `run_files.publish` leaves them: the version's CSV and summary, linked into place."""
    kept = output_dir / run_files.OUTPUT_VERSIONS / version
    kept.mkdir(parents=True)
    (kept / CSV).write_text(f"features of {csv_version or version}\n", encoding="utf-8")
    record = {"version": version, "output": str(output_dir / CSV), "warehouse": WAREHOUSE, **summary}
    if csv_version is not None:
        record["csv_version"] = csv_version
    (kept / run_files.SUMMARY_NAME).write_text(json.dumps(record), encoding="utf-8")
    for name in (CSV, run_files.SUMMARY_NAME):
        (output_dir / name).unlink(missing_ok=True)
        os.link(kept / name, output_dir / name)


def test_the_csv_kept_with_the_published_version_is_kept_under_the_version_it_holds(tmp_path: Path) -> None:
    published(tmp_path, "v1")
    assert run_files.published_csv_version(tmp_path, CSV, WAREHOUSE) == "v1"
    published(tmp_path, "v2", csv_version="v1")  # a --no-csv run: its summary names the version its CSV holds
    assert run_files.published_csv_version(tmp_path, CSV, WAREHOUSE) == "v1"


def test_nothing_is_kept_without_a_published_run_or_for_another_file_or_warehouse(tmp_path: Path) -> None:
    assert run_files.published_csv_version(tmp_path, CSV, WAREHOUSE) is None  # a first run
    (tmp_path / run_files.SUMMARY_NAME).write_text("[]", encoding="utf-8")  # not a summary
    assert run_files.published_csv_version(tmp_path, CSV, WAREHOUSE) is None
    (tmp_path / run_files.SUMMARY_NAME).unlink()
    published(tmp_path, "v1")
    assert run_files.published_csv_version(tmp_path, "features.csv", WAREHOUSE) is None
    assert run_files.published_csv_version(tmp_path, CSV, "/srv/etl/other_warehouse") is None


def test_a_csv_published_without_its_summary_is_not_kept(tmp_path: Path) -> None:
    # a run killed between publishing its CSV and its summary: the CSV is v2's, the summary still v1's
    published(tmp_path, "v1")
    kept = tmp_path / run_files.OUTPUT_VERSIONS / "v2"
    kept.mkdir()
    (kept / CSV).write_text("features of v2\n", encoding="utf-8")
    (tmp_path / CSV).unlink()
    os.link(kept / CSV, tmp_path / CSV)
    assert run_files.published_csv_version(tmp_path, CSV, WAREHOUSE) is None


def test_a_summary_from_before_csv_version_or_a_copied_csv_is_not_trusted(tmp_path: Path) -> None:
    published(tmp_path, "v1")
    summary = json.loads((tmp_path / run_files.SUMMARY_NAME).read_text(encoding="utf-8"))
    del summary["warehouse"]  # written before the summary named its warehouse
    (tmp_path / run_files.SUMMARY_NAME).unlink()
    (tmp_path / run_files.SUMMARY_NAME).write_text(json.dumps(summary), encoding="utf-8")
    assert run_files.published_csv_version(tmp_path, CSV, WAREHOUSE) is None
    published(tmp_path / "copied", "v1")
    content = (tmp_path / "copied" / CSV).read_bytes()
    (tmp_path / "copied" / CSV).unlink()
    (tmp_path / "copied" / CSV).write_bytes(content)  # a file system without hard links copies: not the same file
    assert run_files.published_csv_version(tmp_path / "copied", CSV, WAREHOUSE) is None
