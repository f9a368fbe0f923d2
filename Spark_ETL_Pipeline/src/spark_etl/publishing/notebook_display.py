"""What the notebooks show: the SQL they run, profiles as small tables, SVG charts of Spark aggregates.

Only aggregates (a few dozen rows at most) ever reach the driver here.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ParamSpec

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_etl.modelling import models, quality, registry
from spark_etl.publishing import svg_chart
from spark_etl.publishing.html_table import html_table

P = ParamSpec("P")


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def show_sql(layer: str, model_name: str) -> None:
    """Render a model's SQL, so the executed notebook records exactly what ran."""
    from IPython.display import Markdown

    _display(Markdown(f"**`{layer}/{model_name}.sql`**\n\n```sql\n{models.sql_text(layer, model_name)}```"))


def show_models(layer: str) -> None:
    """Render a layer's models as the registry declares them (grain, key, columns from each .md), so the notebook's
    table is the graph that is built and checked, not a hand-kept copy."""
    from IPython.display import Markdown

    _display(Markdown(registry.grain_table(layer)))


def show_table(rows: Sequence[dict[str, Any]], caption: str = "") -> None:
    """A small HTML table (no pandas on the data path)."""
    from IPython.display import HTML

    if not rows:
        _display(HTML(f"<p><em>{html.escape(caption)}: no rows</em></p>"))
        return
    columns = list(rows[0])
    _display(HTML(html_table(columns, [[row[column] for column in columns] for row in rows], caption)))


def show_profile(profile: Sequence[dict[str, Any]], caption: str) -> dict[str, dict[str, Any]]:
    """Show a column profile (rows, nulls, minimum and maximum per column: `Stage.profile` of a built model, or
    `quality.column_profile` of any DataFrame); returned by column, so a notebook can reuse a count."""
    show_table(profile, caption)
    return by_column(profile)


def show_model_profile(stage: models.Stage, model_name: str) -> dict[str, dict[str, Any]]:
    """Show the profile of a model the stage built with `profile=True`, captioned with what it covers (the whole
    model, or the months an incremental run rewrote); returned by column."""
    return show_profile(stage.profile(model_name), stage.profile_caption(model_name))


def shown_as_svg(draw: Callable[P, str]) -> Callable[P, None]:
    """A function that displays the SVG `draw` returns, with `draw`'s parameters."""

    def show(*args: P.args, **kwargs: P.kwargs) -> None:
        from IPython.display import SVG

        _display(SVG(data=draw(*args, **kwargs)))

    return show


# A bar chart, optionally with a line on a second axis (e.g. invoices and late rate per month), drawn as SVG
# (svg_chart says why not matplotlib)
bar_chart = shown_as_svg(svg_chart.bar_chart)


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


@dataclass(frozen=True)
class _Chart:
    """One chart of a batch: the bucket number each row falls in (null: not counted), the value averaged per
    bucket (None: none), and how the counted buckets, in bucket order, are drawn."""

    bucket: Column | None  # None: nothing to count (a histogram of a column with no known values)
    value: Column | None
    draw: Callable[[list[dict[str, Any]]], None]


