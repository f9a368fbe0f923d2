"""What the monitoring notebook shows: the run's checks under a banner, each feature's distribution against its
baseline, and the run history as a table and charts. Everything shown is already a metric on the driver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from spark_etl.monitoring import drift
from spark_etl.monitoring.checks import Outcome
from spark_etl.monitoring.feature_metrics import FeatureMetrics, bin_lower_edge
from spark_etl.publishing import notebook_display
from spark_etl.publishing.checks_banner import banner_html


def show_checks(outcomes: Sequence[Outcome]) -> None:
    from IPython.display import HTML

    notebook_display._display(HTML(banner_html([outcome.as_json() for outcome in outcomes])))
    rows = [
        {"check": outcome.name, "level": outcome.level, "status": outcome.status, "result": outcome.message}
        for outcome in outcomes
    ]
    notebook_display.show_table(rows, "checks, in the order the checks file lists them")


def metrics_rows(metrics: Mapping[str, FeatureMetrics]) -> list[dict[str, Any]]:
    """Per feature: rows, nulls, minimum, maximum, mean, standard deviation and estimated quartiles."""
    rows = []
    for feature, values in metrics.items():
        rows.append(
            {
                "feature": feature,
                "rows": values.row_count,
                "nulls": values.null_count,
                "min": values.min_value,
                "max": values.max_value,
                "mean": _rounded(values.mean),
                "std": _rounded(values.standard_deviation),
                "p25": _rounded(values.quantile(0.25)),
                "median": _rounded(values.quantile(0.5)),
                "p75": _rounded(values.quantile(0.75)),
            }
        )
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def show_distribution(feature: str, current: FeatureMetrics, baseline: FeatureMetrics, what: str) -> None:
    """The feature's shares in ten bins frozen from the baseline (bars: this run; line: the baseline)."""
    starts = drift.frozen_bins(baseline.bin_counts, 10)
    now, before = drift.coarse_counts(current.bin_counts, starts), drift.coarse_counts(baseline.bin_counts, starts)
    now_total, before_total = max(sum(now), 1), max(sum(before), 1)
    labels = [f"≥{bin_lower_edge(start):,.4g}" if start >= 0 else "<0" for start in starts]
    notebook_display.bar_chart(
        labels,
        [count / now_total for count in now],
        f"{feature}: share of this run's rows per bin ({what}: line)",
        f"{feature}, bins frozen from the baseline",
        "share of this run",
        [count / before_total for count in before],
        "share of the baseline",
    )


def history_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per run, newest first: what a reviewer scans for."""
    rows = []
    for record in records:
        checks = record.get("checks") or []
        failed = [check["name"] for check in checks if check.get("status") == "failed"]
        tables = record.get("tables") or {}
        rows.append(
            {
                "run_id": record.get("run_id"),
                "status": f"{record.get('status')}{' (superseded)' if record.get('superseded_by') else ''}",
                "mode": record.get("mode"),
                "as_of": record.get("as_of"),
                "rows_in": sum(counts.get("read", 0) for counts in tables.values()) if tables else None,
                "rows_out": record.get("output_rows"),
                "rejects": sum(counts.get("rejected", 0) for counts in tables.values()) if tables else None,
                "seconds": record.get("seconds"),
                "checks_failed": ", ".join(failed) or "-",
                "override": record.get("override_reason") or "",
            }
        )
    return rows


def show_history(records: Sequence[Mapping[str, Any]]) -> None:
    """The history table and charts of the main metrics over time, oldest run on the left."""
    rows = history_rows(records)
    notebook_display.show_table(rows, f"the last {len(rows)} runs, newest first")
    if not rows:
        return
    oldest_first = list(reversed(rows))
    for row, record in zip(oldest_first, reversed(records), strict=True):
        row["failed_checks"] = sum(check.get("status") == "failed" for check in record.get("checks") or [])
        row["late_rate"] = _late_rate(record)
    labels = [str(row["run_id"])[:15] for row in oldest_first]
    # (bars, their axis, the line, its axis)
    for bars, bars_label, line, line_label in (
        ("rows_out", "output rows", "seconds", "seconds"),
        ("rows_in", "rows read", "rejects", "rejected rows"),
        ("failed_checks", "failed checks", "late_rate", "late rate of the run's rows with a known outcome"),
    ):
        notebook_display.bar_chart(
            labels,
            [row[bars] or 0 for row in oldest_first],
            f"{bars_label} per run (line: {line_label})",
            "run",
            bars_label,
            [row[line] for row in oldest_first],
            line_label,
        )


def _late_rate(record: Mapping[str, Any]) -> float | None:
    late = ((record.get("metrics") or {}).get("run_rows") or {}).get("is_late")
    return None if not late else late.get("mean")
