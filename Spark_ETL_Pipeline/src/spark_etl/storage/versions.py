"""Versions of the warehouse: each run writes the models it builds into a version folder of its own, and the
version becomes current only when a small pointer file is switched, after every stage has succeeded.

Plain Parquet has no transaction log (no Delta or Iceberg jars are reachable here), so atomicity comes from a
rename: `_current.json` is written beside itself and renamed over the old one (atomic on a local or HDFS file
system). Readers resolve every model through the current version's manifest, so a run that dies at any point
leaves the previous version whole and current, and what it wrote is an unreferenced folder that the next commit
removes (`Warehouse.vacuum`). The pointer, the commit, the rollback and the clean-up are warehouse.py's; this
module is a version being built: where its models go, how they are read, and its manifest.

Layout under the warehouse:

    _current.json                     {"version": V, "history": [V, older committed versions...]}
    versions/<V>/_manifest.json       every model of version V: schema, and where its files are
    versions/<V>/<layer>/<model>/     a model rewritten whole by the run that made V
    versions/<V>/<layer>/<model>/part=<month>/
                                      the partitions a run rewrote of a partitioned model; the manifest takes
                                      the others from earlier versions, so a run rewrites only what it touched
    versions/<V>/source/source_<table>/
                                      a JDBC run's source state: the hashes of the database's rows it read
                                      (source_state.py), committed with the models so the next incremental run
                                      and a rollback find the state the version's models were built from

A version is named after the run that made it (its run id, sortable by start time).
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from spark_etl import failures
from spark_etl.storage import filesystem, load

POINTER = "_current.json"
VERSIONS_DIR = "versions"
MANIFEST = "_manifest.json"
MODEL_RECORD = "_model.json"
PARTITION_PREFIX = "part="
# a version's records of its source (source_state.py), stored and committed like models, read by no model
SOURCE_LAYER = "source"
MODEL_LAYERS = ("staging", "intermediate", "marts", "monitoring", SOURCE_LAYER)


class VersionError(failures.BadInputError):
    """The warehouse's versions do not allow what was asked (an incremental run on an empty warehouse)."""


def version_dir(warehouse_dir: str, version: str) -> str:
    return f"{warehouse_dir.rstrip('/')}/{VERSIONS_DIR}/{version}"


def read_json(spark: SparkSession, path: str) -> dict[str, Any] | None:
    return filesystem.read_json(filesystem.HadoopFiles(spark), path)


@dataclass(frozen=True)
class Manifest:
    """One committed version: for every stored model, its schema and the folders holding its rows (keyed by
    partition value for a partitioned model, by "" otherwise), relative to the warehouse."""

    version: str
    models: dict[str, dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)

    def folders(self, model_name: str, partitions: Iterable[str] | None = None) -> list[str]:
        entry = self.models[model_name]["folders"]
        if partitions is None:
            return [entry[key] for key in sorted(entry)]
        return [entry[key] for key in sorted(set(partitions)) if key in entry]

    def partitions(self, model_name: str) -> list[str]:
        return sorted(key for key in self.models[model_name]["folders"] if key != "")

    def schema(self, model_name: str) -> StructType:
        return StructType.fromJson(json.loads(self.models[model_name]["schema"]))

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "models": self.models, **self.details}

    @staticmethod
    def from_json(document: dict[str, Any]) -> Manifest:
        details = {key: value for key, value in document.items() if key not in ("version", "models")}
        return Manifest(str(document["version"]), dict(document["models"]), details)


