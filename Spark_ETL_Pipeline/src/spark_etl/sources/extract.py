"""Reading the four CSV extracts: header checks, explicit all-string schemas, malformed records kept."""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_etl import failures
from spark_etl.modelling import observations
from spark_etl.storage import filesystem

CORRUPT_RECORD_COLUMN = "_corrupt_record"
UTF_8 = "UTF-8"


@dataclass(frozen=True)
class Extract:
    """One production table as it arrives: its file name and the columns the pipeline needs."""

    table_name: str
    columns: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{self.table_name}.csv"


EXTRACTS: tuple[Extract, ...] = (
    Extract(
        "accounts",
        (
            "account_id",
            "company_name",
            "company_address",
            "contact_person",
            "contact_phone",
            "gender",
            "joining_date",
        ),
    ),
    Extract("skus", ("item_id", "item_name", "item_description", "item_cost_price", "item_retail_price")),
    Extract("invoices", ("invoice_id", "account_id", "date_issued", "payment_dates")),
    Extract("invoice_line_items", ("invoice_id", "item_id", "quantity")),
)


class ExtractError(failures.BadInputError):
    """An extract the run cannot start from: missing, unreadable, or without a required column."""


def extract_path(extracts_dir: str, extract: Extract) -> str:
    return f"{extracts_dir.rstrip('/')}/{extract.file_name}"


def local_extract_bytes(extracts_dir: str) -> int | None:
    """The size of the four extracts in a folder on this machine, known before any JVM starts (it chooses the run's
    compilers: `runner.is_quick_jit_run`); None for a folder elsewhere or a file missing, which staging reports."""
    folder = filesystem.local_folder(extracts_dir)
    if folder is None:
        return None
    try:
        return sum((folder / extract.file_name).stat().st_size for extract in EXTRACTS)
    except OSError:
        return None


def read_header(spark: SparkSession, path: str, encoding: str = UTF_8) -> list[str]:
    """Read only the header line, through Hadoop's file system so any URI (file:, hdfs:, s3a:) works. Names are
    trimmed, as values are: ` account_id ` names the account_id column."""
    jvm = filesystem.jvm(spark)
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    try:
        fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(hadoop_path):
            raise ExtractError(f"{path}: file not found")
        if fs.getFileStatus(hadoop_path).isDirectory():
            raise ExtractError(f"{path}: is a folder, expected a CSV file")
        stream = fs.open(hadoop_path)
    except ExtractError:
        raise
    except Exception as error:  # py4j surfaces Java IO errors as Py4JJavaError
        raise ExtractError(f"{path}: cannot be read ({type(error).__name__})") from error
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, encoding))
        first_line = reader.readLine()
    finally:
        stream.close()
    if first_line is None:
        raise ExtractError(f"{path}: empty file, expected a header row")
    return [name.strip() for name in next(csv.reader([first_line.lstrip("\ufeff")]))]


def split_size(spark: SparkSession, file_bytes: int) -> int:
    """The bytes per task Spark's file scan would cut this file into (FilePartition.maxSplitBytes)."""
    sql_conf = spark._jsparkSession.sessionState().conf()
    open_cost = int(sql_conf.filesOpenCostInBytes())
    bytes_per_core = (file_bytes + open_cost) // max(spark.sparkContext.defaultParallelism, 1)
    return min(int(sql_conf.filesMaxPartitionBytes()), max(open_cost, bytes_per_core))


# One whole CSV record on one line: fields either unquoted (no quote, comma or CR) or quoted (doubled quotes
# inside, no CR), separated by commas; at most the CR of a CRLF line ending after them.
WHOLE_RECORD_LINE = r'^(?:[^",\r]*|"(?:[^"\r]|"")*")(?:,(?:[^",\r]*|"(?:[^"\r]|"")*"))*\r?$'


@dataclass(frozen=True)
class LineScan:
    """What one scan of a file's lines found: lines that are not valid UTF-8, and whether every line is a whole
    record (see `scan_lines`)."""

    not_utf8: int
    are_records: bool


