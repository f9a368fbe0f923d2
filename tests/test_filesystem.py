"""Path arithmetic of filesystem.py that needs no Spark."""

from __future__ import annotations

from spark_etl import filesystem


def test_published_path_names_the_file_in_the_published_folder() -> None:
    assert filesystem.published_path("/out/_tmp_run_ab12/features.csv", "/out") == "/out/features.csv"
    assert filesystem.published_path("hdfs:///x/_tmp_run_1/rejects.csv", "hdfs:///x/") == "hdfs:///x/rejects.csv"
    assert filesystem.published_path("../data_outputs/rejects.csv", "") == "../data_outputs/rejects.csv"
