"""What the notebooks show: a model's profile observed while it is written, and charts counted in one pass."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from support.spark_views import begin_version, jobs_in_group, raw_columns, register_strings

from spark_etl.modelling import models, quality
from spark_etl.publishing import notebook_display
from spark_etl.sources import source_state


def job_site(spark: SparkSession, job_id: int) -> str:
    """What started a job: the action of its stages, or the module for one of this package's."""
    tracker = spark.sparkContext.statusTracker()
    job = tracker.getJobInfo(job_id)
    assert job is not None
    names = {stage.name for stage in map(tracker.getStageInfo, job.stageIds) if stage is not None}
    # "parquet at <caller>": the write (its caller is not always known); "<module>.py": a job of this package's
    sites = {name.rpartition("/")[2].partition(":")[0] if "spark_etl" in name else name.split()[0] for name in names}
    return ",".join(sorted(sites))


@pytest.fixture
def session(spark: SparkSession) -> Iterator[SparkSession]:
    """A sibling session, so these tests' views do not replace other modules' views."""
    sibling = spark.newSession()
    yield sibling
    sibling.sparkContext.setJobGroup("tests", "tests")


def test_a_built_model_profile_is_observed_during_its_write(session: SparkSession, tmp_path: Path) -> None:
    register_strings(
        session,
        "raw_skus",
        raw_columns("skus"),
        [
            ("A", "a", None, "1.00", "10.50", None),
            ("B", "b", "bee", "0", "0.005", None),
            ("C", "c", "c", "1.00", "-3.00", None),  # rejected: not in the staged model's profile
        ],
    )
    stage = models.Stage(session, "staging", begin_version(session, str(tmp_path / "warehouse"), "v1", False))
    stage.use_base("stg_accounts", "stg_skus", "stg_invoices")  # empty, as in a full run
    source_state.register_withdrawn(session, {})  # nothing withdrawn, as on the CSV path
    stage.build("stg_skus_checked")
    session.sparkContext.setJobGroup("profiled_build", "a build with its profile")
    stored_df = stage.build("stg_skus", profile=True)
    # the profile costs no job of its own: every job of the build is its write or its key check (counting the
    # jobs would not do: adaptive execution runs a query stage of the write as a job of its own, or not)
    assert {job_site(session, job) for job in jobs_in_group(session, "profiled_build")} == {
        "parquet",
        "constraints.py",
    }
    assert stage.profile("stg_skus") == quality.column_profile(stored_df)

    profile = notebook_display.by_column(stage.profile("stg_skus"))
    assert profile["item_id"] == {"column": "item_id", "non_null": 2, "null": 0, "min": "A", "max": "B"}
    assert profile["item_description"] == {
        "column": "item_description",
        "non_null": 1,
        "null": 1,
        "min": "bee",
        "max": "bee",
    }
    assert profile["item_retail_price"]["min"] == str(Decimal("0.005000"))
    with pytest.raises(KeyError, match="stg_skus_checked has not been built with profile=True"):
        stage.profile("stg_skus_checked")


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every chart and note the profiles module would display, in order."""
    shown: list[dict[str, Any]] = []

    def bar_chart(labels: Any, values: Any, title: str, xlabel: str, ylabel: str, **line: Any) -> None:
        shown.append({"title": title, "labels": list(labels), "values": list(values), **line})

    monkeypatch.setattr(notebook_display, "bar_chart", bar_chart)
    monkeypatch.setattr(notebook_display, "_display", lambda obj: shown.append({"note": obj.data}))
    return shown


def test_charts_of_a_batch_are_counted_in_one_aggregation(session: SparkSession, drawn: list[dict[str, Any]]) -> None:
    model_df = session.createDataFrame(
        [
            (0, 1, date(2021, 1, 31), None),
            (5, 0, date(2021, 2, 1), None),
            (10, 1, date(2021, 2, 28), None),  # the maximum falls in the last bin, not a bin of its own
            (None, 1, date(2020, 12, 1), None),  # unknown: counted in the histogram's title only
        ],
        "amount int, is_late int, issue_date date, empty double",
    )
    profile = notebook_display.by_column(quality.column_profile(model_df))
    session.sparkContext.setJobGroup("one_aggregation", "a group-by")
    model_df.groupBy("amount").count().collect()
    one_aggregation = len(jobs_in_group(session, "one_aggregation"))

    session.sparkContext.setJobGroup("chart_batch", "every chart of the batch")
    batch = notebook_display.ChartBatch(model_df, profile).histogram("amount", bins=2).histogram("empty")
    batch.rate_by_bucket("amount", [0, 5], "is_late").monthly("issue_date", "per month", "is_late")
    batch.draw()
    assert len(jobs_in_group(session, "chart_batch")) == one_aggregation

    assert drawn == [
        {"title": "amount: distribution (1 unknown)", "labels": ["0", "5"], "values": [1, 2]},
        {"note": "*empty: no known values: none.*"},
        {
            "title": "invoices and mean is_late by amount",
            "labels": ["0-4", "5+"],
            "values": [1, 2],
            "secondary": [1.0, 0.5],
            "secondary_label": "mean is_late",
        },
        {
            "title": "per month",
            "labels": ["2020-12", "2021-01", "2021-02"],
            "values": [1, 1, 2],
            "secondary": [1.0, 1.0, 0.5],
            "secondary_label": "mean is_late",
        },
    ]


def test_a_batch_without_a_profile_finds_the_histogram_bounds_itself(
    session: SparkSession, drawn: list[dict[str, Any]]
) -> None:
    model_df = session.createDataFrame([(1.0,), (2.0,), (3.0,), (4.0,)], "item_count double")
    notebook_display.ChartBatch(model_df).histogram("item_count", bins=3).draw()
    assert drawn == [{"title": "item_count: distribution (0 unknown)", "labels": ["1", "2", "3"], "values": [1, 1, 2]}]


def test_a_batch_with_more_buckets_than_it_can_draw_refuses(
    session: SparkSession, drawn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notebook_display.ChartBatch, "MAX_BUCKETS", 3)
    model_df = session.createDataFrame([(1.0,), (2.0,), (3.0,), (4.0,)], "item_count double")
    with pytest.raises(ValueError, match="more than 3 buckets"):
        notebook_display.ChartBatch(model_df).histogram("item_count", bins=4).draw()
    assert drawn == []
