"""The models as one declared graph: every model's layer, materialisation, inputs, grain, key, notebook and how an
incremental run builds it.

The notebooks' grain tables, the tests' build order, the benchmark's contract-only model list and the lineage in
docs/models.md are all derived from `MODELS`, and tests check the notebooks, the SQL and the model docs against
it, so the graph is written down once. Run `python -m spark_etl.modelling.registry` to regenerate docs/models.md's
generated section.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from spark_etl.sources.extract import EXTRACTS

LAYERS = ("staging", "intermediate", "marts", "monitoring")
NOTEBOOKS = {
    "staging": "01_staging.ipynb",
    "intermediate": "02_intermediate.ipynb",
    "marts": "03_marts.ipynb",
    "monitoring": "04_monitoring.ipynb",
}
# inputs that are not models: the extracts' views (extract.register_extracts) and the run's parameters
EXTRACT_VIEWS = {f"raw_{extract.table_name}": extract.file_name for extract in EXTRACTS}
PARAMETER_VIEWS = {"run_parameters": "--as-of"}
# a model's previous version, which an incremental run merges its delta into (empty in a full run): stored_<model>
STORED_PREFIX = "stored_"
# the staging model of each extract's table, e.g. stg_accounts: accounts
STAGED_TABLES = {f"stg_{extract.table_name}": extract.table_name for extract in EXTRACTS}
# per table, the keys whose stored rows an incremental run from the database drops because the source no longer
# holds them as stored: deleted there, or changed there (the delta's usable rows, if any, take their place); see
# source_state.py. Empty on the CSV path, which has no deletions, and in a full run. withdrawn_<table>: its DDL
WITHDRAWN_PREFIX = "withdrawn_"
WITHDRAWN_VIEWS = {
    f"{WITHDRAWN_PREFIX}accounts": "account_id bigint",
    f"{WITHDRAWN_PREFIX}skus": "item_id string",
    f"{WITHDRAWN_PREFIX}invoices": "invoice_id bigint",
    f"{WITHDRAWN_PREFIX}invoice_line_items": "invoice_id bigint",
}
# the notebook that writes every model's `exported_as` file, once all the models exist
EXPORTING_LAYER = "marts"
# the notebook that judges the run (monitoring/checks.py), and what it reads besides its models' inputs: the row
# accounting its volume checks judge
MONITORING_LAYER = "monitoring"
MONITORING_READS = ("stg_row_counts",)
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Relationship:
    """Every non-null `column` of the model names an existing `parent_column` of `parent`."""

    column: str
    parent: str
    parent_column: str


# How an incremental run builds a stored model (dbt's `materialized='incremental'` and its strategy); a full run
# builds every model whole. `spark_etl.incremental.planning` carries the declaration out (`models.Stage.build`).
Strategy = Literal["rebuild", "keep_when_unchanged", "by_month"]
# the planners of `by_month` models: each names the months the run rewrites (and narrows the model's inputs to them)
MONTH_PLANNERS = ("invoice_months", "line_months", "total_months", "daily_months", "feature_months", "metric_months")
# the planners of `rebuild` models that narrow an input: the delta's lines are checked against the invoices they name
REBUILD_PLANNERS = ("named_invoices",)


@dataclass(frozen=True)
class Incremental:
    """How an incremental run builds one model: `rebuild` it whole from the delta (and what it reads), keep it
    whole from the previous version when its delta changes nothing (`keep_when_unchanged`), or rewrite it
    `by_month`, the months its `planner` names."""

    strategy: Strategy = "rebuild"
    planner: str = ""  # by_month: one of MONTH_PLANNERS; rebuild: none, or one of REBUILD_PLANNERS


REBUILD = Incremental("rebuild")
KEEP_WHEN_UNCHANGED = Incremental("keep_when_unchanged")


def by_month(planner: str) -> Incremental:
    """Rewritten by issue month: the months `planner` (one of MONTH_PLANNERS) names."""
    return Incremental("by_month", planner)


@dataclass(frozen=True)
class Model:
    """One model: a `.sql` file under sql/<layer>/ and a `.md` beside it."""

    layer: str
    name: str
    materialisation: Literal["stored", "view"]
    inputs: tuple[str, ...]  # models, raw_<table> extract views, run_parameters, withdrawn_<table> or stored_<model>
    grain: str  # what one row is
    key: tuple[str, ...]  # unique and not null, checked on every run; empty: no key, and `no_key` says why
    no_key: str = ""
    relationships: tuple[Relationship, ...] = ()
    exported_as: str = ""  # the run's file cut from this model, if any
    partition_by: str = ""  # the column whose values are its folders: a run rewrites only the values it touched
    incremental: Incremental = REBUILD  # how an incremental run builds it (`spark_etl.incremental.planning`)

    @property
    def notebook(self) -> str:
        return NOTEBOOKS[self.layer]

    @property
    def doc_path(self) -> str:
        """The model's .md, relative to the package."""
        return f"sql/{self.layer}/{self.name}.md"


