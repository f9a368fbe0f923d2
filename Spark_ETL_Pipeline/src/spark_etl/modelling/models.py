"""Running the SQL models: one `.sql` file per model, materialised as a view or a Parquet table."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from spark_etl.modelling import constraints, observations, quality, registry
from spark_etl.publishing import stage_metrics
from spark_etl.storage.versions import RunVersion, write_model

if TYPE_CHECKING:
    from spark_etl.incremental.planning import Plan

LAYERS = registry.LAYERS


# a line that stands for a shared piece of SQL in sql/shared/ (the duplicate-key rule of the *_checked models), in
# Jinja's include syntax so that sqlfluff's templater renders it the same way when it lints the models
INCLUDE = re.compile(r'^\{% include "([a-z_]+\.sql)" %\}\n', re.M)


def sql_text(layer: str, model_name: str) -> str:
    """The SQL of a model, read from the package so notebooks, tests and the docs show the same text, with its
    `{% include "<file>" %}` lines replaced by the shared SQL they name, so what is shown is what runs."""
    if layer not in (*LAYERS, INCREMENTS):
        raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)} or {INCREMENTS}")
    sql = resources.files("spark_etl").joinpath("sql", layer, f"{model_name}.sql").read_text(encoding="utf-8")
    rendered = INCLUDE.sub(lambda include: shared_sql(include.group(1)), sql)
    if any(tag in rendered for tag in ("{{", "{%", "{#")):  # sqlfluff would read another Jinja tag differently
        raise ValueError(f"{layer}/{model_name}.sql: a Jinja tag other than a whole-line include")
    return rendered


INCREMENTS = "increments"  # sql/increments/: the queries that decide what an incremental run recomputes


def query_text(query_name: str) -> str:
    """One of an incremental run's queries (sql/increments/, linted with the models): plain SQL over registered
    views, no include."""
    return sql_text(INCREMENTS, query_name)


def shared_sql(file_name: str) -> str:
    """A piece of SQL several models include: fixed text from the package, never a value; it holds no Jinja tag
    (sqlfluff's templater would expand one that this renderer does not)."""
    sql = resources.files("spark_etl").joinpath("sql", "shared", file_name).read_text(encoding="utf-8")
    if "{%" in sql:
        raise ValueError(f"sql/shared/{file_name} holds a Jinja tag; shared SQL is plain SQL, included one level deep")
    return sql


def register_parameters(spark: SparkSession, as_of_date: date | None) -> None:
    """Expose the run's parameters to SQL as a one-row view, so no value is ever formatted into a query."""
    # a literal, not createDataFrame from Python rows, which would start Python workers for one value
    parameters_df = spark.range(1).select(F.lit(as_of_date).cast("date").alias("as_of_date"))
    parameters_df.createOrReplaceTempView("run_parameters")


def parse_as_of(value: str | None) -> date | None:
    """`--as-of` as a date; empty means 'derive it from the data'."""
    if value is None or value.strip() == "":
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"--as-of: {value!r} is not a date in YYYY-MM-DD form") from None


@dataclass
class ModelRun:
    """What building one model did: where it went, how many rows, how long."""

    layer: str
    model_name: str
    rows: int | None
    seconds: float
    path: str | None = None
    profile: list[dict[str, Any]] | None = None  # per column: non-null, null, min, max
    profile_months: list[str] | None = None  # the months the profile covers; None: the whole model
    is_kept: bool = False  # taken whole from the previous version: nothing written, nothing profiled


