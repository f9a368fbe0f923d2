"""The incremental tests' model of the source (tests/daily_deltas.py) on inline rows, one merge rule at a time, and
its full-run case against the reference: the e2e tests trust it to say what each day must publish."""

from __future__ import annotations

import collections
import json
import random
from collections.abc import Mapping
from pathlib import Path

from support.contract_compare import loose_record
from support.daily_deltas import (
    KEYED,
    TABLES,
    Rejects,
    State,
    Tables,
    apply_delta,
    initial_state,
    make_delta,
    read_tables,
    state_tables,
    write_tables,
)

import reference_contract

ACCOUNT_1 = ("1", "Acme", "1 Road\nTown", "Ann", "555", "F", "2018-01-01")
ACCOUNT_2 = ("2", "Bolt", "2 Road", "Bob", "556", "M", "2018-02-01")
SKU_A = ("A", "widget", "a widget", "1.00", "2.50")
SKU_B = ("B", "gadget", "a gadget", "3.00", "7.00")
INVOICE_10 = ("10", "1", "2021-03-01", "")
INVOICE_11 = ("11", "2", "2021-03-02", "2021-03-20")


def stored() -> State:
    """Two of everything, invoice 10 with two lines, 11 with one."""
    return State(
        keyed={
            "accounts": {1: ACCOUNT_1, 2: ACCOUNT_2},
            "skus": {"A": SKU_A, "B": SKU_B},
            "invoices": {10: INVOICE_10, 11: INVOICE_11},
        },
        lines={10: (("10", "A", "1"), ("10", "B", "2")), 11: (("11", "A", "3"),)},
    )


def delta_of(**tables: list[tuple[str, ...]]) -> Tables:
    """A delta with the given tables' records; the others header-only."""
    return {table: tables.get(table, []) for table in TABLES}


def rejects_of(*rejects: tuple[str, str, Mapping[str, str | None]]) -> Rejects:
    """Expected rejects from (table, reason, source record as a dict)."""
    return collections.Counter(
        (table, reason, loose_record(json.dumps(record, sort_keys=True))) for table, reason, record in rejects
    )


def test_an_accepted_keyed_row_replaces_its_key_and_a_rejected_one_replaces_nothing() -> None:
    rejoined = (*ACCOUNT_1[:6], "2017-06-30")
    account_3 = ("3", "Cog", "3 Road", "Cy", "557", "M", "2019-01-01")
    bad_joining = (*ACCOUNT_2[:6], "2021-02-30")
    repriced = (*SKU_B[:4], "8.25")
    state, rejects = apply_delta(
        stored(), delta_of(accounts=[rejoined, account_3, bad_joining], skus=[repriced, ("A", "w", "w", "1", "n/a")])
    )
    assert state.keyed == {
        "accounts": {1: rejoined, 2: ACCOUNT_2, 3: account_3},
        "skus": {"A": SKU_A, "B": repriced},
        "invoices": {10: INVOICE_10, 11: INVOICE_11},
    }
    assert state.lines == stored().lines
    assert rejects == rejects_of(
        ("accounts", "invalid_value", dict(zip(reference_contract.COLUMNS["accounts"], bad_joining, strict=True))),
        (
            "skus",
            "invalid_value",
            {
                "item_id": "A",
                "item_name": "w",
                "item_description": "w",
                "item_cost_price": "1",
                "item_retail_price": "n/a",
            },
        ),
    )


def test_a_padded_key_is_the_same_key() -> None:
    paid = (" 10 ", "1", "2021-03-01", "2021-04-15")
    state, rejects = apply_delta(stored(), delta_of(invoices=[paid]))
    assert state.keyed["invoices"] == {10: paid, 11: INVOICE_11}
    assert rejects == collections.Counter()


def test_exact_copies_collapse_and_conflicting_copies_all_reject_keeping_the_stored_row() -> None:
    new_12 = ("12", "1", "2021-03-05", "")
    conflict_a, conflict_b = ("11", "2", "2021-03-02", "2021-03-21"), ("11", "2", "2021-03-02", "2021-03-22")
    state, rejects = apply_delta(stored(), delta_of(invoices=[new_12, conflict_a, new_12, conflict_b]))
    assert state.keyed["invoices"] == {10: INVOICE_10, 11: INVOICE_11, 12: new_12}
    columns = reference_contract.COLUMNS["invoices"]
    assert rejects == rejects_of(
        *(("invoices", "duplicate_conflict", dict(zip(columns, row, strict=True))) for row in (conflict_a, conflict_b))
    )


