"""Seeded, deterministic generator of CSV extracts shaped like the production ones.

The real extracts are too small to test scale and too clean to test the reject
rules, so this writes look-alike files of any size, optionally with a known mix
of bad rows. Same arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import gc
import itertools
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from spark_etl.extract import EXTRACTS

Row = tuple[str, ...]

ACCOUNTS = "accounts"
SKUS = "skus"
INVOICES = "invoices"
LINES = "invoice_line_items"

# the columns production sends, as the pipeline reads them
HEADERS: dict[str, Row] = {extract.table_name: extract.columns for extract in EXTRACTS}

# Shapes measured on the production extracts.
BASE_ACCOUNTS = 200
N_SKUS = 100
MAX_INVOICES_PER_ACCOUNT = 96  # uniform 1..96: mean 48.5, measured 48.4
MIN_LINES, MAX_LINES = 2, 9
QUANTITIES = ("1", "2", "3", "4")
ISSUE_START = datetime.date(2020, 5, 12)
ISSUE_DAYS = 366  # 2020-05-12 .. 2021-05-12
JOIN_START = datetime.date(2016, 5, 12)
JOIN_DAYS = 1096  # 2016-05-12 .. 2019-05-12
MAX_DELAY = 60
# Extract's last date: the latest possible payment; recent unpaid invoices sit just before it.
LAST_OFFSET = ISSUE_DAYS - 1 + MAX_DELAY
RECENT_DAYS = 30
LEAP_DAY = "2020-02-29"

# 25..30 days for ~85% of invoices, 32..60 for the rest (31 never occurs in the extracts).
_DELAYS: tuple[int, ...] = tuple(
    [d for d in range(25, 31) for _ in range(82)] + [d for d in range(32, 61) for _ in range(3)]
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

# ---------------------------------------------------------------- word lists

_LAST = (
    "Adams",
    "Baker",
    "Barnes",
    "Bauer",
    "Bell",
    "Brooks",
    "Bryant",
    "Camacho",
    "Campbell",
    "Chen",
    "Cohen",
    "Contreras",
    "Cruz",
    "Curry",
    "Davis",
    "Downs",
    "Durham",
    "Everett",
    "Fletcher",
    "Garcia",
    "Gilbert",
    "Hayes",
    "Holloway",
    "Howard",
    "Hughes",
    "Hunter",
    "Jackson",
    "Jones",
    "Kelley",
    "Kelly",
    "Lewis",
    "Lopez",
    "Macias",
    "Manning",
    "Martinez",
    "Mullen",
    "Nguyen",
    "Patel",
    "Patrick",
    "Phillips",
    "Reid",
    "Reynolds",
    "Robinson",
    "Robles",
    "Romero",
    "Schmidt",
    "Serrano",
    "Simmons",
    "Smith",
    "Sutton",
    "Vega",
    "Watkins",
    "Williams",
    "Wolf",
    "Wright",
    "Young",
)
_FIRST_F = (
    "Alice",
    "Amanda",
    "Brittany",
    "Carol",
    "Chelsey",
    "Cynthia",
    "Danielle",
    "Donna",
    "Elizabeth",
    "Felicia",
    "Jessica",
    "Karen",
    "Kayla",
    "Laura",
    "Linda",
    "Maria",
    "Michelle",
    "Nancy",
    "Rebecca",
    "Samantha",
    "Sandra",
    "Sarah",
    "Sherry",
    "Stephanie",
    "Susan",
    "Valerie",
)
_FIRST_M = (
    "Aaron",
    "Brandon",
    "Christian",
    "Christopher",
    "Corey",
    "Daniel",
    "Danny",
    "David",
    "Eric",
    "Frank",
    "Gary",
    "Gregory",
    "James",
    "Jason",
    "Jeffery",
    "John",
    "Jorge",
    "Kenneth",
    "Lawrence",
    "Marco",
    "Martin",
    "Michael",
    "Robert",
    "Ross",
    "Shane",
    "Todd",
)
_STREET_SUFFIX = (
    "Avenue",
    "Brooks",
    "Camp",
    "Centers",
    "Corner",
    "Coves",
    "Crescent",
    "Divide",
    "Extensions",
    "Field",
    "Fork",
    "Glen",
    "Hill",
    "Island",
    "Lakes",
    "Light",
    "Lock",
    "Meadows",
    "Pass",
    "Pike",
    "Place",
    "Shoal",
    "Station",
    "Stream",
    "Summit",
    "Underpass",
    "Valley",
    "Village",
    "Ways",
)
_CITY_PREFIX = ("North ", "South ", "East ", "West ", "New ", "Port ", "Lake ")
_CITY_SUFFIX = (
    "berg",
    "borough",
    "bury",
    "chester",
    "fort",
    "furt",
    "haven",
    "land",
    "mouth",
    "port",
    "shire",
    "side",
    "stad",
    "ton",
    "town",
    "view",
    "ville",
)
_STATES = (
    "AK",
    "AL",
    "AR",
    "AZ",
    "CA",
    "CO",
    "CT",
    "DE",
    "FL",
    "GA",
    "HI",
    "IA",
    "ID",
    "IL",
    "IN",
    "KS",
    "KY",
    "LA",
    "MA",
    "MD",
    "ME",
    "MI",
    "MN",
    "MO",
    "MS",
    "MT",
    "NC",
    "ND",
    "NE",
    "NH",
    "NJ",
    "NM",
    "NV",
    "NY",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VA",
    "VT",
    "WA",
    "WI",
)
_COMPANY_SUFFIX = ("LLC", "PLC", "Inc", "Ltd", "Group", "and Sons")
_SHIPS = ("USNS", "USNV", "USS", "USCGC")
_MILITARY_STATES = ("AA", "AE", "AP")
_ITEM_ADJ = (
    "Adaptive",
    "Automated",
    "Balanced",
    "Centralized",
    "Configurable",
    "Cross-platform",
    "Enterprise-wide",
    "Ergonomic",
    "Face-to-face",
    "Horizontal",
    "Innovative",
    "Managed",
    "Multi-layered",
    "Networked",
    "Open-source",
    "Optimized",
    "Proactive",
    "Profound",
    "Reactive",
    "Robust",
    "Seamless",
    "Streamlined",
    "Synchronized",
    "Total",
    "Up-sized",
    "User-friendly",
)
_ITEM_DESCRIPTOR = (
    "asymmetric",
    "asynchronous",
    "attitude-oriented",
    "bifurcated",
    "client-driven",
    "composite",
    "dynamic",
    "explicit",
    "global",
    "heuristic",
    "interactive",
    "logistical",
    "mission-critical",
    "modular",
    "national",
    "neutral",
    "radical",
    "scalable",
    "static",
    "systematic",
    "tangible",
    "transitional",
    "uniform",
    "value-added",
    "zero-defect",
)
_ITEM_NOUN = (
    "Graphical User Interface",
    "algorithm",
    "application",
    "architecture",
    "array",
    "benchmark",
    "capability",
    "circuit",
    "database",
    "encoding",
    "firmware",
    "framework",
    "function",
    "hierarchy",
    "instruction set",
    "interface",
    "matrix",
    "middleware",
    "model",
    "paradigm",
    "portal",
    "pricing structure",
    "protocol",
    "solution",
    "toolset",
)
_BS_VERB = (
    "aggregate",
    "architect",
    "deliver",
    "drive",
    "embrace",
    "empower",
    "engineer",
    "enhance",
    "facilitate",
    "harness",
    "incubate",
    "integrate",
    "leverage",
    "monetize",
    "orchestrate",
    "reinvent",
    "revolutionize",
    "scale",
    "streamline",
    "synergize",
    "transform",
    "unleash",
)
_BS_ADJ = (
    "B2B",
    "back-end",
    "best-of-breed",
    "collaborative",
    "cross-media",
    "dynamic",
    "end-to-end",
    "frictionless",
    "global",
    "granular",
    "holistic",
    "mission-critical",
    "next-generation",
    "plug-and-play",
    "real-time",
    "scalable",
    "seamless",
    "sticky",
    "strategic",
    "turn-key",
    "viral",
    "web-enabled",
    "wireless",
)
_BS_NOUN = (
    "ROI",
    "action-items",
    "bandwidth",
    "channels",
    "communities",
    "content",
    "deliverables",
    "e-business",
    "infrastructures",
    "initiatives",
    "markets",
    "metrics",
    "mindshare",
    "models",
    "networks",
    "niches",
    "paradigms",
    "platforms",
    "relationships",
    "schemas",
    "solutions",
    "supply-chains",
    "synergies",
    "systems",
    "vortals",
)


# ---------------------------------------------------------------- small helpers


def _day_strings(start: datetime.date, count: int) -> tuple[str, ...]:
    """ISO strings for start + 0..count-1 days, so the hot loop only indexes."""
    return tuple((start + datetime.timedelta(days=i)).isoformat() for i in range(count))


def _money(cents: int) -> str:
    """Exact two-decimal text without float formatting surprises."""
    return f"{cents // 100}.{cents % 100:02d}"


def _digits(rng: random.Random, n: int) -> str:
    """n random decimal digits (leading zeros allowed), as addresses and phones have."""
    return f"{rng.randrange(10**n):0{n}d}"


def _isbn10(rng: random.Random) -> str:
    """ISBN-10-like id (group-publisher-title-check), 13 characters like the real item_id."""
    group = str(rng.randint(0, 1))
    publisher_len = rng.randint(2, 7)
    publisher = _digits(rng, publisher_len)
    title = _digits(rng, 8 - publisher_len)
    body = group + publisher + title
    check = (11 - sum(int(d) * (10 - i) for i, d in enumerate(body)) % 11) % 11
    return f"{group}-{publisher}-{title}-{'X' if check == 10 else check}"


def _phone(rng: random.Random) -> str:
    """Phone numbers in the mixed styles seen in the extracts."""
    a, b, c = _digits(rng, 3), _digits(rng, 3), _digits(rng, 4)
    ext = _digits(rng, rng.randint(3, 5))
    style = rng.randrange(8)
    if style == 0:
        return f"{a}.{b}.{c}"
    if style == 1:
        return f"({a}){b}-{c}x{ext}"
    if style == 2:
        return f"{a}-{b}-{c}x{ext}"
    if style == 3:
        return f"+1-{a}-{b}-{c}x{ext}"
    if style == 4:
        return f"{a}{b}{c}"
    if style == 5:
        return f"001-{a}-{b}-{c}"
    if style == 6:
        return f"({a}){b}-{c}"
    return f"+1-{a}-{b}-{c}"


def _address(rng: random.Random) -> str:
    """Two-line postal or military address (the newline forces CSV quoting)."""
    zip_code = _digits(rng, 5)
    kind = rng.randrange(20)
    if kind == 0:
        return f"Unit {_digits(rng, 4)} Box {_digits(rng, 4)}\nDPO {rng.choice(_MILITARY_STATES)} {zip_code}"
    if kind == 1:
        return f"PSC {_digits(rng, 4)}, Box {_digits(rng, 4)}\nAPO {rng.choice(_MILITARY_STATES)} {zip_code}"
    if kind == 2:
        ship = f"{rng.choice(_SHIPS)} {rng.choice(_LAST)}"
        return f"{ship}\nFPO {rng.choice(_MILITARY_STATES)} {zip_code}"
    street = f"{_digits(rng, rng.randint(3, 5))} {rng.choice(_LAST + _FIRST_F + _FIRST_M)} "
    street += rng.choice(_STREET_SUFFIX)
    unit = rng.randrange(3)
    if unit == 1:
        street += f" Apt. {rng.randint(100, 999)}"
    elif unit == 2:
        street += f" Suite {rng.randint(100, 999)}"
    prefix = rng.choice(_CITY_PREFIX) if rng.random() < 0.4 else ""
    city = f"{prefix}{rng.choice(_FIRST_F + _FIRST_M + _LAST)}{rng.choice(_CITY_SUFFIX)}"
    return f"{street}\n{city}, {rng.choice(_STATES)} {zip_code}"


def _company(rng: random.Random) -> str:
    """Company names in the usual 'A-B', 'A, B and C', 'A LLC' shapes."""
    style = rng.randrange(3)
    if style == 0:
        return f"{rng.choice(_LAST)}-{rng.choice(_LAST)}"
    if style == 1:
        return f"{rng.choice(_LAST)}, {rng.choice(_LAST)} and {rng.choice(_LAST)}"
    return f"{rng.choice(_LAST)} {rng.choice(_COMPANY_SUFFIX)}"


def _account_row(rng: random.Random, account_id: str, joining: Sequence[str]) -> Row:
    """One account with a gender-consistent contact person."""
    gender = "F" if rng.random() < 0.5 else "M"
    first = rng.choice(_FIRST_F if gender == "F" else _FIRST_M)
    person = f"{first} {rng.choice(_LAST)}"
    if rng.random() < 0.03:
        person += " Jr."
    return (
        account_id,
        _company(rng),
        _address(rng),
        person,
        _phone(rng),
        gender,
        joining[rng.randrange(len(joining))],
    )


def _sku_row(rng: random.Random, item_id: str) -> Row:
    """One catalogue item; retail is 1.1x..3x cost as in the extracts."""
    cost = rng.randint(10_000, 1_000_000)
    retail = round(cost * rng.uniform(1.1, 3.0))
    return (
        item_id,
        f"{rng.choice(_ITEM_ADJ)} {rng.choice(_ITEM_DESCRIPTOR)} {rng.choice(_ITEM_NOUN)}",
        f"{rng.choice(_BS_VERB)} {rng.choice(_BS_ADJ)} {rng.choice(_BS_NOUN)}",
        _money(cost),
        _money(retail),
    )


def _fresh_item_id(rng: random.Random, taken: set[str]) -> str:
    """An item_id not used yet (so injected skus never clash with real ones by accident)."""
    while True:
        item = _isbn10(rng)
        if item not in taken:
            taken.add(item)
            return item


# ---------------------------------------------------------------- bad-row plan


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


class _BadRows:
    """Builds injected rows; shared id counters keep fresh keys unique across kinds."""

    def __init__(
        self,
        rng: random.Random,
        plan: dict[str, int],
        n_accounts: int,
        n_invoices: int,
        sku_ids: Sequence[str],
        joining: Sequence[str],
        days: Sequence[str],
    ) -> None:
        self.rng = rng
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
            fresh = _account_row(rng, self._fresh_account(), self.joining)
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
                extra.append((*original[:4], _phone(rng), original[5], self._other_joining(original[6])))
            elif kind == "malformed_extra_field":
                extra.append((*fresh, "extra"))
            elif kind == "malformed_missing_field":
                extra.append(fresh[:6])
            else:  # padded_values: valid once the spaces are stripped
                extra.append((f" {fresh[0]} ", *fresh[1:6], f" {fresh[6]} "))
        return _splice(rng, clean, extra)

    def skus(self, clean: list[Row]) -> list[Row]:
        """Clean skus plus this plan's sku-file rows."""
        rng = self.rng
        kinds = _placed(self.plan, (SKUS,))
        n_targets = sum(1 for kind, _ in kinds if kind == "sku_exact_duplicate")
        targets = rng.sample(clean, min(n_targets, len(clean)))
        extra: list[Row] = []
        for kind, index in kinds:
            fresh = _sku_row(rng, _fresh_item_id(rng, self.taken_items))
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
                    extra.append((*fresh[:4], _money(int(fresh[4].replace(".", "")) + 100)))
                continue
            elif kind == "malformed_extra_field":
                extra.append((*fresh, "extra"))
            elif kind == "malformed_missing_field":
                extra.append(fresh[:4])
            else:  # padded_values
                extra.append((*fresh[:3], f" {fresh[3]}", f" {fresh[4]} "))
        return _splice(rng, clean, extra)

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
            return (invoice_id, account, days[offset], days[offset + rng.choice(_DELAYS)])

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
                paid = datetime.date(2020, 2, 29) + datetime.timedelta(days=rng.choice(_DELAYS))
                invoices.append((invoice_id, account, LEAP_DAY, paid.isoformat()))
                lines.extend(normal_lines(invoice_id))
            elif kind == "line_invalid_quantity":
                lines.append((last[0], unused_item(), _BAD_QUANTITIES[index % len(_BAD_QUANTITIES)]))
            elif kind == "line_unknown_invoice":
                lines.append((self._fresh_invoice(), unused_item(), rng.choice(QUANTITIES)))
            elif kind == "line_unknown_sku":
                lines.append((last[0], _fresh_item_id(rng, self.taken_items), rng.choice(QUANTITIES)))
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


