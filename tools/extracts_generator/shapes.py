"""Shapes and volumes of the generated extracts: what one clean row of each table looks like, and how many.

The numbers are measured on the production extracts. The free-text columns (company, address, contact, phone,
item name and description, the ISBN-like item id) come from Faker, seeded, which is how the production extracts
look: multi-line postal and military addresses, mixed phone styles.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence

from faker import Faker

from spark_etl.sources.extract import EXTRACTS

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
DELAYS: tuple[int, ...] = tuple(
    [d for d in range(25, 31) for _ in range(82)] + [d for d in range(32, 61) for _ in range(3)]
)


def seeded_faker(seed: str) -> Faker:
    """A Faker of its own for one stream of rows, so its output depends only on the seed (and Faker's version,
    pinned in requirements-dev.txt)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return fake


def day_strings(start: datetime.date, count: int) -> tuple[str, ...]:
    """ISO strings for start + 0..count-1 days, so the hot loop only indexes."""
    return tuple((start + datetime.timedelta(days=i)).isoformat() for i in range(count))


def money(cents: int) -> str:
    """Exact two-decimal text without float formatting surprises."""
    return f"{cents // 100}.{cents % 100:02d}"


def account_row(rng: random.Random, fake: Faker, account_id: str, joining: Sequence[str]) -> Row:
    """One account with a gender-consistent contact person."""
    gender = "F" if rng.random() < 0.5 else "M"
    first = fake.first_name_female() if gender == "F" else fake.first_name_male()
    return (
        account_id,
        fake.company(),
        fake.address(),
        f"{first} {fake.last_name()}",
        fake.phone_number(),
        gender,
        joining[rng.randrange(len(joining))],
    )


# Faker takes about 0.4 ms per account; past this many accounts, their texts are drawn from this many Faker-made
# accounts, so Faker's share of a 1000x run stays about 2 s instead of 80 s
ACCOUNT_TEXT_POOL = 5000


def account_rows(rng: random.Random, fake: Faker, count: int, joining: Sequence[str]) -> list[Row]:
    """The clean accounts 1..count: each its own Faker texts up to ACCOUNT_TEXT_POOL accounts; beyond, company,
    address, contact (with gender) and phone each drawn from a pool of that many Faker-made accounts."""
    if count <= ACCOUNT_TEXT_POOL:
        return [account_row(rng, fake, str(number), joining) for number in range(1, count + 1)]
    pool = [account_row(rng, fake, "", joining) for _ in range(ACCOUNT_TEXT_POOL)]
    rows: list[Row] = []
    for number in range(1, count + 1):
        company, address, contact, phone = (pool[rng.randrange(ACCOUNT_TEXT_POOL)] for _ in range(4))
        joined = joining[rng.randrange(len(joining))]
        rows.append((str(number), company[1], address[2], contact[3], phone[4], contact[5], joined))
    return rows


def sku_row(rng: random.Random, fake: Faker, item_id: str) -> Row:
    """One catalogue item; retail is 1.1x..3x cost as in the extracts."""
    cost = rng.randint(10_000, 1_000_000)
    retail = round(cost * rng.uniform(1.1, 3.0))
    return (item_id, fake.catch_phrase(), fake.bs(), money(cost), money(retail))


def fresh_item_id(fake: Faker, taken: set[str]) -> str:
    """An ISBN-10-like item_id not used yet (so injected skus never clash with real ones by accident)."""
    while True:
        item = str(fake.isbn10())
        if item not in taken:
            taken.add(item)
            return item


def invoice_counts(rng: random.Random, n_accounts: int, skew_share: float) -> list[int]:
    """Invoices per account: stratified uniform 1..96 so totals stay tight; optional skew."""
    width = MAX_INVOICES_PER_ACCOUNT / n_accounts
    counts = [1 + int((k + rng.random()) * width) for k in range(n_accounts)]
    rng.shuffle(counts)
    if skew_share > 0 and n_accounts > 1:
        others = sum(counts[1:])
        counts[0] = max(1, round(skew_share * others / (1.0 - skew_share)))
    return counts
