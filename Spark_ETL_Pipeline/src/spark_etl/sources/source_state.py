"""The database compared with what the warehouse was built from, so that an incremental run from PostgreSQL takes
in only what changed there, deletions included, without an audit column in the source.

Every JDBC run, full or incremental, stores in its warehouse version the *source state* of each table it read: one
row per group of source rows that the staging models judge together, with a hash of the group's rows. A group is
a key as staging parses it, with all its copies (` 7` and `7` are one account; two copies of a key are one group,
so the duplicate-key rule sees both again when either changes), or all the lines of one invoice. A row whose key
staging cannot parse is a group of its own, named by its hash. PostgreSQL hashes each row in the snapshot
(`jdbc.text_subquery`); a group's hash is the hash of its rows' hashes in sorted order, so it does not depend on
the order the rows are read in.

An incremental run compares the snapshot's groups with the previous version's state (`changes`):
- a group that is new, or whose hash differs, is *the delta*: its rows go through validation and merging as a
  CSV delta's rows do; every other row is left out of the raw_<table> views;
- a group the previous version has and the snapshot has not was deleted from the source;
- the keys of changed and deleted groups are *withdrawn* (registry.WITHDRAWN_VIEWS): the merging staging models
  drop the stored rows of those keys, and the delta's usable rows, if any, take their place. So a key whose rows
  were deleted, or changed into rows staging rejects, is gone, as it is from a full run over the same database
  (the CSV path keeps the stored row of a rejected delta row: it has no way to know the source dropped it);
- the lines of an invoice that was not usable and now is are delivered again even when they did not change
  (`redelivered`): when they were read before, they were rejected as `unknown_invoice` and not stored.
Rejected rows are in the state like the others, so an unchanged bad row is not delivered (and rejected) again:
the run's rejects are its delta's bad rows.

The state goes into the run's version (versions.SOURCE_LAYER) and is committed with its models, so a rollback
brings back the state its models were built from. A version made from CSV extracts has none: an incremental run
from the database cannot start from it.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_etl.modelling import registry
from spark_etl.sources import jdbc
from spark_etl.sources.extract import CORRUPT_RECORD_COLUMN, EXTRACTS
from spark_etl.storage import filesystem, load, versions

GROUP_ID = "group_id"  # "k" + the parsed key, or "h" + the row hash for a row whose key staging rejects
SOURCE_KEY = "source_key"  # the key as staging parses it, as text; null for a row whose key it rejects
GROUP_HASH = "group_hash"
CHANGE = "change"
ADDED, CHANGED, DELETED, REDELIVERED = "added", "changed", "deleted", "redelivered"
CHANGE_KINDS = (ADDED, CHANGED, DELETED, REDELIVERED)
STATE_SCHEMA = StructType([StructField(name, StringType()) for name in (GROUP_ID, SOURCE_KEY, GROUP_HASH)])


def id_key(column: Column) -> Column:
    """An id as the staging models parse it (1 to 18 digits once spaces are trimmed), as its number's text, so
    that ` 007` and `7` are one key; null for a value they reject."""
    trimmed = F.trim(column)
    return F.when(trimmed.rlike("^[0-9]{1,18}$"), trimmed.cast("bigint").cast("string"))


def text_key(column: Column) -> Column:
    """A text key (item_id) as the staging models parse it: trimmed, null when empty."""
    trimmed = F.trim(column)
    return F.when(trimmed != "", trimmed)


# per table: the column whose parsed value groups its rows, and how staging parses it (tests hold these to the
# *_checked models)
GROUP_COLUMNS: dict[str, tuple[str, Callable[[Column], Column]]] = {
    "accounts": ("account_id", id_key),
    "skus": ("item_id", text_key),
    "invoices": ("invoice_id", id_key),
    "invoice_line_items": ("invoice_id", id_key),
}


def state_name(table_name: str) -> str:
    return f"source_{table_name}"


def changes_path(warehouse_dir: str, table_name: str) -> str:
    """Where an incremental run stores its comparison, beside the snapshot it read (the extract folder holds what
    the last run took from the source)."""
    return load.model_path(warehouse_dir, "extract", f"changes_{table_name}")


def grouped_rows(snapshot_df: DataFrame, table_name: str) -> DataFrame:
    """The snapshot's rows with their group's id and parsed key."""
    column, parse = GROUP_COLUMNS[table_name]
    keyed_df = snapshot_df.withColumn(SOURCE_KEY, parse(snapshot_df[column]))
    group_id = F.coalesce(
        F.concat(F.lit("k"), keyed_df[SOURCE_KEY]), F.concat(F.lit("h"), keyed_df[jdbc.ROW_HASH_COLUMN])
    )
    return keyed_df.withColumn(GROUP_ID, group_id)


def group_state(grouped_df: DataFrame) -> DataFrame:
    """One row per group: its key and the hash of its rows' hashes, sorted (the same rows in any order give the
    same hash; a copy more or less changes it)."""
    row_hashes = F.array_sort(F.collect_list(grouped_df[jdbc.ROW_HASH_COLUMN]))
    return grouped_df.groupBy(GROUP_ID).agg(
        F.max(grouped_df[SOURCE_KEY]).alias(SOURCE_KEY), F.md5(F.concat_ws(",", row_hashes)).alias(GROUP_HASH)
    )


def compare(current_df: DataFrame, previous_df: DataFrame) -> DataFrame:
    """The groups that differ between two states: added, changed or deleted, with their key."""
    current, previous = current_df.alias("current"), previous_df.alias("previous")
    joined = current.join(previous, GROUP_ID, "full_outer")
    current_hash, previous_hash = F.col(f"current.{GROUP_HASH}"), F.col(f"previous.{GROUP_HASH}")
    change = (
        F.when(previous_hash.isNull(), F.lit(ADDED))
        .when(current_hash.isNull(), F.lit(DELETED))
        .when(current_hash != previous_hash, F.lit(CHANGED))
    )
    key = F.coalesce(F.col(f"current.{SOURCE_KEY}"), F.col(f"previous.{SOURCE_KEY}"))
    return joined.select(F.col(GROUP_ID), key.alias(SOURCE_KEY), change.alias(CHANGE)).where(change.isNotNull())


def redelivered_lines(
    lines_state_df: DataFrame, invoice_changes_df: DataFrame, stored_invoices: DataFrame
) -> DataFrame:
    """The line groups of the invoices that are added or changed in the delta without having been usable before
    (not in the previous stg_invoices): their lines, if read before, were rejected with their invoice, so they
    are delivered again whether they changed or not."""
    usable_before = stored_invoices.select(stored_invoices["invoice_id"].cast("string").alias(SOURCE_KEY))
    arriving = (
        invoice_changes_df.where(
            invoice_changes_df[CHANGE].isin(ADDED, CHANGED) & invoice_changes_df[SOURCE_KEY].isNotNull()
        )
        .select(SOURCE_KEY)
        .join(usable_before, SOURCE_KEY, "left_anti")
    )
    return lines_state_df.join(arriving, SOURCE_KEY, "left_semi").select(
        GROUP_ID, SOURCE_KEY, F.lit(REDELIVERED).alias(CHANGE)
    )


def previous_states(run_version: versions.RunVersion) -> dict[str, DataFrame] | None:
    """The source state of the version an incremental run builds on (None in a full run, which compares with
    nothing); a one-line VersionError when that version was not made from the database."""
    if not run_version.is_incremental:
        return None
    base = run_version.base
    assert base is not None  # Warehouse.begin refuses an incremental run on an empty warehouse
    missing = [state_name(each.table_name) for each in EXTRACTS if state_name(each.table_name) not in base.models]
    if missing:
        raise versions.VersionError(
            f"--incremental with --jdbc-url compares the database with the source state a run from the database "
            f"stored; version {base.version} has none (it was made from CSV extracts): run once without --incremental"
        )
    return {each.table_name: run_version.read_base(state_name(each.table_name), STATE_SCHEMA) for each in EXTRACTS}


def register_extracts(
    spark: SparkSession, source: jdbc.JdbcSource, run_version: versions.RunVersion
) -> dict[str, Observation]:
    """The JDBC counterpart of extract.register_extracts: read the four tables from one snapshot into the warehouse,
    record their state in the run's version, and register the raw_<table> views (every row in a full run, the
    delta in an incremental one), each observed for its rows read, and the withdrawn_<table> views."""
    previous = previous_states(run_version)
    warehouse_dir = run_version.warehouse_dir
    jdbc.store_snapshot(spark, source, warehouse_dir)
    grouped: dict[str, DataFrame] = {}
    current: dict[str, DataFrame] = {}
    for each in EXTRACTS:
        snapshot_df = load.read_parquet(spark, jdbc.extract_path(warehouse_dir, each.table_name))
        grouped[each.table_name] = grouped_rows(snapshot_df, each.table_name)
        name = state_name(each.table_name)
        versions.write_model(run_version, versions.SOURCE_LAYER, name, group_state(grouped[each.table_name]))
        current[each.table_name] = run_version.read(versions.SOURCE_LAYER, name)
    if previous is None:  # a full run compares nothing: no earlier run's comparison is left beside its snapshot
        for each in EXTRACTS:
            filesystem.delete(spark, changes_path(warehouse_dir, each.table_name))
    changes = None if previous is None else compare_states(spark, run_version, current, previous)
    observations = {}
    withdrawn: dict[str, DataFrame] = {}
    for each in EXTRACTS:
        rows_df = grouped[each.table_name]
        if changes is not None:
            delivered = changes[each.table_name].where(F.col(CHANGE) != DELETED).select(GROUP_ID)
            rows_df = rows_df.join(delivered, GROUP_ID, "left_semi")
            withdrawn[each.table_name] = withdrawn_keys(changes[each.table_name], each.table_name)
        observation = Observation(f"read_{each.table_name}")
        raw_df = rows_df.select(*each.columns, CORRUPT_RECORD_COLUMN)
        raw_df.observe(observation, F.count(F.lit(1)).alias("rows")).createOrReplaceTempView(f"raw_{each.table_name}")
        observations[each.table_name] = observation
    register_withdrawn(spark, withdrawn)
    return observations


def compare_states(
    spark: SparkSession,
    run_version: versions.RunVersion,
    current: dict[str, DataFrame],
    previous: dict[str, DataFrame],
) -> dict[str, DataFrame]:
    """Compare each table's state with the previous one and store the few groups that differ (each comparison runs
    once, however often its result is read); the lines' comparison adds the lines delivered again."""
    changes: dict[str, DataFrame] = {}
    invoices_schema = spark.createDataFrame([], registry.schema_ddl(registry.model("stg_invoices"))).schema
    stored_invoices = run_version.read_base("stg_invoices", invoices_schema)
    for each in EXTRACTS:
        changes_df = compare(current[each.table_name], previous[each.table_name])
        if each.table_name == "invoice_line_items":
            again = redelivered_lines(current[each.table_name], changes["invoices"], stored_invoices)
            changes_df = changes_df.unionByName(again.join(changes_df.select(GROUP_ID), GROUP_ID, "left_anti"))
        path = changes_path(run_version.warehouse_dir, each.table_name)
        load.write_parquet(changes_df, path)
        changes[each.table_name] = load.read_parquet(spark, path)
    return changes