def test_an_invoice_with_accepted_delta_lines_gets_exactly_those() -> None:
    delta = delta_of(
        invoices=[("12", "2", "2021-03-06", ""), ("13", "2", "2021-03-07", "bad")],
        skus=[("C", "cog", "a cog", "1.00", "1.10")],
        invoice_line_items=[
            ("10", "C", "4"),  # invoice 10: this line replaces both stored ones
            ("10", "A", "0"),  # invalid, not among 10's lines
            ("11", "B", "x"),  # 11's only delta line is invalid: 11 keeps its stored line
            ("12", "A", "1"),  # a new invoice's line
            ("12", "Z", "2"),  # unknown_sku, quarantined and still kept
            ("13", "A", "1"),  # its invoice was rejected and is not stored: unknown_invoice
            ("99", "A", "1"),  # unknown_invoice
            ("12", "A"),  # malformed
        ],
    )
    state, rejects = apply_delta(stored(), delta)
    assert state.lines == {
        10: (("10", "C", "4"),),
        11: (("11", "A", "3"),),
        12: (("12", "A", "1"), ("12", "Z", "2")),
    }

    def line(invoice_id: str, item_id: str, quantity: str) -> dict[str, str | None]:
        return {"invoice_id": invoice_id, "item_id": item_id, "quantity": quantity}

    assert rejects == rejects_of(
        ("invoices", "invalid_value", {"invoice_id": "13", "account_id": "2", "date_issued": "2021-03-07",
                                       "payment_dates": "bad"}),
        ("invoice_line_items", "invalid_value", line("10", "A", "0")),
        ("invoice_line_items", "invalid_value", line("11", "B", "x")),
        ("invoice_line_items", "unknown_sku", line("12", "Z", "2")),
        ("invoice_line_items", "unknown_invoice", line("13", "A", "1")),
        ("invoice_line_items", "unknown_invoice", line("99", "A", "1")),
        ("invoice_line_items", "invalid_value", {"_corrupt_record": "12,A"}),
    )  # fmt: skip


def test_a_line_naming_a_sku_or_invoice_accepted_in_the_same_delta_is_known() -> None:
    delta = delta_of(
        invoices=[("12", "1", "2021-03-06", "")],
        skus=[("C", "cog", "a cog", "1.00", "1.10")],
        invoice_line_items=[("12", "C", "1")],
    )
    state, rejects = apply_delta(stored(), delta)
    assert state.lines[12] == (("12", "C", "1"),)
    assert rejects == collections.Counter()


def test_tables_survive_a_write_and_read(tmp_path: Path) -> None:
    tables = state_tables(stored())
    tables["invoices"].append(("14", "1", "2021-03-09", "", "extra"))
    assert read_tables(write_tables(tmp_path, tables)) == tables


def test_a_full_run_is_a_delta_on_the_empty_source(generated_extracts: Path, tmp_path: Path) -> None:
    state, rejects = initial_state(generated_extracts)
    full = reference_contract.compute(generated_extracts)
    assert rejects == collections.Counter(
        {(table, reason, loose_record(record)): n for (table, reason, record), n in full.reject_records.items()}
    )
    assert len(state.keyed["invoices"]) == full.counts["invoices"].kept
    merged = reference_contract.compute(write_tables(tmp_path, state_tables(state)))
    assert (merged.rows, merged.as_of) == (full.rows, full.as_of)


def test_a_day_makes_every_change_and_every_reject_reason(generated_extracts: Path) -> None:
    state, _ = initial_state(generated_extracts)
    day = make_delta(state, random.Random(3))
    assert day == make_delta(state, random.Random(3))  # seeded
    assert list(day.changes) == [
        "new account",
        "new SKU",
        "new invoices",
        "paid",
        "back-dated",
        "late tomorrow",
        "moved",
        "re-dated",
        "lines changed",
        "price changed",
        "joining date changed",
        "invalid account, SKU, invoice",
        "conflicting invoices",
        "only delta line invalid",
    ]
    merged, rejects = apply_delta(state, day.delta)
    assert sorted({(table, reason) for table, reason, _ in rejects}) == [
        ("accounts", "invalid_value"),
        ("invoice_line_items", "invalid_value"),
        ("invoice_line_items", "unknown_invoice"),
        ("invoice_line_items", "unknown_sku"),
        ("invoices", "duplicate_conflict"),
        ("invoices", "invalid_value"),
        ("skus", "invalid_value"),
    ]
    # what changed in the merged source is what the day says it changed, and nothing else
    changes = day.changes
    changed = {
        table: sorted(str(key) for key, record in merged.keyed[table].items() if state.keyed[table].get(key) != record)
        for table in KEYED
    }
    assert changed["accounts"] == sorted(changes["new account"] + changes["joining date changed"])
    assert changed["skus"] == sorted(changes["new SKU"] + changes["price changed"])
    assert changed["invoices"] == sorted(
        changes["new invoices"]
        + changes["paid"]
        + changes["back-dated"]
        + changes["late tomorrow"]
        + changes["moved"]
        + changes["re-dated"]
    )
    invalidated = changes["invalid account, SKU, invoice"][2]
    relined = changes["new invoices"] + changes["back-dated"] + changes["late tomorrow"] + changes["lines changed"]
    relined.append(invalidated)
    assert sorted(key for key in merged.lines if merged.lines[key] != state.lines.get(key)) == sorted(map(int, relined))
    assert apply_delta(merged, day.delta) == (merged, rejects)  # applying a delta twice changes nothing more