def scan_lines(spark: SparkSession, paths: Sequence[str]) -> list[LineScan]:
    """One scan of the files' lines (split at LF only), as raw bytes, for two questions per file; one Spark job
    for all of them, as each question is a count per file.

    Is every line valid UTF-8? Spark's readers replace bytes that are not with U+FFFD, silently; a line whose
    bytes differ from its own decoded and re-encoded text holds such bytes (a U+FFFD really in the file is valid
    and re-encodes to itself).

    Is every line one whole record that the line parser reads exactly as the whole-file parser does, so its lines
    can be parsed apart, in parallel splits? It is not when there is:

    - a line with a quote that is not a well-formed record (a quoted field holding a line break leaves its
      quote open; a stray quote opens one in the whole-file parser);
    - a CR that is not part of a CRLF line ending (the line reader would end a line there), or CRLF endings on
      some lines only (the whole-file parser keeps a CR the first line ending did not have);
    - a line of only whitespace (a malformed record to the whole-file parser, skipped by the line parser).
    """
    if not paths:
        return []
    # each file's lines tagged with its place in `paths` (not its name: Spark qualifies the names it reports)
    lines_df = functools.reduce(
        DataFrame.unionByName,
        [
            spark.read.option("lineSep", "\n").text(path).select(F.lit(index).alias("file"), "value")
            for index, path in enumerate(paths)
        ],
    )
    value = F.col("value")
    first_cr = F.instr(value, "\r")
    is_odd = (
        ((F.instr(value, '"') > 0) & ~value.rlike(WHOLE_RECORD_LINE))
        | ((first_cr > 0) & (first_cr < F.length(value)))
        | ((F.length(value) > 0) & value.rlike("^[\\x00-\\x20]+$"))
    )
    counted = lines_df.groupBy("file").agg(
        F.count(F.lit(1)).alias("lines"),
        F.count(F.when(is_odd, 1)).alias("odd"),
        F.count(F.when(value.endswith("\r"), 1)).alias("crlf"),
        F.count(F.when(not_utf8(value), 1)).alias("not_utf8"),
    )
    by_file = {row["file"]: row for row in counted.collect()}  # a row per file that has a line
    scans = []
    for index in range(len(paths)):
        counts = by_file.get(index)
        if counts is None:  # no line at all: nothing that is not UTF-8, nothing odd
            scans.append(LineScan(0, True))
            continue
        is_records = counts["odd"] == 0 and counts["crlf"] in (0, counts["lines"])
        scans.append(LineScan(int(counts["not_utf8"]), is_records))
    return scans


# a header with nothing after it is a few hundred bytes; a larger file is scanned, even if it turns out empty
HEADER_ONLY_MAX_BYTES = 64 * 1024


def is_header_only(spark: SparkSession, path: str) -> bool:
    """A valid UTF-8 file holding its header line and at most line breaks after it: no record to read, so neither
    its checks nor its count need a Spark job. A day's delta often has such files (no account or SKU changed)."""
    if filesystem.size(spark, path) > HEADER_ONLY_MAX_BYTES:
        return False
    try:
        text = filesystem.read_bytes(spark, path).decode(UTF_8)
    except UnicodeDecodeError:
        return False  # the scan names the bad line
    header, _, rest = text.partition("\n")
    return "\r" not in header.rstrip("\r") and rest.strip("\r\n") == ""


def not_utf8(value: Column) -> Column:
    """A line (read by the text source, which keeps the file's bytes) holding bytes that are not UTF-8."""
    return value.cast("binary") != F.encode(value, UTF_8)


def first_line_not_utf8(spark: SparkSession, path: str) -> int:
    """The number of the first line that is not valid UTF-8 (only asked once a scan has found one)."""
    flags = spark.read.option("lineSep", "\n").text(path).select(not_utf8(F.col("value")).alias("bad"))
    # in file order: zipWithIndex numbers the lines partition by partition, and first() takes the earliest
    _, index = flags.rdd.zipWithIndex().filter(lambda row_index: bool(row_index[0]["bad"])).first()
    return int(index) + 1


def read_extract(spark: SparkSession, extracts_dir: str, extract: Extract, encoding: str = "") -> DataFrame:
    """Read one extract as strings, mapping columns by header name, so typing and validation happen in SQL.

    Every column is read as a string under an explicit schema built from the checked header (no inference),
    and records with the wrong number of fields land in _corrupt_record instead of being dropped. A file larger
    than one split whose lines are whole records (`scan_lines`) is parsed in parallel splits, so the
    models above it run in parallel too; any other file is parsed whole, in one task, so quoted line breaks stay
    inside their field.

    Without an `encoding` the file must be valid UTF-8, and one that is not stops the run naming its first bad
    line: a reader would otherwise replace those bytes, changing values silently. With one, the file is decoded
    with it, whole.
    """
    return _read_checked(spark, extracts_dir, [extract], encoding)[extract.table_name][0]


