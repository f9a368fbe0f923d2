"""The declared graph against what exists: the notebooks build it, the SQL reads it, the docs describe it."""

from __future__ import annotations

import re
import typing
from importlib import resources
from pathlib import Path

import nbformat
import pytest
from pyspark.sql import SparkSession
from support.pipeline import PROJECT_DIR
from support.spark_views import raw_columns, run_view

from spark_etl.incremental import planning
from spark_etl.modelling import models, registry
from spark_etl.runtime import runner
from spark_etl.sources.extract import EXTRACTS
from spark_etl.storage import load

SQL_DIR = resources.files("spark_etl").joinpath("sql")
CTE_HEADER = re.compile(r"^([a-z_][a-z0-9_]*) as \($", re.M)
MAIN_QUERY = re.compile(r"^select\b", re.M)
READ = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)", re.I)


def tables_read(sql: str) -> set[str]:
    """The tables and views a model's SQL reads: names after `from` or `join` that are not a CTE already
    defined at that point. The models' style puts each CTE header (`name as (`) and the main query's `select`
    at the start of a line, which is what this relies on; a CTE may read a view of its own name
    (int_as_of_date's `run_parameters`)."""
    text = re.sub(r"--[^\n]*", "", sql)
    headers = list(CTE_HEADER.finditer(text))
    main = list(MAIN_QUERY.finditer(text))[-1]
    read: set[str] = set()
    ends = [header.start() for header in headers[1:]] + [main.start()]
    for number, (header, end) in enumerate(zip(headers, ends, strict=True)):
        defined = {earlier.group(1) for earlier in headers[:number]}
        read |= {name for name in READ.findall(text[header.end() : end]) if name not in defined}
    defined = {header.group(1) for header in headers}
    return read | {name for name in READ.findall(text[main.start() :]) if name not in defined}


def test_the_registry_is_consistent() -> None:
    registry.validate()
    assert [model.layer for model in registry.MODELS] == sorted(
        (model.layer for model in registry.MODELS), key=registry.LAYERS.index
    )


def test_validate_refuses_an_input_declared_after_its_reader() -> None:
    reader = registry.Model("staging", "stg_a", "stored", ("stg_b",), "one row per a", ("a_id",))
    read = registry.Model("staging", "stg_b", "stored", ("raw_accounts",), "one row per b", ("b_id",))
    with pytest.raises(registry.RegistryError, match="stg_a: input stg_b is not a model declared before it"):
        registry.validate([reader, read])
    with pytest.raises(registry.RegistryError, match="no key and no reason"):
        registry.validate([registry.Model("staging", "stg_c", "view", ("raw_skus",), "one row per c", ())])
    with pytest.raises(registry.RegistryError, match="'stg_d; drop' is not a lowercase identifier"):
        registry.validate([registry.Model("staging", "stg_d; drop", "view", (), "x", (), "none")])


@pytest.mark.parametrize("model", registry.MODELS, ids=lambda model: model.name)
def test_declared_inputs_are_the_tables_the_sql_reads(model: registry.Model) -> None:
    assert tables_read(models.sql_text(model.layer, model.name)) == set(model.inputs)


def test_tables_read_tells_a_cte_from_a_view_of_the_same_name() -> None:
    sql = (
        "with\n\nrun_parameters as (\n    select as_of_date from run_parameters\n),\n\n"
        "final as (\n    select * from x join run_parameters on true\n)\n\nselect * from final\n"
    )
    assert tables_read(sql) == {"run_parameters", "x"}


def test_every_sql_and_md_file_is_a_registered_model() -> None:
    files = {
        (layer, path.name)
        for layer in registry.LAYERS
        for path in (PROJECT_DIR / "Spark_ETL_Pipeline" / "src" / "spark_etl" / "sql" / layer).iterdir()
    }
    declared = {(m.layer, f"{m.name}.{suffix}") for m in registry.MODELS for suffix in ("sql", "md")}
    assert files == declared


def notebook_calls(path: Path, method: str) -> list[tuple[str, ...]]:
    """The string arguments of every `stage.<method>(...)` call in the notebook's code cells, in order."""
    notebook = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    calls = re.findall(rf"\bstage\.{method}\(([^)]*)\)", code)
    return [tuple(re.findall(r'"([a-z_0-9]+)"', arguments)) for arguments in calls]


