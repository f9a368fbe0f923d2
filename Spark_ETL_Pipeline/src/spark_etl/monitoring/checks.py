"""The run's checks: read from a YAML file (`default_checks.yml`, or `--checks FILE`), each with a name, a level
(`warn` or `error`) and its thresholds, and judged on the run's metrics against the history's good runs before
the version is committed. An `error` stops the run with exit status 4; a `warn` publishes and says so."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from spark_etl import failures
from spark_etl.monitoring import drift
from spark_etl.monitoring.feature_metrics import FEATURES, FeatureMetrics, merge_all

DEFAULT_CHECKS = "default_checks.yml"
DEFAULT_KEEP_RUNS = 400  # history records kept when the checks file does not say
LEVELS = ("warn", "error")
Status = Literal["passed", "failed", "skipped"]


class ChecksFileError(failures.BadInputError):
    """The checks file cannot be read or names something unknown: exit status 2, before Spark starts."""


class ChecksFailedError(failures.RunError):
    """A check at `error` level failed: exit status 4; the version is not committed, nothing is published."""

    exit_status = failures.EXIT_CHECKS_FAILED


# each kind of check: the settings it requires, with what each must be
KINDS: dict[str, dict[str, type]] = {
    "non_negative": {"features": list},
    "minimum": {"feature": str, "minimum": float},
    "output_rows_drop": {"max_drop_fraction": float},
    "empty_source": {},
    "reject_rate": {"max_rate": float, "min_rejected": int, "floor": float, "standard_errors": float},
    "delta_volume": {"min_fraction_of_median": float, "min_median_rows": int},
    "psi": {"population": str, "against": str, "features": list, "bins": int, "floor": float, "probability": float},
    "null_rate": {"population": str, "against": str, "features": list, "floor": float, "standard_errors": float},
    "late_rate": {"population": str, "against": str, "floor": float, "standard_errors": float},
    "cleared_payments": {"max_invoices": int},
}
POPULATIONS = ("run_rows", "table")  # the rows the run added or changed; the whole feature table
BASELINES = ("previous_run", "window")


@dataclass(frozen=True)
class Check:
    name: str
    kind: str
    level: str
    settings: dict[str, Any]
    min_rows: int = 30  # drift: fewer rows than this on either side are too few to judge


@dataclass(frozen=True)
class ChecksConfig:
    checks: list[Check]
    window_runs: int  # the good runs of the same mode whose rows make the drift window
    keep_runs: int  # history records kept
    source: str


@dataclass(frozen=True)
class ClearedPayments:
    """The invoices a run holds unpaid that the version it builds on holds paid (cleared_payments.sql)."""

    invoices: int
    example_inv_ids: list[int]  # the lowest few, for a reviewer to look up

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Observation:
    """What the checks judge of one run, and what its history record keeps of it."""

    mode: str
    tables: dict[str, dict[str, int]]  # per table: read, kept, collapsed, rejected
    output_rows: int
    table_metrics: dict[str, FeatureMetrics]
    run_rows_metrics: dict[str, FeatureMetrics]
    cleared_payments: ClearedPayments | None = None  # None: a full run, compared with no version

    def population(self, name: str) -> dict[str, FeatureMetrics]:
        return self.run_rows_metrics if name == "run_rows" else self.table_metrics


@dataclass
class Outcome:
    name: str
    level: str
    status: Status
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        return self.status == "failed" and self.level == "error"

    @property
    def is_warning(self) -> bool:
        return self.status == "failed" and self.level == "warn"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def default_path() -> str:
    return str(resources.files("spark_etl.monitoring").joinpath(DEFAULT_CHECKS))


def load(path: str | None) -> ChecksConfig:
    """The checks file, validated: a one-line error naming the file, the check and the setting otherwise."""
    source = path or default_path()
    try:
        document = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    except OSError as error:
        raise ChecksFileError(f"--checks {source}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ChecksFileError(f"--checks {source}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict) or not isinstance(document.get("checks"), list):
        raise ChecksFileError(f"--checks {source}: expected a mapping with a 'checks' list")
    checks = [_check(source, index, entry) for index, entry in enumerate(document["checks"], start=1)]
    names = [check.name for check in checks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ChecksFileError(f"--checks {source}: check {duplicates[0]!r} is named twice")
    baseline = document.get("baseline") or {}
    history = document.get("history") or {}
    window_runs = _number(source, "baseline", "window_runs", baseline.get("window_runs", 7), int)
    keep_runs = _number(source, "history", "keep_runs", history.get("keep_runs", DEFAULT_KEEP_RUNS), int)
    return ChecksConfig(checks, max(1, window_runs), max(1, keep_runs), source)


def _number(source: str, where: str, key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise ChecksFileError(f"--checks {source}: {where}: {key} must be a number, not {value!r}")
    return kind(value)


def _check(source: str, index: int, entry: Any) -> Check:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ChecksFileError(f"--checks {source}: check {index} has no name")
    name = entry["name"]
    kind, level = entry.get("type"), entry.get("level")
    if kind not in KINDS:
        raise ChecksFileError(f"--checks {source}: check {name!r}: unknown type {kind!r} ({', '.join(KINDS)})")
    if level not in LEVELS:
        raise ChecksFileError(f"--checks {source}: check {name!r}: level must be warn or error, not {level!r}")
    settings: dict[str, Any] = {}
    for key, expected in KINDS[kind].items():
        if key not in entry:
            raise ChecksFileError(f"--checks {source}: check {name!r}: {key} is missing")
        value = entry[key]
        if expected is list:
            if not isinstance(value, list) or not all(feature in FEATURES for feature in value):
                raise ChecksFileError(f"--checks {source}: check {name!r}: {key} must list features of {FEATURES}")
        elif expected is str:
            allowed = {"population": POPULATIONS, "against": BASELINES, "feature": FEATURES}[key]
            if value not in allowed:
                raise ChecksFileError(f"--checks {source}: check {name!r}: {key} must be one of {allowed}")
        else:
            value = _number(source, f"check {name!r}", key, value, expected)
        settings[key] = value
    if settings.get("population") == "table" and settings.get("against") == "window":
        raise ChecksFileError(f"--checks {source}: check {name!r}: the whole table is compared with the previous run")
    min_rows = _number(source, f"check {name!r}", "min_rows", entry.get("min_rows", 30), int)
    return Check(name, kind, level, settings, min_rows)


@dataclass(frozen=True)
class Baseline:
    """The good runs the checks compare with: the previous one (any mode) and the window of the same mode."""

    previous: Observation | None
    window: list[Observation]  # newest first, of the run's own mode
    previous_same_mode: Observation | None


def evaluate(config: ChecksConfig, run: Observation, baseline: Baseline) -> list[Outcome]:
    return [_evaluate(check, run, baseline) for check in config.checks]


def _evaluate(check: Check, run: Observation, baseline: Baseline) -> Outcome:
    settings = check.settings
    if check.kind == "non_negative":
        negative = {
            feature: run.table_metrics[feature].bin_counts.get(-1, 0)
            for feature in settings["features"]
            if run.table_metrics[feature].bin_counts.get(-1, 0)
        }
        if negative:
            listed = ", ".join(f"{feature}: {count:,} rows" for feature, count in negative.items())
            return _failed(check, f"negative values ({listed})", {"negative_rows": negative})
        return _passed(check, f"no negative value in {', '.join(settings['features'])}")
    if check.kind == "minimum":
        metrics = run.table_metrics[settings["feature"]]
        low = None if metrics.min_value is None else float(metrics.min_value)
        if low is not None and low < settings["minimum"]:
            text = f"{settings['feature']} has {low:g}, below {settings['minimum']:g}"
            return _failed(check, text, {"min": low, "minimum": settings["minimum"]})
        return _passed(check, f"{settings['feature']} is at least {settings['minimum']:g}", {"min": low})
    if check.kind == "output_rows_drop":
        if baseline.previous is None:
            return _skipped(check, "no earlier good run to compare with")
        before, now = baseline.previous.output_rows, run.output_rows
        drop = 0.0 if before == 0 else (before - now) / before
        numbers = {"output_rows": now, "previous_output_rows": before, "drop": round(drop, 6)}
        if drop > settings["max_drop_fraction"]:
            limit = settings["max_drop_fraction"]
            text = f"output rows fell from {before:,} to {now:,} ({drop:.1%}, more than {limit:.1%})"
            return _failed(check, text, numbers)
        return _passed(check, f"output rows {now:,} (previous good run {before:,})", numbers)
    if check.kind == "empty_source":
        previous = baseline.previous_same_mode
        if run.mode != "full":
            return _skipped(check, "an incremental run's delta may leave a table without rows")
        if previous is None:
            return _skipped(check, "no earlier good full run: the first run sets what a table holds")
        empty = sorted(
            table
            for table, counts in run.tables.items()
            if counts["read"] == 0 and previous.tables.get(table, {}).get("read", 0) > 0
        )
        if empty:
            return _failed(check, f"no rows read from {', '.join(empty)}, which had rows last time", {"empty": empty})
        return _passed(check, "every source table that had rows has rows")
    if check.kind == "reject_rate":
        return _reject_rate(check, run, baseline)
    if check.kind == "delta_volume":
        return _delta_volume(check, run, baseline)
    if check.kind == "cleared_payments":
        return _cleared_payments(check, run)
    return _drift(check, run, baseline)


def _reject_rate(check: Check, run: Observation, baseline: Baseline) -> Outcome:
    """A burst of bad rows: a table's reject rate above `max_rate` and risen, beyond chance, from the good runs'
    (the window of the run's mode, else the previous good run): a source always that messy does not fail every
    day, and a first run, with nothing to compare with and no version to protect, is not judged."""
    settings = check.settings
    earlier = baseline.window or ([baseline.previous] if baseline.previous is not None else [])
    if not earlier:
        return _skipped(check, "no earlier good run: the first run sets the usual reject rate")
    rates = {table: counts["rejected"] / counts["read"] for table, counts in run.tables.items() if counts["read"]}
    over: dict[str, float] = {}
    for table, rate in rates.items():
        rejected, read = run.tables[table]["rejected"], run.tables[table]["read"]
        before_rejected = sum(e.tables.get(table, {}).get("rejected", 0) for e in earlier)
        before_read = sum(e.tables.get(table, {}).get("read", 0) for e in earlier)
        if rate <= settings["max_rate"] or rejected < settings["min_rejected"]:
            continue
        if before_read and rate <= before_rejected / before_read:
            continue
        if (
            before_read
            and not drift.rate_comparison(
                rejected, read, before_rejected, before_read, settings["floor"], settings["standard_errors"]
            ).is_flagged
        ):
            continue
        over[table] = rate
    numbers = {"reject_rates": {table: round(rate, 6) for table, rate in rates.items()}, "baseline_runs": len(earlier)}
    if over:
        listed = ", ".join(
            f"{table} {run.tables[table]['rejected']:,} of {run.tables[table]['read']:,} ({rate:.1%})"
            for table, rate in over.items()
        )
        return _failed(check, f"rejected rows above {settings['max_rate']:.1%} and the usual rate: {listed}", numbers)
    return _passed(check, f"no table's reject rate above {settings['max_rate']:.1%} and the usual rate", numbers)


def _delta_volume(check: Check, run: Observation, baseline: Baseline) -> Outcome:
    settings = check.settings
    if run.mode != "incremental":
        return _skipped(check, "a full run has no delta")
    sizes = sorted(earlier.tables.get("invoices", {}).get("read", 0) for earlier in baseline.window)
    if not sizes:
        return _skipped(check, "no earlier good incremental run to compare with")
    median = sizes[len(sizes) // 2] if len(sizes) % 2 else (sizes[len(sizes) // 2 - 1] + sizes[len(sizes) // 2]) / 2
    now = run.tables.get("invoices", {}).get("read", 0)
    numbers = {"delta_invoices": now, "window_median": median, "window_runs": len(sizes)}
    if median < settings["min_median_rows"]:
        return _skipped(check, f"the window's deltas are too small to judge (median {median:g} invoices)", numbers)
    if now < settings["min_fraction_of_median"] * median:
        text = (
            f"the delta holds {now:,} invoices, under {settings['min_fraction_of_median']:.0%} of the median {median:g}"
        )
        return _failed(check, text, numbers)
    return _passed(check, f"the delta holds {now:,} invoices (window median {median:g})", numbers)


def _cleared_payments(check: Check, run: Observation) -> Outcome:
    """Paid invoices turned unpaid. Judged on a count, not a rate: a payment does not un-happen, so on a normal
    day there are none whatever the day's size, and one cleared on an invoice paid late moves no feature."""
    cleared = run.cleared_payments
    if cleared is None:
        return _skipped(check, "a full run is compared with no earlier version")
    limit = check.settings["max_invoices"]
    numbers = {"cleared_payments": cleared.invoices, "max_invoices": limit, "example_inv_ids": cleared.example_inv_ids}
    if cleared.invoices > limit:
        examples = ", ".join(str(inv_id) for inv_id in cleared.example_inv_ids)
        more = ", ..." if cleared.invoices > len(cleared.example_inv_ids) else ""
        text = (
            f"{cleared.invoices:,} paid invoices have no payment date now (at most {limit:,} allowed): "
            f"inv_id {examples}{more}"
        )
        return _failed(check, text, numbers)
    return _passed(check, f"{cleared.invoices:,} paid invoices lost their payment date (at most {limit:,})", numbers)


def _drift(check: Check, run: Observation, baseline: Baseline) -> Outcome:
    settings = check.settings
    population = settings["population"]
    if population == "run_rows":
        compared = [baseline.previous_same_mode] if settings["against"] == "previous_run" else baseline.window
    else:
        compared = [baseline.previous]
    earlier_runs = [earlier for earlier in compared if earlier is not None]
    if not earlier_runs:
        return _skipped(check, f"no earlier good run to compare with ({settings['against']})")
    reference = merge_all(earlier.population(population) for earlier in earlier_runs)
    current = run.population(population)
    features = settings.get("features", ["is_late"])
    flagged: dict[str, dict[str, Any]] = {}
    judged: dict[str, dict[str, Any]] = {}
    for feature in features:
        spread = [_rate(check, earlier.population(population)[feature]) for earlier in earlier_runs]
        window_rates = [rate for rate in spread if rate is not None]
        comparison = _compare(check, current[feature], reference[feature], window_rates)
        if comparison is None:
            continue
        numbers = {
            "value": round(comparison.value, 6),
            "threshold": round(comparison.threshold, 6),
            "rows": comparison.current_rows,
            "baseline_rows": comparison.baseline_rows,
        }
        judged[feature] = numbers
        if comparison.is_flagged:
            flagged[feature] = numbers
    what = {"psi": "PSI", "null_rate": "null rate rise", "late_rate": "late rate change"}[check.kind]
    against = f"{population} against the {settings['against'].replace('_', ' ')}"
    if not judged:
        return _skipped(check, f"too few rows to judge ({against}; at least {check.min_rows})")
    if flagged:
        listed = ", ".join(
            f"{feature} {numbers['value']:.3f} > {numbers['threshold']:.3f}" for feature, numbers in flagged.items()
        )
        return _failed(check, f"{what} ({against}): {listed}", {"features": judged, "flagged": sorted(flagged)})
    return _passed(check, f"{what} within thresholds ({against})", {"features": judged})


def _rate(check: Check, metrics: FeatureMetrics) -> float | None:
    """One run's rate a rate check judges (None: not a rate check, or too few rows to count it)."""
    if check.kind == "null_rate" and metrics.row_count >= check.min_rows:
        return metrics.null_count / metrics.row_count
    if check.kind == "late_rate" and metrics.value_count >= check.min_rows:
        return float(metrics.value_sum) / metrics.value_count
    return None


def _compare(
    check: Check, current: FeatureMetrics, reference: FeatureMetrics, window_rates: Sequence[float]
) -> drift.Comparison | None:
    settings = check.settings
    if check.kind == "psi":
        if current.value_count < check.min_rows or reference.value_count < check.min_rows:
            return None
        return drift.psi_comparison(
            current.bin_counts, reference.bin_counts, settings["bins"], settings["floor"], settings["probability"]
        )
    if check.kind == "null_rate":
        if current.row_count < check.min_rows or reference.row_count < check.min_rows:
            return None
        return drift.rate_comparison(
            current.null_count,
            current.row_count,
            reference.null_count,
            reference.row_count,
            settings["floor"],
            settings["standard_errors"],
            window_rates,
            rising_only=True,  # fewer unknowns than usual is no fault
        )
    # late_rate: over the invoices whose outcome is known (is_late's values: 1 late, 0 on time)
    if current.value_count < check.min_rows or reference.value_count < check.min_rows:
        return None
    return drift.rate_comparison(
        int(current.value_sum),
        current.value_count,
        int(reference.value_sum),
        reference.value_count,
        settings["floor"],
        settings["standard_errors"],
        window_rates,
    )


def _passed(check: Check, message: str, numbers: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(check.name, check.level, "passed", message, dict(numbers or {}))


def _failed(check: Check, message: str, numbers: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(check.name, check.level, "failed", message, dict(numbers or {}))


def _skipped(check: Check, message: str, numbers: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(check.name, check.level, "skipped", message, dict(numbers or {}))


def failed_at(level: str, outcomes: Sequence[Outcome | Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The checks that failed at `level`, as their documents (`Outcome.as_json`, as run_summary.json and the
    history keep them)."""
    documents = [outcome.as_json() if isinstance(outcome, Outcome) else outcome for outcome in outcomes]
    return [outcome for outcome in documents if outcome["status"] == "failed" and outcome["level"] == level]


def stop_on_errors(outcomes: Sequence[Outcome | Mapping[str, Any]]) -> None:
    """Raise ChecksFailedError naming every check that failed at error level, with its numbers, in one line."""
    failed = failed_at("error", outcomes)
    if failed:
        listed = "; ".join(f"{outcome['name']}: {outcome['message']}" for outcome in failed)
        raise ChecksFailedError(f"{len(failed)} check(s) failed at error level: {listed}")
