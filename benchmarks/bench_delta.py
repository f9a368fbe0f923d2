"""One day's delta for the incremental benchmark row: a generated extracts folder split into "day 0" (what a first
full run stores) and the next day's delta (what an `--incremental` run merges into day 0's warehouse).

Why: issue 11 measures a typical day, new invoices with their lines and payments of earlier invoices, against a
full run over the same data. Day 0 plus the delta is exactly the generated folder, so the full run (b) over the
generated extracts is the full run over the merged data, and its CSV is what the incremental run must equal.

- new invoices: the invoices of the latest issue day(s), whole days whose invoices add up to about NEW_SHARE of
  all invoices (at least one day), held out of day 0 with their lines and sent in the delta;
- payments: the PAID_SHARE most recent invoices of day 0 that have a payment date (by issue date, latest first;
  within the last day reached, in file order) are unpaid in day 0, and the delta carries their rows as generated,
  with the payment date;
- accounts and skus do not change: day 0 has the generated files (hard links), the delta header-only files.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

NEW_SHARE = 0.003
PAID_SHARE = 0.01
ACCOUNTS, SKUS, INVOICES, LINES = "accounts", "skus", "invoices", "invoice_line_items"
MARKER = "split.json"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class DaySplit:
    """Where day 0 and the delta are, what the delta holds, and the data rows per table of each folder."""

    day0: str
    delta: str
    new_issue_dates: list[str]
    new_invoices: int
    new_lines: int
    paid_invoices: int
    paid_issue_dates: list[str]  # earliest and latest issue date of the invoices paid in the delta
    day0_rows: dict[str, int]
    delta_rows: dict[str, int]

    @staticmethod
    def from_json(document: dict[str, Any]) -> DaySplit:
        return DaySplit(**document)


def splitter_fingerprint() -> str:
    """This file's hash: a split made by an older version of it is not reused."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


@contextlib.contextmanager
def _csv_rows(path: Path) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        yield next(reader), reader


def _writer(handle: Any) -> Any:
    # as the generator writes: minimal quoting, "\n" after each row
    return csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


def new_issue_dates(invoices_per_date: Counter[str], total: int, share: float = NEW_SHARE) -> list[str]:
    """The latest issue dates, whole days, whose invoices come closest to `share` of `total` (at least one day)."""
    target = share * total
    taken: list[str] = []
    count = 0
    for date in sorted(invoices_per_date, reverse=True):
        more = count + invoices_per_date[date]
        if taken and abs(more - target) >= abs(count - target):
            break
        taken.append(date)
        count = more
    return taken


def paid_quota(
    paid_per_date: Counter[str], held_out: set[str], stored: int, share: float = PAID_SHARE
) -> dict[str, int]:
    """How many paid invoices of each issue date are unpaid in day 0: the latest dates first, until `share` of the
    `stored` invoices; the last date reached gives only what is left."""
    left = round(share * stored)
    quota: dict[str, int] = {}
    for date in sorted(paid_per_date, reverse=True):
        if left <= 0:
            break
        if date in held_out:
            continue
        quota[date] = min(left, paid_per_date[date])
        left -= quota[date]
    return quota


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _header_only(source: Path, target: Path) -> None:
    with _csv_rows(source) as (header, _), open(target, "w", newline="", encoding="utf-8") as out:
        _writer(out).writerow(header)


