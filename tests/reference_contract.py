"""Independent plain-Python reference implementation of the invoice feature contract.

Used by the test-suite to cross-check the Spark pipeline's output rows and reject
accounting. Standard library only; written for clarity, not speed.
"""

from __future__ import annotations

import bisect
import collections
import csv
import datetime
import decimal
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Generic, TypeVar

ACCOUNTS = "accounts"
SKUS = "skus"
INVOICES = "invoices"
LINES = "invoice_line_items"

COLUMNS: dict[str, tuple[str, ...]] = {
    ACCOUNTS: (
        "account_id",
        "company_name",
        "company_address",
        "contact_person",
        "contact_phone",
        "gender",
        "joining_date",
    ),
    SKUS: (
        "item_id",
        "item_name",
        "item_description",
        "item_cost_price",
        "item_retail_price",
    ),
    INVOICES: ("invoice_id", "account_id", "date_issued", "payment_dates"),
    LINES: ("invoice_id", "item_id", "quantity"),
}

HEADER: tuple[str, ...] = (
    "inv_id",
    "acct_id",
    "inv_total",
    "inv_items",
    "acct_age",
    "num_inv_120d",
    "cum_tot_inv_acct",
    "is_late",
)

INVALID_VALUE = "invalid_value"
DUPLICATE_CONFLICT = "duplicate_conflict"
UNKNOWN_INVOICE = "unknown_invoice"
UNKNOWN_SKU = "unknown_sku"

