"""Header-only extracts (a day with no invoices, an empty delta): every combination finishes, and gives exactly
what the reference gives. A run once waited for ever on a row count that no query would fill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.contract_compare import assert_run_matches_reference
from support.pipeline import assert_notebooks_clean, run_in_kernel

import reference_contract
from spark_etl.runtime import runner
from spark_etl.sources import extract

pytestmark = pytest.mark.e2e
TABLES = [spec.table_name for spec in extract.EXTRACTS]


def extracts_with_empty(source: Path, target: Path, empty_tables: list[str]) -> Path:
    """A copy of `source` where each of `empty_tables` keeps only its header line."""
    target.mkdir()
    for spec in extract.EXTRACTS:
        text = (source / spec.file_name).read_text(encoding="utf-8")
        if spec.table_name in empty_tables:
            text = text.splitlines(keepends=True)[0]
        (target / spec.file_name).write_text(text, encoding="utf-8")
    return target


@pytest.mark.parametrize("empty_table", TABLES)
def test_one_header_only_table_gives_what_the_reference_gives(
    empty_table: str, small_extracts: Path, stage_kernel: runner.SharedKernel, tmp_path: Path
) -> None:
    extracts = extracts_with_empty(small_extracts, tmp_path / "extracts", [empty_table])
    output_dir = tmp_path / "out"
    result = run_in_kernel(stage_kernel, "--extracts", str(extracts), "--output", str(output_dir / "features.csv"))
    assert result.returncode == 0, result.stderr

    expected = reference_contract.compute(extracts)
    assert expected.counts[empty_table].read == 0
    assert_run_matches_reference(output_dir, "features.csv", expected)


def test_all_four_header_only_give_a_header_only_csv_and_zeros(
    small_extracts: Path, stage_kernel: runner.SharedKernel, tmp_path: Path
) -> None:
    extracts = extracts_with_empty(small_extracts, tmp_path / "extracts", TABLES)
    output = tmp_path / "out" / "features.csv"
    result = run_in_kernel(stage_kernel, "--extracts", str(extracts), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_text(encoding="utf-8") == (
        "inv_id,acct_id,inv_total,inv_items,acct_age,num_inv_120d,cum_tot_inv_acct,is_late\n"
    )
    assert (output.parent / "rejects.csv").read_text(encoding="utf-8") == "table_name,reject_reason,source_record\n"
    summary = json.loads((output.parent / "run_summary.json").read_text(encoding="utf-8"))
    zeros = {"read": 0, "kept": 0, "collapsed": 0, "rejected": 0}
    assert summary["tables"] == dict.fromkeys(sorted(TABLES), zeros)
    assert (summary["output_rows"], summary["rejects_total"], summary["as_of"]) == (0, 0, None)
    assert_notebooks_clean(output.parent)
    assert result.stderr.splitlines()[-1].startswith("done (full, version ")
    assert "): 0 invoices" in result.stderr.splitlines()[-1]
