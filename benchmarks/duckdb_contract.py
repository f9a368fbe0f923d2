"""Single-node reference engine: the feature contract of docs/data_dictionary.md in DuckDB SQL.

Why it exists: the benchmark needs a yardstick for what the contract costs on one machine without a cluster
engine, and a second, independent SQL implementation whose output can be compared byte for byte with the
pipeline's. It is a dev-only tool (duckdb is a dev dependency) and is never imported by the pipeline.

It follows the pipeline's rules: the four extracts are read as strings, columns are found by header name,
values are trimmed of spaces before they are checked, and every record is kept, collapsed or rejected with the
first reason that applies (invalid_value, duplicate_conflict, unknown_invoice, unknown_sku). The eight
features are computed as in the Spark models, with as_of defaulting to the latest issue or payment date of a
usable invoice.

Approximation, on malformed input only: a record with the wrong number of fields is what DuckDB's CSV reader
rejects under ``ignore_errors`` (counted from its ``store_rejects`` table, once per line), not what Spark's
PERMISSIVE parser puts in ``_corrupt_record``. The two agree on a short or long record in a well-quoted file;
they may differ on a stray quote inside an unquoted field (DuckDB rejects the line, Spark reads it) or on an
unterminated quote that swallows later lines. Such records are ``invalid_value`` either way and never reach
the features, so only the reject counts can differ. DuckDB also reads a quoted empty field ``""`` as NULL,
which only matters when two copies of a key differ by ``""`` versus an empty field. On clean generated data
the feature CSV is byte-identical to the pipeline's.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": (
        "account_id",
        "company_name",
        "company_address",
        "contact_person",
        "contact_phone",
        "gender",
        "joining_date",
    ),
    "skus": ("item_id", "item_name", "item_description", "item_cost_price", "item_retail_price"),
    "invoices": ("invoice_id", "account_id", "date_issued", "payment_dates"),
    "invoice_line_items": ("invoice_id", "item_id", "quantity"),
}

FEATURE_COLUMNS = (
    "inv_id",
    "acct_id",
    "inv_total",
    "inv_items",
    "acct_age",
    "num_inv_120d",
    "cum_tot_inv_acct",
    "is_late",
)


class ExtractError(Exception):
    """An extract the run cannot start from: missing, empty, or without a required column."""


def read_header(path: Path) -> list[str]:
    """The header row, checked like the pipeline does, because DuckDB would match names case-insensitively."""
    if not path.is_file():
        raise ExtractError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise ExtractError(f"{path}: empty file, expected a header row")
    return header


def check_header(path: Path, columns: tuple[str, ...]) -> None:
    header = read_header(path)
    for column in columns:
        if column not in header:
            raise ExtractError(f"{path}: missing column {column} (header: {','.join(header)})")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ExtractError(f"{path}: column {duplicated[0]} appears more than once in the header")


def quoted(identifier: str) -> str:
    """A column name as a SQL identifier (the header is data, so it is quoted, never trusted)."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A string literal, for the one place DuckDB takes no parameter: the COPY target."""
    return "'" + value.replace("'", "''") + "'"


def raw_source(table: str) -> str:
    """The CSV scan of one extract, every column a string; malformed lines go to a per-table rejects table.

    The file path is the query parameter $path.
    """
    columns = ", ".join(quoted(column) for column in TABLE_COLUMNS[table])
    return f"""
        select {columns}
        from read_csv(
            $path,
            header = true,
            all_varchar = true,
            delim = ',',
            quote = '"',
            escape = '"',
            ignore_errors = true,
            store_rejects = true,
            rejects_table = 'malformed_{table}',
            rejects_scan = 'malformed_scan_{table}'
        )
    """


def checked_value(column: str, pattern: str, sql_type: str) -> str:
    """The trimmed value cast to its type when it matches the contract's pattern in full, else NULL.

    The pattern check comes first so a cast never has to guess (e.g. '1e3' or '+5' are not ids).
    """
    value = f"trim({quoted(column)}, ' ')"
    return f"case when regexp_full_match({value}, '{pattern}') then try_cast({value} as {sql_type}) end"