def withdrawn_keys(changes_df: DataFrame, table_name: str) -> DataFrame:
    """The keys of the groups that changed or were deleted, typed as the merging model's key."""
    column, type_name = registry.WITHDRAWN_VIEWS[f"{registry.WITHDRAWN_PREFIX}{table_name}"].split()
    withdrawn = changes_df[CHANGE].isin(CHANGED, DELETED) & changes_df[SOURCE_KEY].isNotNull()
    return changes_df.where(withdrawn).select(changes_df[SOURCE_KEY].cast(type_name).alias(column)).distinct()


def register_withdrawn(spark: SparkSession, withdrawn: dict[str, DataFrame]) -> None:
    """Register the withdrawn_<table> views: the given keys, and none for a table not given (the CSV path and a
    full run give none: they withdraw nothing)."""
    for view, ddl in registry.WITHDRAWN_VIEWS.items():
        keys_df = withdrawn.get(view.removeprefix(registry.WITHDRAWN_PREFIX))
        if keys_df is None:
            keys_df = load.empty_frame(spark, ddl)
        keys_df.createOrReplaceTempView(view)


def change_counts(spark: SparkSession, warehouse_dir: str) -> dict[str, dict[str, int]]:
    """Per table, the groups the last comparison found added, changed, deleted and delivered again (one small
    job over the stored comparisons)."""
    frames = [
        load.read_parquet(spark, changes_path(warehouse_dir, each.table_name)).select(
            F.lit(each.table_name).alias("table_name"), CHANGE
        )
        for each in EXTRACTS
    ]
    stacked = frames[0]
    for frame in frames[1:]:
        stacked = stacked.unionByName(frame)
    counts = {each.table_name: dict.fromkeys(CHANGE_KINDS, 0) for each in EXTRACTS}
    for row in stacked.groupBy("table_name", CHANGE).count().collect():
        counts[str(row["table_name"])][str(row[CHANGE])] = int(row["count"])
    return counts
