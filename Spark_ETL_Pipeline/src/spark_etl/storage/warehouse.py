"""The warehouse as one object, shaped like Delta Lake's Python API: open it, read its current version, begin a
version, commit it, roll back, vacuum what nothing refers to, lock it for one command.

The layout of versions, manifests and the pointer, and why a rename makes a commit atomic, are in versions.py and
docs/design.md ("Warehouse versions"). Every file operation goes through one `filesystem.Files`: Hadoop's API in a
stage (any URI), plain calls in the entry script for a warehouse on this machine (no Spark there).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from spark_etl.modelling import registry
from spark_etl.storage import filesystem, warehouse_lock
from spark_etl.storage.versions import (
    MANIFEST,
    MODEL_LAYERS,
    PARTITION_PREFIX,
    POINTER,
    VERSIONS_DIR,
    Manifest,
    RunVersion,
    VersionError,
    version_dir,
)

DEFAULT_KEEP_VERSIONS = 3
BUILDING = "_building.json"  # the version a run is building, for stage notebooks run by hand without `version`


@dataclass(frozen=True)
class Pointer:
    """`_current.json`: the current version and the committed versions kept, newest first (it among them)."""

    version: str
    history: list[str]


class Warehouse:
    """One warehouse at `root`, read and written through `files`; a version is built with `spark`."""

    def __init__(self, root: str, files: filesystem.Files, spark: SparkSession | None = None) -> None:
        self.root = root.rstrip("/")
        self.files = files
        self.spark = spark

    @classmethod
    def open(cls, root: str, spark: SparkSession | None = None) -> Warehouse:
        """Through Spark's Hadoop file system when a session is given (any URI), else on this machine."""
        files: filesystem.Files = filesystem.LocalFiles() if spark is None else filesystem.HadoopFiles(spark)
        return cls(filesystem.qualify(root), files, spark)

    def _session(self) -> SparkSession:
        if self.spark is None:
            raise RuntimeError(f"{self.root} was opened without Spark: a version is built in a stage")
        return self.spark

    @classmethod
    def on_this_machine(cls, root: str) -> Warehouse | None:
        """The warehouse opened without Spark when it is on this machine (`filesystem.local_folder`); None when it
        is elsewhere, where only a stage reaches it."""
        return cls.open(root) if filesystem.is_local(root) else None

    # reading

    def pointer(self) -> Pointer | None:
        """The current version and the history; None before the first commit."""
        document = filesystem.read_json(self.files, f"{self.root}/{POINTER}")
        if document is None:
            return None
        return Pointer(str(document["version"]), [str(version) for version in document["history"]])

    def manifest(self, version: str) -> Manifest | None:
        document = filesystem.read_json(self.files, f"{version_dir(self.root, version)}/{MANIFEST}")
        return None if document is None else Manifest.from_json(document)

    def current(self) -> tuple[Manifest | None, list[str]]:
        """The current version's manifest (None on a warehouse no run has committed to) and the history."""
        pointer = self.pointer()
        if pointer is None:
            return None, []
        manifest = self.manifest(pointer.version)
        if manifest is None:
            raise VersionError(f"{self.root}/{POINTER} names version {pointer.version}, which has no manifest")
        return manifest, pointer.history

    def output_rows(self, version: str) -> int | None:
        """The invoices a committed version holds (its manifest's output_rows); None when not recorded."""
        manifest = self.manifest(version)
        rows = None if manifest is None else manifest.details.get("output_rows")
        return rows if isinstance(rows, int) else None

    # a run's version

    def begin(self, version: str, incremental: bool) -> RunVersion:
        """Begin the run's version on the current one, which an incremental run requires. Without a `version` (a
        notebook run by hand) make one up and note it in the warehouse for the later stages (`resume`)."""
        base, _ = self.current()
        if incremental and base is None:
            raise VersionError(
                f"--incremental needs a warehouse a full run has published to; {self.root} has no version yet "
                "(run once without --incremental)"
            )
        if incremental and base is not None:
            check_layout(base)
        if not version:
            version = f"manual_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}_{uuid.uuid4().hex[:6]}"
            note = {"version": version, "incremental": incremental, "base": None if base is None else base.version}
            filesystem.write_json(self.files, f"{self.root}/{BUILDING}", note)
        return RunVersion(self._session(), self.root, version, base if incremental else None, incremental)

    def resume(self, version: str, incremental: bool) -> RunVersion:
        """The version the staging stage began (the later stages): the one named, or without a name (by hand) the
        one it noted in the warehouse."""
        base, _ = self.current()
        if version:
            return RunVersion(self._session(), self.root, version, base if incremental else None, incremental)
        building = self.building()
        if building is None:
            raise VersionError(f"no version is being built in {self.root}: run 01_staging first")
        if building["base"] != (None if base is None else base.version):
            raise VersionError(f"the current version of {self.root} changed since 01_staging began its version")
        incremental = bool(building["incremental"])
        version = str(building["version"])
        return RunVersion(self._session(), self.root, version, base if incremental else None, incremental)

    def building(self) -> dict[str, Any] | None:
        """The note 01_staging run by hand left of the version it began (`begin`); None when no such run is on."""
        return filesystem.read_json(self.files, f"{self.root}/{BUILDING}")

    def commit(self, version: str, keep_versions: int) -> list[str]:
        """Make `version` current: the pointer names it (written beside itself and renamed over the old one, so it
        is the old document or the new one, never half), with the newest `keep_versions` committed versions as
        its history; then `vacuum`. Returns the history. The one commit, for the entry script and a notebook run
        by hand alike; only while holding the lock, once the version's manifest is written (`RunVersion.finish`)."""
        if self.manifest(version) is None:
            raise VersionError(f"version {version} has no manifest in {self.root}: nothing is committed")
        pointer = self.pointer()
        history = [] if pointer is None else pointer.history
        kept = [version, *[older for older in history if older != version]][: max(1, keep_versions)]
        self._write_pointer(Pointer(version, kept))
        self.files.delete(f"{self.root}/{BUILDING}")
        self.vacuum()
        return kept

    def rollback(self) -> tuple[str, str]:
        """Make the previous committed version current again; returns (the version left, the one made current).
        The versions kept after it are the history's rest."""
        pointer = self.pointer()
        if pointer is None or len(pointer.history) < 2:
            raise VersionError(f"--rollback: {self.root} has no earlier version kept")
        self._write_pointer(Pointer(pointer.history[1], pointer.history[1:]))
        return pointer.history[0], pointer.history[1]

    def _write_pointer(self, pointer: Pointer) -> None:
        document = {"version": pointer.version, "history": pointer.history}
        filesystem.write_json(self.files, f"{self.root}/{POINTER}", document)

    # clean-up and the lock

    def vacuum(self) -> list[str]:
        """Delete every version, model and partition folder that no kept version's manifest refers to (versions
        past --keep-versions, and whatever a dead run left) and pointer files a killed commit left half-way;
        returns what went. Only while holding the lock."""
        pointer = self.pointer()
        kept = [] if pointer is None else pointer.history
        referenced: set[str] = set()
        for version in kept:
            manifest = self.manifest(version)
            if manifest is not None:
                for entry in manifest.models.values():
                    referenced.update(entry["folders"].values())
        pointer_leftovers = f"{POINTER}{filesystem.TEMPORARY_MARK}"
        removed = [
            f"{self.root}/{name}" for name in self.files.list_names(self.root) if name.startswith(pointer_leftovers)
        ]
        if pointer is not None:  # before the first commit every version folder may be a live run's
            removed += self._unreferenced_folders(kept, referenced)
        for path in removed:
            self.files.delete(path)
        return removed

    def _unreferenced_folders(self, kept: list[str], referenced: set[str]) -> list[str]:
        versions_root = f"{self.root}/{VERSIONS_DIR}"
        removed: list[str] = []
        for version in self.files.list_names(versions_root):
            if version in kept:
                continue
            version_root = f"{versions_root}/{version}"
            prefix = f"{VERSIONS_DIR}/{version}/"
            if not any(folder.startswith(prefix) for folder in referenced):
                removed.append(version_root)
                continue
            # a version past --keep-versions whose months a kept version still takes: only those months stay
            for layer in self.files.list_names(version_root):
                if layer not in MODEL_LAYERS:
                    removed.append(f"{version_root}/{layer}")  # its manifest: the version itself is gone
                    continue
                for model_name in self.files.list_names(f"{version_root}/{layer}"):
                    model_prefix = f"{prefix}{layer}/{model_name}"
                    model_dir = f"{version_root}/{layer}/{model_name}"
                    if model_prefix in referenced:
                        continue
                    if not any(folder.startswith(model_prefix + "/") for folder in referenced):
                        removed.append(model_dir)
                        continue
                    removed += [
                        f"{model_dir}/{partition}"
                        for partition in self.files.list_names(model_dir)
                        if partition.startswith(PARTITION_PREFIX) and f"{model_prefix}/{partition}" not in referenced
                    ]
        return removed

    def lock(self, run_id: str, output: Path) -> warehouse_lock.WarehouseLock:
        """One command at a time (`with warehouse.lock(...)`): warehouse_lock.py says where and how."""
        return warehouse_lock.WarehouseLock(self.root, run_id, output)


def check_layout(base: Manifest) -> None:
    """An incremental run merges into the current version's models: each must have the columns and partitioning
    this pipeline writes. A version an older release wrote may not, and then only a full run can go on."""
    for declared in registry.MODELS:
        entry = base.models.get(declared.name)
        if entry is None:
            continue
        columns = [name for name, _ in registry.doc_columns(declared)]
        if base.schema(declared.name).fieldNames() != columns or entry["partitioned"] != bool(declared.partition_by):
            raise VersionError(
                f"version {base.version} stores {declared.name} in another layout than this pipeline writes "
                "(written by an earlier release): run once without --incremental"
            )


def commit_in_kernel(root: str, version: str, keep_versions: int, master: str, spark_conf: dict[str, str]) -> None:
    """The entry script's commit of a warehouse it cannot reach without Spark, run in the run's kernel
    (`runner.SharedKernel.call`) on the session the stages left there, or a new one on that JVM."""
    from spark_etl.runtime.session import spark_session

    spark = SparkSession.getActiveSession() or spark_session("commit", master, spark_conf)
    Warehouse.open(root, spark).commit(version, keep_versions)
