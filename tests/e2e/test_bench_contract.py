"""The benchmark's own Spark jobs run on their own over the real extracts: the contract job (bench.py --contract)
gives the reference features, the naive reference job (--naive) one row per invoice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.contract_compare import read_rows
from support.pipeline import PROJECT_DIR

import reference_contract

pytestmark = pytest.mark.e2e


def run_job(option: str, extracts_dir: Path, output: Path) -> Path:
    """`bench.py <option> DIR OUT` in a process of its own, as the benchmark runs it; the CSV it wrote."""
    command = [sys.executable, str(PROJECT_DIR / "benchmarks" / "bench.py"), option, str(extracts_dir), str(output)]
    subprocess.run(command, check=True, capture_output=True, cwd=PROJECT_DIR, timeout=600)
    return output


@pytest.fixture(scope="module")
def expected(real_extracts_dir: Path) -> reference_contract.ReferenceResult:
    """The reference's features over the real extracts, which both jobs are held to."""
    return reference_contract.compute(real_extracts_dir)


def test_the_contract_job_alone_gives_the_reference_features(
    tmp_path: Path, real_extracts_dir: Path, expected: reference_contract.ReferenceResult
) -> None:
    """(d), the contract's models as views in one session, must still run on their own: every input a full run
    registers (the stored_ and withdrawn_ views included) has to be registered by the job too."""
    output = run_job("--contract", real_extracts_dir, tmp_path / "contract_output.csv")
    header, rows = read_rows(output)
    assert (tuple(header), rows) == (expected.header, expected.rows)


def test_the_naive_reference_job_gives_one_row_per_invoice_of_the_real_extracts(
    tmp_path: Path, real_extracts_dir: Path, expected: reference_contract.ReferenceResult
) -> None:
    """(f), the yardstick the pipeline's time is set against, must run on its own and give the same invoices with
    the same eight columns; its values are not the contract's (it checks nothing), so only its shape is asserted."""
    output = run_job("--naive", real_extracts_dir, tmp_path / "naive_output.csv")
    header, rows = read_rows(output)
    assert tuple(header) == expected.header
    assert sorted(row[0] for row in rows) == sorted(row[0] for row in expected.rows)
