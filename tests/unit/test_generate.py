"""The seeded generator: deterministic, shaped like the real extracts, and the source of data_extracts/."""

from __future__ import annotations

import csv
import filecmp
from pathlib import Path

import pytest
from support.pipeline import PROJECT_DIR

import reference_contract
from extracts_generator import generate, shapes
from spark_etl.sources.extract import EXTRACTS


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", seed=3, scale=0.2, unpaid_rate=0.1, bad_rows=25)
    second = generate(tmp_path / "b", seed=3, scale=0.2, unpaid_rate=0.1, bad_rows=25)
    assert first == second
    for extract in EXTRACTS:
        assert filecmp.cmp(tmp_path / "a" / extract.file_name, tmp_path / "b" / extract.file_name, shallow=False)


def test_bundled_extracts_are_the_generators_output(tmp_path: Path) -> None:
    generate(tmp_path, seed=42, bad_rows=30, unpaid_rate=0.02)  # as `make extracts` does
    for extract in EXTRACTS:
        assert filecmp.cmp(
            tmp_path / extract.file_name, PROJECT_DIR / "data_extracts" / extract.file_name, shallow=False
        )


def test_scale_one_has_the_real_extracts_shape(tmp_path: Path) -> None:
    written = generate(tmp_path, seed=5)
    assert written["accounts"] == 200 and written["skus"] == 100
    assert 9000 <= written["invoices"] <= 10500  # real: 9,685
    assert 5.0 <= written["invoice_line_items"] / written["invoices"] <= 6.0  # real: 5.52 lines per invoice
    with (tmp_path / "accounts.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert all("\n" in row["company_address"] for row in rows)  # multi-line quoted addresses, as in production
    result = reference_contract.compute(tmp_path)
    assert sum(result.rejects.values()) == 0  # no bad rows unless asked for


def test_bad_rows_cover_every_reject_reason(tmp_path: Path) -> None:
    generate(tmp_path, seed=9, scale=0.1, bad_rows=40)
    result = reference_contract.compute(tmp_path)
    assert set(result.rejects) == {
        ("accounts", "invalid_value"),
        ("accounts", "duplicate_conflict"),
        ("skus", "invalid_value"),
        ("skus", "duplicate_conflict"),
        ("invoices", "invalid_value"),
        ("invoices", "duplicate_conflict"),
        ("invoice_line_items", "invalid_value"),
        ("invoice_line_items", "unknown_invoice"),
        ("invoice_line_items", "unknown_sku"),
    }
    assert all(counts.collapsed > 0 for table, counts in result.counts.items() if table != "invoice_line_items")


def test_large_sizes_draw_account_texts_from_a_faker_pool_deterministically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ACCOUNT_TEXT_POOL accounts the texts come from a pool (so Faker's cost stays flat); still seeded."""
    monkeypatch.setattr(shapes, "ACCOUNT_TEXT_POOL", 20)
    for folder in ("a", "b"):
        generate(tmp_path / folder, seed=4, scale=0.5)  # 100 accounts over a pool of 20
    assert filecmp.cmp(tmp_path / "a" / "accounts.csv", tmp_path / "b" / "accounts.csv", shallow=False)
    with (tmp_path / "a" / "accounts.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["account_id"] for row in rows] == [str(number) for number in range(1, 101)]
    assert len({row["company_address"] for row in rows}) <= 20
    assert all("\n" in row["company_address"] and row["gender"] in ("F", "M") for row in rows)
