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
    labels = [str(row["run_id"])[:15] for row in oldest_first]
    notebook_display.bar_chart(
        labels,
        [row["rows_out"] or 0 for row in oldest_first],
        "output rows per run (line: seconds)",
        "run",
        "output rows",
        [row["seconds"] for row in oldest_first],
        "seconds",
    )
    notebook_display.bar_chart(
        labels,
        [row["rows_in"] or 0 for row in oldest_first],
        "rows read per run (line: rejected rows)",
        "run",
        "rows read",
        [row["rejects"] for row in oldest_first],
        "rejected rows",
    )
    late = [_late_rate(record) for record in reversed(records)]
    notebook_display.bar_chart(
        labels,
        [len([c for c in (r.get("checks") or []) if c.get("status") == "failed"]) for r in reversed(records)],
        "failed checks per run (line: late rate of the run's rows with a known outcome)",
        "run",
        "failed checks",
        late,
        "late rate",
    )


def _late_rate(record: Mapping[str, Any]) -> float | None:
    late = ((record.get("metrics") or {}).get("run_rows") or {}).get("is_late")
    return None if not late else late.get("mean")
