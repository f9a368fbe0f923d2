# Two commands on a fresh machine with Python 3.11 and make: `make run` and `make test`.
SYSTEM_PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ARGS ?=

.PHONY: run test lint typecheck unit extracts docs bench lab cluster-up cluster-down clean postgres-deps

$(INSTALLED): requirements.txt requirements-dev.txt pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

## run: the pipeline on the bundled extracts (pass options with ARGS="--as-of 2021-07-01 ...")
run: $(INSTALLED)
	$(PY) Spark_ETL_Pipeline/src/Spark_ETL_Pipeline.py $(ARGS)

## test: lint (Python and the SQL models), type-check, then the whole test suite (CI runs exactly this)
test: lint typecheck
	$(PY) -m pytest

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m sqlfluff lint --disable-progress-bar Spark_ETL_Pipeline/src/spark_etl/sql

typecheck: $(INSTALLED)
	$(PY) -m mypy

## unit: the fast tests only, no whole runs (tests/unit and tests/models; tests/e2e has the runs)
unit: $(INSTALLED)
	$(PY) -m pytest tests/unit tests/models

## extracts: regenerate the bundled extracts from the seeded generator (a development tool in tools/)
extracts: $(INSTALLED)
	PYTHONPATH=tools $(PY) -m extracts_generator --out data_extracts --seed 42 --bad-rows 30 --unpaid-rate 0.02

## docs: regenerate docs/models.md's lineage and model table from spark_etl/modelling/registry.py
docs: $(INSTALLED)
	$(PY) -m spark_etl.modelling.registry --doc docs/models.md

## bench: pipeline vs a bare Spark read and DuckDB, and a day's --incremental run vs a full one, at 1x, 10x, 100x
## (BENCH_SCALE=1000 adds 1000x); writes docs/benchmarks.md
bench: $(INSTALLED)
	$(PY) benchmarks/bench.py

## lab: JupyterLab on notebooks/ with the project's kernel, bound to 127.0.0.1 (PORT=8888 by default; 0 or a busy
## port picks a free one); the URL with its token is printed; Ctrl-C stops it
lab: $(INSTALLED)
	$(PY) -m spark_etl.devtools.lab --port $(or $(PORT),8888)

## cluster-up / cluster-down: a Spark standalone master and two workers on 127.0.0.1 (master URL printed)
cluster-up: $(INSTALLED)
	$(PY) -m spark_etl.devtools.cluster up

cluster-down: $(INSTALLED)
	$(PY) -m spark_etl.devtools.cluster down

## postgres-deps: Debian's PostgreSQL JDBC driver (for --jdbc-url) and PostgreSQL 15 (the JDBC tests start their
## own server from it), installed with apt-get when missing (as root)
postgres-deps:
	@if [ ! -f /usr/share/java/postgresql.jar ] || [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql libpostgresql-jdbc-java; \
	fi

clean:
	rm -rf data_outputs/notebooks data_outputs/reports data_outputs/warehouse data_outputs/failed_runs \
		data_outputs/pipeline_output.csv data_outputs/rejects.csv data_outputs/run_summary.json \
		data_outputs/run.log data_outputs/_run.lock data_outputs/_tmp_run_* scratch