def _stg(
    name: str,
    inputs: tuple[str, ...],
    grain: str,
    key: tuple[str, ...],
    no_key: str = "",
    incremental: Incremental = REBUILD,
) -> Model:
    return Model("staging", name, "stored", inputs, grain, key, no_key, incremental=incremental)


CHECKED_NO_KEY = "copies of a key are separate rows"
MODELS: tuple[Model, ...] = (
    _stg("stg_accounts_checked", ("raw_accounts",), "one row per record of accounts.csv", (), CHECKED_NO_KEY),
    _stg(
        "stg_accounts",
        ("stg_accounts_checked", "stored_stg_accounts", "withdrawn_accounts"),
        "one row per usable account",
        ("account_id",),
        incremental=KEEP_WHEN_UNCHANGED,  # the usual day brings no account
    ),
    _stg("stg_skus_checked", ("raw_skus",), "one row per record of skus.csv", (), CHECKED_NO_KEY),
    _stg(
        "stg_skus",
        ("stg_skus_checked", "stored_stg_skus", "withdrawn_skus"),
        "one row per usable SKU",
        ("item_id",),
        incremental=KEEP_WHEN_UNCHANGED,  # the usual day brings no SKU
    ),
    _stg("stg_invoices_checked", ("raw_invoices",), "one row per record of invoices.csv", (), CHECKED_NO_KEY),
    Model(
        "staging",
        "stg_invoices",
        "stored",
        ("stg_invoices_checked", "stored_stg_invoices", "withdrawn_invoices"),
        "one row per usable invoice",
        ("invoice_id",),
        partition_by="partition_month",
        incremental=by_month("invoice_months"),
    ),
    _stg(
        "stg_invoice_line_items_checked",
        ("raw_invoice_line_items", "stg_invoices", "stg_skus"),
        "one row per record of invoice_line_items.csv",
        (),
        "identical lines are separate lines",
        incremental=Incremental("rebuild", "named_invoices"),  # the delta's lines, against the invoices they name
    ),
    Model(
        "staging",
        "stg_invoice_line_items",
        "stored",
        (
            "stg_invoice_line_items_checked",
            "stored_stg_invoice_line_items",
            "withdrawn_invoice_line_items",
            "stg_invoices",
            "stg_skus",
        ),
        "one row per line of a usable invoice",
        (),
        "identical lines are separate lines",
        (Relationship("invoice_id", "stg_invoices", "invoice_id"),),
        partition_by="partition_month",
        incremental=by_month("line_months"),
    ),
    Model(
        "staging",
        "stg_checked_rows",
        "view",
        (
            "stg_accounts_checked",
            "stg_skus_checked",
            "stg_invoices_checked",
            "stg_invoice_line_items_checked",
        ),
        "one row per record of any extract",
        (),
        "a view stacking the four checked models",
    ),
    Model(
        "staging",
        "stg_rejects",
        "stored",
        ("stg_checked_rows",),
        "one row per quarantined source record",
        (),
        "identical bad records are separate records",
        exported_as="rejects.csv",
    ),
    _stg(
        "stg_row_counts",
        ("stg_checked_rows",),
        "one row per (table, status, reason)",
        (),
        "unique on (table_name, row_status, reject_reason) by its group-by; reject_reason is null for kept rows",
    ),
    Model(
        "intermediate",
        "int_invoice_totals",
        "stored",
        ("stg_invoices", "stg_invoice_line_items", "stg_skus"),
        "one row per usable invoice",
        ("invoice_id",),
        partition_by="partition_month",
        incremental=by_month("total_months"),
    ),
    Model(
        "intermediate",
        "int_account_daily_invoices",
        "stored",
        ("stg_invoices", "stored_int_account_daily_invoices"),
        "one row per account and issue day",
        ("account_id", "issue_date"),
        partition_by="partition_month",
        incremental=by_month("daily_months"),
    ),
    Model(
        "intermediate",
        "int_as_of_date",
        "stored",
        ("run_parameters", "stg_invoices"),
        "exactly one row: the run",
        (),
        "a single row",
    ),
    Model(
        "marts",
        "fct_invoice_features",
        "stored",
        ("stg_invoices", "stg_accounts", "int_invoice_totals", "int_account_daily_invoices", "int_as_of_date"),
        "one row per usable invoice",
        ("inv_id",),
        relationships=(Relationship("inv_id", "stg_invoices", "invoice_id"),),
        exported_as="pipeline_output.csv",
        partition_by="partition_month",
        incremental=by_month("feature_months"),
    ),
    Model(
        "monitoring",
        "mon_feature_month_metrics",
        "stored",
        ("fct_invoice_features",),
        "one row per issue month and monitored feature",
        (),
        "unique on (partition_month, feature) by its group-by",
        partition_by="partition_month",
        incremental=by_month("metric_months"),
    ),
)


