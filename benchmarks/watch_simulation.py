"""A seeded simulation of daily runs with faults injected on chosen days (issue 23): each fault must be flagged on
its day at its documented level, and no clean day may raise anything.

Generated extracts (seeded) are cut by date into a day 0 (a full run) and one delta per following day: the
invoices issued that day with their lines, and the earlier invoices paid that day, delivered again with their
payment date. The days end DAYS_BEFORE_THE_END before the data does, where its days are steady. On the fault days
the delta is spoiled as a source bug would spoil it. A day whose run fails at an error-level check is run again
with its clean delta (which must pass, compared with the last good day); a day whose warnings reveal a fault that
was published is rolled back (`--rollback`, its record superseded) and run again with its clean delta. Runs go
through the entry script's main() in one warm kernel, as the test suite's do.

With `--source postgres` the days come from a throwaway PostgreSQL server instead (text-typed tables, as a
production extract can hold bad rows): each day the database is set to what the source holds that day (the rows
published so far with the day's delta applied, spoiled on a fault day) and the run reads it with
`--jdbc-url ... --incremental`, finding the day's changes itself. Shorter, its faults two days apart.

    .venv/bin/python benchmarks/watch_simulation.py --scale 10 --days 32 --work /tmp/watch --out docs/watched_runs.md
    .venv/bin/python benchmarks/watch_simulation.py --source postgres --scale 3 --days 17 --work /tmp/watch_pg \
        --out docs/watched_runs_postgres.md
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))

from support import pg_tables  # noqa: E402

import pg_server  # noqa: E402  (the suite's throwaway PostgreSQL server)
from extracts_generator import generate  # noqa: E402  (a development tool, imported from tools/)
from spark_etl.command import cli  # noqa: E402
from spark_etl.monitoring import history  # noqa: E402
from spark_etl.runtime import runner  # noqa: E402
from spark_etl.sources import jdbc  # noqa: E402
from spark_etl.storage import filesystem  # noqa: E402

TABLES = ("accounts", "skus", "invoices", "invoice_line_items")
Row = list[str]

# the faults in the order they fall, and the level their check is documented at
FAULT_LEVELS = (
    ("half-empty delta", "warn"),
    ("payments cleared on paid invoices", "warn"),
    ("prices x100", "warn"),
    ("burst of bad invoice rows", "error"),
    ("joining dates nulled", "error"),
    ("payments cleared on late-paid invoices", "warn"),  # each stays late: no feature moves
)
FIRST_FAULT_DAY = 6  # after five clean days, so the window of good runs has some to compare with
FAULT_SPACING = {"csv": 5, "postgres": 2}  # days from one fault to the next


def fault_days(source_kind: str) -> dict[int, tuple[str, str]]:
    """The day each fault falls on (counted from the first delta)."""
    spacing = FAULT_SPACING[source_kind]
    return {FIRST_FAULT_DAY + spacing * index: fault for index, fault in enumerate(FAULT_LEVELS)}


@dataclass
class Source:
    header: dict[str, Row]
    rows: dict[str, list[Row]]


@dataclass
class DayResult:
    day: int
    date: str
    fault: str
    expected: str
    status: int
    failed: list[str] = field(default_factory=list)  # "name (level)"
    then: str = ""


def read_source(folder: Path) -> Source:
    header, rows = {}, {}
    for table in TABLES:
        with open(folder / f"{table}.csv", newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header[table] = next(reader)
            rows[table] = list(reader)
    return Source(header, rows)


def write_day(folder: Path, source: Source, rows: dict[str, list[Row]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        with open(folder / f"{table}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(source.header[table])
            writer.writerows(rows.get(table, []))
    return folder


# the simulated days end this long before the data's last issue date: the generated data's last weeks thin out (its
# later invoices are not issued or paid yet), and a day's mix of new invoices and payments is steady before them
DAYS_BEFORE_THE_END = 100


def cut_days(source: Source, days: int) -> tuple[dict[str, list[Row]], list[tuple[str, dict[str, list[Row]]]]]:
    """Day 0 (everything issued up to the first day's eve, payments after it withheld) and each day's delta."""
    invoices = source.rows["invoices"]
    last = datetime.date.fromisoformat(max(row[2] for row in invoices)) - datetime.timedelta(days=DAYS_BEFORE_THE_END)
    first = (last - datetime.timedelta(days=days - 1)).isoformat()
    lines_of: dict[str, list[Row]] = {}
    for line in source.rows["invoice_line_items"]:
        lines_of.setdefault(line[0], []).append(line)
    day0 = [row for row in invoices if row[2] < first]  # the invoices issued after the last day never arrive
    day0_rows = {
        "accounts": source.rows["accounts"],
        "skus": source.rows["skus"],
        "invoices": [[*row[:3], row[3] if row[3] and row[3] < first else ""] for row in day0],
        "invoice_line_items": [line for row in day0 for line in lines_of.get(row[0], [])],
    }
    deltas = []
    for offset in range(days):
        date = (datetime.date.fromisoformat(first) + datetime.timedelta(days=offset)).isoformat()
        new = [[*row[:3], row[3] if row[3] and row[3] <= date else ""] for row in invoices if row[2] == date]
        paid = [row for row in invoices if row[2] < date and row[3] == date]
        deltas.append(
            (
                date,
                {
                    "invoices": new + paid,
                    "invoice_line_items": [line for row in new for line in lines_of.get(row[0], [])],
                },
            )
        )
    return day0_rows, deltas


def days_between(invoice: Row) -> int:
    """Days from an invoice's issue to its payment (both ISO dates: the generated extracts' clean rows)."""
    return (datetime.date.fromisoformat(invoice[3]) - datetime.date.fromisoformat(invoice[2])).days


def spoil(fault: str, delta: dict[str, list[Row]], source: Source, date: str, rng: random.Random) -> dict[str, Any]:
    """The day's delta as the fault delivers it."""
    spoiled = {table: list(rows) for table, rows in delta.items()}
    if fault == "half-empty delta":
        kept = spoiled["invoices"][::2]
        ids = {row[0] for row in kept}
        spoiled["invoices"] = kept
        spoiled["invoice_line_items"] = [line for line in spoiled["invoice_line_items"] if line[0] in ids]
    elif fault == "payments cleared on paid invoices":
        old_paid = [row for row in source.rows["invoices"] if row[3] and row[3] < date and row[2] < date[:8] + "01"]
        spoiled["invoices"] += [[*row[:3], ""] for row in rng.sample(old_paid, 2 * len(delta["invoices"]))]
    elif fault == "payments cleared on late-paid invoices":
        late_paid = [row for row in source.rows["invoices"] if row[3] and row[3] < date and days_between(row) > 30]
        spoiled["invoices"] += [[*row[:3], ""] for row in rng.sample(late_paid, len(delta["invoices"]))]
    elif fault == "prices x100":
        price = source.header["skus"].index("item_retail_price")
        spoiled["skus"] = [
            [*row[:price], f"{float(row[price]) * 100:.2f}", *row[price + 1 :]] for row in source.rows["skus"]
        ]
    elif fault == "burst of bad invoice rows":
        spoiled["invoices"] += [[str(90_000_000 + n), "1", "not-a-date", ""] for n in range(len(delta["invoices"]))]
    elif fault == "joining dates nulled":
        joined = source.header["accounts"].index("joining_date")
        accounts = rng.sample(source.rows["accounts"], len(source.rows["accounts"]) // 3)
        spoiled["accounts"] = [[*row[:joined], "", *row[joined + 1 :]] for row in accounts]
    return spoiled


@contextlib.contextmanager
def quiet_stderr(log: Path) -> Iterator[None]:
    """The runs' own lines go to a log; the simulation prints one line per day."""
    with open(log, "a", encoding="utf-8") as handle, contextlib.redirect_stderr(handle):
        yield


def run(kernel: runner.SharedKernel, log: Path, *args: str) -> int:
    with quiet_stderr(log):
        return cli.main(list(args), kernel=kernel)


def applied(tables: dict[str, list[Row]], delta: dict[str, list[Row]]) -> dict[str, list[Row]]:
    """The source's tables after a day's delta: a delta row replaces the row of its key (the first column; the
    line items of a delta are new invoices' and are added)."""
    merged = {}
    for table in TABLES:
        changed = delta.get(table, [])
        if table == "invoice_line_items":
            merged[table] = tables[table] + changed
            continue
        keys = {row[0] for row in changed}
        merged[table] = [row for row in tables[table] if row[0] not in keys] + changed
    return merged


class Database:
    """The source as PostgreSQL holds it: text-typed tables in schema raw, set each day to what the source holds."""

    SCHEMA = "raw"

    def __init__(self, server: pg_server.PostgresServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.url = pg_tables.create_database(server, "watch")
        pg_tables.create_tables(server, "watch", self.SCHEMA, typed=False)

    def hold(self, source: Source, tables: dict[str, list[Row]], name: str) -> None:
        folder = write_day(self.folder / name, source, tables)
        self.server.psql("; ".join(f"truncate {self.SCHEMA}.{table}" for table in TABLES), "watch")
        pg_tables.copy_extracts(self.server, "watch", self.SCHEMA, folder)
        shutil.rmtree(folder)  # the database holds it now

    def options(self) -> tuple[str, ...]:
        return ("--jdbc-url", self.url, "--jdbc-user", pg_server.SUPERUSER, "--jdbc-schema", self.SCHEMA)


def failed_checks(warehouse: Path) -> list[str]:
    runs = history.RunHistory(str(warehouse), filesystem.LocalFiles())
    record = runs.read(runs.run_ids()[-1]) or {}
    return [f"{c['name']} ({c['level']})" for c in record.get("checks", []) if c["status"] == "failed"]


def simulate(
    scale: float, days: int, work: Path, seed: int, database: Database | None = None
) -> tuple[list[DayResult], float]:
    """Day 0's full run, then each day's incremental run, from CSV deltas or (`database`) from PostgreSQL."""
    extracts = work / f"extracts_{scale:g}"
    if not extracts.is_dir():
        generate(extracts, seed=seed, scale=scale, unpaid_rate=0.02)
    source = read_source(extracts)
    faults = fault_days("csv" if database is None else "postgres")
    day0, deltas = cut_days(source, days)
    runs_dir = work / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    output = runs_dir / "out" / "pipeline_output.csv"
    warehouse = output.parent / "warehouse"
    log = work / "runs.log"
    log.unlink(missing_ok=True)
    rng = random.Random(seed)
    results = []
    started = time.perf_counter()
    conf = {"spark.master": "local[2]"}
    if database is not None:  # the driver's jar in the kernel's JVM, the password in its environment
        conf["spark.jars"] = jdbc.DEFAULT_DRIVER_JAR
        os.environ[jdbc.PASSWORD_ENVIRONMENT_VARIABLE] = pg_server.SUPERUSER_PASSWORD
    held: dict[str, list[Row]] = {table: [] for table in TABLES}  # the source as published so far: none yet

    def source_of(name: str, delta: dict[str, list[Row]]) -> tuple[str, ...]:
        """The run's source options for a day's delta: its files, or the database holding it applied to what is
        published so far (`held`)."""
        if database is None:
            return ("--extracts", str(write_day(runs_dir / name, source, delta)))
        database.hold(source, applied(held, delta), name)
        return database.options()

    with runner.shared_kernel(conf) as kernel:
        status = run(kernel, log, *source_of("day_00", day0), "--output", str(output), "--quiet")
        held = day0  # published: the days' changes apply to it (line items are appended, so day 0 only once)
        if status != 0:  # nothing to compare the days with: say why, from the run's own lines
            raise SystemExit(f"day 0's full run exited with status {status}; its lines are in {log}")
        results.append(DayResult(0, "day 0", "", "", status, failed_checks(warehouse), "full run"))
        for day, (date, delta) in enumerate(deltas, start=1):
            fault, expected = faults.get(day, ("", ""))
            spoiled = spoil(fault, delta, source, date, rng) if fault else delta
            name = f"day_{day:02d}"
            args = ("--output", str(output), "--incremental", "--quiet")
            status = run(kernel, log, *source_of(name, spoiled), *args)
            result = DayResult(day, date, fault, expected, status, failed_checks(warehouse))
            if fault and (status != 0 or fault != "half-empty delta"):
                # a failed day is rerun fixed; a published fault (other than a short delta, whose rows are lost
                # upstream) is rolled back first
                if status == 0:
                    run(kernel, log, "--output", str(output), "--rollback", "--quiet")
                rerun = run(kernel, log, *source_of(f"{name}_fixed", delta), *args)
                rerun_failed = failed_checks(warehouse)
                action = "rolled back, " if status == 0 else ""
                result.then = f"{action}rerun fixed: status {rerun}, failed checks: {', '.join(rerun_failed) or 'none'}"
                published = delta
            else:  # the day as it came stays published (a short delta's missing rows never arrive)
                published = spoiled
            if database is not None:
                held = applied(held, published)
            results.append(result)
            print(f"day {day:2d} {date} {fault or 'clean':<34} status {status} {', '.join(result.failed) or '-'}")
    return results, time.perf_counter() - started


def verdicts(results: list[DayResult]) -> tuple[int, int, list[str]]:
    """(false alarms on clean days, clean days, faults missed or at the wrong level)."""
    clean = [result for result in results if not result.fault and result.day > 0]
    false_alarms = sum(len(result.failed) for result in clean)
    missed = []
    for result in results:
        if not result.fault:
            continue
        levels = {entry.rsplit("(", 1)[1].rstrip(")") for entry in result.failed}
        if result.expected not in levels or (result.expected == "error") != (result.status == 4):
            missed.append(f"day {result.day} {result.fault}: {', '.join(result.failed) or 'nothing flagged'}")
        if result.then and not result.then.startswith(("rerun fixed: status 0", "rolled back, rerun fixed: status 0")):
            missed.append(f"day {result.day}: the fixed rerun did not pass ({result.then})")
    return false_alarms, len(clean), missed


def report(results: list[DayResult], seconds: float, scale: float, seed: int, source_kind: str) -> str:
    false_alarms, clean_days, missed = verdicts(results)
    from_where = (
        "incremental run on that day's delta (its new invoices with their lines, and the invoices paid that day)"
        if source_kind == "csv"
        else "incremental run from PostgreSQL (`--jdbc-url`), whose text-typed tables hold the rows published so far "
        "with that day's changes (its new invoices with their lines, and the invoices paid that day)"
    )
    lines = [
        "# Watched runs: a seeded simulation of daily runs with faults"
        + ("" if source_kind == "csv" else ", from PostgreSQL"),
        "",
        "Generated by `.venv/bin/python benchmarks/watch_simulation.py "
        + ("" if source_kind == "csv" else "--source postgres ")
        + f"--scale {scale:g} --seed {seed} --days {len(results) - 1}` ({seconds:.0f} s, one warm kernel), with "
        f"the default checks (`spark_etl/monitoring/default_checks.yml`). Day 0 is a full run; each later day an "
        f"{from_where}. A failed day is rerun with its clean delta; a published fault is rolled back first.",
        "",
        f"**False alarms on the {clean_days} clean days: {false_alarms}.** Faults missed or flagged at another "
        f"level than documented: {len(missed)}{': ' + '; '.join(missed) if missed else ''}.",
        "",
        "| day | date | fault | documented level | exit status | checks failed | then |",
        "|---:|---|---|---|---:|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.day} | {result.date} | {result.fault or 'clean'} | {result.expected or '-'} | "
            f"{result.status} | {', '.join(result.failed) or '-'} | {result.then or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10.0, help="extracts' scale (default 10: ~130 invoices a day)")
    parser.add_argument("--days", type=int, default=32, help="daily runs after day 0 (default 32)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=Path("/tmp/spark_etl_watch"))
    parser.add_argument("--out", type=Path, help="write the report here (markdown)")
    parser.add_argument("--source", choices=sorted(FAULT_SPACING), default="csv", help="where the days come from")
    options = parser.parse_args(argv)
    last_fault = max(fault_days(options.source))
    if options.days <= last_fault:
        parser.error(f"--days must be more than {last_fault}, the last fault's day")
    missing = pg_server.binaries_missing() if options.source == "postgres" else None
    if missing is not None:
        parser.error(f"--source postgres: {missing}")
    options.work.mkdir(parents=True, exist_ok=True)
    if options.source == "csv":
        results, seconds = simulate(options.scale, options.days, options.work, options.seed)
    else:
        server = pg_server.start_server()
        try:
            database = Database(server, options.work / "database_days")
            results, seconds = simulate(options.scale, options.days, options.work, options.seed, database)
        finally:
            server.stop()
    text = report(results, seconds, options.scale, options.seed, options.source)
    if options.out:
        options.out.write_text(text, encoding="utf-8")
    print(text)
    false_alarms, _, missed = verdicts(results)
    print(json.dumps({"false_alarms": false_alarms, "missed": missed}))
    return 0 if false_alarms == 0 and not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