def _splice(rng: random.Random, rows: list[Row], extra: list[Row]) -> list[Row]:
    """Insert `extra` rows at random positions; clean rows keep their order."""
    out = list(rows)
    for row in extra:
        out.insert(rng.randint(0, len(out)), row)
    return out


# ---------------------------------------------------------------- writing


class _Sink:
    """A CSV writer that counts the data rows it wrote."""

    __slots__ = ("rows", "write_rows")

    def __init__(self, write_rows: Callable[[Iterable[Row]], None]) -> None:
        self.write_rows = write_rows
        self.rows = 0

    def write(self, batch: list[Row]) -> None:
        self.write_rows(batch)
        self.rows += len(batch)


@contextlib.contextmanager
def _table_file(out: Path, table: str) -> Iterator[_Sink]:
    """Write to a temp name in `out`, then rename into place, so readers never see half a file."""
    final = out / f"{table}.csv"
    tmp = out / f".{table}.csv.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", newline="", encoding="utf-8", buffering=1 << 20) as handle:
            writer = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(HEADERS[table])
            yield _Sink(writer.writerows)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _invoice_counts(rng: random.Random, n_accounts: int, skew_share: float) -> list[int]:
    """Invoices per account: stratified uniform 1..96 so totals stay tight; optional skew."""
    width = MAX_INVOICES_PER_ACCOUNT / n_accounts
    counts = [1 + int((k + rng.random()) * width) for k in range(n_accounts)]
    rng.shuffle(counts)
    if skew_share > 0 and n_accounts > 1:
        others = sum(counts[1:])
        counts[0] = max(1, round(skew_share * others / (1.0 - skew_share)))
    return counts