@dataclass
class Stage:
    """One notebook's worth of models: views it reads, models it builds, a record of each build."""

    spark: SparkSession
    layer: str
    version: RunVersion  # the run's warehouse version: where every model it builds goes (versions.write_model)
    runs: list[ModelRun] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    profiled: dict[str, DataFrame] = field(default_factory=dict)  # per model, the rows its profile describes
    plans: dict[str, Plan] = field(default_factory=dict)  # per model built, what its build did (`build`)

    def __post_init__(self) -> None:
        """Group the stage's jobs under its layer in Spark's UI and event log."""
        self.spark.sparkContext.setJobGroup(self.layer, f"spark_etl {self.layer} models")

    def use_stored(self, layer: str, *model_names: str, months: list[str] | None = None) -> None:
        """Register models an earlier stage of this run stored, read back from the warehouse; with `months`, only
        those issue months of a partitioned model."""
        for model_name in model_names:
            self.version.read(layer, model_name, months).createOrReplaceTempView(model_name)

    def use_base(self, *model_names: str, months: list[str] | None = None) -> None:
        """Register `stored_<model>`: the model as the version this run builds on holds it (only `months` of a
        partitioned one); empty in a full run, so a model that merges its delta into it is its plain self."""
        for model_name in model_names:
            schema = self.spark.createDataFrame([], registry.schema_ddl(registry.model(model_name))).schema
            self.version.read_base(model_name, schema, months).createOrReplaceTempView(f"stored_{model_name}")

    def view(self, model_name: str) -> DataFrame:
        """Run a model as a temporary view: computed by each model that reads it."""
        started = time.perf_counter()
        model_df = self.spark.sql(sql_text(self.layer, model_name))
        model_df.createOrReplaceTempView(model_name)
        self._record(ModelRun(self.layer, model_name, None, time.perf_counter() - started))
        return model_df

    def build(self, model_name: str, profile: bool = False) -> DataFrame:
        """Build a stored model as the registry declares an incremental run builds it (`registry.Incremental`):
        whole, the months its planner names, or kept from the previous version; a full run builds it whole. The
        plan (`spark_etl.incremental.planning`) narrows the model's inputs for the build and restores them after,
        so a notebook cell only shows the SQL, builds, and shows the profile; `rewritten_months` says what it did."""
        from spark_etl.incremental import planning  # here: planning runs the increments' queries, read from here

        return planning.build(self, model_name, profile)

    def write(self, model_name: str, profile: bool = False, months: list[str] | None = None) -> DataFrame:
        """Run a model, store it as Parquet in the warehouse, register the stored copy as its view and check its
        declared key and relationships (`constraints.check`): the step `build` takes once it has planned.

        With `months` (an incremental run), only those issue months of a partitioned model are computed and
        written; the run's version takes the other months from the version it builds on, and the view is the
        whole model. With `profile`, the model's column profile (`Stage.profile`) is observed while it is
        written, so showing it costs no second scan and no extra job: of the whole model, or after a partial
        build of the months written (what the run changed; the rest is as the previous runs profiled it).
        """
        started = time.perf_counter()
        declared = registry.model(model_name)
        model_df = self.spark.sql(sql_text(self.layer, model_name))
        if months is not None:
            if not declared.partition_by:
                raise ValueError(f"{model_name} is not partitioned: it cannot be built for some months only")
            model_df = model_df.where(F.col(declared.partition_by).isin(months))
        observation = Observation(f"profile_{model_name}") if profile else None
        if observation is not None:
            model_df = model_df.observe(observation, *quality.profile_aggregates(model_df.columns))
        path = self.version.model_dir(self.layer, model_name)
        rows = write_model(self.version, self.layer, model_name, model_df, declared.partition_by, months)
        stored_df = profiled_df = self.version.read(self.layer, model_name)
        if months is not None:  # the key and relationships of what was rewritten; the rest was checked before
            profiled_df = self.version.read(self.layer, model_name, months)
            profiled_df.createOrReplaceTempView(model_name)
            constraints.check(self.spark, model_name)
        stored_df.createOrReplaceTempView(model_name)
        if months is None:
            constraints.check(self.spark, model_name)  # its declared key and relationships, on the stored copy
        profile_rows = None
        if observation is not None:
            summary = observations.observed(self.spark, observation)
            # adaptive execution may prune an empty model's observed node: profile the stored copy instead
            profile_rows = (
                quality.column_profile(profiled_df)
                if summary is None
                else quality.profile_rows(summary, model_df.columns)
            )
            self.profiled[model_name] = profiled_df
        seconds = time.perf_counter() - started
        self._record(ModelRun(self.layer, model_name, rows, seconds, path, profile_rows, months))
        return stored_df

    def keep(self, model_name: str, profile: bool = False) -> DataFrame:
        """Take a model unchanged from the version this run builds on (an incremental run whose delta changes
        nothing in it), register it as its view and record it with no rows written; its key and relationships
        were checked when it was built. Like a partial build's, its profile covers what the run wrote: nothing
        (the run that built it showed the whole model's)."""
        started = time.perf_counter()
        self.version.keep(self.layer, model_name)
        stored_df = self.version.read(self.layer, model_name)
        stored_df.createOrReplaceTempView(model_name)
        if profile:
            self.profiled[model_name] = stored_df.limit(0)
        path = self.version.absolute(next(iter(self.version.folders(self.layer, model_name).values())))
        seconds = time.perf_counter() - started
        profile_rows: list[dict[str, Any]] | None = [] if profile else None
        self._record(ModelRun(self.layer, model_name, 0, seconds, path, profile_rows, [], is_kept=True))
        return stored_df

    def rewritten_months(self, model_name: str) -> list[str] | None:
        """The months this stage's `build` of a model rewrote (none when it kept the model); None: every month, or
        the model whole (a full run, or a model rebuilt whole)."""
        return self.plan(model_name).months

    def plan(self, model_name: str) -> Plan:
        """What this stage's `build` of a model did, as its plan decided (`planning.Plan`)."""
        if model_name not in self.plans:
            raise KeyError(f"{model_name} has not been built in the {self.layer} stage")
        return self.plans[model_name]

    def rows(self, model_name: str) -> int | None:
        """The rows the stage's last build of `model_name` wrote (None for a view)."""
        for run in reversed(self.runs):
            if run.model_name == model_name:
                return run.rows
        raise KeyError(f"{model_name} has not been built in the {self.layer} stage")

    def profile(self, model_name: str) -> list[dict[str, Any]]:
        """The column profile observed when `model_name` was last built in this stage with `profile=True` (of the
        rows `Stage.profiled` holds: see `profile_caption`)."""
        profile = self._profiled_run(model_name).profile
        assert profile is not None
        return profile

    def profile_caption(self, model_name: str) -> str:
        """What the profile of `model_name` covers, as a caption: the model, or the months a partial build wrote."""
        run = self._profiled_run(model_name)
        months = run.profile_months
        if run.is_kept:
            return f"{model_name}: kept whole from the previous version, nothing rewritten by this run"
        if months is None:
            return model_name
        if not months:
            return f"{model_name}: no month rewritten by this run"
        return f"{model_name}: the {len(months)} month(s) this run rewrote ({months[0]} to {months[-1]})"

    def null_count(self, model_name: str, column: str) -> int:
        """Rows of the whole model with `column` unknown: from its profile when that covers the whole model, else
        counted on the stored model (one column read)."""
        run = self._profiled_run(model_name)
        if run.profile_months is None and run.profile is not None:
            return int(next(row["null"] for row in run.profile if row["column"] == column))
        return self.spark.table(model_name).where(F.col(column).isNull()).count()

    def _profiled_run(self, model_name: str) -> ModelRun:
        for run in reversed(self.runs):
            if run.model_name == model_name and run.profile is not None:
                return run
        raise KeyError(f"{model_name} has not been built with profile=True in the {self.layer} stage")

    def _record(self, run: ModelRun) -> None:
        self.runs.append(run)

    def metrics(self) -> stage_metrics.StageRecord:
        """The stage's record for run_summary.json: what every stage publishes (`stage_metrics`)."""
        return {
            "stage": self.layer,
            "seconds": round(time.perf_counter() - self.started, 3),
            "models": [
                {
                    "model": run.model_name,
                    "rows": run.rows,
                    "seconds": round(run.seconds, 3),
                    "path": run.path,
                }
                for run in self.runs
            ],
        }