_ID_RE = re.compile(r"[0-9]{1,18}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_QTY_RE = re.compile(r"[0-9]{1,9}")
_PRICE_RE = re.compile(r"[0-9]{1,15}(\.[0-9]{1,6})?")
_CENT = decimal.Decimal("0.01")
_WINDOW_DAYS = 120
_LATE_DAYS = 30


@dataclass(frozen=True)
class TableCounts:
    """Per-table accounting: read == kept + collapsed + rejected."""

    read: int
    kept: int
    collapsed: int
    rejected: int


@dataclass(frozen=True)
class ReferenceResult:
    """Everything the reference computes for one extracts folder."""

    rows: list[tuple[str, ...]]
    header: tuple[str, ...]
    counts: dict[str, TableCounts]
    rejects: collections.Counter[tuple[str, str]]
    reject_records: collections.Counter[tuple[str, str, str]]
    as_of: datetime.date | None


@dataclass(frozen=True)
class _Row:
    """One data record: raw values of the listed columns, or the malformed text."""

    fields: tuple[str, ...]
    malformed_text: str | None

    def source_json(self, columns: tuple[str, ...]) -> str:
        """Canonical JSON of the source record (missing -> null)."""
        if self.malformed_text is not None:
            return json.dumps({"_corrupt_record": self.malformed_text}, sort_keys=True)
        record = {col: (raw if raw != "" else None) for col, raw in zip(columns, self.fields, strict=True)}
        return json.dumps(record, sort_keys=True)


@dataclass(frozen=True)
class _Account:
    joining_date: datetime.date


@dataclass(frozen=True)
class _Sku:
    retail_price: decimal.Decimal


@dataclass(frozen=True)
class _Invoice:
    invoice_id: int
    account_id: int
    date_issued: datetime.date
    payment_date: datetime.date | None


@dataclass(frozen=True)
class _Line:
    invoice_id: int
    item_id: str
    quantity: int


K = TypeVar("K", bound=int | str)
P = TypeVar("P")


@dataclass(frozen=True)
class _Deduped(Generic[K, P]):
    kept: dict[K, P]
    collapsed: int
    conflicts: list[_Row]


# ---------------------------------------------------------------- reading


def _read_table(path: str, columns: tuple[str, ...]) -> list[_Row]:
    """Read a CSV, map the listed columns by header name; flag malformed records."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: file has no header row") from None
        if len(set(header)) != len(header):
            raise ValueError(f"{path}: duplicate column names in header {header!r}")
        missing = [col for col in columns if col not in header]
        if missing:
            raise ValueError(f"{path}: header lacks columns {missing!r}")
        positions = [header.index(col) for col in columns]
        rows: list[_Row] = []
        for record in reader:
            if not record:
                continue  # a blank line is no record (as for Spark's and most CSV readers)
            if len(record) != len(header):
                rows.append(_Row(fields=(), malformed_text=",".join(record)))
            else:
                rows.append(_Row(fields=tuple(record[i] for i in positions), malformed_text=None))
    return rows


# ---------------------------------------------------------------- value parsing


def _clean(raw: str) -> str:
    """Strip leading/trailing ASCII spaces only."""
    return raw.strip(" ")


def _parse_id(raw: str) -> int | None:
    value = _clean(raw)
    return int(value) if _ID_RE.fullmatch(value) else None


def _parse_date(raw: str) -> datetime.date | None:
    value = _clean(raw)
    if not _DATE_RE.fullmatch(value):
        return None
    try:
        return datetime.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return None


def _parse_item_id(raw: str) -> str | None:
    value = _clean(raw)
    return value if value != "" else None


def _parse_quantity(raw: str) -> int | None:
    value = _clean(raw)
    if not _QTY_RE.fullmatch(value):
        return None
    quantity = int(value)
    return quantity if quantity > 0 else None


def _parse_price(raw: str) -> decimal.Decimal | None:
    value = _clean(raw)
    return decimal.Decimal(value) if _PRICE_RE.fullmatch(value) else None


def _validate_account(row: _Row) -> tuple[int, _Account] | None:
    account_id, _, _, _, _, _, joining = row.fields
    key = _parse_id(account_id)
    joining_date = _parse_date(joining)
    if key is None or joining_date is None:
        return None
    return key, _Account(joining_date)


def _validate_sku(row: _Row) -> tuple[str, _Sku] | None:
    item_id, _, _, cost, retail = row.fields
    key = _parse_item_id(item_id)
    cost_price = _parse_price(cost)
    retail_price = _parse_price(retail)
    if key is None or cost_price is None or retail_price is None:
        return None
    return key, _Sku(retail_price)


def _validate_invoice(row: _Row) -> tuple[int, _Invoice] | None:
    invoice_id, account_id, issued, paid = row.fields
    key = _parse_id(invoice_id)
    account = _parse_id(account_id)
    date_issued = _parse_date(issued)
    if key is None or account is None or date_issued is None:
        return None
    payment_date: datetime.date | None = None
    if _clean(paid) != "":
        payment_date = _parse_date(paid)
        if payment_date is None:
            return None
    return key, _Invoice(key, account, date_issued, payment_date)


def _validate_line(row: _Row) -> _Line | None:
    invoice_id, item_id, quantity = row.fields
    invoice = _parse_id(invoice_id)
    item = _parse_item_id(item_id)
    qty = _parse_quantity(quantity)
    if invoice is None or item is None or qty is None:
        return None
    return _Line(invoice, item, qty)


# ---------------------------------------------------------------- keys and duplicates


def _dedupe(valid: list[tuple[K, _Row, P]]) -> _Deduped[K, P]:
    """Group valid rows by key: identical copies collapse, differing copies all conflict."""
    groups: dict[K, list[tuple[_Row, P]]] = defaultdict(list)
    for key, row, parsed in valid:
        groups[key].append((row, parsed))
    kept: dict[K, P] = {}
    collapsed = 0
    conflicts: list[_Row] = []
    for key, members in groups.items():
        if len({row.fields for row, _ in members}) == 1:
            kept[key] = members[0][1]
            collapsed += len(members) - 1
        else:
            conflicts.extend(row for row, _ in members)
    return _Deduped(kept, collapsed, conflicts)


class _Rejects:
    """Collects reject counts and records."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.records: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def add(self, table: str, reason: str, row: _Row) -> None:
        self.counts[(table, reason)] += 1
        self.records[(table, reason, row.source_json(COLUMNS[table]))] += 1


# ---------------------------------------------------------------- output


def _format_total(total: decimal.Decimal) -> str:
    """Round half-up to cents and write exactly two decimals."""
    with decimal.localcontext() as ctx:
        ctx.prec = 200
        return format(total.quantize(_CENT, rounding=decimal.ROUND_HALF_UP), "f")


def _is_late(invoice: _Invoice, as_of: datetime.date | None) -> str:
    if invoice.payment_date is not None:
        return "1" if (invoice.payment_date - invoice.date_issued).days > _LATE_DAYS else "0"
    if as_of is not None and (as_of - invoice.date_issued).days > _LATE_DAYS:
        return "1"
    return ""


def compute(extracts_dir: str | os.PathLike[str], as_of: datetime.date | None = None) -> ReferenceResult:
    """Apply the feature contract to the four CSV extracts in ``extracts_dir``."""
    folder = os.fspath(extracts_dir)
    raw = {table: _read_table(os.path.join(folder, f"{table}.csv"), columns) for table, columns in COLUMNS.items()}
    rejects = _Rejects()
    counts: dict[str, TableCounts] = {}

    def reject_invalid(table: str, row: _Row) -> None:
        rejects.add(table, INVALID_VALUE, row)

    # accounts
    valid_accounts: list[tuple[int, _Row, _Account]] = []
    for row in raw[ACCOUNTS]:
        parsed_account = None if row.malformed_text is not None else _validate_account(row)
        if parsed_account is None:
            reject_invalid(ACCOUNTS, row)
        else:
            valid_accounts.append((parsed_account[0], row, parsed_account[1]))
    accounts = _dedupe(valid_accounts)

    # skus
    valid_skus: list[tuple[str, _Row, _Sku]] = []
    for row in raw[SKUS]:
        parsed_sku = None if row.malformed_text is not None else _validate_sku(row)
        if parsed_sku is None:
            reject_invalid(SKUS, row)
        else:
            valid_skus.append((parsed_sku[0], row, parsed_sku[1]))
    skus = _dedupe(valid_skus)

    # invoices
    valid_invoices: list[tuple[int, _Row, _Invoice]] = []
    for row in raw[INVOICES]:
        parsed_invoice = None if row.malformed_text is not None else _validate_invoice(row)
        if parsed_invoice is None:
            reject_invalid(INVOICES, row)
        else:
            valid_invoices.append((parsed_invoice[0], row, parsed_invoice[1]))
    invoices = _dedupe(valid_invoices)

    for table, deduped in ((ACCOUNTS, accounts), (SKUS, skus), (INVOICES, invoices)):
        for row in deduped.conflicts:
            rejects.add(table, DUPLICATE_CONFLICT, row)
        n_read = len(raw[table])
        n_rejected = sum(n for (t, _), n in rejects.counts.items() if t == table)
        counts[table] = TableCounts(n_read, len(deduped.kept), deduped.collapsed, n_rejected)
        assert n_read == len(deduped.kept) + deduped.collapsed + n_rejected

    # lines: invalid_value, unknown_invoice, unknown_sku (the latter still count)
    totals: dict[int, decimal.Decimal] = defaultdict(decimal.Decimal)
    items: dict[int, int] = defaultdict(int)
    has_unknown_sku: set[int] = set()
    kept_lines = 0
    with decimal.localcontext() as ctx:
        ctx.prec = 200  # exact: 9-digit quantity * 21-digit price, summed
        ctx.traps[decimal.Inexact] = True
        for row in raw[LINES]:
            line = None if row.malformed_text is not None else _validate_line(row)
            if line is None:
                reject_invalid(LINES, row)
                continue
            if line.invoice_id not in invoices.kept:
                rejects.add(LINES, UNKNOWN_INVOICE, row)
                continue
            items[line.invoice_id] += line.quantity
            sku = skus.kept.get(line.item_id)
            if sku is None:
                rejects.add(LINES, UNKNOWN_SKU, row)
                has_unknown_sku.add(line.invoice_id)
                continue
            kept_lines += 1
            totals[line.invoice_id] += line.quantity * sku.retail_price
    n_line_rejects = sum(n for (t, _), n in rejects.counts.items() if t == LINES)
    counts[LINES] = TableCounts(len(raw[LINES]), kept_lines, 0, n_line_rejects)
    assert len(raw[LINES]) == kept_lines + n_line_rejects

    # as_of default: max of date_issued and payment_dates over kept invoices
    effective_as_of = as_of
    if effective_as_of is None and invoices.kept:
        effective_as_of = max(
            max(inv.date_issued, inv.payment_date or inv.date_issued) for inv in invoices.kept.values()
        )

    # per-account sorted issue dates (kept invoices, grouped by account_id even if unknown)
    dates_by_account: dict[int, list[datetime.date]] = defaultdict(list)
    for inv in invoices.kept.values():
        dates_by_account[inv.account_id].append(inv.date_issued)
    for dates in dates_by_account.values():
        dates.sort()

    rows: list[tuple[str, ...]] = []
    window = datetime.timedelta(days=_WINDOW_DAYS)
    for inv_id in sorted(invoices.kept):
        inv = invoices.kept[inv_id]
        d = inv.date_issued
        dates = dates_by_account[inv.account_id]
        account = accounts.kept.get(inv.account_id)
        in_window = bisect.bisect_left(dates, d) - bisect.bisect_left(dates, d - window)
        rows.append(
            (
                str(inv_id),
                str(inv.account_id),
                "" if inv_id in has_unknown_sku else _format_total(totals[inv_id]),
                str(items[inv_id]),
                "" if account is None else str((d - account.joining_date).days),
                str(in_window),
                str(bisect.bisect_right(dates, d)),
                _is_late(inv, effective_as_of),
            )
        )

    return ReferenceResult(
        rows=rows,
        header=HEADER,
        counts=counts,
        rejects=rejects.counts,
        reject_records=rejects.records,
        as_of=effective_as_of,
    )


# ---------------------------------------------------------------- one record at a time (tests/daily_deltas.py)

Record = tuple[str, ...]
"""One CSV record's fields: in COLUMNS order when well-formed, as they stood when the field count is wrong."""


def _as_row(table: str, record: Record) -> _Row:
    """A record as the reader above would have made it: malformed when its field count is not the header's."""
    if len(record) != len(COLUMNS[table]):
        return _Row(fields=(), malformed_text=",".join(record))
    return _Row(fields=record, malformed_text=None)


def source_record(table: str, record: Record) -> str:
    """The canonical JSON a reject of this record carries."""
    return _as_row(table, record).source_json(COLUMNS[table])


def record_key(table: str, record: Record) -> int | str | None:
    """The key of an accounts, skus or invoices record the contract finds valid; None means invalid_value."""
    row = _as_row(table, record)
    if row.malformed_text is not None:
        return None
    validated: tuple[int, _Account] | tuple[str, _Sku] | tuple[int, _Invoice] | None
    if table == ACCOUNTS:
        validated = _validate_account(row)
    elif table == SKUS:
        validated = _validate_sku(row)
    elif table == INVOICES:
        validated = _validate_invoice(row)
    else:
        raise ValueError(f"{table} has no key")
    return None if validated is None else validated[0]


def line_keys(record: Record) -> tuple[int, str] | None:
    """The invoice and item a valid invoice_line_items record names; None means invalid_value."""
    row = _as_row(LINES, record)
    line = None if row.malformed_text is not None else _validate_line(row)
    return None if line is None else (line.invoice_id, line.item_id)


def collapse_copies(valid: list[tuple[int | str, Record]]) -> tuple[dict[int | str, Record], list[Record]]:
    """The duplicate-key rule on valid keyed records: the kept record per key, and the conflicting records."""
    deduped = _dedupe([(key, _Row(fields=record, malformed_text=None), record) for key, record in valid])
    return deduped.kept, [row.fields for row in deduped.conflicts]


def parse_date(raw: str) -> datetime.date | None:
    """A date field as the contract reads it (surrounding spaces allowed), None when it is not a date."""
    return _parse_date(raw)