_FLUSH_LINES = 1 << 16


def _stream_invoices(
    rng: random.Random,
    counts: list[int],
    sku_ids: tuple[str, ...],
    days: tuple[str, ...],
    same_day_rate: float,
    unpaid_rate: float,
    by_block: dict[int, list[tuple[str, int]]],
    bad: _BadRows,
    invoice_out: _Sink,
    line_out: _Sink,
) -> None:
    """The hot loop: one pass over accounts, invoices and lines, written in batches."""
    rand = rng.random
    bits = rng.getrandbits
    sample = rng.sample
    delays = _DELAYS
    n_delays = len(delays)
    span = MAX_LINES - MIN_LINES + 1
    # Every quantity tuple for up to 9 lines: one getrandbits per invoice instead of one call per line.
    qty_table = list(itertools.product(QUANTITIES, repeat=MAX_LINES))
    qty_bits = 2 * MAX_LINES
    invoice_buf: list[Row] = []
    line_buf: list[Row] = []
    invoice_id = 0
    for index, count in enumerate(counts):
        account = str(index + 1)
        block_start = len(invoice_buf)
        first: Row | None = None
        row: Row = ()
        items: list[str] = []
        # Starting from a random 'previous' day keeps the first invoice's date uniform.
        prev = int(rand() * ISSUE_DAYS)
        for _ in range(count):
            invoice_id += 1
            key = str(invoice_id)
            if rand() >= same_day_rate:
                prev = int(rand() * ISSUE_DAYS)
            offset = prev
            if rand() < unpaid_rate:
                paid = ""
                if rand() < 0.5:  # recent: issued within 30 days of the extract's last date
                    offset = LAST_OFFSET - int(rand() * RECENT_DAYS)
            else:
                paid = days[offset + delays[int(rand() * n_delays)]]
            row = (key, account, days[offset], paid)
            invoice_buf.append(row)
            items = sample(sku_ids, MIN_LINES + int(rand() * span))
            qtys = qty_table[bits(qty_bits)]  # 9 quantities; zip stops at the invoice's line count
            line_buf += [(key, item, qty) for item, qty in zip(items, qtys, strict=False)]
            if len(line_buf) >= _FLUSH_LINES:
                if first is None:
                    first = invoice_buf[block_start]
                invoice_out.write(invoice_buf)
                line_out.write(line_buf)
                invoice_buf = []
                line_buf = []
                block_start = 0
        kinds = by_block.get(index)
        if kinds:
            if first is None:
                first = invoice_buf[block_start]
            extra_invoices, extra_lines = bad.block(kinds, account, first, row, items)
            invoice_buf += extra_invoices
            line_buf += extra_lines
    invoice_out.write(invoice_buf)
    line_out.write(line_buf)


