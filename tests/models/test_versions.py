"""The warehouse and its versions on a temporary warehouse: a partitioned model rewritten in part, the commit, the
pointer, the rollback, what is kept and removed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark_etl.storage import versions
from spark_etl.storage.warehouse import BUILDING, Warehouse

SCHEMA = "invoice_id bigint, amount int, partition_month string"


def rows(df: DataFrame) -> list[tuple[object, ...]]:
    return sorted(tuple(row) for row in df.collect())


def build(spark: SparkSession, warehouse: Path, version: str, incremental: bool) -> versions.RunVersion:
    return Warehouse.open(str(warehouse), spark).begin(version, incremental)


def commit(
    run: versions.RunVersion, model_names: list[str], details: dict[str, object], keep_versions: int
) -> versions.Manifest:
    """What a run does at its end: the marts stage finishes the version, then it is committed."""
    manifest = run.finish(model_names, details)
    Warehouse.open(run.warehouse_dir, run.spark).commit(run.version, keep_versions)
    return manifest


def write(run: versions.RunVersion, data: list[tuple[object, ...]], months: list[str] | None) -> None:
    model_df = run.spark.createDataFrame(data, SCHEMA)
    versions.write_model(run, "staging", "lines", model_df, "partition_month", months)
    versions.write_model(run, "staging", "whole", model_df.select("invoice_id"))


def test_a_version_takes_the_months_it_did_not_rewrite_from_the_one_before(spark: SparkSession, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    with pytest.raises(versions.VersionError, match="--incremental needs a warehouse"):
        build(spark, warehouse, "v1", incremental=True)

    first = build(spark, warehouse, "v1", incremental=False)
    assert rows(first.read_base("lines", first.spark.createDataFrame([], SCHEMA).schema)) == []
    write(first, [(1, 10, "2021-01"), (2, 20, "2021-02"), (3, 30, "2021-03")], None)
    commit(first, ["lines", "whole"], {}, 3)
    assert json.loads((warehouse / "_current.json").read_text()) == {"version": "v1", "history": ["v1"]}

    second = build(spark, warehouse, "v2", incremental=True)
    schema = spark.createDataFrame([], SCHEMA).schema
    assert rows(second.read_base("lines", schema, ["2021-02"])) == [(2, 20, "2021-02")]
    # the delta rewrites 2021-02 (invoice 2 changed) and empties 2021-03 (invoice 3 moved to 2021-02)
    write(second, [(2, 21, "2021-02"), (3, 30, "2021-02")], ["2021-02", "2021-03"])
    manifest = commit(second, ["lines", "whole"], {"note": "day 2"}, 3)

    assert manifest.models["lines"]["folders"] == {
        "2021-01": "versions/v1/staging/lines/part=2021-01",
        "2021-02": "versions/v2/staging/lines/part=2021-02",
    }
    assert manifest.details["mode"] == "incremental" and manifest.details["note"] == "day 2"
    current, history = Warehouse.open(str(warehouse)).current()
    assert current is not None and current.version == "v2" and history == ["v2", "v1"]
    assert rows(second.read("staging", "lines")) == [(1, 10, "2021-01"), (2, 21, "2021-02"), (3, 30, "2021-02")]
    assert not (warehouse / BUILDING).exists()


def test_old_versions_go_but_the_months_a_kept_one_takes_from_them_stay(spark: SparkSession, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    first = build(spark, warehouse, "v1", incremental=False)
    write(first, [(1, 10, "2021-01"), (2, 20, "2021-02")], None)
    commit(first, ["lines", "whole"], {}, 1)
    dead = warehouse / "versions" / "v_dead" / "staging" / "lines"  # a run killed before its commit
    dead.mkdir(parents=True)

    (warehouse / "_current.json.tmp_0123456789ab").write_text("{", encoding="utf-8")  # killed mid-switch

    second = build(spark, warehouse, "v2", incremental=True)
    write(second, [(2, 22, "2021-02")], ["2021-02"])
    second.finish(["lines", "whole"], {})
    assert json.loads((warehouse / "_current.json").read_text())["version"] == "v1"  # not current until the commit
    # the entry script's commit, with plain local file calls
    assert Warehouse.open(str(warehouse)).commit("v2", keep_versions=1) == ["v2"]

    folders = sorted(
        str(path.relative_to(warehouse)) for path in (warehouse / "versions").glob("*/staging/*/*") if path.is_dir()
    )
    assert folders == [
        "versions/v1/staging/lines/part=2021-01",  # v2 still takes 2021-01 from v1
        "versions/v2/staging/lines/part=2021-02",
    ]
    assert (warehouse / "versions" / "v2" / "staging" / "whole" / "_SUCCESS").exists()
    assert not (warehouse / "versions" / "v_dead").exists()
    assert not (warehouse / "versions" / "v1" / "_manifest.json").exists()  # v1 is no longer a version
    assert sorted(path.name for path in warehouse.iterdir()) == ["_current.json", "versions"]
    assert not (warehouse / "versions" / "v1" / "staging" / "whole").exists()
    assert json.loads((warehouse / "_current.json").read_text())["history"] == ["v2"]
    assert rows(second.read("staging", "lines")) == [(1, 10, "2021-01"), (2, 22, "2021-02")]


def test_a_later_stage_resumes_the_version_its_run_began(spark: SparkSession, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    with pytest.raises(versions.VersionError, match="run 01_staging first"):
        Warehouse.open(str(warehouse), spark).resume("", incremental=False)
    named = build(spark, warehouse, "v1", incremental=False)  # the entry script names it: nothing noted
    assert not (warehouse / BUILDING).exists()
    assert Warehouse.open(str(warehouse), spark).resume("v1", incremental=False).folder == named.folder
    by_hand = build(spark, warehouse, "", incremental=False)
    assert by_hand.version.startswith("manual_") and (warehouse / BUILDING).exists()
    resumed = Warehouse.open(str(warehouse), spark).resume("", incremental=True)  # the note says how it was begun
    assert (resumed.version, resumed.is_incremental, resumed.base) == (by_hand.version, False, None)


def test_a_kept_model_is_the_previous_versions_folder_and_outlives_it(spark: SparkSession, tmp_path: Path) -> None:
    """An incremental run whose delta changes nothing in a model keeps it: no folder of its own, the manifest
    names the previous version's, which stays when that version passes --keep-versions."""
    warehouse = tmp_path / "warehouse"
    first = build(spark, warehouse, "v1", incremental=False)
    with pytest.raises(versions.VersionError, match="no previous version to keep it from"):
        first.keep("staging", "whole")
    write(first, [(1, 10, "2021-01"), (2, 20, "2021-02")], None)
    commit(first, ["lines", "whole"], {}, 1)

    second = build(spark, warehouse, "v2", incremental=True)
    write(second, [(2, 21, "2021-02")], ["2021-02"])  # rewrites "whole" too; keep it instead
    second.keep("staging", "whole")
    manifest = commit(second, ["lines", "whole"], {}, 1)

    assert manifest.models["whole"]["folders"] == {"": "versions/v1/staging/whole"}
    assert rows(second.read("staging", "whole")) == [(1,), (2,)]
    assert (warehouse / "versions" / "v1" / "staging" / "whole").is_dir()  # v1 is past --keep-versions 1
    assert not (warehouse / "versions" / "v1" / "staging" / "lines" / "part=2021-02").exists()