def split(generated: Path, day0: Path, delta: Path) -> DaySplit:
    """Write day 0 and the delta of the `generated` folder; two passes over the invoices, one over the lines."""
    invoices_per_date: Counter[str] = Counter()
    paid_per_date: Counter[str] = Counter()
    total = 0
    with _csv_rows(generated / f"{INVOICES}.csv") as (header, rows):
        issued, paid = header.index("date_issued"), header.index("payment_dates")
        for row in rows:
            total += 1
            if len(row) == len(header) and _ISO_DATE.fullmatch(row[issued]):
                invoices_per_date[row[issued]] += 1
                if row[paid]:
                    paid_per_date[row[issued]] += 1
    held_out = set(new_issue_dates(invoices_per_date, total))
    quota = paid_quota(paid_per_date, held_out, total - sum(invoices_per_date[date] for date in held_out))

    for folder in (day0, delta):
        folder.mkdir(parents=True)
    for table in (ACCOUNTS, SKUS):
        _link_or_copy(generated / f"{table}.csv", day0 / f"{table}.csv")
        _header_only(generated / f"{table}.csv", delta / f"{table}.csv")
    day0_rows = {ACCOUNTS: 0, SKUS: 0, INVOICES: 0, LINES: 0}
    delta_rows = dict(day0_rows)
    new_ids: set[str] = set()
    new_count = paid_count = 0
    left_to_pay = dict(quota)
    with (
        _csv_rows(generated / f"{INVOICES}.csv") as (header, rows),
        open(day0 / f"{INVOICES}.csv", "w", newline="", encoding="utf-8") as day0_out,
        open(delta / f"{INVOICES}.csv", "w", newline="", encoding="utf-8") as delta_out,
    ):
        key, issued, paid = header.index("invoice_id"), header.index("date_issued"), header.index("payment_dates")
        day0_writer, delta_writer = _writer(day0_out), _writer(delta_out)
        day0_writer.writerow(header)
        delta_writer.writerow(header)
        for row in rows:
            date = row[issued] if len(row) == len(header) else ""
            if date in held_out:
                new_ids.add(row[key])
                new_count += 1
                delta_writer.writerow(row)
                delta_rows[INVOICES] += 1
                continue
            if date and row[paid] and left_to_pay.get(date, 0) > 0:
                left_to_pay[date] -= 1
                paid_count += 1
                delta_writer.writerow(row)
                delta_rows[INVOICES] += 1
                row = [*row[:paid], "", *row[paid + 1 :]]  # unpaid on day 0
            day0_writer.writerow(row)
            day0_rows[INVOICES] += 1
    with (
        _csv_rows(generated / f"{LINES}.csv") as (header, rows),
        open(day0 / f"{LINES}.csv", "w", newline="", encoding="utf-8") as day0_out,
        open(delta / f"{LINES}.csv", "w", newline="", encoding="utf-8") as delta_out,
    ):
        key = header.index("invoice_id")
        day0_writer, delta_writer = _writer(day0_out), _writer(delta_out)
        day0_writer.writerow(header)
        delta_writer.writerow(header)
        for row in rows:
            is_new = len(row) > key and row[key] in new_ids
            (delta_writer if is_new else day0_writer).writerow(row)
            (delta_rows if is_new else day0_rows)[LINES] += 1
    paid_dates = sorted(quota)
    for table in (ACCOUNTS, SKUS):
        with _csv_rows(day0 / f"{table}.csv") as (_, rows):
            day0_rows[table] = sum(1 for _ in rows)
    return DaySplit(
        day0=str(day0),
        delta=str(delta),
        new_issue_dates=sorted(held_out),
        new_invoices=new_count,
        new_lines=delta_rows[LINES],
        paid_invoices=paid_count,
        paid_issue_dates=[paid_dates[0], paid_dates[-1]] if paid_dates else [],
        day0_rows=day0_rows,
        delta_rows=delta_rows,
    )


def cached_split(generated: Path) -> DaySplit:
    """Day 0 and the delta of a cached extracts folder, made once, next to it; a marker written last says the
    split is complete."""
    folder = generated.parent / f"{generated.name}-day-{splitter_fingerprint()}"
    marker = folder / MARKER
    if marker.is_file():
        return DaySplit.from_json(json.loads(marker.read_text(encoding="utf-8")))
    shutil.rmtree(folder, ignore_errors=True)
    day_split = split(generated, folder / "day0", folder / "delta")
    marker.write_text(json.dumps(asdict(day_split), indent=1), encoding="utf-8")
    return day_split