@pytest.mark.parametrize("layer", registry.LAYERS)
def test_each_notebook_builds_exactly_its_layers_models_in_registry_order(layer: str) -> None:
    path = PROJECT_DIR / "notebooks" / registry.NOTEBOOKS[layer]
    notebook = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    built = re.findall(r'\bstage\.(build|view)\("([a-z_0-9]+)"', code)
    expected = [
        ("view" if model.materialisation == "view" else "build", model.name) for model in registry.layer_models(layer)
    ]
    assert built == expected
    # and it reads back exactly the stored models of earlier layers that its models declare as inputs
    stored_inputs = {
        (registry.model(name).layer, name)
        for model in registry.layer_models(layer)
        for name in model.inputs
        if name not in registry.EXTRACT_VIEWS
        and name not in registry.PARAMETER_VIEWS
        and not name.startswith(registry.STORED_PREFIX)
        and name not in registry.WITHDRAWN_VIEWS
        and registry.model(name).layer != layer
    }
    if layer == registry.EXPORTING_LAYER:  # it also reads the exported models of earlier layers
        stored_inputs |= {(m.layer, m.name) for m in registry.MODELS if m.exported_as and m.layer != layer}
    if layer == registry.MONITORING_LAYER:  # and the row accounting its volume checks judge
        stored_inputs |= {(registry.model(name).layer, name) for name in registry.MONITORING_READS}
    used = {(call[0], name) for call in notebook_calls(path, "use_stored") for name in call[1:]}
    assert used == stored_inputs
    assert f'notebook_display.show_models("{layer}")' in code


@pytest.mark.parametrize("layer", registry.LAYERS)
def test_the_notebooks_model_cells_hold_no_incremental_plumbing(layer: str) -> None:
    """What to build is the registry's (`registry.Incremental`, carried out by `planning`): a cell that builds a
    model neither narrows its inputs nor plans months; the set-up cell registers the run's changes once."""
    notebook = nbformat.read(PROJECT_DIR / "notebooks" / registry.NOTEBOOKS[layer], as_version=4)
    building = [cell.source for cell in notebook.cells if cell.cell_type == "code" and "stage.build(" in cell.source]
    assert building
    for source in building:
        assert "increments." not in source and "months=" not in source and "use_base" not in source, source
        assert "use_stored" not in source and "run_version." not in source, source


def test_each_declared_planner_is_the_planning_modules() -> None:
    declared = {model.incremental.planner or model.incremental.strategy for model in registry.MODELS}
    assert declared <= set(planning.PLANNERS)
    # a model rewritten by month always names its month planner; the other strategies are planners themselves
    strategies = set(typing.get_args(registry.Strategy)) - {"by_month"}
    assert set(planning.PLANNERS) == {*strategies, *registry.MONTH_PLANNERS, *registry.REBUILD_PLANNERS}


def test_the_registry_declares_how_an_incremental_run_builds_each_model() -> None:
    declared = {model.name: model.incremental for model in registry.MODELS if model.incremental != registry.REBUILD}
    assert declared == {
        "stg_accounts": registry.KEEP_WHEN_UNCHANGED,
        "stg_skus": registry.KEEP_WHEN_UNCHANGED,
        "stg_invoices": registry.by_month("invoice_months"),
        "stg_invoice_line_items_checked": registry.Incremental("rebuild", "named_invoices"),
        "stg_invoice_line_items": registry.by_month("line_months"),
        "int_invoice_totals": registry.by_month("total_months"),
        "int_account_daily_invoices": registry.by_month("daily_months"),
        "fct_invoice_features": registry.by_month("feature_months"),
        "mon_feature_month_metrics": registry.by_month("metric_months"),
    }
    assert all(bool(model.partition_by) == (model.incremental.strategy == "by_month") for model in registry.MODELS)


@pytest.mark.parametrize(
    ("incremental", "partition_by", "error"),
    [
        (registry.KEEP_WHEN_UNCHANGED, "partition_month", "only a whole staging model"),
        (registry.by_month("line_months"), "", "a model rewritten by month is partitioned"),
        (registry.by_month("every_month"), "partition_month", "names one of MONTH_PLANNERS"),
        (registry.Incremental("rebuild", "line_months"), "", "'line_months' is not one of REBUILD_PLANNERS"),
        (registry.REBUILD, "partition_month", "a partitioned model is rewritten by month"),
    ],
)
def test_validate_refuses_an_incremental_strategy_the_planner_cannot_carry_out(
    incremental: registry.Incremental, partition_by: str, error: str
) -> None:
    checked = registry.Model("staging", "stg_skus_checked", "stored", ("raw_skus",), "a record", (), "none")
    skus = registry.Model(
        "staging",
        "stg_skus",
        "stored",
        ("stg_skus_checked",),
        "one row per SKU",
        ("item_id",),
        partition_by=partition_by,
        incremental=incremental,
    )
    with pytest.raises(registry.RegistryError, match=re.escape(error)):
        registry.validate([checked, skus])


def test_the_runner_runs_the_registrys_notebooks_in_layer_order() -> None:
    assert tuple(registry.NOTEBOOKS[layer] for layer in registry.LAYERS) == runner.STAGE_NOTEBOOKS


def test_docs_models_md_is_generated_from_the_registry() -> None:
    current = (PROJECT_DIR / "docs" / "models.md").read_text(encoding="utf-8")
    assert registry.render_models_doc(current) == current, "docs/models.md is stale: run `make docs`"


