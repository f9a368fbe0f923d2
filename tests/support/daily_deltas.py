"""A plain-Python model of the source as daily incremental runs see it, so the incremental tests know what each run
must publish without trusting the pipeline: the accepted rows of the four tables, one day's delta (changes and bad
rows, seeded), and the merge rules that apply a delta (issue 11). Validation is tests/reference_contract.py's."""

from __future__ import annotations

import collections
import csv
import datetime
import random
from dataclasses import dataclass
from pathlib import Path

from reference_contract import (
    ACCOUNTS,
    COLUMNS,
    DUPLICATE_CONFLICT,
    INVALID_VALUE,
    INVOICES,
    LINES,
    SKUS,
    UNKNOWN_INVOICE,
    UNKNOWN_SKU,
    Record,
    collapse_copies,
    line_keys,
    parse_date,
    record_key,
    source_record,
)
from support.contract_compare import loose_record

KEYED = (ACCOUNTS, SKUS, INVOICES)
TABLES = (*KEYED, LINES)
Tables = dict[str, list[Record]]
"""Records of each of the four tables, as in an extracts folder (a full extract or a delta)."""
Rejects = collections.Counter[tuple[str, str, str]]
"""(table_name, reject_reason, source_record as contract_compare.loose_record makes it) -> how many."""
ONE_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class State:
    """The merged source: every accepted row with its raw fields. Keyed tables by the key the contract parses (so a
    padded ' 7 ' and '7' are one key); lines by their invoice, unknown_sku lines included, as they are kept rows."""

    keyed: dict[str, dict[int | str, Record]]
    lines: dict[int, tuple[Record, ...]]


def empty_state() -> State:
    """The source before the first run: a full run is a delta applied to it."""
    return State({table: {} for table in KEYED}, {})


def apply_delta(state: State, delta: Tables) -> tuple[State, Rejects]:
    """The merge rules: the delta is validated as a full run validates; an accepted keyed row replaces the stored row
    with its key (a rejected one replaces nothing); an invoice with accepted delta lines gets exactly those lines
    (unknown_sku lines are quarantined and still kept). Returns the merged state and the delta's rejects."""
    rejects: Rejects = collections.Counter()

    def reject(table: str, reason: str, record: Record) -> None:
        rejects[(table, reason, loose_record(source_record(table, record)))] += 1

    keyed: dict[str, dict[int | str, Record]] = {}
    for table in KEYED:
        valid: list[tuple[int | str, Record]] = []
        for record in delta[table]:
            key = record_key(table, record)
            if key is None:
                reject(table, INVALID_VALUE, record)
            else:
                valid.append((key, record))
        accepted, conflicts = collapse_copies(valid)
        for record in conflicts:
            reject(table, DUPLICATE_CONFLICT, record)
        keyed[table] = {**state.keyed[table], **accepted}

    replacing: dict[int, list[Record]] = {}
    for record in delta[LINES]:
        keys = line_keys(record)
        if keys is None:
            reject(LINES, INVALID_VALUE, record)
            continue
        invoice_id, item_id = keys
        if invoice_id not in keyed[INVOICES]:
            reject(LINES, UNKNOWN_INVOICE, record)
            continue
        if item_id not in keyed[SKUS]:
            reject(LINES, UNKNOWN_SKU, record)
        replacing.setdefault(invoice_id, []).append(record)
    lines = {**state.lines, **{invoice_id: tuple(records) for invoice_id, records in replacing.items()}}
    return State(keyed, lines), rejects


def state_tables(state: State) -> Tables:
    """The merged source as the records of four extracts, for a full run over it."""
    tables: Tables = {table: list(state.keyed[table].values()) for table in KEYED}
    tables[LINES] = [record for records in state.lines.values() for record in records]
    return tables


def write_tables(folder: Path, tables: Tables) -> Path:
    """The four CSVs with their production headers (a record with a wrong field count is written as it is)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS[table])
            writer.writerows(tables[table])
    return folder


def read_tables(folder: Path) -> Tables:
    """The records of an extracts folder, fields in COLUMNS order; a record with a wrong field count as it stood."""
    tables: Tables = {}
    for table in TABLES:
        with (folder / f"{table}.csv").open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            positions = [header.index(column) for column in COLUMNS[table]]
            tables[table] = [
                tuple(record[i] for i in positions) if len(record) == len(header) else tuple(record)
                for record in reader
                if record
            ]
    return tables


def initial_state(folder: Path) -> tuple[State, Rejects]:
    """The merged source after a full run over an extracts folder, and that run's rejects."""
    return apply_delta(empty_state(), read_tables(folder))


