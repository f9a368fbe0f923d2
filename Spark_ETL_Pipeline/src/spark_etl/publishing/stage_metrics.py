"""A stage's metrics: its notebook publishes them as a display output of their own MIME type, and the entry script
reads them back from the executed copy. Writer and reader live together, so the format is stated once."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict, cast

METRICS_MIME_TYPE = "application/vnd.spark-etl.stage-metrics+json"


class ModelMetrics(TypedDict):
    """One model a stage built: run_summary.json's `stages[].models[]`."""

    model: str
    rows: int | None  # None: not counted
    seconds: float
    path: str | None  # where it was stored; None: not stored


class StageRecord(TypedDict):
    """What every stage publishes (`models.Stage.metrics`)."""

    stage: str
    seconds: float
    models: list[ModelMetrics]


class StagingMetrics(StageRecord):
    tables: dict[str, dict[str, int]]  # per table: read, kept, collapsed, rejected
    rejects: dict[str, int]  # per "table/reason"
    version: str
    invoice_months: list[str] | None  # the months an incremental run rewrote; None: every month (a full run)
    line_months: list[str] | None
    source_changes: dict[str, dict[str, int]] | None  # from PostgreSQL, incremental: per table, groups per change


class IntermediateMetrics(StageRecord):
    as_of: str | None
    latest_data_date: str | None
    is_as_of_after_data: bool
    invoices_with_unknown_sku: int
    total_months: list[str] | None
    daily_months: list[str] | None
    accounts_recomputed: int


class MartsMetrics(StageRecord):
    output_rows: int | None  # the rows of the CSV written; None when the run leaves it out (--no-csv)
    feature_months: list[str] | None
    rejects_exported: int
    loaded_rows: int | None  # into the serving table; None without --load-jdbc-table
    invoices_with_unknown_account: int
    spark_version: str
    version: str


class MonitoringMetrics(StageRecord):
    mode: str
    tables: dict[str, dict[str, int]]  # as staging's: what the checks judged
    output_rows: int
    metrics: dict[str, dict[str, Any]]  # "table" and "run_rows": per feature (feature_metrics.FeatureMetrics.as_json)
    cleared_payments: dict[str, Any] | None  # checks.ClearedPayments.as_json; None in a full run
    checks: list[dict[str, Any]]  # per check: name, level, status, message, numbers (checks.Outcome)
    checks_file: str
    keep_runs: int  # history records kept (the checks file's history.keep_runs)
    window_runs: int  # the good runs of the same mode the drift checks compared with (baseline.window_runs)


StageMetrics = StagingMetrics | IntermediateMetrics | MartsMetrics | MonitoringMetrics


def publish(metrics: StageMetrics) -> None:
    """Leave the stage's metrics in the executed notebook (and readable as JSON in its report)."""
    from IPython.display import display

    display({METRICS_MIME_TYPE: metrics, "text/plain": json.dumps(metrics, indent=1)}, raw=True)


def of_stages(
    published: Sequence[Mapping[str, Any]],
) -> tuple[StagingMetrics, IntermediateMetrics, MartsMetrics, MonitoringMetrics]:
    """The four stages' metrics as their notebooks published them (`publish`), in stage order, typed."""
    staging, intermediate, marts, monitoring = published
    return (
        cast(StagingMetrics, staging),
        cast(IntermediateMetrics, intermediate),
        cast(MartsMetrics, marts),
        cast(MonitoringMetrics, monitoring),
    )


def read(executed_path: Path) -> dict[str, Any] | None:
    """The metrics a notebook published, or None when it published none."""
    import nbformat  # here, not above: the stages' kernel imports this module to publish, and nbformat's schema
    # validator takes 0.7 s to import; only the entry script, which has it loaded already, reads

    notebook = nbformat.read(executed_path, as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if METRICS_MIME_TYPE in data:
                return dict(data[METRICS_MIME_TYPE])
    return None