class RegistryError(Exception):
    """The declared graph is inconsistent: an unknown input, an input declared after its reader, a bad name."""


def validate(models: Iterable[Model] = MODELS) -> None:
    """Every name is a plain identifier (names are rendered into SQL and docs), every input is declared before
    the model that reads it, and every model without a key says why."""
    seen: dict[str, Model] = {}
    for model in models:
        if model.layer not in LAYERS:
            raise RegistryError(f"{model.name}: unknown layer {model.layer!r}")
        names = [model.name, *model.inputs, *model.key]
        names += [name for r in model.relationships for name in (r.column, r.parent, r.parent_column)]
        for name in names:
            if not IDENTIFIER.match(name):
                raise RegistryError(f"{model.name}: {name!r} is not a lowercase identifier")
        for name in model.inputs:
            if name == f"{STORED_PREFIX}{model.name}":
                continue  # its own previous version
            if name in WITHDRAWN_VIEWS:
                continue  # keys the source withdrew, from the run's source comparison
            if name not in seen and name not in EXTRACT_VIEWS and name not in PARAMETER_VIEWS:
                raise RegistryError(f"{model.name}: input {name} is not a model declared before it, nor an extract")
            if name in seen and LAYERS.index(seen[name].layer) > LAYERS.index(model.layer):
                raise RegistryError(f"{model.name}: input {name} is in a later layer")
        for relationship in model.relationships:
            if relationship.parent not in seen:
                raise RegistryError(f"{model.name}: relationship to {relationship.parent}, not declared before it")
        if not model.key and not model.no_key:
            raise RegistryError(f"{model.name}: no key and no reason given")
        _validate_incremental(model)
        if model.name in seen:
            raise RegistryError(f"{model.name}: declared twice")
        seen[model.name] = model