def test_the_contract_models_are_the_features_and_their_inputs_in_build_order() -> None:
    assert [model.name for model in registry.upstream("fct_invoice_features")] == [
        "stg_accounts_checked",
        "stg_accounts",
        "stg_skus_checked",
        "stg_skus",
        "stg_invoices_checked",
        "stg_invoices",
        "stg_invoice_line_items_checked",
        "stg_invoice_line_items",
        "int_invoice_totals",
        "int_account_daily_invoices",
        "int_as_of_date",
        "fct_invoice_features",
    ]


@pytest.mark.parametrize("model", registry.MODELS, ids=lambda model: model.name)
def test_the_md_names_the_registrys_key(model: registry.Model) -> None:
    key_line = re.search(r"Key: ([^.]*)", registry.doc_text(model))
    assert key_line is not None, f"{model.doc_path} has no 'Key:'"
    if model.key:
        assert tuple(re.findall(r"`([a-z_0-9]+)`", key_line.group(1))) == model.key
    else:
        assert key_line.group(1).startswith("none")


@pytest.fixture(scope="module")
def schemas(spark: SparkSession) -> dict[str, list[tuple[str, str]]]:
    """Every model's schema, from its SQL run as a view over empty extracts (analysis only: no Spark job)."""
    session = spark.newSession()
    for extract in EXTRACTS:
        columns = ", ".join(f"{name} string" for name in raw_columns(extract.table_name))
        session.createDataFrame([], columns).createOrReplaceTempView(f"raw_{extract.table_name}")
    models.register_parameters(session, None)
    found = {}
    for model in registry.MODELS:
        model_df = run_view(session, model.layer, model.name, is_computed=False)
        found[model.name] = [(field.name, field.dataType.simpleString()) for field in model_df.schema.fields]
    return found


@pytest.mark.parametrize("model", registry.MODELS, ids=lambda model: model.name)
def test_each_md_lists_the_models_columns_and_types(
    model: registry.Model, schemas: dict[str, list[tuple[str, str]]]
) -> None:
    assert registry.doc_columns(model) == schemas[model.name]


def test_feature_column_types_are_the_contract(schemas: dict[str, list[tuple[str, str]]]) -> None:
    assert schemas["fct_invoice_features"] == [
        ("inv_id", "bigint"),
        ("acct_id", "bigint"),
        ("inv_total", "decimal(38,2)"),
        ("inv_items", "bigint"),
        ("acct_age", "int"),
        ("num_inv_120d", "bigint"),
        ("cum_tot_inv_acct", "bigint"),
        ("is_late", "int"),
        ("issue_date", "date"),
        ("payment_date", "date"),
        ("partition_month", "string"),
    ]


def test_grain_table_lists_a_layers_models_with_their_keys_and_documented_columns() -> None:
    assert registry.grain_table("intermediate").splitlines() == [
        "| model | stored | grain | key | columns |",
        "|---|---|---|---|---|",
        "| `int_invoice_totals` | Parquet | one row per usable invoice | `invoice_id` | invoice_id bigint, "
        "line_count bigint, item_count bigint, unknown_sku_line_count bigint, invoice_total decimal(38,2), "
        "partition_month string |",
        "| `int_account_daily_invoices` | Parquet | one row per account and issue day | `account_id`, `issue_date` | "
        "account_id bigint, issue_date date, invoice_count bigint, invoices_prior_120d bigint, "
        "invoices_to_date bigint, partition_month string |",
        "| `int_as_of_date` | Parquet | exactly one row: the run | none: a single row | as_of_date date, "
        "is_as_of_given boolean, latest_data_date date |",
    ]


def test_the_data_dictionary_lists_the_exported_features(schemas: dict[str, list[tuple[str, str]]]) -> None:
    dictionary = (PROJECT_DIR / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    feature_table = dictionary.partition("| feature | type |")[2].partition("\n\n")[0]
    documented = tuple(re.findall(r"^\| `([a-z_0-9]+)` \|", feature_table, re.M))
    assert documented == load.FEATURE_COLUMNS
    assert tuple(name for name, _ in schemas["fct_invoice_features"][: len(documented)]) == documented


def test_the_duplicate_key_rule_is_written_once_and_included_by_the_keyed_checked_models() -> None:
    rule = models.shared_sql("duplicate_key_rule.sql")
    including = []
    for model in registry.MODELS:
        raw = (SQL_DIR / model.layer / f"{model.name}.sql").read_text(encoding="utf-8")
        assert "partition by" not in raw or model.name == "int_account_daily_invoices"  # its own windows
        if '{% include "duplicate_key_rule.sql" %}\n' in raw:
            including.append(model.name)
            assert models.sql_text(model.layer, model.name).count(rule) == 1
    assert including == ["stg_accounts_checked", "stg_skus_checked", "stg_invoices_checked"]
