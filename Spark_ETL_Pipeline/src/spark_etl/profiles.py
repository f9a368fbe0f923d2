"""What the notebooks show: the SQL they run, profiles as small tables, matplotlib charts of Spark aggregates.

Only aggregates (a few dozen rows at most) ever reach the driver here.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from pyspark.sql import DataFrame

from spark_etl import models, quality


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def show_sql(layer: str, model_name: str) -> None:
    """Render a model's SQL, so the executed notebook records exactly what ran."""
    from IPython.display import Markdown

    _display(Markdown(f"**`{layer}/{model_name}.sql`**\n\n```sql\n{models.sql_text(layer, model_name)}```"))


def show_table(rows: Sequence[dict[str, Any]], caption: str = "") -> None:
    """A small HTML table (no pandas on the data path)."""
    from IPython.display import HTML

    if not rows:
        _display(HTML(f"<p><em>{html.escape(caption)}: no rows</em></p>"))
        return
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if row[c] is None else str(row[c]))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    _display(HTML(f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))


def show_profile(model_df: DataFrame, caption: str) -> dict[str, dict[str, Any]]:
    """Rows, nulls, minimum and maximum per column of a model, from one aggregation; returned by column so a
    notebook can reuse a count instead of scanning the model again."""
    profile = quality.column_profile(model_df)
    show_table(profile, caption)
    return {row["column"]: row for row in profile}


def bar_chart(
    labels: Sequence[Any],
    values: Sequence[float],
    title: str,
    xlabel: str,
    ylabel: str,
    secondary: Sequence[float | None] | None = None,
    secondary_label: str = "",
) -> None:
    """A bar chart, optionally with a line on a second axis (e.g. invoices and late rate per month)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 3.6))
    positions = list(range(len(labels)))
    axis.bar(positions, values, color="#4C72B0")
    axis.set_xticks(positions, [str(label) for label in labels], rotation=45 if len(labels) > 8 else 0, ha="right")
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if secondary is not None:
        line_axis = axis.twinx()
        line_axis.plot(positions, [float("nan") if v is None else v for v in secondary], color="#DD8452", marker="o")
        line_axis.set_ylabel(secondary_label)
        line_axis.set_ylim(bottom=0)
    figure.tight_layout()
    plt.show()
    plt.close(figure)


def rows_as_dicts(model_df: DataFrame, limit: int = 200) -> list[dict[str, Any]]:
    """Collect a small aggregate; the limit guards against charting something that is not one."""
    return [row.asDict() for row in model_df.limit(limit).collect()]


def chart_counts(counts: dict[str, int], title: str, xlabel: str) -> None:
    """Bar chart of a few named counts (e.g. rejects per table/reason); a note when there are none."""
    if not counts:
        from IPython.display import Markdown

        _display(Markdown(f"*{title}: none.*"))
        return
    bar_chart(list(counts), list(counts.values()), title, xlabel, "rows")


def chart_monthly(model_df: DataFrame, date_column: str, title: str, flag_column: str | None = None) -> None:
    """Rows per calendar month of `date_column`, with the mean of a 0/1 flag as a line when given."""
    from pyspark.sql import functions as F

    aggregations = [F.count(F.lit(1)).alias("rows")]
    if flag_column is not None:
        aggregations.append(F.avg(F.col(flag_column)).alias("rate"))
    monthly = rows_as_dicts(
        model_df.groupBy(F.date_format(F.col(date_column), "yyyy-MM").alias("month"))
        .agg(*aggregations)
        .orderBy("month")
    )
    bar_chart(
        [row["month"] for row in monthly],
        [row["rows"] for row in monthly],
        title,
        "month",
        "rows",
        secondary=[row["rate"] for row in monthly] if flag_column else None,
        secondary_label=f"mean {flag_column}" if flag_column else "",
    )


def chart_histogram(
    model_df: DataFrame, column: str, bins: int = 20, profile: dict[str, dict[str, Any]] | None = None
) -> None:
    """Distribution of a numeric column in equal-width bins, counted in Spark; empty values counted apart.

    Pass the model's `show_profile` result as `profile` and its minimum, maximum and null count are reused, so
    the chart costs one aggregation instead of two.
    """
    from pyspark.sql import functions as F

    if profile is None:
        profile = {row["column"]: row for row in quality.column_profile(model_df.select(column))}
    bounds = profile[column]
    if bounds["min"] is None:
        chart_counts({}, f"{column}: no known values", column)
        return
    low, high = float(bounds["min"]), float(bounds["max"])
    width = (high - low) / bins or 1.0
    bucket = F.least(F.floor((F.col(column).cast("double") - F.lit(low)) / F.lit(width)), F.lit(bins - 1))
    counted = rows_as_dicts(
        model_df.where(F.col(column).isNotNull()).groupBy(bucket.alias("bucket")).count().orderBy("bucket")
    )
    labels = [f"{low + row['bucket'] * width:,.0f}" for row in counted]
    title = f"{column}: distribution ({bounds['null']:,} unknown)"
    bar_chart(labels, [row["count"] for row in counted], title, f"{column} (bin start)", "invoices")


def chart_rate_by_bucket(model_df: DataFrame, column: str, edges: Sequence[int], flag_column: str) -> None:
    """Invoices and the mean of a 0/1 flag per bucket of `column` ([edge_i, edge_i+1) buckets)."""
    from pyspark.sql import functions as F

    bucket = F.lit(0)
    for edge in edges[1:]:
        bucket = bucket + F.when(F.col(column) >= edge, 1).otherwise(0)
    labels = [f"{a}-{b - 1}" for a, b in pairwise(edges)] + [f"{edges[-1]}+"]
    counted = {
        row["bucket"]: row
        for row in rows_as_dicts(
            model_df.where(F.col(column).isNotNull())
            .groupBy(bucket.alias("bucket"))
            .agg(F.count(F.lit(1)).alias("rows"), F.avg(flag_column).alias("rate"))
        )
    }
    shown = [index for index in range(len(labels)) if index in counted]
    bar_chart(
        [labels[index] for index in shown],
        [counted[index]["rows"] for index in shown],
        f"invoices and mean {flag_column} by {column}",
        column,
        "invoices",
        secondary=[counted[index]["rate"] for index in shown],
        secondary_label=f"mean {flag_column}",
    )
