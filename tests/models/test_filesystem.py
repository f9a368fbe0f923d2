"""The one file-system layer: which paths are on this machine, and the one atomic write, locally and through Hadoop."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_etl.storage import filesystem, warehouse_lock
from spark_etl.storage.warehouse import Pointer, Warehouse


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("warehouse", Path.cwd() / "warehouse"),  # relative: against the working folder
        ("/data/warehouse", Path("/data/warehouse")),
        ("file:/data/warehouse", Path("/data/warehouse")),
        ("file:///data/warehouse", Path("/data/warehouse")),
        ("file://localhost/data/my%20warehouse", Path("/data/my warehouse")),  # once the relative localhost/...
        ("file://otherhost/data/warehouse", None),
        ("hdfs://namenode:8020/warehouse", None),
        ("s3a://bucket/warehouse", None),
    ],
)
def test_one_answer_to_where_a_path_is(path: str, expected: Path | None) -> None:
    assert filesystem.local_folder(path) == expected
    assert filesystem.is_local(path) is (expected is not None)
    # the lock of a warehouse on this machine sits in it; of any other, in the output folder
    lock = warehouse_lock.lock_path(path, Path("/out"))
    assert lock.parent == (expected if expected is not None else Path("/out"))


def test_only_a_path_without_a_scheme_is_made_absolute_for_the_jvm() -> None:
    assert filesystem.qualify("warehouse") == str(Path.cwd() / "warehouse")
    assert filesystem.qualify("file:/data/warehouse") == "file:/data/warehouse"
    assert filesystem.is_plain_path("/out/features.csv") and not filesystem.is_plain_path("file:/out/features.csv")


def test_an_atomic_local_write_leaves_the_new_document_and_nothing_beside_it(tmp_path: Path) -> None:
    files = filesystem.LocalFiles()
    target = tmp_path / "_current.json"
    target.write_text("old", encoding="utf-8")
    filesystem.write_json(files, f"file://localhost{target}", {"version": "v2", "history": ["v2", "v1"]})
    assert target.read_text(encoding="utf-8") == '{\n  "history": [\n    "v2",\n    "v1"\n  ],\n  "version": "v2"\n}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [path.name for path in tmp_path.iterdir()] == ["_current.json"]
    assert filesystem.read_json(files, f"file:{target}") == {"version": "v2", "history": ["v2", "v1"]}
    assert filesystem.read_json(files, str(tmp_path / "missing.json")) is None


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        filesystem.LocalFiles().write_atomically(str(target), "\udcff")  # not encodable: fails while writing
    assert target.read_text(encoding="utf-8") == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["summary.json"]


def test_the_pointer_reads_the_same_through_hadoop_and_locally(spark: SparkSession, tmp_path: Path) -> None:
    warehouse = str(tmp_path / "warehouse")
    files = filesystem.LocalFiles()

    def finish(version: str) -> None:  # what RunVersion.finish writes, for a version without models
        os.makedirs(f"{warehouse}/versions/{version}")
        filesystem.write_json(
            files, f"{warehouse}/versions/{version}/_manifest.json", {"version": version, "models": {}}
        )

    assert Warehouse.open(warehouse).pointer() is None
    finish("v1")
    Warehouse.open(warehouse, spark).commit("v1", keep_versions=3)  # in a stage
    finish("v2")
    Warehouse.open(f"file:{warehouse}").commit("v2", keep_versions=3)  # in the entry script
    expected = Pointer("v2", ["v2", "v1"])
    assert Warehouse.open(warehouse, spark).pointer() == expected
    assert Warehouse.open(warehouse).pointer() == expected == Warehouse.open(f"file://localhost{warehouse}").pointer()
    assert Warehouse.on_this_machine("hdfs://namenode:8020/warehouse") is None  # elsewhere: only a stage reaches it
    assert sorted(os.listdir(warehouse)) == ["_current.json", "versions"]
