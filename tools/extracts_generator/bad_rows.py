"""Bad rows injected into the generated extracts: one kind per contract rule, in a known mix, placed so that one
fault never hides another."""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence

from faker import Faker

from extracts_generator.shapes import (
    ACCOUNTS,
    DELAYS,
    INVOICES,
    ISSUE_DAYS,
    LEAP_DAY,
    LINES,
    MAX_LINES,
    MIN_LINES,
    QUANTITIES,
    SKUS,
    Row,
    account_row,
    fresh_item_id,
    money,
    sku_row,
)

# Bad-row kinds with weights (roughly the number of variants each kind cycles through).
BAD_KINDS: tuple[tuple[str, int], ...] = (
    ("account_empty_id", 1),
    ("account_non_numeric_id", 1),
    ("account_invalid_joining_date", 2),
    ("account_exact_duplicate", 1),
    ("account_conflicting_duplicate", 1),
    ("sku_invalid_retail_price", 3),
    ("sku_exact_duplicate", 1),
    ("sku_conflicting_duplicate", 1),
    ("invoice_invalid_id", 2),
    ("invoice_invalid_date_issued", 2),
    ("invoice_invalid_payment_date", 2),
    ("invoice_exact_duplicate", 1),
    ("invoice_conflicting_duplicate", 1),
    ("invoice_unknown_account", 1),
    ("invoice_without_lines", 1),
    ("line_invalid_quantity", 5),
    ("line_unknown_invoice", 1),
    ("line_unknown_sku", 1),
    ("malformed_extra_field", 1),
    ("malformed_missing_field", 1),
    ("padded_values", 1),
    ("leap_day_invoice", 1),
)
ALL_KINDS_FROM = 20  # from this many bad rows on, every kind appears at least once

_BAD_ACCOUNT_IDS = ("ACC-{n}", "twelve", "{n}.0")
_BAD_JOINING = ("2021-02-30", "yesterday")
_BAD_PRICES = ("-{p}", "n/a", "")
_BAD_INVOICE_IDS = ("", "INV-{n}")
_BAD_ISSUED = ("2021-02-30", "not-a-date")
_BAD_PAID = ("2021-13-01", "2020-11-31")
_BAD_QUANTITIES = ("0", "-1", "x", "2.5", "")
# Kinds that rotate over files, so each file gets its share of malformed and padded rows.
_CYCLING_KINDS: dict[str, tuple[str, ...]] = {
    "malformed_extra_field": (INVOICES, LINES, ACCOUNTS, SKUS),
    "malformed_missing_field": (LINES, ACCOUNTS, SKUS, INVOICES),
    "padded_values": (INVOICES, LINES, ACCOUNTS, SKUS),
}


def bad_row_plan(bad_rows: int) -> dict[str, int]:
    """Rows of each bad kind that `bad_rows` asks for: one each from 20 on, the rest by weight.

    sku_conflicting_duplicate is written as pairs (both copies are rejects), so an odd
    count there becomes one row more.
    """
    if bad_rows <= 0:
        return {name: 0 for name, _ in BAD_KINDS}
    floor = 1 if bad_rows >= ALL_KINDS_FROM else 0
    spread = max(bad_rows - floor * len(BAD_KINDS), 0)
    total_weight = sum(weight for _, weight in BAD_KINDS)
    shares = [spread * weight / total_weight for _, weight in BAD_KINDS]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[: spread - sum(counts)]:
        counts[i] += 1
    return {name: floor + count for (name, _), count in zip(BAD_KINDS, counts, strict=True)}


def _home_table(kind: str, index: int) -> str:
    """File that the index-th row of a kind goes to (some kinds rotate over all four)."""
    cycle = _CYCLING_KINDS.get(kind)
    if cycle is not None:
        return cycle[index % len(cycle)]
    if kind.startswith("account_"):
        return ACCOUNTS
    if kind.startswith("sku_"):
        return SKUS
    if kind.startswith("line_"):
        return LINES
    return INVOICES


def _placed(plan: dict[str, int], tables: tuple[str, ...]) -> list[tuple[str, int]]:
    """(kind, index) pairs whose rows land in one of `tables`, in a fixed order."""
    return [(name, i) for name, _ in BAD_KINDS for i in range(plan[name]) if _home_table(name, i) in tables]


