"""The benchmark's day split: day 0 plus the delta is the generated folder, so the full run over the generated
extracts is the full run over the merged data that the incremental row is compared with."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from support.contract_compare import read_rows

from bench_delta import cached_split, new_issue_dates, paid_quota, split
from extracts_generator import generate

PROJECT_DIR = Path(__file__).resolve().parents[2]
BENCH = PROJECT_DIR / "benchmarks" / "bench.py"


def test_new_dates_come_closest_to_the_share_in_whole_days() -> None:
    per_date = Counter({"2021-05-12": 2, "2021-05-11": 3, "2021-05-10": 40})
    assert new_issue_dates(per_date, 1000, share=0.003) == ["2021-05-12"]  # 2 is nearer 3 than 5 is
    assert new_issue_dates(per_date, 1000, share=0.005) == ["2021-05-12", "2021-05-11"]
    assert new_issue_dates(per_date, 10, share=0.001) == ["2021-05-12"]  # at least one day


def test_payments_take_the_latest_stored_dates_first() -> None:
    per_date = Counter({"2021-05-12": 9, "2021-05-11": 3, "2021-05-10": 4, "2021-05-09": 7})
    quota = paid_quota(per_date, {"2021-05-12"}, 500, share=0.01)
    assert quota == {"2021-05-11": 3, "2021-05-10": 2}


def test_day0_plus_delta_is_the_generated_folder(tmp_path: Path) -> None:
    generated = tmp_path / "generated"
    generate(generated, seed=7, scale=0.5)
    day_split = split(generated, tmp_path / "day0", tmp_path / "delta")
    day0, delta = Path(day_split.day0), Path(day_split.delta)

    header, original = read_rows(generated / "invoices.csv")
    _, day0_invoices = read_rows(day0 / "invoices.csv")
    _, delta_invoices = read_rows(delta / "invoices.csv")
    merged = {row[0]: row for row in day0_invoices} | {row[0]: row for row in delta_invoices}  # the delta wins
    assert sorted(merged.values()) == sorted(original)
    assert len(day0_invoices) + day_split.new_invoices == len(original)
    assert day_split.paid_invoices == round(0.01 * len(day0_invoices))
    assert sum(1 for row in day0_invoices if not row[header.index("payment_dates")]) == day_split.paid_invoices
    issued = header.index("date_issued")
    new_invoices = [row for row in delta_invoices if row[issued] in day_split.new_issue_dates]
    assert len(new_invoices) == day_split.new_invoices
    assert min(day_split.new_issue_dates) > max(row[issued] for row in day0_invoices)

    _, lines = read_rows(generated / "invoice_line_items.csv")
    _, day0_lines = read_rows(day0 / "invoice_line_items.csv")
    _, delta_lines = read_rows(delta / "invoice_line_items.csv")
    assert sorted(day0_lines + delta_lines) == sorted(lines)
    new_ids = {row[0] for row in new_invoices}
    assert {row[0] for row in delta_lines} == new_ids

    for table in ("accounts", "skus"):
        assert (day0 / f"{table}.csv").read_bytes() == (generated / f"{table}.csv").read_bytes()
        assert read_rows(delta / f"{table}.csv")[1] == []
    assert day_split.delta_rows == {
        "accounts": 0,
        "skus": 0,
        "invoices": day_split.new_invoices + day_split.paid_invoices,
        "invoice_line_items": len(delta_lines),
    }


def test_the_split_is_made_once(tmp_path: Path) -> None:
    generated = tmp_path / "generated"
    generate(generated, seed=7, scale=0.2)
    first = cached_split(generated)
    marker = Path(first.day0).parent / "split.json"
    made = marker.stat().st_mtime_ns
    assert cached_split(generated) == first
    assert marker.stat().st_mtime_ns == made