class ChartBatch:
    """Charts of one model, counted in Spark in a single aggregation, then drawn in the order they were added.

    Each chart maps every row to a bucket (and optionally a value to average per bucket); the buckets of all the
    charts are counted by one group-by over the model, so a notebook's charts cost one scan, not one per chart.
    Adding a chart returns the batch, so one chart reads `ChartBatch(df).monthly(...).draw()`.
    Histograms need each column's minimum, maximum and null count: pass the model's profile (`Stage.profile`)
    and they are reused; otherwise one more aggregation computes them, for the histogram columns only.
    """

    # a guard against charting something that is not a handful of buckets
    MAX_BUCKETS = 2000

    def __init__(self, model_df: DataFrame, profile: dict[str, dict[str, Any]] | None = None) -> None:
        self.model_df = model_df
        self.profile = dict(profile or {})
        # a histogram waits as (column, bins) until draw(), when its column's bounds are known
        self._pending: list[_Chart | tuple[str, int]] = []

    def histogram(self, column: str, bins: int = 20) -> ChartBatch:
        """Distribution of a numeric column in equal-width bins; empty values counted apart (in the title)."""
        self._pending.append((column, bins))
        return self

    def rate_by_bucket(self, column: str, edges: Sequence[int], flag_column: str) -> ChartBatch:
        """Invoices and the mean of a 0/1 flag per bucket of `column` ([edge_i, edge_i+1) buckets)."""
        bucket = F.lit(0)
        for edge in edges[1:]:
            bucket = bucket + F.when(F.col(column) >= edge, 1).otherwise(0)
        labels = [f"{a}-{b - 1}" for a, b in pairwise(edges)] + [f"{edges[-1]}+"]

        def draw(counted: list[dict[str, Any]]) -> None:
            bar_chart(
                [labels[row["bucket"]] for row in counted],
                [row["rows"] for row in counted],
                f"invoices and mean {flag_column} by {column}",
                column,
                "invoices",
                secondary=[row["mean"] for row in counted],
                secondary_label=f"mean {flag_column}",
            )

        self._pending.append(_Chart(F.when(F.col(column).isNotNull(), bucket), F.col(flag_column), draw))
        return self

    def monthly(self, date_column: str, title: str, flag_column: str | None = None) -> ChartBatch:
        """Rows per calendar month of `date_column`, with the mean of `flag_column` as a line when given."""

        def draw(counted: list[dict[str, Any]]) -> None:
            bar_chart(
                [f"{row['bucket'] // 12:04d}-{row['bucket'] % 12 + 1:02d}" for row in counted],
                [row["rows"] for row in counted],
                title,
                "month",
                "rows",
                secondary=[row["mean"] for row in counted] if flag_column else None,
                secondary_label=f"mean {flag_column}" if flag_column else "",
            )

        value = F.col(flag_column) if flag_column else None
        # a month as one number (year * 12 + month - 1), so every chart's buckets group and sort alike
        month_number = F.year(F.col(date_column)) * 12 + F.month(F.col(date_column)) - 1
        self._pending.append(_Chart(month_number, value, draw))
        return self

    def draw(self) -> None:
        """Count the buckets of every chart added since the last draw in one aggregation, and draw them."""
        histogram_columns = [entry[0] for entry in self._pending if isinstance(entry, tuple)]
        missing = [column for column in dict.fromkeys(histogram_columns) if column not in self.profile]
        if missing:
            self.profile.update(by_column(quality.column_profile(self.model_df.select(*missing))))
        charts = [self._histogram(*entry) if isinstance(entry, tuple) else entry for entry in self._pending]
        self._pending = []
        counted = self._count(charts)
        for index, chart in enumerate(charts):
            rows = sorted(counted.get(index, []), key=lambda row: row["bucket"])
            chart.draw(rows)

    def _count(self, charts: list[_Chart]) -> dict[int, list[dict[str, Any]]]:
        """Rows and mean value per (chart, bucket), from one group-by over the model."""
        entries = [
            F.struct(
                F.lit(index).alias("chart"),
                chart.bucket.cast("bigint").alias("bucket"),
                (F.lit(None) if chart.value is None else chart.value).cast("double").alias("value"),
            )
            for index, chart in enumerate(charts)
            if chart.bucket is not None
        ]
        if not entries:
            return {}
        counted_df = (
            self.model_df.select(F.explode(F.array(*entries)).alias("entry"))
            .select("entry.*")
            .where(F.col("bucket").isNotNull())
            .groupBy("chart", "bucket")
            .agg(F.count(F.lit(1)).alias("rows"), F.avg("value").alias("mean"))
        )
        counted_rows = rows_as_dicts(counted_df, limit=self.MAX_BUCKETS + 1)
        if len(counted_rows) > self.MAX_BUCKETS:  # a chart would be cut short: refuse rather than mislead
            raise ValueError(f"the charts have more than {self.MAX_BUCKETS} buckets in all; chart fewer at once")
        by_chart: dict[int, list[dict[str, Any]]] = {}
        for row in counted_rows:
            by_chart.setdefault(row["chart"], []).append(row)
        return by_chart

    def _histogram(self, column: str, bins: int) -> _Chart:
        bounds = self.profile[column]
        if bounds["min"] is None:
            return _Chart(None, None, lambda counted: chart_counts({}, f"{column}: no known values", column))
        low, high = float(bounds["min"]), float(bounds["max"])
        width = (high - low) / bins or 1.0
        bin_number = F.floor((F.col(column).cast("double") - F.lit(low)) / F.lit(width))
        bucket = F.when(F.col(column).isNotNull(), F.least(bin_number, F.lit(bins - 1)))  # least() skips nulls

        def draw(counted: list[dict[str, Any]]) -> None:
            labels = [f"{low + row['bucket'] * width:,.0f}" for row in counted]
            title = f"{column}: distribution ({bounds['null']:,} unknown)"
            bar_chart(labels, [row["rows"] for row in counted], title, f"{column} (bin start)", "invoices")

        return _Chart(bucket, None, draw)


def by_column(profile: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A profile's rows keyed by column name."""
    return {row["column"]: row for row in profile}