# ---------------------------------------------------------------- one simulated day


@dataclass(frozen=True)
class Day:
    """One day's delta, and the keys each kind of change in it was made to touch (to read when a day fails)."""

    delta: Tables
    changes: dict[str, list[str]]


def _date(raw: str) -> datetime.date:
    parsed = parse_date(raw)
    assert parsed is not None, raw
    return parsed


def latest_date(state: State) -> datetime.date:
    """The latest issue or payment date stored: the default as_of of a run over the state."""
    dates = [_date(field) for record in state.keyed[INVOICES].values() for field in record[2:] if field.strip(" ")]
    return max(dates)


def make_delta(state: State, rng: random.Random) -> Day:
    """The next day's delta: every kind of change issue 11 names, and a bad row for every reject reason. Targets are
    distinct stored rows, so one change never hides another. The state needs 10 invoices, 3 accounts, 3 SKUs."""
    today = latest_date(state) + ONE_DAY
    stamp = today.isoformat()
    invoices = state.keyed[INVOICES]
    invoice_ids = sorted(int(key) for key in invoices)
    account_ids = sorted(int(key) for key in state.keyed[ACCOUNTS])
    sku_ids = sorted(str(key) for key in state.keyed[SKUS])
    delta: Tables = {table: [] for table in TABLES}
    changes: dict[str, list[str]] = {}
    next_id = invoice_ids[-1] + 1

    def lines_for(invoice_id: str, items: list[str]) -> None:
        delta[LINES].extend((invoice_id, item, str(rng.randint(1, 5))) for item in items)

    def add_invoice(account_id: int, issued: datetime.date, paid: str, items: list[str]) -> Record:
        nonlocal next_id
        record = (str(next_id), str(account_id), issued.isoformat(), paid)
        next_id += 1
        delta[INVOICES].append(record)
        lines_for(record[0], items)
        return record

    # stored targets, all distinct
    unpaid = [key for key in invoice_ids if invoices[key][3].strip(" ") == ""]
    paid_ids = rng.sample(unpaid, min(3, len(unpaid)))
    moved, redated, relined, conflicted, invalidated, bad_line_only, backdated_after = rng.sample(
        [key for key in invoice_ids if key not in paid_ids], 7
    )
    repriced, bad_sku = rng.sample(sku_ids, 2)
    rejoined, bad_account = rng.sample(account_ids, 2)

    # a new account (one stored invoices named while it was unknown, when there is one) and a new SKU (likewise)
    named_accounts = {int(record[1].strip(" ")) for record in invoices.values()}
    unknown_accounts = sorted(named_accounts - set(account_ids))
    new_account = unknown_accounts[0] if unknown_accounts else max([*account_ids, *named_accounts]) + 1
    joined = (today - datetime.timedelta(days=400)).isoformat()
    address = f"{new_account} Harbour Road\nPort Town, ZZ 00000"
    delta[ACCOUNTS].append(
        (str(new_account), f"Delta {new_account} Ltd", address, "Ada Lovelace", "555-0100", "F", joined)
    )
    named_items = {record[1].strip(" ") for records in state.lines.values() for record in records}
    unknown_items = sorted(named_items - set(sku_ids))
    new_sku = unknown_items[0] if unknown_items else f"DELTA-{stamp}"
    delta[SKUS].append((new_sku, "Delta widget", "made for the incremental tests", "10.00", "19.99"))
    changes["new account"], changes["new SKU"] = [str(new_account)], [new_sku]

    # new invoices issued today: unpaid but one; one on the new account, one with the new SKU
    new_records = [
        add_invoice(account_id, today, stamp if n == 0 else "", rng.sample(sku_ids, rng.randint(2, 4)))
        for n, account_id in enumerate([*rng.sample(account_ids, 3), new_account])
    ]
    lines_for(new_records[1][0], [new_sku])
    changes["new invoices"] = [record[0] for record in new_records]

    # earlier unpaid invoices now paid (invoice row only), one with its key padded by spaces
    for n, key in enumerate(paid_ids):
        record = invoices[key]
        delta[INVOICES].append((f" {key} " if n == 0 else record[0], record[1], record[2], stamp))
    changes["paid"] = [str(key) for key in paid_ids]

    # a back-dated invoice: a new id issued before its account's latest invoice
    account_of = int(invoices[backdated_after][1].strip(" "))
    latest = max(_date(record[2]) for record in invoices.values() if int(record[1].strip(" ")) == account_of)
    issued = latest - datetime.timedelta(days=rng.randint(1, 60))
    paid = min(issued + datetime.timedelta(days=rng.choice((20, 45))), today).isoformat()
    backdated = add_invoice(account_of, issued, paid, rng.sample(sku_ids, 2))
    changes["back-dated"] = [backdated[0]]
    # an unpaid invoice 30 days old: not late at today's as_of, late at tomorrow's (as_of moves with the data)
    turning_late = add_invoice(rng.choice(account_ids), today - 30 * ONE_DAY, "", rng.sample(sku_ids, 2))
    changes["late tomorrow"] = [turning_late[0]]

    # an invoice moved to another account, one re-dated, lines of an old invoice changed, a price and a joining date
    record = invoices[moved]
    target = rng.choice([account_id for account_id in account_ids if str(account_id) != record[1].strip(" ")])
    delta[INVOICES].append((record[0], str(target), *record[2:]))
    changes["moved"] = [str(moved)]
    record = invoices[redated]  # its issue date moves at least 35 days back, so into another month
    delta[INVOICES].append((*record[:2], (_date(record[2]) - rng.randint(35, 90) * ONE_DAY).isoformat(), record[3]))
    changes["re-dated"] = [str(redated)]
    lines_for(str(relined), rng.sample(sku_ids, rng.randint(1, 3)))
    changes["lines changed"] = [str(relined)]
    record = state.keyed[SKUS][repriced]
    delta[SKUS].append((*record[:4], f"{rng.randint(1000, 99999)}.{rng.randint(0, 99):02d}"))
    changes["price changed"] = [repriced]
    record = state.keyed[ACCOUNTS][rejoined]
    joined = (_date(record[6]) - datetime.timedelta(days=rng.randint(1, 365))).isoformat()
    delta[ACCOUNTS].append((*record[:6], joined))
    changes["joining date changed"] = [str(rejoined)]

    # bad rows: every reason, an exact copy that collapses, and malformed records
    delta[ACCOUNTS].append((*state.keyed[ACCOUNTS][bad_account][:6], "2021-02-30"))
    delta[SKUS].append((*state.keyed[SKUS][bad_sku][:4], "n/a"))
    delta[INVOICES].append((*invoices[invalidated][:2], "not-a-date", invoices[invalidated][3]))
    lines_for(str(invalidated), [sku_ids[1]])  # its invoice is stored, so this line is known and replaces its lines
    delta[INVOICES].append(new_records[2])
    record = invoices[conflicted]
    delta[INVOICES].extend([(*record[:3], stamp), (*record[:3], (today - ONE_DAY).isoformat())])
    orphan = str(next_id)
    delta[INVOICES].extend([(orphan, record[1], stamp, ""), (orphan, record[1], stamp, stamp)])
    lines_for(orphan, [sku_ids[0]])
    delta[INVOICES].append((str(next_id + 1), record[1], stamp, "", "extra field"))
    delta[LINES].extend(
        [
            (str(bad_line_only), sku_ids[0], "x"),
            (new_records[0][0], sku_ids[1], "0"),
            (new_records[0][0], sku_ids[2]),
            (str(relined), f"UNKNOWN-{stamp}", "1"),  # a new SKU of a later day resolves it
            (str(next_id + 1000), sku_ids[0], "1"),
        ]
    )
    changes["invalid account, SKU, invoice"] = [str(bad_account), bad_sku, str(invalidated)]
    changes["conflicting invoices"] = [str(conflicted), orphan]
    changes["only delta line invalid"] = [str(bad_line_only)]
    for table in TABLES:
        rng.shuffle(delta[table])
    return Day(delta, changes)
