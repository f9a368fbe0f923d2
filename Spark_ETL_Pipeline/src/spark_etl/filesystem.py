"""Hadoop file-system operations, so every path may be any Hadoop URI (file:, hdfs:, s3a:, abfss:)."""

from __future__ import annotations

import os
import uuid
from typing import Any

from pyspark.sql import SparkSession


def is_local(path: str) -> bool:
    """A plain path on this machine, as opposed to a URI (file:, hdfs:, s3a:, ...)."""
    return "://" not in path and not path.startswith("file:")


def qualify(path: str) -> str:
    """Make a local relative path absolute: the JVM may have been started from another folder."""
    return os.path.abspath(path) if is_local(path) else path


def jvm(spark: SparkSession) -> Any:
    """The driver JVM's classes (py4j), for the Hadoop APIs PySpark does not wrap."""
    gateway_jvm = spark.sparkContext._jvm
    if gateway_jvm is None:
        raise RuntimeError("the Spark session has no JVM (was it stopped?)")
    return gateway_jvm


def _hadoop(spark: SparkSession, path: str) -> tuple[Any, Any]:
    hadoop_path = jvm(spark).org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def exists(spark: SparkSession, path: str) -> bool:
    fs, hadoop_path = _hadoop(spark, path)
    return bool(fs.exists(hadoop_path))


def size(spark: SparkSession, path: str) -> int:
    fs, hadoop_path = _hadoop(spark, path)
    return int(fs.getFileStatus(hadoop_path).getLen())


def delete(spark: SparkSession, path: str) -> None:
    fs, hadoop_path = _hadoop(spark, path)
    fs.delete(hadoop_path, True)


def list_names(spark: SparkSession, folder: str) -> list[str]:
    """The names in `folder`, sorted; none when it does not exist."""
    fs, folder_path = _hadoop(spark, folder)
    if not fs.exists(folder_path):
        return []
    return sorted(str(status.getPath().getName()) for status in fs.listStatus(folder_path))


def read_text(spark: SparkSession, path: str) -> str | None:
    """A small UTF-8 file's text (a pointer or a manifest); None when it does not exist."""
    fs, hadoop_path = _hadoop(spark, path)
    if not fs.exists(hadoop_path):
        return None
    stream = fs.open(hadoop_path)
    try:
        return str(jvm(spark).org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def read_bytes(spark: SparkSession, path: str) -> bytes:
    """A small file's bytes, as they are (no decoding)."""
    fs, hadoop_path = _hadoop(spark, path)
    stream = fs.open(hadoop_path)
    try:
        return bytes(jvm(spark).org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Create or overwrite a small UTF-8 file."""
    fs, hadoop_path = _hadoop(spark, path)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


# The run a process works for (set by the entry script for its kernels); it is part of every temporary name, so
# a later run can tell a dead run's leftovers from a live run's work in progress.
RUN_ID_ENV = "SPARK_ETL_RUN_ID"
ADHOC_RUN_ID = "adhoc"  # a notebook run by hand, outside the entry script


class UnwritableFolderError(Exception):
    """A folder the run must write to cannot be written; the message says why, in a few words."""


# Hadoop's exceptions for a path that is, or sits under, a regular file
NOT_A_DIRECTORY = (
    "org.apache.hadoop.fs.ParentNotDirectoryException",
    "org.apache.hadoop.fs.FileAlreadyExistsException",
)


def check_writable_folder(spark: SparkSession, folder: str) -> None:
    """Create `folder` if needed and write and delete a probe file in it, so an unwritable location stops the run
    before any model is built, with a reason instead of a Java stack."""
    from py4j.protocol import Py4JJavaError

    fs, folder_path = _hadoop(spark, folder)
    probe = jvm(spark).org.apache.hadoop.fs.Path(folder_path, f"_probe_{uuid.uuid4().hex[:12]}")
    try:
        if not fs.mkdirs(folder_path):
            raise UnwritableFolderError("the folder cannot be created")
        fs.create(probe, True).close()
        fs.delete(probe, False)
    except Py4JJavaError as error:
        java_error = error.java_exception
        if java_error.getClass().getName() in NOT_A_DIRECTORY:
            raise UnwritableFolderError("not a directory") from None
        message = str(java_error.getMessage() or java_error.getClass().getName())
        raise UnwritableFolderError(message.splitlines()[0]) from None


def temporary_sibling(path: str) -> str:
    """A fresh path beside `path`, named for the run; Spark and Hadoop skip names starting with '_' when listing
    data."""
    parent, _, name = path.rstrip("/").rpartition("/")
    run_id = os.environ.get(RUN_ID_ENV) or ADHOC_RUN_ID
    return f"{parent}/_tmp_{name}__{run_id}__{uuid.uuid4().hex[:12]}"


def remove_temporaries(spark: SparkSession, folder: str, run_ids: list[str]) -> list[str]:
    """Delete the temporary folders and files that the given (dead) runs left in `folder`'s subfolders; return
    what was deleted."""
    fs, folder_path = _hadoop(spark, folder)
    if not run_ids or not fs.exists(folder_path):
        return []
    markers = tuple(f"__{run_id}__" for run_id in run_ids)
    removed = []
    for layer in fs.listStatus(folder_path):
        if not layer.isDirectory():
            continue
        for entry in fs.listStatus(layer.getPath()):
            name = entry.getPath().getName()
            if name.startswith("_tmp_") and any(marker in name for marker in markers):
                fs.delete(entry.getPath(), True)
                removed.append(str(entry.getPath().toString()))
    return sorted(removed)


def replace(spark: SparkSession, source: str, target: str) -> None:
    """Move `source` over `target`: atomic for a local file, delete-then-rename elsewhere (a folder)."""
    fs, source_path = _hadoop(spark, source)
    _, target_path = _hadoop(spark, target)
    if fs.getUri().getScheme() == "file" and fs.getFileStatus(source_path).isFile():
        os.replace(source_path.toUri().getPath(), target_path.toUri().getPath())
        return
    if fs.exists(target_path):
        fs.delete(target_path, True)
    fs.mkdirs(target_path.getParent())
    if not fs.rename(source_path, target_path):
        raise OSError(f"could not move {source} to {target}")


def part_files(spark: SparkSession, folder: str, suffix: str) -> list[str]:
    """The data files Spark wrote into `folder`, in the order of the partitions that wrote them (part-NNNNN)."""
    fs, folder_path = _hadoop(spark, folder)
    names = [
        str(status.getPath().getName())
        for status in fs.listStatus(folder_path)
        if status.getPath().getName().startswith("part-") and status.getPath().getName().endswith(suffix)
    ]
    return [f"{folder.rstrip('/')}/{name}" for name in sorted(names)]


COPY_BUFFER_BYTES = 4 * 1024 * 1024


def concatenate(spark: SparkSession, first_line: str, sources: list[str], target: str) -> None:
    """Write `first_line` (UTF-8) and then each source's bytes, in order, to a new file `target`. The bytes are
    copied inside the JVM (Hadoop's IOUtils), never through Python."""
    gateway_jvm = jvm(spark)
    fs, target_path = _hadoop(spark, target)
    stream = fs.create(target_path, False)
    try:
        stream.write(bytearray(first_line.encode("utf-8")))
        for source in sources:
            source_fs, source_path = _hadoop(spark, source)
            source_stream = source_fs.open(source_path)
            try:
                gateway_jvm.org.apache.hadoop.io.IOUtils.copyBytes(source_stream, stream, COPY_BUFFER_BYTES, False)
            finally:
                source_stream.close()
    finally:
        stream.close()
