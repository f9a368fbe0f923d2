"""The run history: one JSON record per run in `<warehouse>/_history/`, beside the versions and outside them, so a
rollback erases none. Written once per run (never appended to a shared file), bounded by `keep_runs`; a rolled-back
run's record is marked superseded. Failed and superseded runs never serve as a baseline."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from spark_etl.monitoring import feature_metrics
from spark_etl.monitoring.checks import Baseline, ClearedPayments, Observation, Outcome
from spark_etl.storage import filesystem
from spark_etl.storage.versions import VersionError
from spark_etl.storage.warehouse import Warehouse

HISTORY_DIR = "_history"
SUCCEEDED = "succeeded"
FAILED = "failed"


class RunHistory:
    """The records of one warehouse, read and written through its `filesystem.Files`."""

    def __init__(self, warehouse_root: str, files: filesystem.Files) -> None:
        self.folder = f"{warehouse_root.rstrip('/')}/{HISTORY_DIR}"
        self.files = files

    def run_ids(self) -> list[str]:
        """Every recorded run, oldest first (run ids sort by start time)."""
        names = self.files.list_names(self.folder)
        return sorted(
            name.removesuffix(".json")
            for name in names
            if name.endswith(".json") and filesystem.TEMPORARY_MARK not in name
        )

    def read(self, run_id: str) -> dict[str, Any] | None:
        return filesystem.read_json(self.files, f"{self.folder}/{run_id}.json")

    def write(self, record: dict[str, Any], keep_runs: int) -> None:
        """Keep the run's record, then delete the oldest records past `keep_runs`."""
        filesystem.write_json(self.files, f"{self.folder}/{record['run_id']}.json", record)
        for run_id in self.run_ids()[:-keep_runs]:
            self.files.delete(f"{self.folder}/{run_id}.json")

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` records, newest first."""
        return list(itertools.islice(self._newest_first(), limit))

    def _newest_first(self, before: str | None = None) -> Iterator[dict[str, Any]]:
        """The records newest first; with `before` a run id, only those of runs older than it (none newer is read)."""
        for run_id in reversed(self.run_ids()):
            if before is not None and run_id >= before:
                continue
            record = self.read(run_id)
            if record is not None:
                yield record

    def mark_superseded(self, version: str, by: str) -> bool:
        """A rolled-back version's run: superseded (never a baseline again); False when no record names it."""
        for record in self._newest_first():
            if record.get("version") == version and record.get("status") == SUCCEEDED:
                record["superseded_by"] = by
                filesystem.write_json(self.files, f"{self.folder}/{record['run_id']}.json", record)
                return True
        return False

    def baseline(self, mode: str, window_runs: int, scan_limit: int = 400, before: str | None = None) -> Baseline:
        """The previous good run (any mode) and the last `window_runs` good runs of `mode`, reading records newest
        first only as far as needed; `before` a run id: as that run was judged, from the runs older than it."""
        previous: Observation | None = None
        window: list[Observation] = []
        for scanned, record in enumerate(self._newest_first(before)):
            if scanned >= scan_limit or (previous is not None and len(window) >= window_runs):
                break
            if not is_baseline(record):
                continue
            observation = observation_of(record)
            previous = previous or observation
            if observation.mode == mode and len(window) < window_runs:
                window.append(observation)
        return Baseline(previous, window, window[0] if window else None)

    def recorded_run(self, version: str, window_runs: int) -> RecordedRun | None:
        """The run that published `version`, as it was judged: its metrics, its baseline then (the window its own
        checks file set; `window_runs` for a record that does not say) and each check's outcome; None when no
        succeeded run with metrics is recorded for it (a version built by hand)."""
        for record in self._newest_first():
            if record.get("version") == version and record.get("status") == SUCCEEDED and "metrics" in record:
                observation = observation_of(record)
                window = int(record.get("window_runs") or window_runs)
                baseline = self.baseline(observation.mode, window, before=str(record["run_id"]))
                outcomes = [Outcome(**outcome) for outcome in record.get("checks") or []]
                return RecordedRun(record, observation, baseline, outcomes)
        return None


@dataclass(frozen=True)
class RecordedRun:
    """A recorded run as the monitoring notebook shows it when opened alone, to review a published version."""

    record: dict[str, Any]
    observation: Observation
    baseline: Baseline
    outcomes: list[Outcome]


def reviewed_version(runs: RunHistory, warehouse: Warehouse, window_runs: int) -> RecordedRun | None:
    """The monitoring notebook opened alone, with no version being built: the current version as its run recorded
    it. None while 01_staging run by hand has begun a version (the notebook judges that one) or before any
    commit (where the notebook asks for 01_staging); a current version without a record is a one-line error."""
    pointer = warehouse.pointer()
    if warehouse.building() is not None or pointer is None:
        return None
    reviewed = runs.recorded_run(pointer.version, window_runs)
    if reviewed is None:
        raise VersionError(
            f"the current version {pointer.version} of {warehouse.root} has no run record in {HISTORY_DIR}/ to "
            "review (built by hand, or its record was not kept): run 01_staging to build and judge a new version"
        )
    return reviewed


def is_baseline(record: dict[str, Any]) -> bool:
    """A run that succeeded and was not rolled back."""
    return record.get("status") == SUCCEEDED and not record.get("superseded_by") and "metrics" in record


def observation_of(record: dict[str, Any]) -> Observation:
    metrics = record["metrics"]
    return Observation(
        mode=str(record["mode"]),
        tables={table: dict(counts) for table, counts in record["tables"].items()},
        output_rows=int(record["output_rows"]),
        table_metrics=feature_metrics.from_json(metrics["table"]),
        run_rows_metrics=feature_metrics.from_json(metrics["run_rows"]),
        cleared_payments=None if not record.get("cleared_payments") else ClearedPayments(**record["cleared_payments"]),
    )


def run_record(
    run_id: str,
    status: str,
    started_at: str,
    seconds: float,
    summary: dict[str, Any] | None = None,
    monitoring: dict[str, Any] | None = None,
    error: str | None = None,
    override_reason: str | None = None,
) -> dict[str, Any]:
    """A run's record: what it was, how it ended, its metrics and each check's outcome (the monitoring stage's
    published metrics, when the run got that far)."""
    record: dict[str, Any] = {
        "run_id": run_id,
        "status": status,
        "started_at": started_at,
        "seconds": round(seconds, 3),
        "version": run_id,
        "mode": None if monitoring is None else monitoring["mode"],
        "as_of": None if summary is None else summary.get("as_of"),
        "rejects": None if summary is None else summary.get("rejects"),  # per table/reason
        "error": error,
        "override_reason": override_reason,
    }
    if monitoring is not None:
        record.update(
            tables=monitoring["tables"],
            output_rows=monitoring["output_rows"],
            metrics=monitoring["metrics"],
            cleared_payments=monitoring.get("cleared_payments"),
            checks=monitoring["checks"],
            checks_file=monitoring["checks_file"],
            window_runs=monitoring.get("window_runs"),
        )
    return record


def write_in_kernel(root: str, record: dict[str, Any], keep_runs: int, master: str, spark_conf: dict[str, str]) -> None:
    """The entry script's write of a record to a warehouse it cannot reach without Spark, in the run's kernel."""
    from pyspark.sql import SparkSession

    from spark_etl.runtime.session import spark_session

    spark = SparkSession.getActiveSession() or spark_session("history", master, spark_conf)
    RunHistory(root, filesystem.HadoopFiles(spark)).write(record, keep_runs)


def of_warehouse(root: str, files: filesystem.Files) -> RunHistory:
    """The history of a warehouse: read with plain calls when it is on this machine (reading 90 small files
    through Hadoop's API costs a second), else through `files`."""
    return RunHistory(root, filesystem.LocalFiles() if filesystem.is_local(root) else files)