# contract: ids are 1 to 18 digits, dates real yyyy-MM-dd dates, prices non-negative with at most 6 decimals,
# quantities positive whole numbers; all after trimming surrounding spaces
ID_PATTERN = "[0-9]{1,18}"
DATE_PATTERN = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
PRICE_PATTERN = "[0-9]{1,15}([.][0-9]{1,6})?"
QUANTITY_PATTERN = "[0-9]{1,9}"


def text_key(column: str) -> str:
    """A required text key: trimmed, and NULL (invalid) when empty."""
    return f"nullif(trim({quoted(column)}, ' '), '')"


def keyed_checked_sql(table: str, key: str, parsed: dict[str, str], invalid_when: str) -> str:
    """Validate, then flag conflicting copies of a key and number exact copies, as the staging models do.

    The content compared is the record's original values (before trimming), so two copies differing only in
    spaces conflict, exactly as in Spark.
    """
    raw_columns = TABLE_COLUMNS[table]
    parsed_columns = ",\n".join(f"{expression} as {name}" for name, expression in parsed.items())
    content = "to_json(struct_pack(" + ", ".join(f"{quoted(c)} := {quoted(c)}" for c in raw_columns) + "))"
    return f"""
        with
        raw_rows as ({raw_source(table)}),
        parsed as (
            select {parsed_columns}, {content} as row_content
            from raw_rows
        ),
        validated as (
            select *, ({invalid_when}) as is_invalid from parsed
        )
        select
            * exclude (is_invalid),
            case
                when is_invalid then 'invalid_value'
                when min(if(is_invalid, null, row_content)) over by_key
                    <> max(if(is_invalid, null, row_content)) over by_key
                    then 'duplicate_conflict'
            end as reject_reason,
            row_number() over (partition by {key} order by is_invalid, row_content) as copy_number
        from validated
        window by_key as (partition by {key})
    """


ACCOUNTS_SQL = keyed_checked_sql(
    "accounts",
    "account_id",
    {
        "account_id": checked_value("account_id", ID_PATTERN, "bigint"),
        "joining_date": checked_value("joining_date", DATE_PATTERN, "date"),
    },
    "account_id is null or joining_date is null",
)

SKUS_SQL = keyed_checked_sql(
    "skus",
    "item_id",
    {
        "item_id": text_key("item_id"),
        "item_cost_price": checked_value("item_cost_price", PRICE_PATTERN, "decimal(21, 6)"),
        "item_retail_price": checked_value("item_retail_price", PRICE_PATTERN, "decimal(21, 6)"),
    },
    "item_id is null or item_cost_price is null or item_retail_price is null",
)

INVOICES_SQL = keyed_checked_sql(
    "invoices",
    "invoice_id",
    {
        "invoice_id": checked_value("invoice_id", ID_PATTERN, "bigint"),
        "account_id": checked_value("account_id", ID_PATTERN, "bigint"),
        "issue_date": checked_value("date_issued", DATE_PATTERN, "date"),
        "payment_date": checked_value("payment_dates", DATE_PATTERN, "date"),
        # contract: an empty payment_dates means unpaid, anything else must be a date
        "has_payment_value": "coalesce(trim(payment_dates, ' '), '') <> ''",
    },
    "invoice_id is null or account_id is null or issue_date is null or (has_payment_value and payment_date is null)",
)

LINES_SQL = f"""
    with
    raw_rows as ({raw_source("invoice_line_items")}),
    parsed as (
        select
            {checked_value("invoice_id", ID_PATTERN, "bigint")} as invoice_id,
            {text_key("item_id")} as item_id,
            {checked_value("quantity", QUANTITY_PATTERN, "integer")} as quantity
        from raw_rows
    )
    select
        parsed.invoice_id,
        parsed.item_id,
        parsed.quantity,
        case
            when parsed.invoice_id is null or parsed.item_id is null or coalesce(parsed.quantity, 0) <= 0
                then 'invalid_value'
            when invoices.invoice_id is null then 'unknown_invoice'
            -- contract: a line naming no usable SKU is quarantined but still counts toward inv_items
            when skus.item_id is null then 'unknown_sku'
        end as reject_reason
    from parsed
    left join stg_invoices as invoices on parsed.invoice_id = invoices.invoice_id
    left join stg_skus as skus on parsed.item_id = skus.item_id
"""

