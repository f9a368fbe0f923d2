"""A feature's metrics in a form that merges exactly: counts, exact sums, sums of squares and a histogram over
fixed bins (`mon_feature_month_metrics.sql`). The whole table's metrics are the sum of its months', a day's are
those of the rows it added or changed; mean, standard deviation and quantiles are derived from the sums."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# the monitored features, in the contract's order; is_late's mean is the late rate over known outcomes
FEATURES = ("inv_total", "inv_items", "acct_age", "num_inv_120d", "cum_tot_inv_acct", "is_late")
BINS_PER_DOUBLING = 4  # bin b holds [2^(b/4) - 1, 2^((b+1)/4) - 1): the SQL's rule, stated once more for reading
LAST_BIN = 127  # from 2^31.75 - 1, about 3.6 billion, up
BELOW_ZERO_BIN = -1
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def bin_lower_edge(bin_number: int) -> float:
    """The smallest value of a fixed bin (the SQL's rule): -inf for the bin of negative values."""
    if bin_number == BELOW_ZERO_BIN:
        return -math.inf
    return float(2 ** (bin_number / BINS_PER_DOUBLING) - 1)


def bin_upper_edge(bin_number: int) -> float:
    if bin_number == BELOW_ZERO_BIN:
        return 0.0
    if bin_number >= LAST_BIN:
        return math.inf
    return bin_lower_edge(bin_number + 1)


@dataclass
class FeatureMetrics:
    """One feature over a set of rows. Sums are Decimals: adding months in any order gives the same value."""

    feature: str
    row_count: int = 0
    null_count: int = 0
    value_sum: Decimal = Decimal(0)
    value_square_sum: Decimal = Decimal(0)
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    bin_counts: dict[int, int] = field(default_factory=dict)

    @property
    def value_count(self) -> int:
        return self.row_count - self.null_count

    def merged(self, other: FeatureMetrics) -> FeatureMetrics:
        bins = dict(self.bin_counts)
        for bin_number, count in other.bin_counts.items():
            bins[bin_number] = bins.get(bin_number, 0) + count
        return FeatureMetrics(
            self.feature,
            self.row_count + other.row_count,
            self.null_count + other.null_count,
            self.value_sum + other.value_sum,
            self.value_square_sum + other.value_square_sum,
            _extreme(min, self.min_value, other.min_value),
            _extreme(max, self.max_value, other.max_value),
            {bin_number: bins[bin_number] for bin_number in sorted(bins)},
        )

    @property
    def null_rate(self) -> float | None:
        return None if self.row_count == 0 else self.null_count / self.row_count

    @property
    def mean(self) -> float | None:
        return None if self.value_count == 0 else float(self.value_sum / self.value_count)

    @property
    def standard_deviation(self) -> float | None:
        """The population standard deviation, from the exact sums."""
        if self.value_count == 0:
            return None
        n = Decimal(self.value_count)
        variance = (self.value_square_sum - self.value_sum * self.value_sum / n) / n
        return math.sqrt(max(float(variance), 0.0))

    def quantile(self, fraction: float) -> float | None:
        """Estimated from the histogram: linear within the bin that holds it, clamped to the observed minimum and
        maximum, so it is within one bin's width (about 19% of the value) of the exact quantile."""
        if self.value_count == 0 or self.min_value is None or self.max_value is None:
            return None
        target = fraction * self.value_count
        seen = 0
        low, high = float(self.min_value), float(self.max_value)
        for bin_number, count in sorted(self.bin_counts.items()):
            if count and seen + count >= target:
                lower = max(bin_lower_edge(bin_number), low)
                upper = min(bin_upper_edge(bin_number), high)
                return lower + (upper - lower) * (target - seen) / count
            seen += count
        return high

    def as_json(self) -> dict[str, Any]:
        """For the run's history record: the mergeable state and what is derived from it."""
        return {
            "row_count": self.row_count,
            "null_count": self.null_count,
            "value_sum": str(self.value_sum),
            "value_square_sum": str(self.value_square_sum),
            "min": None if self.min_value is None else str(self.min_value),
            "max": None if self.max_value is None else str(self.max_value),
            "bin_counts": {str(bin_number): count for bin_number, count in self.bin_counts.items()},
            "mean": self.mean,
            "standard_deviation": self.standard_deviation,
            "null_rate": self.null_rate,
            "quantiles": {str(fraction): self.quantile(fraction) for fraction in QUANTILES},
        }

    @classmethod
    def from_json(cls, feature: str, document: Mapping[str, Any]) -> FeatureMetrics:
        return cls(
            feature,
            int(document["row_count"]),
            int(document["null_count"]),
            Decimal(document["value_sum"]),
            Decimal(document["value_square_sum"]),
            None if document["min"] is None else Decimal(document["min"]),
            None if document["max"] is None else Decimal(document["max"]),
            {int(bin_number): int(count) for bin_number, count in document["bin_counts"].items()},
        )


def _extreme(pick: Any, first: Decimal | None, second: Decimal | None) -> Decimal | None:
    present = [value for value in (first, second) if value is not None]
    return pick(present) if present else None


def from_month_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, FeatureMetrics]:
    """Every monitored feature's metrics over the months given (rows of mon_feature_month_metrics)."""
    merged = {feature: FeatureMetrics(feature) for feature in FEATURES}
    for row in rows:
        month = FeatureMetrics(
            str(row["feature"]),
            int(row["row_count"]),
            int(row["null_count"]),
            Decimal(row["value_sum"] or 0),
            Decimal(row["value_square_sum"] or 0),
            row["min_value"],
            row["max_value"],
            {int(bin_number): int(count) for bin_number, count in (row["bin_counts"] or {}).items()},
        )
        merged[month.feature] = merged[month.feature].merged(month)
    return merged


def as_json(metrics: Mapping[str, FeatureMetrics]) -> dict[str, Any]:
    return {feature: metrics[feature].as_json() for feature in metrics}


def from_json(document: Mapping[str, Any]) -> dict[str, FeatureMetrics]:
    return {feature: FeatureMetrics.from_json(feature, values) for feature, values in document.items()}


def merge_all(runs: Iterable[Mapping[str, FeatureMetrics]]) -> dict[str, FeatureMetrics]:
    """Several runs' metrics as one population: a baseline window."""
    merged = {feature: FeatureMetrics(feature) for feature in FEATURES}
    for run in runs:
        for feature, metrics in run.items():
            if feature in merged:
                merged[feature] = merged[feature].merged(metrics)
    return merged
