"""Reading the four CSV extracts: header checks, explicit all-string schemas, malformed records kept."""

from __future__ import annotations

import csv
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_etl import filesystem, observations

CORRUPT_RECORD_COLUMN = "_corrupt_record"


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


class ExtractError(Exception):
    """An extract the run cannot start from: missing, unreadable, or without a required column."""


def extract_path(extracts_dir: str, extract: Extract) -> str:
    return f"{extracts_dir.rstrip('/')}/{extract.file_name}"


def read_header(spark: SparkSession, path: str) -> list[str]:
    """Read only the header line, through Hadoop's file system so any URI (file:, hdfs:, s3a:) works."""
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
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        first_line = reader.readLine()
    finally:
        stream.close()
    if first_line is None:
        raise ExtractError(f"{path}: empty file, expected a header row")
    return next(csv.reader([first_line.lstrip("\ufeff")]))


def split_size(spark: SparkSession, file_bytes: int) -> int:
    """The bytes per task Spark's file scan would cut this file into (FilePartition.maxSplitBytes)."""
    sql_conf = spark._jsparkSession.sessionState().conf()
    open_cost = int(sql_conf.filesOpenCostInBytes())
    bytes_per_core = (file_bytes + open_cost) // max(spark.sparkContext.defaultParallelism, 1)
    return min(int(sql_conf.filesMaxPartitionBytes()), max(open_cost, bytes_per_core))


# One whole CSV record on one line: fields either unquoted (no quote, comma or CR) or quoted (doubled quotes
# inside, no CR), separated by commas; at most the CR of a CRLF line ending after them.
WHOLE_RECORD_LINE = r'^(?:[^",\r]*|"(?:[^"\r]|"")*")(?:,(?:[^",\r]*|"(?:[^"\r]|"")*"))*\r?$'


def lines_are_records(spark: SparkSession, path: str) -> bool:
    """Whether every line of the file is one whole record that the line parser reads exactly as the whole-file
    parser does, so its lines can be parsed apart, in parallel splits. One scan of the lines (split at LF only)
    looks for anything that would read differently:

    - a line with a quote that is not a well-formed record (a quoted field holding a line break leaves its
      quote open; a stray quote opens one in the whole-file parser);
    - a CR that is not part of a CRLF line ending (the line reader would end a line there), or CRLF endings on
      some lines only (the whole-file parser keeps a CR the first line ending did not have);
    - a line of only whitespace (a malformed record to the whole-file parser, skipped by the line parser).
    """
    lines_df = spark.read.option("lineSep", "\n").text(path)
    value = F.col("value")
    first_cr = F.instr(value, "\r")
    is_odd = (
        ((F.instr(value, '"') > 0) & ~value.rlike(WHOLE_RECORD_LINE))
        | ((first_cr > 0) & (first_cr < F.length(value)))
        | ((F.length(value) > 0) & value.rlike("^[\\x00-\\x20]+$"))
    )
    counts = lines_df.agg(
        F.count(F.lit(1)).alias("lines"),
        F.count(F.when(is_odd, 1)).alias("odd"),
        F.count(F.when(value.endswith("\r"), 1)).alias("crlf"),
    ).first()
    assert counts is not None
    return counts["odd"] == 0 and counts["crlf"] in (0, counts["lines"])


def read_extract(spark: SparkSession, extracts_dir: str, extract: Extract) -> DataFrame:
    """Read one extract as strings, mapping columns by header name, so typing and validation happen in SQL.

    Every column is read as a string under an explicit schema built from the checked header (no inference),
    and records with the wrong number of fields land in _corrupt_record instead of being dropped. A file larger
    than one split whose lines are whole records (`lines_are_records`) is parsed in parallel splits, so the
    models above it run in parallel too; any other file is parsed whole, in one task, so quoted line breaks stay
    inside their field.
    """
    path = extract_path(extracts_dir, extract)
    header = read_header(spark, path)
    for column in extract.columns:
        if column not in header:
            raise ExtractError(f"{path}: missing column {column} (header: {','.join(header)})")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ExtractError(f"{path}: column {duplicated[0]} appears more than once in the header")
    schema = StructType([StructField(name, StringType()) for name in [*header, CORRUPT_RECORD_COLUMN]])
    file_bytes = filesystem.size(spark, path)
    in_splits = file_bytes > split_size(spark, file_bytes) and lines_are_records(spark, path)
    raw_df = spark.read.csv(
        path,
        schema=schema,
        header=True,
        multiLine=not in_splits,
        escape='"',
        encoding="UTF-8",
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=CORRUPT_RECORD_COLUMN,
    )
    return raw_df.select(*[raw_df[name] for name in [*extract.columns, CORRUPT_RECORD_COLUMN]])


def register_extracts(spark: SparkSession, extracts_dir: str) -> dict[str, Observation]:
    """Check all four headers first, then register each extract as view raw_<table>.

    Returns an observation per table that reports the rows read once the first model has scanned the file,
    so the count costs no extra pass.
    """
    if not filesystem.exists(spark, extracts_dir):
        raise ExtractError(f"{extracts_dir}: folder not found")
    raw_dfs = {extract.table_name: read_extract(spark, extracts_dir, extract) for extract in EXTRACTS}
    observations = {}
    for table_name, raw_df in raw_dfs.items():
        observation = Observation(f"read_{table_name}")
        raw_df.observe(observation, F.count(F.lit(1)).alias("rows")).createOrReplaceTempView(f"raw_{table_name}")
        observations[table_name] = observation
    return observations


def rows_read(spark: SparkSession, read_observations: dict[str, Observation]) -> dict[str, int]:
    """Rows read per table, as observed during the models' scans of the extracts; a table whose scan adaptive
    execution pruned (an empty input elsewhere made it unnecessary) is counted by a query of its own."""
    counts = {}
    for table_name, observation in read_observations.items():
        view = f"raw_{table_name}"
        metrics = observations.observed_or(spark, observation, lambda: {"rows": spark.table(view).count()})  # noqa: B023
        counts[table_name] = int(metrics["rows"])
    return counts