AS_OF_SQL = """
    select coalesce(
        cast($as_of as date),
        max(greatest(issue_date, coalesce(payment_date, issue_date)))
    ) as as_of_date
    from stg_invoices
"""

FEATURES_SQL = """
    with
    lines as (
        select invoice_id, item_id, quantity, reject_reason is null as is_known_sku
        from lines_checked
        where reject_reason is null or reject_reason = 'unknown_sku'
    ),
    invoice_totals as (
        select
            lines.invoice_id,
            sum(lines.quantity) as item_count,
            count(*) filter (where not lines.is_known_sku) as unknown_sku_lines,
            -- exact decimal: decimal(10, 0) x decimal(21, 6), rounded once per invoice
            sum(cast(lines.quantity as decimal(10, 0)) * skus.item_retail_price) as amount
        from lines
        left join stg_skus as skus on lines.item_id = skus.item_id
        group by lines.invoice_id
    ),
    daily as (
        select account_id, issue_date, issue_date - date '1970-01-01' as day_number, count(*) as invoice_count
        from stg_invoices
        group by account_id, issue_date
    ),
    account_daily as (
        select
            account_id,
            issue_date,
            -- contract: prior-only window [d - 120, d - 1]; cumulative count includes the whole day d
            coalesce(sum(invoice_count) over (
                partition by account_id order by day_number range between 120 preceding and 1 preceding
            ), 0) as prior_120d,
            sum(invoice_count) over (
                partition by account_id order by day_number range between unbounded preceding and current row
            ) as to_date
        from daily
    )
    select
        invoices.invoice_id as inv_id,
        invoices.account_id as acct_id,
        case
            when coalesce(totals.unknown_sku_lines, 0) = 0
                then cast(round(coalesce(totals.amount, 0), 2) as decimal(38, 2))
        end as inv_total,
        cast(coalesce(totals.item_count, 0) as bigint) as inv_items,
        date_diff('day', accounts.joining_date, invoices.issue_date) as acct_age,
        cast(account_daily.prior_120d as bigint) as num_inv_120d,
        cast(account_daily.to_date as bigint) as cum_tot_inv_acct,
        case
            when invoices.payment_date is not null
                then if(date_diff('day', invoices.issue_date, invoices.payment_date) > 30, 1, 0)
            when date_diff('day', invoices.issue_date, (select as_of_date from run_as_of)) > 30 then 1
        end as is_late
    from stg_invoices as invoices
    left join stg_accounts as accounts on invoices.account_id = accounts.account_id
    left join invoice_totals as totals on invoices.invoice_id = totals.invoice_id
    inner join account_daily
        on invoices.account_id = account_daily.account_id and invoices.issue_date = account_daily.issue_date
    order by inv_id
"""

KEYED_TABLES = {
    "accounts": ("accounts_checked", ACCOUNTS_SQL),
    "skus": ("skus_checked", SKUS_SQL),
    "invoices": ("invoices_checked", INVOICES_SQL),
}


def malformed_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Lines DuckDB's reader rejected for their field count (one line may log several errors)."""
    row = con.execute(
        f"select count(*) from (select distinct scan_id, file_id, line from malformed_{table})"
    ).fetchone()
    return int(row[0]) if row else 0


def table_counts(con: duckdb.DuckDBPyConnection, checked: str, table: str, keyed: bool) -> dict[str, int]:
    """read = kept + collapsed + rejected, with malformed lines counted as rejected (invalid_value)."""
    collapsed_sql = "reject_reason is null and copy_number > 1" if keyed else "false"
    row = con.execute(
        f"""
        select
            count(*) filter (where reject_reason is null and not ({collapsed_sql})),
            count(*) filter (where {collapsed_sql}),
            count(*) filter (where reject_reason is not null)
        from {checked}
        """
    ).fetchone()
    assert row is not None
    kept, collapsed, rejected = (int(value) for value in row)
    malformed = malformed_count(con, table)
    return {
        "read": kept + collapsed + rejected + malformed,
        "kept": kept,
        "collapsed": collapsed,
        "rejected": rejected + malformed,
    }


