"""Accounting for every input row, and the small profiles the notebooks show: all computed in Spark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from spark_etl import failures
from spark_etl.sources.extract import EXTRACTS


class ReconciliationError(failures.BadInputError):
    """Rows read do not equal rows kept + collapsed + rejected: something would be lost silently."""


@dataclass(frozen=True)
class TableCounts:
    table_name: str
    read: int
    kept: int
    collapsed: int
    rejected: int


def table_counts(spark: SparkSession) -> tuple[list[TableCounts], dict[str, int]]:
    """Rows per table and rejects per `table/reason`, from the stg_row_counts model (a handful of rows)."""
    count_rows = spark.table("stg_row_counts").collect()
    by_status: dict[tuple[str, str], int] = {}
    rejects: dict[str, int] = {}
    for row in count_rows:
        key = (row["table_name"], row["row_status"])
        by_status[key] = by_status.get(key, 0) + int(row["row_count"])
        if row["reject_reason"] is not None:
            rejects[f"{row['table_name']}/{row['reject_reason']}"] = int(row["row_count"])
    counts = []
    for extract in EXTRACTS:
        kept, collapsed, rejected = (
            by_status.get((extract.table_name, status), 0) for status in ("kept", "collapsed", "rejected")
        )
        counts.append(TableCounts(extract.table_name, kept + collapsed + rejected, kept, collapsed, rejected))
    return counts, dict(sorted(rejects.items()))


def check_reconciliation(counts: list[TableCounts], rows_read: dict[str, int]) -> None:
    """Fail the run when any table's rows read differ from kept + collapsed + rejected."""
    for table in counts:
        accounted = table.kept + table.collapsed + table.rejected
        if rows_read[table.table_name] != accounted:
            raise ReconciliationError(
                f"{table.table_name}: read {rows_read[table.table_name]} rows but accounted for {accounted} "
                f"(kept {table.kept}, collapsed {table.collapsed}, rejected {table.rejected})"
            )


def as_of_metrics(as_of_row: Row | None) -> dict[str, Any]:
    """The run's as_of, the latest date in the data, and whether as_of lies after it (legitimate for a backfill
    that passes a date, suspicious for a date in the future): the entry script warns about the latter."""
    as_of = as_of_row["as_of_date"] if as_of_row else None
    latest = as_of_row["latest_data_date"] if as_of_row else None
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "latest_data_date": latest.isoformat() if latest else None,
        "is_as_of_after_data": bool(as_of and latest and as_of > latest),
    }


def counts_as_dicts(counts: list[TableCounts]) -> dict[str, dict[str, int]]:
    return {table.table_name: {k: v for k, v in asdict(table).items() if k != "table_name"} for table in counts}


def profile_aggregates(columns: Sequence[str]) -> list[Column]:
    """The aggregates of a column profile: rows, then non-null count, minimum and maximum per column. Usable in
    `agg` or in `observe`, where a model's write computes its profile in the same pass."""
    aggregations = [F.count(F.lit(1)).alias("__rows")]
    for name in columns:
        aggregations += [
            F.count(F.col(name)).alias(f"{name}__non_null"),
            F.min(F.col(name)).cast("string").alias(f"{name}__min"),
            F.max(F.col(name)).cast("string").alias(f"{name}__max"),
        ]
    return aggregations


def profile_rows(summary: Mapping[str, Any], columns: Sequence[str]) -> list[dict[str, Any]]:
    """One row per column (non-null, null, min, max) from the values of `profile_aggregates`."""
    rows = int(summary["__rows"])
    return [
        {
            "column": name,
            "non_null": int(summary[f"{name}__non_null"]),
            "null": rows - int(summary[f"{name}__non_null"]),
            "min": summary[f"{name}__min"],
            "max": summary[f"{name}__max"],
        }
        for name in columns
    ]


def column_profile(df: DataFrame) -> list[dict[str, Any]]:
    """Per column: non-null count, null count, min and max, in one aggregation pass."""
    summary = df.agg(*profile_aggregates(df.columns)).first()
    assert summary is not None
    return profile_rows(summary.asDict(), df.columns)
