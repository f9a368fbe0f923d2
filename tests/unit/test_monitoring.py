"""The monitoring's pure parts: metrics that merge exactly, the drift statistics and their thresholds, the checks
file, each check's verdict, and the history's choice of baseline (docs/design.md, "Watched runs")."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from spark_etl import failures
from spark_etl.monitoring import checks, drift, feature_metrics, history, observe
from spark_etl.monitoring.checks import Baseline, ClearedPayments, Observation
from spark_etl.monitoring.feature_metrics import FeatureMetrics
from spark_etl.storage import filesystem
from spark_etl.storage.versions import VersionError
from spark_etl.storage.warehouse import Warehouse


def metrics_of(feature: str, values: Sequence[float | None]) -> FeatureMetrics:
    """What mon_feature_month_metrics.sql computes, in Python: the rule written a second time, for the tests."""
    known = [Decimal(str(value)) for value in values if value is not None]
    bins: dict[int, int] = {}
    for value in known:
        number = -1 if value < 0 else min(math.floor(math.log2(1 + float(value)) * 4), feature_metrics.LAST_BIN)
        bins[number] = bins.get(number, 0) + 1
    return FeatureMetrics(
        feature,
        len(values),
        len(values) - len(known),
        sum(known, Decimal(0)),
        sum((value * value for value in known), Decimal(0)),
        min(known) if known else None,
        max(known) if known else None,
        dict(sorted(bins.items())),
    )


def test_months_merge_exactly_and_give_the_whole_table_statistics() -> None:
    january: list[float | None] = [1.5, 2.25, None, 10.0]
    february: list[float | None] = [0.0, 3.0, 1000.0]
    merged = metrics_of("inv_total", january).merged(metrics_of("inv_total", february))
    assert merged == metrics_of("inv_total", january + february)
    assert merged.mean == pytest.approx((1.5 + 2.25 + 10 + 0 + 3 + 1000) / 6)
    values = [1.5, 2.25, 10.0, 0.0, 3.0, 1000.0]
    mean = sum(values) / 6
    assert merged.standard_deviation == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 6))
    assert merged.null_rate == pytest.approx(1 / 7)
    assert (merged.min_value, merged.max_value) == (Decimal("0.0"), Decimal("1000.0"))


def test_a_quantile_from_the_histogram_is_within_one_bin_and_the_observed_range() -> None:
    values = [float(value) for value in range(1, 1001)]
    metrics = metrics_of("inv_items", values)
    for fraction in feature_metrics.QUANTILES:
        exact = values[math.ceil(fraction * len(values)) - 1]
        assert abs(metrics.quantile(fraction) - exact) <= 0.19 * exact + 1  # type: ignore[operator]
    assert metrics_of("inv_items", [5.0]).quantile(0.5) == 5.0
    assert metrics_of("inv_items", [None]).quantile(0.5) is None


def test_metrics_survive_the_history_record() -> None:
    metrics = {"inv_total": metrics_of("inv_total", [1.25, None, 7.5])}
    assert feature_metrics.from_json(feature_metrics.as_json(metrics)) == metrics


def test_frozen_bins_cut_the_baseline_at_its_quantiles() -> None:
    baseline = {bin_number: 10 for bin_number in range(0, 40)}
    starts = drift.frozen_bins(baseline, 10)
    assert len(starts) == 10
    assert drift.coarse_counts(baseline, starts)[1:] == [40] * 9
    assert drift.frozen_bins({}, 10) == [-1]


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert drift.population_stability_index([10, 20, 30], [20, 40, 60]) == pytest.approx(0.0, abs=1e-3)
    small = drift.population_stability_index([30, 30, 40], [33, 33, 34])
    large = drift.population_stability_index([80, 10, 10], [33, 33, 34])
    assert 0 < small < 0.1 < 0.25 < large


def test_the_chi_squared_quantile_matches_the_tables() -> None:
    assert drift.chi_squared_quantile(9, 0.99) == pytest.approx(21.666, rel=0.01)
    assert drift.chi_squared_quantile(9, 0.9999) == pytest.approx(33.72, rel=0.02)


def sample_bins(rng: random.Random, rows: int, scale: float = 1.0) -> dict[int, int]:
    return metrics_of("inv_total", [rng.lognormvariate(8, 1) * scale for _ in range(rows)]).bin_counts


@pytest.mark.parametrize("rows", [30, 200, 5000])
def test_psi_does_not_flag_a_batch_of_the_same_distribution_whatever_its_size(rows: int) -> None:
    """Against a fixed 0.1, a batch of 30 would flag most days by chance; the threshold grows as 1/n."""
    rng = random.Random(rows)
    baseline = sample_bins(rng, 2000)
    flagged = [drift.psi_comparison(sample_bins(rng, rows), baseline, 10, 0.25, 0.9999).is_flagged for _ in range(50)]
    assert flagged.count(True) == 0


@pytest.mark.parametrize("rows", [30, 200])
def test_psi_flags_prices_multiplied_by_100_even_on_a_small_day(rows: int) -> None:
    rng = random.Random(7)
    comparison = drift.psi_comparison(sample_bins(rng, rows, scale=100), sample_bins(rng, 2000), 10, 0.25, 0.9999)
    assert comparison.is_flagged and comparison.value > 3


def test_a_rate_moves_past_two_points_and_three_standard_errors_only() -> None:
    # 1 null in 13 against none in 91: within chance for so few rows
    assert not drift.rate_comparison(1, 13, 0, 91, 0.02, 3).is_flagged
    # 2.5 points on 100,000 rows against 100,000: the floor, not the standard error, decides
    moved = drift.rate_comparison(12_500, 100_000, 10_000, 100_000, 0.02, 3)
    assert moved.is_flagged and moved.threshold == 0.02
    assert not drift.rate_comparison(11_500, 100_000, 10_000, 100_000, 0.02, 3).is_flagged
    # late rate from 20% to 60% of 100 known outcomes
    assert drift.rate_comparison(60, 100, 200, 1000, 0.02, 3).is_flagged
    # unless the window's days vary that much on their own (their mix of payments and new invoices differs)
    spread = [0.05, 0.45, 0.15, 0.6]
    assert not drift.rate_comparison(60, 100, 200, 1000, 0.02, 3, spread).is_flagged
    assert drift.rate_comparison(60, 100, 200, 1000, 0.02, 3, [0.2, 0.21, 0.19]).is_flagged
    # nulls: only a rise counts
    assert not drift.rate_comparison(0, 100, 500, 1000, 0.02, 3, rising_only=True).is_flagged
    assert drift.rate_comparison(50, 100, 0, 1000, 0.02, 3, rising_only=True).is_flagged


def observation(
    mode: str = "incremental",
    output_rows: int = 1000,
    tables: dict[str, dict[str, int]] | None = None,
    values: Mapping[str, Sequence[float | None]] | None = None,
    cleared_payments: int = 0,
) -> Observation:
    counts = {"read": 100, "kept": 100, "collapsed": 0, "rejected": 0}
    tables = tables or {table: dict(counts) for table in ("accounts", "skus", "invoices", "invoice_line_items")}
    values = values or {}
    metrics = {
        feature: metrics_of(feature, values.get(feature, [float(i % 50 + 1) for i in range(200)]))
        for feature in feature_metrics.FEATURES
    }
    metrics["is_late"] = metrics_of("is_late", values.get("is_late", [float(i % 5 == 0) for i in range(200)]))
    examples = list(range(101, 101 + min(cleared_payments, observe.CLEARED_EXAMPLES)))
    cleared = None if mode == "full" else ClearedPayments(cleared_payments, examples)
    return Observation(mode, tables, output_rows, metrics, metrics, cleared)


def outcome_of(name: str, run: Observation, baseline: Baseline) -> checks.Outcome:
    config = checks.load(None)
    return next(outcome for outcome in checks.evaluate(config, run, baseline) if outcome.name == name)


def baseline_of(*runs: Observation) -> Baseline:
    return Baseline(runs[0] if runs else None, list(runs), runs[0] if runs else None)


def test_the_default_checks_pass_a_normal_day_against_a_normal_window() -> None:
    window = [observation() for _ in range(7)]
    outcomes = checks.evaluate(checks.load(None), observation(output_rows=1010), baseline_of(*window))
    assert [outcome.name for outcome in outcomes if outcome.status != "passed"] == ["no_empty_source_table"]


def test_a_negative_total_and_a_zero_cumulative_count_are_errors() -> None:
    run = observation(values={"inv_total": [5.0, -1.0, None], "cum_tot_inv_acct": [0.0, 1.0, 2.0]})
    negative = outcome_of("no_negative_features", run, baseline_of())
    assert negative.is_error and negative.numbers == {"negative_rows": {"inv_total": 1}}
    assert outcome_of("cum_tot_inv_acct_at_least_one", run, baseline_of()).is_error


def test_output_rows_falling_beyond_two_percent_are_an_error() -> None:
    previous = observation(output_rows=1000)
    assert not outcome_of("output_rows_do_not_fall", observation(output_rows=980), baseline_of(previous)).is_error
    fallen = outcome_of("output_rows_do_not_fall", observation(output_rows=979), baseline_of(previous))
    assert fallen.is_error and "from 1,000 to 979" in fallen.message


def test_an_empty_table_stops_a_full_run_when_it_had_rows_and_never_a_quiet_delta() -> None:
    tables = {table: {"read": 10, "kept": 10, "collapsed": 0, "rejected": 0} for table in ("accounts", "invoices")}
    before = observation("full", tables={table: dict(counts) for table, counts in tables.items()})
    tables["accounts"] = {"read": 0, "kept": 0, "collapsed": 0, "rejected": 0}
    emptied = outcome_of("no_empty_source_table", observation("full", tables=tables), baseline_of(before))
    assert emptied.is_error and emptied.numbers == {"empty": ["accounts"]}
    # a first run sets what a table holds; a delta may bring no account
    assert outcome_of("no_empty_source_table", observation("full", tables=tables), baseline_of()).status == "skipped"
    assert outcome_of("no_empty_source_table", observation(tables=tables), baseline_of(before)).status == "skipped"


def test_a_burst_of_bad_rows_is_an_error_and_a_usual_rate_or_a_few_in_a_small_delta_are_not() -> None:
    def day(read: int, rejected: int) -> Observation:
        return observation(
            tables={"invoices": {"read": read, "kept": read - rejected, "collapsed": 0, "rejected": rejected}}
        )

    usual = baseline_of(day(1000, 10), day(1000, 12))
    outcome = outcome_of("reject_rate", day(400, 100), usual)
    assert outcome.is_error and "invoices 100 of 400 (25.0%)" in outcome.message
    assert outcome_of("reject_rate", day(20, 4), usual).status == "passed"  # fewer than min_rejected
    # a source that is always that messy does not fail every day
    assert outcome_of("reject_rate", day(400, 100), baseline_of(day(1000, 260))).status == "passed"
    assert outcome_of("reject_rate", day(400, 100), baseline_of()).status == "skipped"


def test_a_half_empty_delta_warns_against_the_window_median() -> None:
    def day(invoices: int) -> Observation:
        return observation(tables={"invoices": {"read": invoices, "kept": invoices, "collapsed": 0, "rejected": 0}})

    window = baseline_of(day(100), day(120), day(90))
    short = outcome_of("delta_not_short", day(69), window)
    assert short.is_warning and short.numbers["window_median"] == 100
    assert outcome_of("delta_not_short", day(71), window).status == "passed"


def test_prices_times_100_and_cleared_payments_warn_on_the_days_rows() -> None:
    rng = random.Random(3)
    normal = [rng.lognormvariate(8, 1) for _ in range(300)]
    window = baseline_of(*[observation(values={"inv_total": normal}) for _ in range(3)])
    priced = observation(values={"inv_total": [value * 100 for value in normal[:100]]})
    outcome = outcome_of("feature_drift_against_window", priced, window)
    assert outcome.is_warning and outcome.numbers["flagged"] == ["inv_total"]
    unpaid = observation(values={"is_late": [1.0] * 150 + [0.0] * 50})
    assert outcome_of("late_rate", unpaid, window).is_warning


def test_paid_invoices_turned_unpaid_warn_whatever_the_features_do() -> None:
    # the payments cleared on invoices paid late: every feature as on a normal day, the late rate too
    window = baseline_of(*[observation() for _ in range(3)])
    cleared = outcome_of("payments_not_cleared", observation(cleared_payments=7), window)
    assert cleared.is_warning
    assert (
        cleared.message
        == "7 paid invoices have no payment date now (at most 0 allowed): inv_id 101, 102, 103, 104, 105, ..."
    )
    assert cleared.numbers == {"cleared_payments": 7, "max_invoices": 0, "example_inv_ids": [101, 102, 103, 104, 105]}
    assert [
        o.name
        for o in checks.evaluate(checks.load(None), observation(cleared_payments=7), window)
        if o.status != "passed"
    ] == [
        "no_empty_source_table",
        "payments_not_cleared",
    ]
    one = outcome_of("payments_not_cleared", observation(cleared_payments=1), window)
    assert one.is_warning and one.message.endswith("inv_id 101")
    assert outcome_of("payments_not_cleared", observation(), window).status == "passed"
    # a full run is compared with no version, whatever the baseline
    assert outcome_of("payments_not_cleared", observation("full"), window).status == "skipped"


def test_drift_is_skipped_without_a_baseline_or_with_too_few_rows() -> None:
    assert outcome_of("feature_drift_against_window", observation(), baseline_of()).status == "skipped"
    tiny = observation(values={feature: [1.0] * 5 for feature in feature_metrics.FEATURES})
    assert outcome_of("null_rates", tiny, baseline_of(observation())).status == "skipped"


def write_checks(tmp_path: Path, text: str) -> str:
    path = tmp_path / "checks.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checks: [", "not valid YAML"),
        ("- a\n", "expected a mapping with a 'checks' list"),
        ("checks:\n  - name: x\n    type: nope\n    level: warn\n", "check 'x': unknown type 'nope'"),
        ("checks:\n  - name: x\n    type: empty_source\n    level: fatal\n", "level must be warn or error"),
        (
            "checks:\n  - name: x\n    type: reject_rate\n    level: error\n    max_rate: 0.1\n",
            "min_rejected is missing",
        ),
        (
            "checks:\n  - name: x\n    type: non_negative\n    level: error\n    features: [price]\n",
            "features must list features",
        ),
        (
            "checks:\n  - {name: x, type: empty_source, level: warn}\n  - {name: x, type: empty_source, level: warn}\n",
            "check 'x' is named twice",
        ),
    ],
)
def test_a_bad_checks_file_is_one_line_naming_the_file_and_the_check(tmp_path: Path, text: str, message: str) -> None:
    path = write_checks(tmp_path, text)
    with pytest.raises(checks.ChecksFileError, match=message) as raised:
        checks.load(path)
    assert str(raised.value).startswith(f"--checks {path}: ") and "\n" not in str(raised.value)
    assert raised.value.exit_status == failures.EXIT_BAD_INPUT


def test_a_checks_file_of_ones_own_replaces_the_defaults(tmp_path: Path) -> None:
    path = write_checks(
        tmp_path, "history: {keep_runs: 5}\nchecks:\n  - {name: only, type: empty_source, level: warn}\n"
    )
    config = checks.load(path)
    assert [check.name for check in config.checks] == ["only"] and config.keep_runs == 5


def test_errors_stop_with_status_4_naming_each_failing_check() -> None:
    failed = checks.Outcome("reject_rate", "error", "failed", "rejected rows above 5.0%: invoices 9 of 10 (90.0%)")
    warned = checks.Outcome("late_rate", "warn", "failed", "late rate moved")
    checks.stop_on_errors([warned])
    with pytest.raises(checks.ChecksFailedError, match=r"^1 check\(s\) failed at error level: reject_rate: rejected"):
        checks.stop_on_errors([failed, warned])
    assert checks.ChecksFailedError.exit_status == 4 == failures.exit_status_of("ChecksFailedError")


def record(run_id: str, status: str = "succeeded", mode: str = "incremental", rows: int = 1000) -> dict[str, object]:
    run = observation(mode, rows, cleared_payments=2)
    monitoring = {
        "mode": mode,
        "tables": run.tables,
        "output_rows": rows,
        "metrics": {
            "table": feature_metrics.as_json(run.table_metrics),
            "run_rows": feature_metrics.as_json(run.run_rows_metrics),
        },
        "cleared_payments": None if run.cleared_payments is None else run.cleared_payments.as_json(),
        "checks": [],
        "checks_file": "default",
        "window_runs": 7,
    }
    return history.run_record(run_id, status, "2026-12-07T00:00:00Z", 1.0, {"as_of": "2021-07-01"}, monitoring)


def test_the_baseline_skips_failed_and_superseded_runs_and_keeps_the_runs_own_mode(tmp_path: Path) -> None:
    runs = history.RunHistory(str(tmp_path / "warehouse"), filesystem.LocalFiles())
    runs.write(record("20260101T000000Z_a", mode="full", rows=900), keep_runs=10)
    runs.write(record("20260102T000000Z_b", rows=950), keep_runs=10)
    runs.write(record("20260103T000000Z_c", rows=960), keep_runs=10)
    runs.write(record("20260104T000000Z_d", status="failed", rows=10), keep_runs=10)
    runs.write(record("20260105T000000Z_e", rows=20), keep_runs=10)
    assert runs.mark_superseded("20260105T000000Z_e", by="rollback")
    baseline = runs.baseline("incremental", window_runs=7)
    assert baseline.previous is not None and baseline.previous.output_rows == 960
    assert [run.output_rows for run in baseline.window] == [960, 950]
    assert runs.baseline("full", window_runs=7).window[0].output_rows == 900
    # the payments a run cleared survive its record; a full run has none to count
    assert baseline.previous.cleared_payments == ClearedPayments(2, [101, 102])
    assert runs.baseline("full", window_runs=7).window[0].cleared_payments is None
    assert runs.read("20260105T000000Z_e")["superseded_by"] == "rollback"  # type: ignore[index]


def test_the_history_keeps_one_file_per_run_and_at_most_keep_runs(tmp_path: Path) -> None:
    runs = history.RunHistory(str(tmp_path / "warehouse"), filesystem.LocalFiles())
    for day in range(1, 6):
        runs.write(record(f"2026010{day}T000000Z_x"), keep_runs=3)
    assert runs.run_ids() == ["20260103T000000Z_x", "20260104T000000Z_x", "20260105T000000Z_x"]
    assert sorted(path.name for path in (tmp_path / "warehouse" / "_history").iterdir()) == [
        f"{run_id}.json" for run_id in runs.run_ids()
    ]


def test_a_recorded_run_is_reviewed_as_it_was_judged_against_the_runs_before_it(tmp_path: Path) -> None:
    runs = history.RunHistory(str(tmp_path / "warehouse"), filesystem.LocalFiles())
    runs.write(record("20260101T000000Z_a", mode="full", rows=900), keep_runs=10)
    runs.write(record("20260102T000000Z_b", rows=940), keep_runs=10)
    runs.write(record("20260102T120000Z_b", rows=950), keep_runs=10)
    judged = record("20260103T000000Z_c", rows=960)
    judged["checks"] = [checks.Outcome("late_rate", "warn", "failed", "late rate moved", {"rate": 0.5}).as_json()]
    runs.write(judged, keep_runs=10)
    runs.write(record("20260104T000000Z_d", status="failed", rows=10), keep_runs=10)
    runs.write(record("20260105T000000Z_e", rows=970), keep_runs=10)  # newer than the run reviewed: not its baseline
    assert runs.mark_superseded("20260105T000000Z_e", by="rollback")  # rolled back: c is current again
    reviewed = runs.recorded_run("20260103T000000Z_c", window_runs=7)
    assert reviewed is not None and reviewed.record["run_id"] == "20260103T000000Z_c"
    assert reviewed.observation.output_rows == 960
    assert reviewed.outcomes == [checks.Outcome("late_rate", "warn", "failed", "late rate moved", {"rate": 0.5})]
    assert reviewed.baseline.previous is not None and reviewed.baseline.previous.output_rows == 950
    assert [run.output_rows for run in reviewed.baseline.window] == [950, 940]
    # the runs older than it, as it was judged: the scan limit counts none of the newer records
    older = runs.baseline("incremental", 7, scan_limit=1, before="20260103T000000Z_c")
    assert older.previous is not None and older.previous.output_rows == 950
    # the window its own checks file set, when its record says so
    runs.write({**judged, "window_runs": 1}, keep_runs=10)
    narrow = runs.recorded_run("20260103T000000Z_c", window_runs=7)
    assert narrow is not None and [run.output_rows for run in narrow.baseline.window] == [950]
    assert runs.recorded_run("20260104T000000Z_d", window_runs=7) is None  # a failed run published nothing
    assert runs.recorded_run("manual_20260106T000000Z_f", window_runs=7) is None  # built by hand: no record


def test_opened_alone_the_notebook_reviews_the_current_version_or_says_why_it_cannot(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    runs = history.RunHistory(str(root), filesystem.LocalFiles())
    warehouse = Warehouse.open(str(root))
    assert history.reviewed_version(runs, warehouse, 7) is None  # no commit yet: the notebook asks for 01
    runs.write(record("20260101T000000Z_a", mode="full"), keep_runs=10)
    (root / "_current.json").write_text('{"version": "20260101T000000Z_a", "history": []}', encoding="utf-8")
    reviewed = history.reviewed_version(runs, warehouse, 7)
    assert reviewed is not None and reviewed.record["version"] == "20260101T000000Z_a"
    (root / "_building.json").write_text('{"version": "manual_x", "incremental": false, "base": null}', "utf-8")
    assert history.reviewed_version(runs, warehouse, 7) is None  # 01 began a version: the notebook judges it
    (root / "_building.json").unlink()
    (root / "_current.json").write_text('{"version": "manual_y", "history": []}', encoding="utf-8")
    with pytest.raises(VersionError, match=r"^the current version manual_y of .* has no run record in _history/"):
        history.reviewed_version(runs, warehouse, 7)