@dataclass
class RunVersion:
    """The version a run is building: where its models go, and how a model of it or of the version it builds
    on is read."""

    spark: SparkSession
    warehouse_dir: str
    version: str
    base: Manifest | None  # the current version when an incremental run started: what it merges its delta into
    is_incremental: bool = False

    @property
    def folder(self) -> str:
        return version_dir(self.warehouse_dir, self.version)

    def model_dir(self, layer: str, model_name: str) -> str:
        return f"{self.folder}/{layer}/{model_name}"

    def absolute(self, relative: str) -> str:
        return f"{self.warehouse_dir.rstrip('/')}/{relative}"

    def relative(self, path: str) -> str:
        return posixpath.relpath(path, self.warehouse_dir.rstrip("/"))

    def record(
        self, layer: str, model_name: str, schema: StructType, partitioned: bool, rewritten: Iterable[str]
    ) -> None:
        """Say what this run wrote of a model (the partitions it rewrote, for a partitioned one), for the
        manifest the run commits."""
        self._write_record(layer, model_name, schema.json(), partitioned, sorted(set(rewritten)))

    def keep(self, layer: str, model_name: str) -> None:
        """Say that this run takes a model whole from the version it builds on (its delta changes nothing there):
        the manifest it commits names the base version's folders, and nothing is written."""
        if self.base is None or model_name not in self.base.models:
            raise VersionError(f"{model_name}: there is no previous version to keep it from")
        entry = self.base.models[model_name]
        self._write_record(layer, model_name, entry["schema"], entry["partitioned"], [], kept=True)

    def _write_record(
        self, layer: str, model_name: str, schema_json: str, partitioned: bool, rewritten: list[str], kept: bool = False
    ) -> None:
        document: dict[str, Any] = {"layer": layer, "schema": schema_json, "partitioned": partitioned}
        document["rewritten"] = rewritten
        if kept:
            document["kept"] = True
        filesystem.write_text(
            self.spark, f"{self.model_dir(layer, model_name)}/{MODEL_RECORD}", json.dumps(document) + "\n"
        )

    def built(self, layer: str, model_name: str) -> dict[str, Any] | None:
        return read_json(self.spark, f"{self.model_dir(layer, model_name)}/{MODEL_RECORD}")

    def is_kept(self, layer: str, model_name: str) -> bool:
        """Whether this run took the model whole from the version it builds on (`keep`)."""
        return bool((self.built(layer, model_name) or {}).get("kept"))

    def rewritten(self, layer: str, model_name: str) -> list[str] | None:
        """The partitions this run rewrote of a partitioned model; None when it wrote the model whole."""
        record = self.built(layer, model_name)
        if record is None:
            raise VersionError(f"{model_name} has not been built in version {self.version}")
        return None if record["rewritten"] == ["*"] else [str(partition) for partition in record["rewritten"]]

    def source_records(self) -> list[str]:
        """The source records (SOURCE_LAYER) this run wrote: committed with its models."""
        folder = f"{self.folder}/{SOURCE_LAYER}"
        return [name for name in filesystem.list_names(self.spark, folder) if self.built(SOURCE_LAYER, name)]

    def folders(self, layer: str, model_name: str) -> dict[str, str]:
        """The model's folders in this run's version, merged with the base version's partitions that this run
        did not rewrite; relative to the warehouse."""
        record = self.built(layer, model_name)
        if record is None:
            raise VersionError(f"{model_name} has not been built in version {self.version}")
        model_dir = self.model_dir(layer, model_name)
        if record.get("kept") and self.base is not None:
            return dict(self.base.models[model_name]["folders"])
        if not record["partitioned"]:
            return {"": self.relative(model_dir)}
        written = {
            name.removeprefix(PARTITION_PREFIX): self.relative(f"{model_dir}/{name}")
            for name in filesystem.list_names(self.spark, model_dir)
            if name.startswith(PARTITION_PREFIX)
        }
        carried: dict[str, str] = {}
        if self.base is not None and model_name in self.base.models and record["rewritten"] != ["*"]:
            rewritten = set(record["rewritten"])
            carried = {
                partition: folder
                for partition, folder in self.base.models[model_name]["folders"].items()
                if partition not in rewritten
            }
        return {**carried, **written}

    def read(self, layer: str, model_name: str, partitions: Iterable[str] | None = None) -> DataFrame:
        """A model this run built (with the base version's partitions it did not rewrite)."""
        record = self.built(layer, model_name)
        if record is None:
            raise VersionError(f"{model_name} has not been built in version {self.version}")
        schema = StructType.fromJson(json.loads(record["schema"]))
        folders = self.folders(layer, model_name)
        keys = sorted(folders) if partitions is None else sorted(set(partitions) & set(folders))
        return read_folders(self.spark, [self.absolute(folders[key]) for key in keys], schema)

    def read_base(self, model_name: str, schema: StructType, partitions: Iterable[str] | None = None) -> DataFrame:
        """A model as the base version holds it (only the given partitions of a partitioned one); empty, with
        `schema`, when there is no base version (a full run)."""
        if self.base is None or model_name not in self.base.models:
            return load.empty_frame(self.spark, schema)
        folders = [self.absolute(folder) for folder in self.base.folders(model_name, partitions)]
        return read_folders(self.spark, folders, self.base.schema(model_name))

    def finish(self, model_names: list[str], details: dict[str, Any]) -> Manifest:
        """Write this version's manifest: the models named, and the source records the run wrote. The version is
        complete then, and becomes current only when it is committed (`Warehouse.commit`)."""
        models: dict[str, dict[str, Any]] = {}
        for model_name in [*model_names, *self.source_records()]:
            layer = self._layer_of(model_name)
            record = self.built(layer, model_name)
            if record is None:
                raise VersionError(f"{model_name} was not built in version {self.version}: nothing is committed")
            models[model_name] = {
                "layer": layer,
                "schema": record["schema"],
                "partitioned": record["partitioned"],
                "folders": self.folders(layer, model_name),
            }
        mode = "incremental" if self.is_incremental else "full"
        manifest = Manifest(self.version, models, {**details, "mode": mode, "committed_at": _utc_now()})
        filesystem.write_json(filesystem.HadoopFiles(self.spark), f"{self.folder}/{MANIFEST}", manifest.as_json())
        return manifest

    def _layer_of(self, model_name: str) -> str:
        for layer in MODEL_LAYERS:
            if filesystem.exists(self.spark, f"{self.model_dir(layer, model_name)}/{MODEL_RECORD}"):
                return layer
        raise VersionError(f"{model_name} was not built in version {self.version}: nothing is committed")


def read_folders(spark: SparkSession, folders: list[str], schema: StructType) -> DataFrame:
    """Parquet folders read as one DataFrame with a known schema (no inference job); none gives an empty one.
    Each folder is given whole, so Spark infers no partition column from a `part=` name."""
    if not folders:
        return load.empty_frame(spark, schema)
    return spark.read.schema(schema).parquet(*folders)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_model(
    run_version: RunVersion,
    layer: str,
    model_name: str,
    model_df: DataFrame,
    partition_column: str = "",
    rewritten: Iterable[str] | None = None,
) -> int:
    """Write a model into the run's version (a partitioned one as one folder per partition value, only the
    partitions in `rewritten` when given) and record it; return the rows written."""
    path = run_version.model_dir(layer, model_name)
    rows = load.write_parquet(model_df, path, partition_column=partition_column)
    run_version.record(
        layer, model_name, model_df.schema, bool(partition_column), ["*"] if rewritten is None else rewritten
    )
    return rows
