"""Writing models to the warehouse and the run's CSV files, never leaving a half-written one behind."""

from __future__ import annotations

import re

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_etl import failures
from spark_etl.modelling import observations
from spark_etl.storage import filesystem


class WarehouseError(failures.BadInputError):
    """The warehouse cannot be written: the run stops before any model is built."""


def check_warehouse(spark: SparkSession, warehouse_dir: str) -> None:
    """Stop before any model is built when the warehouse cannot be written, saying why."""
    try:
        filesystem.check_writable_folder(spark, warehouse_dir)
    except filesystem.UnwritableFolderError as error:
        raise WarehouseError(f"cannot write the warehouse at {warehouse_dir}: {error}") from None


def model_path(warehouse_dir: str, layer: str, model_name: str) -> str:
    return f"{warehouse_dir.rstrip('/')}/{layer}/{model_name}"


# The schema of every Parquet folder this process wrote, so reading it back needs no schema-inference job (Spark
# runs one to read a footer whenever no schema is given). Stages sharing a kernel find their inputs here; a
# notebook run on its own infers them once.
_written_schemas: dict[str, StructType] = {}


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a column name written in a CSV header without quotes
PARTITION_FOLDER_COLUMN = "part"  # a partitioned model's folders are part=<value>/, the value column kept in the files


def write_parquet(df: DataFrame, path: str, partition_column: str = "") -> int:
    """Write `df` as Parquet to `path` via a temporary folder, and return the rows written; with
    `partition_column`, one folder `part=<value>` per value, each file still holding the column, so a folder read
    on its own has every column of the model.

    The row count is observed during the write itself, so logging it costs no second pass over the data.
    """
    spark = df.sparkSession
    observation = Observation(f"rows_{path.rpartition('/')[2]}")
    staging_path = filesystem.temporary_sibling(path)
    _written_schemas.pop(path, None)
    try:
        observed_df = df.observe(observation, F.count(F.lit(1)).alias("rows"))
        if partition_column:
            partition_value = F.col(partition_column)
            observed_df = observed_df.withColumn(PARTITION_FOLDER_COLUMN, partition_value)
            observed_df.write.partitionBy(PARTITION_FOLDER_COLUMN).mode("overwrite").parquet(staging_path)
        else:
            observed_df.write.mode("overwrite").parquet(staging_path)
        filesystem.replace(spark, staging_path, path)
        _written_schemas[path] = df.schema
    finally:
        if filesystem.exists(spark, staging_path):
            filesystem.delete(spark, staging_path)
    return observed_rows(spark, observation, df)


def observed_rows(spark: SparkSession, observation: Observation, df: DataFrame) -> int:
    """Rows counted while the write ran; counted again only if adaptive execution left the count out."""
    return int(observations.observed_or(spark, observation, lambda: {"rows": df.count()})["rows"])


def empty_frame(spark: SparkSession, schema: StructType | str) -> DataFrame:
    """No rows, with `schema` (a StructType or DDL), planned in the JVM alone. `createDataFrame([], schema)` would
    plan a Python RDD, and every job reading it would start Python workers (about a second, the first time)."""
    if isinstance(schema, str):  # parsed only: no job ever reads this frame
        schema = spark.createDataFrame([], schema).schema
    columns = [F.lit(None).cast(field.dataType).alias(field.name) for field in schema.fields]
    return spark.range(0).select(*columns)


def read_parquet(spark: SparkSession, path: str) -> DataFrame:
    schema = _written_schemas.get(path)
    return spark.read.parquet(path) if schema is None else spark.read.schema(schema).parquet(path)


def write_single_csv(df: DataFrame, path: str, sort_columns: list[str]) -> int:
    """Write `df` as one CSV file with a header, sorted, unknown values as empty fields; return its rows.

    Spark writes a folder of part files. Range partitions, one per core, each sorted, let every core sort and
    write a part, and the parts in partition order are the rows in order: they are joined after the header into
    one file beside the target, moved into place only when complete.
    """
    spark = df.sparkSession
    if any(not IDENTIFIER.match(column) for column in df.columns):
        raise ValueError(f"{path}: the header is written as plain column names, and {df.columns} are not all plain")
    observation = Observation(f"rows_{path.rpartition('/')[2]}")
    staging_dir = filesystem.temporary_sibling(path)
    joined_path = f"{staging_dir}.csv"
    try:
        parts = spark.sparkContext.defaultParallelism  # one per core: adaptive execution would make more, smaller
        (
            df.repartitionByRange(parts, *sort_columns)
            .sortWithinPartitions(*sort_columns)
            .observe(observation, F.count(F.lit(1)).alias("rows"))  # above the shuffle: not counted while sampled
            .write.mode("overwrite")
            .csv(staging_dir, header=False, nullValue="", emptyValue="", escape='"', encoding="UTF-8")
        )
        header = ",".join(df.columns) + "\n"
        filesystem.concatenate(spark, header, filesystem.part_files(spark, staging_dir, ".csv"), joined_path)
        filesystem.replace(spark, joined_path, path)
    finally:
        for leftover in (staging_dir, joined_path):
            if filesystem.exists(spark, leftover):
                filesystem.delete(spark, leftover)
    return observed_rows(spark, observation, df)


FEATURE_COLUMNS = (
    "inv_id",
    "acct_id",
    "inv_total",
    "inv_items",
    "acct_age",
    "num_inv_120d",
    "cum_tot_inv_acct",
    "is_late",
)
REJECT_COLUMNS = ("table_name", "reject_reason", "source_record")


def sibling_path(path: str, file_name: str) -> str:
    """A file beside `path` (rejects.csv and run_summary.json live beside the output CSV)."""
    return f"{path.rpartition('/')[0] or '.'}/{file_name}"


def export_features(spark: SparkSession, output_path: str) -> int:
    """The data scientists' file: the contract's eight columns, one row per invoice, sorted by inv_id."""
    features_df = spark.table("fct_invoice_features").select(*FEATURE_COLUMNS)
    return write_single_csv(features_df, output_path, ["inv_id"])


def export_rejects(spark: SparkSession, rejects_path: str) -> int:
    """Every quarantined record with its table, reason and original values, in a stable order."""
    rejects_df = spark.table("stg_rejects").select(*REJECT_COLUMNS)
    return write_single_csv(rejects_df, rejects_path, list(REJECT_COLUMNS))