def generate(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 42,
    scale: float = 1.0,
    same_day_rate: float = 0.15,
    unpaid_rate: float = 0.0,
    skew_share: float = 0.0,
    bad_rows: int = 0,
) -> dict[str, int]:
    """Write accounts, skus, invoices and invoice_line_items CSVs; return data rows per table."""
    if not 0 < scale < float("inf"):
        raise ValueError(f"scale must be a finite number > 0, got {scale}")
    for name, value in (("same_day_rate", same_day_rate), ("unpaid_rate", unpaid_rate)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {value}")
    if not 0.0 <= skew_share < 1.0:
        raise ValueError(f"skew_share must be within [0, 1), got {skew_share}")
    if bad_rows < 0:
        raise ValueError(f"bad_rows must be >= 0, got {bad_rows}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_accounts = max(1, round(BASE_ACCOUNTS * scale))
    days = _day_strings(ISSUE_START, LAST_OFFSET + 1)
    joining = _day_strings(JOIN_START, JOIN_DAYS)

    # Separate streams per table, so e.g. changing unpaid_rate leaves accounts and skus alone.
    account_rng = random.Random(f"{seed}:accounts")
    accounts = [_account_row(account_rng, str(i), joining) for i in range(1, n_accounts + 1)]
    sku_rng = random.Random(f"{seed}:skus")
    taken: set[str] = set()
    skus = [_sku_row(sku_rng, _fresh_item_id(sku_rng, taken)) for _ in range(N_SKUS)]
    sku_ids = tuple(sku[0] for sku in skus)
    invoice_rng = random.Random(f"{seed}:invoices")
    counts = _invoice_counts(invoice_rng, n_accounts, skew_share)

    bad_rng = random.Random(f"{seed}:bad")
    bad = _BadRows(bad_rng, bad_row_plan(bad_rows), n_accounts, sum(counts), sku_ids, joining, days)
    accounts = bad.accounts(accounts)
    skus = bad.skus(skus)
    # Blocks with 2+ invoices keep duplicate targets apart from line targets; the skewed
    # account is left out because its block is flushed in pieces.
    skewed = 1 if skew_share > 0 and n_accounts > 1 else 0
    roomy = [i for i in range(skewed, n_accounts) if counts[i] >= 2] or list(range(n_accounts))
    by_block: dict[int, list[tuple[str, int]]] = {}
    for kind in bad.stream_kinds():
        by_block.setdefault(bad_rng.choice(roomy), []).append(kind)

    written: dict[str, int] = {}
    with _table_file(out, ACCOUNTS) as sink:
        sink.write(accounts)
        written[ACCOUNTS] = sink.rows
    with _table_file(out, SKUS) as sink:
        sink.write(skus)
        written[SKUS] = sink.rows
    # The hot loop makes millions of tuples but no cycles; the cyclic GC would only rescan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _table_file(out, INVOICES) as invoice_out, _table_file(out, LINES) as line_out:
            _stream_invoices(
                invoice_rng,
                counts,
                sku_ids,
                days,
                same_day_rate,
                unpaid_rate,
                by_block,
                bad,
                invoice_out,
                line_out,
            )
    finally:
        if gc_was_enabled:
            gc.enable()
    written[INVOICES] = invoice_out.rows
    written[LINES] = line_out.rows
    return written


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """CLI entry: generate extracts and report rows per file and seconds on stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m spark_etl.generate",
        description="Write seeded, deterministic CSV extracts shaped like the production ones.",
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--scale", type=float, default=1.0, help="accounts = round(200 * scale); default 1")
    parser.add_argument(
        "--same-day-rate",
        type=float,
        default=0.15,
        help="chance an invoice shares its account's previous invoice date (default 0.15)",
    )
    parser.add_argument(
        "--unpaid-rate",
        type=float,
        default=0.0,
        help="share of invoices with empty payment_dates, half of them recent (default 0)",
    )
    parser.add_argument(
        "--skew-share",
        type=float,
        default=0.0,
        help="share of all invoices held by account 1 (default 0: no skew)",
    )
    parser.add_argument(
        "--bad-rows", type=int, default=0, help="about this many injected bad rows over all kinds (default 0)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        written = generate(
            args.out,
            seed=args.seed,
            scale=args.scale,
            same_day_rate=args.same_day_rate,
            unpaid_rate=args.unpaid_rate,
            skew_share=args.skew_share,
            bad_rows=args.bad_rows,
        )
    except ValueError as error:
        parser.error(str(error))
    rows = " ".join(f"{table}={count}" for table, count in written.items())
    print(f"generated {args.out}: {rows} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
