"""The one file-system layer: Hadoop's API, so every path may be any Hadoop URI (file:, hdfs:, s3a:, abfss:), and
the same few operations on this machine without Spark (`LocalFiles`) for the entry script, which has none.

`local_folder` is the one answer to "is this path on this machine"; `Files.write_atomically` the one atomic write
(a file written beside its target, then renamed over it: a reader sees the old file or the new one, whole).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:  # the lock and the entry script's checks use this module before (or without) Spark
    from pyspark.sql import SparkSession


def is_plain_path(path: str) -> bool:
    """A path without a scheme, as opposed to a URI (file:, hdfs:, s3a:, ...)."""
    return "://" not in path and not path.startswith("file:")


def local_folder(path: str) -> Path | None:
    """Where a plain path or a `file:` URI of this machine (no host, or localhost) is, absolute; None for any other
    URI."""
    if is_plain_path(path):
        return Path(path).absolute()
    parsed = urlparse(path)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path)).absolute()
    return None


def is_local(path: str) -> bool:
    """Whether the entry script reaches `path` without Spark (`local_folder`)."""
    return local_folder(path) is not None


def qualify(path: str) -> str:
    """Make a local relative path absolute: the JVM may have been started from another folder."""
    return os.path.abspath(path) if is_plain_path(path) else path


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
# a leftover names the run that left it.
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


# what a file written beside its target is called until it is renamed over it: `<name>.tmp_<random>`
TEMPORARY_MARK = ".tmp_"


def temporary_name(path: str) -> str:
    return f"{path}{TEMPORARY_MARK}{uuid.uuid4().hex[:12]}"


def write_beside(path: Path, text: str) -> Path:
    """`text` (UTF-8) in a new file beside `path`, on disk before this returns, readable by all (whoever may run
    the pipeline reads the pointer and the lock's holder): what a rename then puts in place whole."""
    temporary = Path(temporary_name(str(path)))
    with open(temporary, "x", encoding="utf-8") as handle:
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)
        except BaseException:
            temporary.unlink()
            raise
    return temporary


class Files(Protocol):
    """The few operations on small files that a warehouse's pointer, manifests and clean-up need: through Hadoop
    in a stage (`HadoopFiles`, any URI), or plain local calls in the entry script (`LocalFiles`)."""

    def list_names(self, folder: str) -> list[str]: ...

    def read_text(self, path: str) -> str | None: ...

    def write_atomically(self, path: str, text: str) -> None: ...

    def delete(self, path: str) -> None: ...


class HadoopFiles:
    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def list_names(self, folder: str) -> list[str]:
        return list_names(self.spark, folder)

    def read_text(self, path: str) -> str | None:
        return read_text(self.spark, path)

    def write_atomically(self, path: str, text: str) -> None:
        temporary = temporary_name(path)
        write_text(self.spark, temporary, text)
        replace(self.spark, temporary, path)

    def delete(self, path: str) -> None:
        delete(self.spark, path)


class LocalFiles:
    """Paths on this machine: plain paths and `file:` URIs (`local_folder`)."""

    @staticmethod
    def _local(path: str) -> Path:
        folder = local_folder(path)
        if folder is None:
            raise ValueError(f"{path} is not on this machine")
        return folder

    def list_names(self, folder: str) -> list[str]:
        local = self._local(folder)
        return sorted(os.listdir(local)) if local.is_dir() else []

    def read_text(self, path: str) -> str | None:
        try:
            return self._local(path).read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_atomically(self, path: str, text: str) -> None:
        target = self._local(path)
        target.parent.mkdir(parents=True, exist_ok=True)  # as Hadoop's create does
        os.replace(write_beside(target, text), target)

    def delete(self, path: str) -> None:
        local = self._local(path)
        if local.is_dir() and not local.is_symlink():
            shutil.rmtree(local, ignore_errors=True)
        elif os.path.lexists(local):
            local.unlink()


def read_json(files: Files, path: str) -> dict[str, Any] | None:
    """A small JSON document (a pointer, a manifest, a record); None when it does not exist."""
    text = files.read_text(path)
    return None if text is None else dict(json.loads(text))


def write_json(files: Files, path: str, document: dict[str, Any], sort_keys: bool = True) -> None:
    """A small JSON document, written atomically (`Files.write_atomically`), indented, ending in a newline."""
    files.write_atomically(path, json.dumps(document, indent=2, sort_keys=sort_keys) + "\n")