def test_an_incremental_run_on_a_version_of_another_layout_asks_for_a_full_run(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A version an earlier release wrote, with int_account_daily_invoices in one folder (no months): merging into
    it would mix layouts, so the incremental run stops before it writes anything."""
    warehouse = tmp_path / "warehouse"
    first = build(spark, warehouse, "v1", incremental=False)
    columns = "account_id bigint, issue_date date, invoice_count bigint, invoices_prior_120d bigint"
    daily_df = spark.createDataFrame([], f"{columns}, invoices_to_date bigint, partition_month string")
    versions.write_model(first, "intermediate", "int_account_daily_invoices", daily_df)  # not per month
    commit(first, ["int_account_daily_invoices"], {}, 3)
    with pytest.raises(versions.VersionError, match="int_account_daily_invoices in another layout"):
        build(spark, warehouse, "v2", incremental=True)
    assert not (warehouse / "versions" / "v2").exists()

    second = build(spark, warehouse, "v2", incremental=False)  # a full run is always possible
    versions.write_model(second, "intermediate", "int_account_daily_invoices", daily_df, "partition_month")
    commit(second, ["int_account_daily_invoices"], {}, 3)
    assert build(spark, warehouse, "v3", incremental=True).base is not None


def test_the_invoices_of_a_committed_version_are_read_without_spark(spark: SparkSession, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    on_this_machine = Warehouse.open(str(warehouse))  # no Spark: the entry script's view
    assert on_this_machine.output_rows("v1") is None  # nothing committed yet
    first = build(spark, warehouse, "v1", incremental=False)
    write(first, [(1, 10, "2021-01"), (2, 20, "2021-02")], None)
    commit(first, ["lines", "whole"], {"output_rows": 2}, 3)
    second = build(spark, warehouse, "v2", incremental=True)
    write(second, [(3, 30, "2021-03")], ["2021-03"])
    commit(second, ["lines", "whole"], {"output_rows": 3}, 3)
    assert on_this_machine.output_rows("v2") == 3  # each version's own count
    assert on_this_machine.output_rows("v1") == 2
    assert Warehouse.open(f"file://{warehouse}").output_rows("v2") == 3
    third = build(spark, warehouse, "v3", incremental=True)
    write(third, [(3, 31, "2021-03")], ["2021-03"])
    commit(third, ["lines", "whole"], {}, 3)  # a version that recorded no count
    assert on_this_machine.output_rows("v3") is None


def test_a_rollback_makes_the_previous_version_current_and_keeps_the_rest(spark: SparkSession, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    for number, incremental in ((1, False), (2, True), (3, True)):
        run = build(spark, warehouse, f"v{number}", incremental)
        write(run, [(number, number, f"2021-0{number}")], [f"2021-0{number}"] if incremental else None)
        commit(run, ["lines", "whole"], {}, 3)
    on_this_machine = Warehouse.open(str(warehouse))
    assert on_this_machine.rollback() == ("v3", "v2")
    assert json.loads((warehouse / "_current.json").read_text()) == {"version": "v2", "history": ["v2", "v1"]}
    current, _ = Warehouse.open(str(warehouse), spark).current()
    assert current is not None and sorted(current.folders("lines")) == [
        "versions/v1/staging/lines/part=2021-01",
        "versions/v2/staging/lines/part=2021-02",
    ]
    assert on_this_machine.rollback() == ("v2", "v1")
    with pytest.raises(versions.VersionError, match="no earlier version kept"):
        on_this_machine.rollback()
    pointer = on_this_machine.pointer()
    assert pointer is not None and (pointer.version, pointer.history) == ("v1", ["v1"])
