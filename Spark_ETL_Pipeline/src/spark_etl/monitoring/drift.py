"""The statistics the drift checks use, chosen so that a small batch does not flag by chance: a population
stability index whose threshold grows with 1/n, and a rate test whose threshold is the larger of a floor and
three standard errors (docs/design.md, "Watched runs")."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from spark_etl.monitoring.feature_metrics import BELOW_ZERO_BIN, LAST_BIN


def frozen_bins(baseline: Mapping[int, int], bin_count: int) -> list[int]:
    """The first fixed bin of each of at most `bin_count` coarse bins, each holding about 1/bin_count of the
    baseline's values: adjacent fixed bins grouped, so the current batch is cut at the baseline's quantiles."""
    total = sum(baseline.values())
    starts = [BELOW_ZERO_BIN]
    if total == 0:
        return starts
    held = 0
    for bin_number in range(BELOW_ZERO_BIN, LAST_BIN + 1):
        if held >= total / bin_count and len(starts) < bin_count:
            starts.append(bin_number)
            held = 0
        held += baseline.get(bin_number, 0)
    return starts


def coarse_counts(counts: Mapping[int, int], starts: list[int]) -> list[int]:
    grouped = [0] * len(starts)
    for bin_number, count in counts.items():
        group = max(index for index, start in enumerate(starts) if start <= bin_number)
        grouped[group] += count
    return grouped


def population_stability_index(current: list[int], baseline: list[int]) -> float:
    """PSI = sum of (p - q) ln(p / q) over the coarse bins, each share smoothed by half a row so an empty bin
    has a finite weight."""
    n, m, bins = sum(current), sum(baseline), len(current)
    psi = 0.0
    for observed, expected in zip(current, baseline, strict=True):
        p = (observed + 0.5) / (n + 0.5 * bins)
        q = (expected + 0.5) / (m + 0.5 * bins)
        psi += (p - q) * math.log(p / q)
    return psi


def chi_squared_quantile(degrees: int, probability: float) -> float:
    """Wilson and Hilferty's approximation of the chi-squared quantile (within 1% from 3 degrees of freedom)."""
    if degrees <= 0:
        return 0.0
    z = NormalDist().inv_cdf(probability)
    k = float(degrees)
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


@dataclass(frozen=True)
class Comparison:
    """One statistic against its threshold: flagged when `value` is above `threshold`."""

    value: float
    threshold: float
    current_rows: int
    baseline_rows: int

    @property
    def is_flagged(self) -> bool:
        return self.value > self.threshold


def psi_comparison(
    current: Mapping[int, int], baseline: Mapping[int, int], bin_count: int, floor: float, probability: float
) -> Comparison:
    """PSI over bins frozen from the baseline; the threshold is the larger of `floor` and what sampling alone
    exceeds with 1 - `probability`: n·m/(n+m)·PSI is about chi-squared with (bins - 1) degrees of freedom."""
    starts = frozen_bins(baseline, bin_count)
    current_counts, baseline_counts = coarse_counts(current, starts), coarse_counts(baseline, starts)
    n, m = sum(current_counts), sum(baseline_counts)
    psi = population_stability_index(current_counts, baseline_counts)
    by_chance = chi_squared_quantile(len(starts) - 1, probability) * (1 / max(n, 1) + 1 / max(m, 1))
    return Comparison(psi, max(floor, by_chance), n, m)


def rate_comparison(
    events: int,
    rows: int,
    baseline_events: int,
    baseline_rows: int,
    floor: float,
    standard_errors: float,
    window_rates: Sequence[float] = (),
    rising_only: bool = False,
) -> Comparison:
    """The move of a rate (nulls, late) against the baseline's; the threshold is the larger of `floor` and
    `standard_errors` standard errors of the difference. The standard error is the two-proportion test's under the
    pooled rate, or, when the baseline is a window of at least three runs whose rates vary more than sampling
    explains (days differ in their mix: more payments one day, more new invoices the next), the spread of those
    runs' rates: a day is compared with how much days really vary. With `rising_only` (nulls), only a rise counts:
    fewer unknowns than usual is no fault."""
    rate, baseline_rate = events / rows, baseline_events / baseline_rows
    pooled = (events + baseline_events) / (rows + baseline_rows)
    error = math.sqrt(pooled * (1 - pooled) * (1 / rows + 1 / baseline_rows))
    if len(window_rates) >= 3:
        error = max(error, statistics.stdev(window_rates))
    moved = rate - baseline_rate if rising_only else abs(rate - baseline_rate)
    return Comparison(moved, max(floor, standard_errors * error), rows, baseline_rows)