def reject_counts(con: duckdb.DuckDBPyConnection, checked: str, table: str) -> dict[str, int]:
    rows = con.execute(
        f"select reject_reason, count(*) from {checked} where reject_reason is not null group by all"
    ).fetchall()
    counts = {f"{table}/{reason}": int(count) for reason, count in rows}
    malformed = malformed_count(con, table)
    if malformed:
        key = f"{table}/invalid_value"
        counts[key] = counts.get(key, 0) + malformed
    return counts


def compute(
    extracts_dir: str | os.PathLike[str],
    output_csv: str | os.PathLike[str],
    as_of: datetime.date | str | None = None,
) -> dict[str, Any]:
    """Apply the contract to the four extracts, write the feature CSV and return a run summary.

    The summary has the keys the pipeline's run_summary.json uses for the same facts: as_of, output_rows,
    tables (read/kept/collapsed/rejected) and rejects ("<table>/<reason>": count), plus seconds.
    """
    started = time.perf_counter()
    folder = Path(extracts_dir)
    output = Path(output_csv)
    paths = {table: folder / f"{table}.csv" for table in TABLE_COLUMNS}
    for table, path in paths.items():
        check_header(path, TABLE_COLUMNS[table])
    as_of_value = datetime.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of

    spill_dir = tempfile.mkdtemp(prefix="duckdb_contract_")
    con = duckdb.connect(config={"temp_directory": spill_dir})
    try:
        tables: dict[str, dict[str, int]] = {}
        rejects: dict[str, int] = {}
        for table, (checked, sql) in KEYED_TABLES.items():
            con.execute(f"create temp table {checked} as {sql}", {"path": str(paths[table])})
            # the usable rows: valid, unconflicted, exact copies collapsed to one
            con.execute(
                f"create temp table stg_{table} as select * from {checked} "
                "where reject_reason is null and copy_number = 1"
            )
            tables[table] = table_counts(con, checked, table, keyed=True)
            rejects.update(reject_counts(con, checked, table))
        con.execute(f"create temp table lines_checked as {LINES_SQL}", {"path": str(paths["invoice_line_items"])})
        tables["invoice_line_items"] = table_counts(con, "lines_checked", "invoice_line_items", keyed=False)
        rejects.update(reject_counts(con, "lines_checked", "invoice_line_items"))

        con.execute(f"create temp table run_as_of as {AS_OF_SQL}", {"as_of": as_of_value})
        as_of_row = con.execute("select as_of_date from run_as_of").fetchone()
        effective_as_of = as_of_row[0] if as_of_row else None

        output.parent.mkdir(parents=True, exist_ok=True)
        pending = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        try:
            target = sql_string(str(pending))
            con.execute(f"copy ({FEATURES_SQL}) to {target} (format csv, header true, delimiter ',')")
            os.replace(pending, output)
        finally:
            pending.unlink(missing_ok=True)
        output_rows = tables["invoices"]["kept"]
    finally:
        con.close()
        shutil.rmtree(spill_dir, ignore_errors=True)
    return {
        "engine": f"duckdb {duckdb.__version__}",
        "as_of": effective_as_of.isoformat() if effective_as_of else None,
        "output_rows": output_rows,
        "tables": tables,
        "rejects": dict(sorted(rejects.items())),
        "seconds": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line, so the benchmark can time the engine in a fresh process; prints the summary as JSON."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/duckdb_contract.py",
        description="Compute the late-payment feature contract with DuckDB (reference engine, dev only).",
    )
    parser.add_argument("--extracts", required=True, metavar="DIR", help="folder of the four CSV extracts")
    parser.add_argument("--output", required=True, metavar="FILE", help="feature CSV to write")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="date unpaid invoices are judged at")
    options = parser.parse_args(argv)
    try:
        summary = compute(options.extracts, options.output, options.as_of)
    except (ExtractError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
