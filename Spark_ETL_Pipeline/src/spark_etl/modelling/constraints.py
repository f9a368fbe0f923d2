"""The registry's keys and relationships, checked on a built model: a violation stops the run.

A duplicate or null key, or a line whose invoice does not exist, means a model is wrong, and every feature built
on it would be silently wrong too; the run fails instead, naming the model and one offending key, as the row
reconciliation does.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_etl.modelling import registry


class ConstraintError(Exception):
    """A model breaks its declared key or a relationship: a bug in a model, not bad input."""


def violations(spark: SparkSession, declared: registry.Model) -> DataFrame | None:
    """One row per broken constraint of the model's registered view: what is broken and a sample (JSON).

    The key check is one group-by over the key columns (Parquet reads only those), each relationship one
    anti-join of a column against its parent's key; all of them are one union, so one query (a few jobs under
    adaptive execution) answers for the model. None when the model declares no constraint.
    """
    if not declared.key and not declared.relationships:
        return None
    model_df = spark.table(declared.name)
    checks: list[DataFrame] = []
    if declared.key:
        key = [F.col(column) for column in declared.key]
        any_null: Column = reduce(lambda a, b: a | b, [column.isNull() for column in key])
        per_key = model_df.groupBy(*key).agg(F.count(F.lit(1)).alias("copies"))
        checks.append(
            per_key.where(any_null | (F.col("copies") > 1)).select(
                F.when(any_null, F.lit("null key")).otherwise(F.lit("duplicate key")).alias("broken"),
                F.to_json(F.struct(*key)).alias("sample"),
            )
        )
    for relationship in declared.relationships:
        parent_df = spark.table(relationship.parent).select(F.col(relationship.parent_column).alias("_parent_key"))
        child = F.col(relationship.column)
        orphans = model_df.select(child).where(child.isNotNull())
        orphans = orphans.join(parent_df, child == F.col("_parent_key"), "left_anti")
        broken = f"{relationship.column} not in {relationship.parent}.{relationship.parent_column}"
        checks.append(orphans.select(F.lit(broken).alias("broken"), F.to_json(F.struct(child)).alias("sample")))
    return reduce(DataFrame.unionByName, checks)


def check(spark: SparkSession, model_name: str) -> None:
    """Raise ConstraintError with the model, the broken constraint and a sample when the registered view of
    `model_name` breaks its declared key or relationships."""
    broken_df = violations(spark, registry.model(model_name))
    if broken_df is None:
        return
    first = broken_df.limit(1).collect()
    if first:
        raise ConstraintError(f"{model_name}: {first[0]['broken']}, e.g. {first[0]['sample']}")