def _read_checked(
    spark: SparkSession, extracts_dir: str, extracts: Sequence[Extract], encoding: str
) -> dict[str, tuple[DataFrame, bool]]:
    """`read_extract` for several extracts, by table name, with whether each file is header-only
    (`is_header_only`): every header is checked before any file is scanned, and the files are scanned together."""
    if encoding and not filesystem.jvm(spark).java.nio.charset.Charset.isSupported(encoding):
        raise ExtractError(f"--encoding {encoding}: not an encoding Java knows (e.g. UTF-8, ISO-8859-1, windows-1252)")
    paths = {extract.table_name: extract_path(extracts_dir, extract) for extract in extracts}
    headers = {
        extract.table_name: _checked_header(spark, paths[extract.table_name], extract, encoding) for extract in extracts
    }
    header_only = {name: not encoding and is_header_only(spark, path) for name, path in paths.items()}
    scanned = [name for name in paths if not encoding and not header_only[name]]
    in_splits = dict.fromkeys(paths, False)
    for name, lines in zip(scanned, scan_lines(spark, [paths[name] for name in scanned]), strict=True):
        path = paths[name]
        if lines.not_utf8:
            line_number = first_line_not_utf8(spark, path)
            raise ExtractError(
                f"{path}: line {line_number} is not valid UTF-8 ({lines.not_utf8} such line(s) in all); "
                "pass --encoding NAME if the extracts are encoded otherwise"
            )
        file_bytes = filesystem.size(spark, path)
        in_splits[name] = file_bytes > split_size(spark, file_bytes) and lines.are_records
    read: dict[str, tuple[DataFrame, bool]] = {}
    for extract in extracts:
        name = extract.table_name
        schema = StructType([StructField(column, StringType()) for column in [*headers[name], CORRUPT_RECORD_COLUMN]])
        raw_df = spark.read.csv(
            paths[name],
            schema=schema,
            header=True,
            multiLine=not in_splits[name],
            escape='"',
            encoding=encoding or UTF_8,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT_RECORD_COLUMN,
        )
        read[name] = (
            raw_df.select(*[raw_df[column] for column in [*extract.columns, CORRUPT_RECORD_COLUMN]]),
            header_only[name],
        )
    return read


def _checked_header(spark: SparkSession, path: str, extract: Extract, encoding: str) -> list[str]:
    """The file's header, once it names each of the extract's columns, each once."""
    header = read_header(spark, path, encoding or UTF_8)
    for column in extract.columns:
        if column not in header:
            raise ExtractError(f"{path}: missing column {column} (header: {','.join(header)})")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ExtractError(f"{path}: column {duplicated[0]} appears more than once in the header")
    return header


def register_extracts(spark: SparkSession, extracts_dir: str, encoding: str = "") -> dict[str, Observation | int]:
    """Check all four headers first, then register each extract as view raw_<table>.

    Returns, per table, an observation that reports the rows read once the first model has scanned the file, so
    the count costs no extra pass; or 0 for a header-only file (`is_header_only`), which no observation would
    report: adaptive execution prunes the scans of an input found empty.
    """
    if not filesystem.exists(spark, extracts_dir):
        raise ExtractError(f"{extracts_dir}: folder not found")
    raw_dfs = _read_checked(spark, extracts_dir, EXTRACTS, encoding)
    observations: dict[str, Observation | int] = {}
    for extract in EXTRACTS:
        (raw_df, header_only), view = raw_dfs[extract.table_name], f"raw_{extract.table_name}"
        if header_only:
            raw_df.createOrReplaceTempView(view)
            observations[extract.table_name] = 0
            continue
        observation = Observation(f"read_{extract.table_name}")
        raw_df.observe(observation, F.count(F.lit(1)).alias("rows")).createOrReplaceTempView(view)
        observations[extract.table_name] = observation
    return observations


def rows_read(spark: SparkSession, read_observations: Mapping[str, Observation | int]) -> dict[str, int]:
    """Rows read per table, as observed during the models' scans of the extracts (or known without a scan); a
    table whose scan adaptive execution pruned (an empty input elsewhere made it unnecessary) is counted by a
    query of its own."""
    counts = {}
    for table_name, observation in read_observations.items():
        if isinstance(observation, int):
            counts[table_name] = observation
            continue
        view = f"raw_{table_name}"
        metrics = observations.observed_or(spark, observation, lambda: {"rows": spark.table(view).count()})  # noqa: B023
        counts[table_name] = int(metrics["rows"])
    return counts