def _validate_incremental(model: Model) -> None:
    """A strategy the planner can carry out: a kept model is a whole staging model of one table's checked rows (its
    delta's accepted rows say whether it changed), a model rewritten by month is partitioned and names its month
    planner, and a view is computed where read."""
    strategy, planner = model.incremental.strategy, model.incremental.planner
    if model.materialisation == "view" and model.incremental != REBUILD:
        raise RegistryError(f"{model.name}: a view is computed where read, it declares no incremental strategy")
    if strategy == "keep_when_unchanged" and (
        planner or model.partition_by or f"{model.name}_checked" not in model.inputs or model.name not in STAGED_TABLES
    ):
        raise RegistryError(f"{model.name}: only a whole staging model of one table's checked rows can be kept")
    if strategy == "by_month" and (not model.partition_by or planner not in MONTH_PLANNERS):
        raise RegistryError(f"{model.name}: a model rewritten by month is partitioned and names one of MONTH_PLANNERS")
    if strategy == "rebuild" and planner and planner not in REBUILD_PLANNERS:
        raise RegistryError(f"{model.name}: {planner!r} is not one of REBUILD_PLANNERS")
    if model.partition_by and strategy != "by_month":
        raise RegistryError(f"{model.name}: a partitioned model is rewritten by month")


def model(name: str) -> Model:
    for declared in MODELS:
        if declared.name == name:
            return declared
    raise KeyError(f"{name} is not a model in the registry")


def layer_models(layer: str) -> tuple[Model, ...]:
    """The models a layer's notebook builds, in the order it builds them."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")
    return tuple(declared for declared in MODELS if declared.layer == layer)


def upstream(name: str) -> tuple[Model, ...]:
    """The model and every model it reads, directly or not, in registry (build) order."""
    needed = {name}
    for declared in reversed(MODELS):
        if declared.name in needed:
            needed.update(declared.inputs)
    return tuple(declared for declared in MODELS if declared.name in needed)


def doc_text(declared: Model) -> str:
    return resources.files("spark_etl").joinpath(declared.doc_path).read_text(encoding="utf-8")


def doc_columns(declared: Model) -> list[tuple[str, str]]:
    """(column, type) in the order the model's .md lists them; a row may name several columns of one type."""
    columns = []
    for line in doc_text(declared).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("column", "") or set(cells[0]) <= {"-"}:
            continue
        columns += [(name.strip(), cells[1]) for name in cells[0].split(",")]
    return columns


def key_text(declared: Model) -> str:
    return ", ".join(f"`{column}`" for column in declared.key) if declared.key else f"none: {declared.no_key}"


def grain_table(layer: str) -> str:
    """A layer's models as a Markdown table: what one row is, the key checked on every run, and the columns
    (from each model's .md), in the order the notebook builds them."""
    lines = ["| model | stored | grain | key | columns |", "|---|---|---|---|---|"]
    for declared in layer_models(layer):
        columns = ", ".join(f"{name} {type_}" for name, type_ in doc_columns(declared))
        stored = "Parquet" if declared.materialisation == "stored" else "view"
        if declared.exported_as:
            stored += f", `{declared.exported_as}`"
        lines.append(f"| `{declared.name}` | {stored} | {declared.grain} | {key_text(declared)} | {columns} |")
    return "\n".join(lines) + "\n"


def schema_ddl(declared: Model) -> str:
    """The model's columns and types as its .md states them (tests hold the .md to the model's real schema), as
    a DDL string: the shape of its empty previous version in a full run."""
    return ", ".join(f"{name} {type_}" for name, type_ in doc_columns(declared))