class BadRows:
    """Builds injected rows; shared id counters keep fresh keys unique across kinds."""

    def __init__(
        self,
        rng: random.Random,
        fake: Faker,
        plan: dict[str, int],
        n_accounts: int,
        n_invoices: int,
        sku_ids: Sequence[str],
        joining: Sequence[str],
        days: Sequence[str],
    ) -> None:
        self.rng = rng
        self.fake = fake
        self.plan = plan
        self.next_account = n_accounts + 1
        self.next_invoice = n_invoices + 1
        self.sku_ids = sku_ids
        self.taken_items = set(sku_ids)
        self.joining = joining
        self.days = days

    def _fresh_account(self) -> str:
        value = self.next_account
        self.next_account += 1
        return str(value)

    def _fresh_invoice(self) -> str:
        value = self.next_invoice
        self.next_invoice += 1
        return str(value)

    def _other_joining(self, current: str) -> str:
        """A valid joining date that differs from `current` (for conflicting duplicates)."""
        while True:
            value = self.joining[self.rng.randrange(len(self.joining))]
            if value != current:
                return value

    # -- accounts and skus are small: bad rows are spliced in at random places

    def accounts(self, clean: list[Row]) -> list[Row]:
        """Clean accounts plus this plan's account-file rows."""
        rng = self.rng
        kinds = _placed(self.plan, (ACCOUNTS,))
        n_targets = sum(1 for kind, _ in kinds if kind.endswith("_duplicate"))
        # Distinct targets, so an exact copy never turns into a conflict by accident.
        targets = rng.sample(clean, min(n_targets, len(clean)))
        extra: list[Row] = []
        for kind, index in kinds:
            fresh = account_row(rng, self.fake, self._fresh_account(), self.joining)
            if kind == "account_empty_id":
                extra.append(("", *fresh[1:]))
            elif kind == "account_non_numeric_id":
                bad_id = _BAD_ACCOUNT_IDS[index % len(_BAD_ACCOUNT_IDS)].format(n=fresh[0])
                extra.append((bad_id, *fresh[1:]))
            elif kind == "account_invalid_joining_date":
                extra.append((*fresh[:6], _BAD_JOINING[index % len(_BAD_JOINING)]))
            elif kind == "account_exact_duplicate":
                extra.append(targets.pop() if targets else clean[0])
            elif kind == "account_conflicting_duplicate":
                original = targets.pop() if targets else clean[-1]
                extra.append((*original[:4], self.fake.phone_number(), original[5], self._other_joining(original[6])))
            elif kind == "malformed_extra_field":
                extra.append((*fresh, "extra"))
            elif kind == "malformed_missing_field":
                extra.append(fresh[:6])
            else:  # padded_values: valid once the spaces are stripped
                extra.append((f" {fresh[0]} ", *fresh[1:6], f" {fresh[6]} "))
        return splice(rng, clean, extra)

    def skus(self, clean: list[Row]) -> list[Row]:
        """Clean skus plus this plan's sku-file rows."""
        rng = self.rng
        kinds = _placed(self.plan, (SKUS,))
        n_targets = sum(1 for kind, _ in kinds if kind == "sku_exact_duplicate")
        targets = rng.sample(clean, min(n_targets, len(clean)))
        extra: list[Row] = []
        for kind, index in kinds:
            fresh = sku_row(rng, self.fake, fresh_item_id(self.fake, self.taken_items))
            if kind == "sku_invalid_retail_price":
                price = _BAD_PRICES[index % len(_BAD_PRICES)].format(p=fresh[4])
                extra.append((*fresh[:4], price))
            elif kind == "sku_exact_duplicate":
                extra.append(targets.pop() if targets else clean[0])
            elif kind == "sku_conflicting_duplicate":
                # A conflict on a catalogue sku would blank ~5% of all invoice totals, so each
                # conflict is a pair on a fresh item_id that no line uses: two rows per pair.
                if index % 2 == 0:
                    extra.append(fresh)
                    extra.append((*fresh[:4], money(int(fresh[4].replace(".", "")) + 100)))
                continue
            elif kind == "malformed_extra_field":
                extra.append((*fresh, "extra"))
            elif kind == "malformed_missing_field":
                extra.append(fresh[:4])
            else:  # padded_values
                extra.append((*fresh[:3], f" {fresh[3]}", f" {fresh[4]} "))
        return splice(rng, clean, extra)

    # -- invoices and lines are streamed: bad rows follow one account's block

    def stream_kinds(self) -> list[tuple[str, int]]:
        """Kinds injected into the invoice and line files."""
        return _placed(self.plan, (INVOICES, LINES))

    def block(
        self, kinds: list[tuple[str, int]], account: str, first: Row, last: Row, last_items: list[str]
    ) -> tuple[list[Row], list[Row]]:
        """Invoice rows and line rows injected after an account's block.

        Conflicting copies target the block's first invoice; exact copies and line faults
        its last one, so one fault never hides another. Invoices with invalid values get no
        lines, so rejecting them never turns good lines into orphans.
        """
        rng = self.rng
        days = self.days
        used = set(last_items)
        invoices: list[Row] = []
        lines: list[Row] = []

        def unused_item() -> str:
            choices = [item for item in self.sku_ids if item not in used] or list(self.sku_ids)
            item = rng.choice(choices)
            used.add(item)
            return item

        def valid_invoice(invoice_id: str) -> Row:
            offset = rng.randrange(ISSUE_DAYS)
            return (invoice_id, account, days[offset], days[offset + rng.choice(DELAYS)])

        def normal_lines(invoice_id: str) -> list[Row]:
            items = rng.sample(self.sku_ids, rng.randint(MIN_LINES, MAX_LINES))
            return [(invoice_id, item, rng.choice(QUANTITIES)) for item in items]

        for kind, index in kinds:
            home = _home_table(kind, index)
            if kind == "invoice_invalid_id":
                bad_id = _BAD_INVOICE_IDS[index % len(_BAD_INVOICE_IDS)].format(n=self._fresh_invoice())
                invoices.append((bad_id, *valid_invoice("")[1:]))
            elif kind == "invoice_invalid_date_issued":
                row = valid_invoice(self._fresh_invoice())
                invoices.append((*row[:2], _BAD_ISSUED[index % len(_BAD_ISSUED)], row[3]))
            elif kind == "invoice_invalid_payment_date":
                row = valid_invoice(self._fresh_invoice())
                invoices.append((*row[:3], _BAD_PAID[index % len(_BAD_PAID)]))
            elif kind == "invoice_exact_duplicate":  # collapses, so `last` stays a good target
                invoices.append(last)
            elif kind == "invoice_conflicting_duplicate":
                row = valid_invoice(first[0])
                if row[2:] == first[2:]:
                    row = (*row[:3], "")
                invoices.append(row)
            elif kind == "invoice_unknown_account":  # kept by the contract, so it has lines
                row = valid_invoice(self._fresh_invoice())
                invoices.append((row[0], self._fresh_account(), *row[2:]))
                lines.extend(normal_lines(row[0]))
            elif kind == "invoice_without_lines":
                invoices.append(valid_invoice(self._fresh_invoice()))
            elif kind == "leap_day_invoice":
                invoice_id = self._fresh_invoice()
                paid = datetime.date(2020, 2, 29) + datetime.timedelta(days=rng.choice(DELAYS))
                invoices.append((invoice_id, account, LEAP_DAY, paid.isoformat()))
                lines.extend(normal_lines(invoice_id))
            elif kind == "line_invalid_quantity":
                lines.append((last[0], unused_item(), _BAD_QUANTITIES[index % len(_BAD_QUANTITIES)]))
            elif kind == "line_unknown_invoice":
                lines.append((self._fresh_invoice(), unused_item(), rng.choice(QUANTITIES)))
            elif kind == "line_unknown_sku":
                lines.append((last[0], fresh_item_id(self.fake, self.taken_items), rng.choice(QUANTITIES)))
            elif kind == "malformed_extra_field":
                if home == INVOICES:
                    invoices.append((*valid_invoice(self._fresh_invoice()), "extra"))
                else:
                    lines.append((last[0], unused_item(), rng.choice(QUANTITIES), "extra"))
            elif kind == "malformed_missing_field":
                if home == INVOICES:
                    invoices.append(valid_invoice(self._fresh_invoice())[:3])
                else:
                    lines.append((last[0], unused_item()))
            elif home == INVOICES:  # padded_values: an invoice with spaces, and its normal lines
                invoice_id = self._fresh_invoice()
                row = valid_invoice(invoice_id)
                invoices.append((f" {invoice_id} ", f" {account} ", *row[2:]))
                lines.extend(normal_lines(invoice_id))
            else:  # padded_values: an extra line of a good invoice
                lines.append((f" {last[0]} ", unused_item(), f" {rng.choice(QUANTITIES)} "))
        return invoices, lines


def splice(rng: random.Random, rows: list[Row], extra: list[Row]) -> list[Row]:
    """Insert `extra` rows at random positions; clean rows keep their order."""
    out = list(rows)
    for row in extra:
        out.insert(rng.randint(0, len(out)), row)
    return out
