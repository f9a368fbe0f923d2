"""Writing the generated extracts: the clean rows, the bad ones, one pass over invoices and lines in batches, each
file moved into place only once complete."""

from __future__ import annotations

import contextlib
import csv
import gc
import itertools
import os
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from extracts_generator.bad_rows import BadRows, bad_row_plan
from extracts_generator.shapes import (
    ACCOUNTS,
    BASE_ACCOUNTS,
    DELAYS,
    HEADERS,
    INVOICES,
    ISSUE_DAYS,
    ISSUE_START,
    JOIN_DAYS,
    JOIN_START,
    LAST_OFFSET,
    LINES,
    MAX_LINES,
    MIN_LINES,
    N_SKUS,
    QUANTITIES,
    RECENT_DAYS,
    SKUS,
    Row,
    account_rows,
    day_strings,
    fresh_item_id,
    invoice_counts,
    seeded_faker,
    sku_row,
)


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
def table_file(out: Path, table: str) -> Iterator[_Sink]:
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


_FLUSH_LINES = 1 << 16


def stream_invoices(
    rng: random.Random,
    counts: list[int],
    sku_ids: tuple[str, ...],
    days: tuple[str, ...],
    same_day_rate: float,
    unpaid_rate: float,
    by_block: dict[int, list[tuple[str, int]]],
    bad: BadRows,
    invoice_out: _Sink,
    line_out: _Sink,
) -> None:
    """The hot loop: one pass over accounts, invoices and lines, written in batches."""
    rand = rng.random
    bits = rng.getrandbits
    sample = rng.sample
    delays = DELAYS
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
    days = day_strings(ISSUE_START, LAST_OFFSET + 1)
    joining = day_strings(JOIN_START, JOIN_DAYS)

    # Separate streams per table, so e.g. changing unpaid_rate leaves accounts and skus alone.
    account_rng, account_fake = random.Random(f"{seed}:accounts"), seeded_faker(f"{seed}:accounts")
    accounts = account_rows(account_rng, account_fake, n_accounts, joining)
    sku_rng, sku_fake = random.Random(f"{seed}:skus"), seeded_faker(f"{seed}:skus")
    taken: set[str] = set()
    skus = [sku_row(sku_rng, sku_fake, fresh_item_id(sku_fake, taken)) for _ in range(N_SKUS)]
    sku_ids = tuple(sku[0] for sku in skus)
    invoice_rng = random.Random(f"{seed}:invoices")
    counts = invoice_counts(invoice_rng, n_accounts, skew_share)

    bad_rng = random.Random(f"{seed}:bad")
    bad = BadRows(
        bad_rng, seeded_faker(f"{seed}:bad"), bad_row_plan(bad_rows), n_accounts, sum(counts), sku_ids, joining, days
    )
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
    with table_file(out, ACCOUNTS) as sink:
        sink.write(accounts)
        written[ACCOUNTS] = sink.rows
    with table_file(out, SKUS) as sink:
        sink.write(skus)
        written[SKUS] = sink.rows
    # The hot loop makes millions of tuples but no cycles; the cyclic GC would only rescan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with table_file(out, INVOICES) as invoice_out, table_file(out, LINES) as line_out:
            stream_invoices(
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