def _node(name: str) -> str:
    if name.startswith(STORED_PREFIX):
        return f"{name}[(previous {name.removeprefix(STORED_PREFIX)})]"
    if name in EXTRACT_VIEWS:
        return f"{name}[{EXTRACT_VIEWS[name]}]"
    if name in PARAMETER_VIEWS:
        return f"{name}[/{PARAMETER_VIEWS[name]}/]"
    if name in WITHDRAWN_VIEWS:
        return f"{name}{{{{keys withdrawn from {name.removeprefix(WITHDRAWN_PREFIX)}}}}}"
    return f"{name}[({name})]" if model(name).materialisation == "stored" else f"{name}[{name}]"


def lineage_mermaid() -> str:
    """The graph as a Mermaid flowchart: extracts, one subgraph per notebook, stored models as cylinders, the
    exported files."""
    lines = ["```mermaid", "flowchart LR", "  subgraph extracts[data_extracts]"]
    lines += [f"    {_node(name)}" for name in EXTRACT_VIEWS]
    lines.append("  end")
    for layer in LAYERS:
        lines.append(f"  subgraph {layer}[{NOTEBOOKS[layer]}]")
        lines += [f"    {_node(declared.name)}" for declared in layer_models(layer)]
        lines.append("  end")
    lines += [f"  {_node(name)}" for name in PARAMETER_VIEWS]
    lines += [f"  {_node(name)}" for name in WITHDRAWN_VIEWS]
    for declared in MODELS:
        lines += [f"  {name} --> {declared.name}" for name in declared.inputs]
        if declared.exported_as:
            file_node = declared.exported_as.replace(".", "_")
            lines.append(f"  {declared.name} --> {file_node}[{declared.exported_as}]")
    lines.append("```")
    return "\n".join(lines) + "\n"


def incremental_text(declared: Model) -> str:
    """What an incremental run does with the model, as the registry declares it."""
    if declared.materialisation == "view":
        return "computed where read"
    strategy, planner = declared.incremental.strategy, declared.incremental.planner
    if strategy == "keep_when_unchanged":
        return "kept whole when the delta accepts none of its rows and withdraws no key, else rewritten whole"
    if strategy == "by_month":
        return f"rewrites the `{declared.partition_by}` values the delta touches (`planning.{planner}`)"
    if planner == "named_invoices":
        return "rewritten whole, against the invoices the delta's lines name only"
    return "rewritten whole"


def models_table() -> str:
    """Every model, linked to its .md, for docs/models.md."""
    lines = ["| layer | model | grain | key | stored | incremental run |", "|---|---|---|---|---|---|"]
    for declared in MODELS:
        link = f"[{declared.name}](../Spark_ETL_Pipeline/src/spark_etl/{declared.doc_path})"
        stored = "Parquet" if declared.materialisation == "stored" else "view"
        if declared.exported_as:
            stored += f", `{declared.exported_as}`"
        incremental = incremental_text(declared)
        lines.append(
            f"| {declared.layer} | {link} | {declared.grain} | {key_text(declared)} | {stored} | {incremental} |"
        )
    return "\n".join(lines) + "\n"


GENERATED_BEGIN = "<!-- generated from spark_etl/modelling/registry.py by `make docs`: do not edit by hand -->\n"
GENERATED_END = "<!-- end of generated section -->\n"


def render_models_doc(current: str) -> str:
    """docs/models.md with its generated section (lineage and model table) replaced by the registry's."""
    before, begin, rest = current.partition(GENERATED_BEGIN)
    _, end, after = rest.partition(GENERATED_END)
    if not begin or not end:
        raise RegistryError("docs/models.md has no generated section markers")
    return f"{before}{GENERATED_BEGIN}{lineage_mermaid()}\n{models_table()}{GENERATED_END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate docs/models.md's lineage and model table.")
    parser.add_argument("--doc", default="docs/models.md", type=Path, help="the file to rewrite")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale instead of writing it")
    options = parser.parse_args(argv)
    validate()
    current = options.doc.read_text(encoding="utf-8")
    rendered = render_models_doc(current)
    if options.check:
        if rendered != current:
            print(f"{options.doc} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    options.doc.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
