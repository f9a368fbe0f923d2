"""Comparing a pipeline run's files with the independent reference implementation, row by row."""

from __future__ import annotations

import collections
import csv
import json
from pathlib import Path

from reference_contract import ReferenceResult


def read_csv(path: Path) -> list[tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [tuple(row) for row in csv.reader(handle)]


def read_rows(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        return next(reader), [tuple(row) for row in reader]


def loose_record(source_record: str) -> str:
    """Canonical JSON; a malformed record's raw text is compared without its quote characters, because the
    reference re-joins the parsed fields while Spark keeps the text as it stood in the file."""
    record = json.loads(source_record)
    if "_corrupt_record" in record:
        record["_corrupt_record"] = str(record["_corrupt_record"]).replace('"', "")
    return json.dumps(record, sort_keys=True)


def assert_run_matches_reference(output_dir: Path, output_name: str, expected: ReferenceResult) -> None:
    """Every output row and column, every reject record and every count must agree."""
    output_rows = read_csv(output_dir / output_name)
    assert output_rows[0] == expected.header
    assert len(output_rows) - 1 == len(expected.rows)
    mismatches = [(got, want) for got, want in zip(output_rows[1:], expected.rows, strict=True) if got != want]
    assert mismatches == []

    reject_rows = read_csv(output_dir / "rejects.csv")
    assert reject_rows[0] == ("table_name", "reject_reason", "source_record")
    got_records = collections.Counter((table, reason, loose_record(src)) for table, reason, src in reject_rows[1:])
    want_records = collections.Counter(
        {(table, reason, loose_record(src)): n for (table, reason, src), n in expected.reject_records.items()}
    )
    assert got_records == want_records

    summary = json.loads((output_dir / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["output_rows"] == len(expected.rows)
    assert summary["as_of"] == (expected.as_of.isoformat() if expected.as_of else None)
    assert summary["rejects"] == {f"{table}/{reason}": n for (table, reason), n in sorted(expected.rejects.items())}
    assert summary["tables"] == {
        table: {"read": c.read, "kept": c.kept, "collapsed": c.collapsed, "rejected": c.rejected}
        for table, c in expected.counts.items()
    }
