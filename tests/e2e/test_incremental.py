"""Daily incremental runs equal a full recompute (issue 11): simulated days on generated data, the real extracts
split at a date, a rerun of a delta, and --incremental refused on an empty warehouse. What each day must publish
comes from tests/daily_deltas.py (the merge rules on plain rows), never from the pipeline."""

from __future__ import annotations

import collections
import datetime
import json
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.contract_compare import loose_record, read_csv
from support.daily_deltas import (
    TABLES,
    Rejects,
    Tables,
    apply_delta,
    initial_state,
    make_delta,
    read_tables,
    state_tables,
    write_tables,
)
from support.pipeline import VIEWFS_WAREHOUSES, FinishedRun, run_in_kernel, run_pipeline, warn_only_checks

import reference_contract
from reference_contract import INVOICES, LINES, line_keys, parse_date
from spark_etl.monitoring import history
from spark_etl.runtime import runner
from spark_etl.storage import filesystem
from spark_etl.storage.warehouse import Warehouse

pytestmark = pytest.mark.e2e
DAYS = 2  # day 2 builds on an incremental version, as every later day would
CSV = "pipeline_output.csv"


def pipeline(
    kernel: runner.SharedKernel | None, extracts: Path, output_dir: Path, warehouse: Path | str, *options: str
) -> subprocess.CompletedProcess[str]:
    """One run of the entry script that must succeed, its files in output_dir: in a process of its own without a
    `kernel`, else in the session's (support.pipeline.run_in_kernel)."""
    arguments: tuple[str, ...] = (
        "--extracts",
        str(extracts),
        "--output",
        str(output_dir / CSV),
        "--warehouse",
        str(warehouse),
    )
    # the days are adversarial (a bad row of every reason in a dozen rows): their checks warn, never stop them
    arguments += ("--checks", str(warn_only_checks(output_dir.parent)))
    if kernel is None:
        result = run_pipeline(*arguments, "--quiet", *options)
    else:
        result = run_in_kernel(kernel, *arguments, "--quiet", *options)
    assert result.returncode == 0, f"{' '.join(options) or 'full'} run of {extracts}: {result.stderr}"
    return result


def run_rejects(output_dir: Path) -> Rejects:
    """A run's rejects.csv as contract_compare compares it."""
    rows = read_csv(output_dir / "rejects.csv")
    assert rows[0] == ("table_name", "reject_reason", "source_record")
    return collections.Counter((table, reason, loose_record(record)) for table, reason, record in rows[1:])


def summary(output_dir: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((output_dir / "run_summary.json").read_text(encoding="utf-8"))
    return loaded


def differing_rows(got: Path, want: Path) -> list[tuple[tuple[str, ...] | None, tuple[str, ...] | None]]:
    """The first rows, by inv_id, where two feature CSVs differ, so a failure names the invoices."""
    got_rows = {row[0]: row for row in read_csv(got)}
    want_rows = {row[0]: row for row in read_csv(want)}
    keys = sorted(got_rows.keys() | want_rows.keys(), key=lambda key: (len(key), key))
    return [(got_rows.get(key), want_rows.get(key)) for key in keys if got_rows.get(key) != want_rows.get(key)][:10]


@dataclass(frozen=True)
class SimulatedDay:
    """One day: its delta, the merged source it must give, and the folders of the two runs over them."""

    number: int
    changes: dict[str, list[str]]
    delta: Path
    merged_source: Path
    expected_rejects: Rejects
    incremental: Path
    full: Path


@dataclass(frozen=True)
class Simulation:
    day_0: Path
    days: list[SimulatedDay]
    rerun: Path
    header_only: Path


@pytest.fixture(scope="module")
def simulation(
    generated_extracts: Path, tmp_path_factory: pytest.TempPathFactory, stage_kernel: runner.SharedKernel
) -> Simulation:
    """A full run on generated extracts, then DAYS seeded deltas each run --incremental on that warehouse and, beside
    it, a full run over the merged source in a warehouse of its own (the oracle); finally the last delta once more,
    and a delta of four header-only files. The first full and the first incremental run are the entry script in a
    process of its own, which chooses its JVM's compilers; the others run in the session's kernel."""
    root = tmp_path_factory.mktemp("daily")
    state, _ = initial_state(generated_extracts)
    warehouse = root / "warehouse"
    pipeline(None, generated_extracts, root / "day_0", warehouse)
    rng = random.Random(11)
    days: list[SimulatedDay] = []
    for number in range(1, DAYS + 1):
        made = make_delta(state, rng)
        delta = write_tables(root / f"delta_{number}", made.delta)
        state, rejects = apply_delta(state, made.delta)
        merged_source = write_tables(root / f"merged_source_{number}", state_tables(state))
        incremental, full = root / f"incremental_{number}", root / f"full_{number}"
        pipeline(None if number == 1 else stage_kernel, delta, incremental, warehouse, "--incremental")
        oracle = run_in_kernel(
            stage_kernel, "--extracts", str(merged_source), "--output", str(full / CSV),
            "--warehouse", str(root / f"full_{number}_warehouse"), "--checks", str(warn_only_checks(root)),
        )  # fmt: skip
        assert oracle.returncode == 0, oracle.stderr
        days.append(SimulatedDay(number, made.changes, delta, merged_source, rejects, incremental, full))
    pipeline(stage_kernel, days[-1].delta, root / "rerun", warehouse, "--incremental")
    header_only = write_tables(root / "delta_header_only", {table: [] for table in TABLES})
    pipeline(stage_kernel, header_only, root / "header_only", warehouse, "--incremental")
    return Simulation(root / "day_0", days, root / "rerun", root / "header_only")


def test_each_day_the_incremental_csv_is_the_full_recompute_byte_for_byte(simulation: Simulation) -> None:
    for day in simulation.days:
        got, want = day.incremental / CSV, day.full / CSV
        assert got.read_bytes() == want.read_bytes(), (
            f"day {day.number} {day.changes}: (incremental, full) {differing_rows(got, want)}"
        )


def test_each_day_the_features_are_the_references_over_the_merged_source(simulation: Simulation) -> None:
    for day in simulation.days:
        expected = reference_contract.compute(day.merged_source)
        rows = read_csv(day.incremental / CSV)
        assert rows[0] == expected.header
        assert [row for row, want in zip(rows[1:], expected.rows, strict=False) if row != want] == [], day.number
        assert len(rows) - 1 == len(expected.rows)


def test_each_day_the_rejects_are_the_deltas_bad_rows(simulation: Simulation) -> None:
    for day in simulation.days:
        reasons = {(table, reason) for table, reason, _ in day.expected_rejects}
        assert len(reasons) == 7  # every reason of every table: the comparison below is not vacuous
        assert run_rejects(day.incremental) == day.expected_rejects, day.number


def test_the_summary_names_the_mode_and_the_drivers_compilers(simulation: Simulation) -> None:
    # a few hundred invoices: the entry script's own JVM compiles with C1 alone, on day 0's small extracts and on
    # day 1's small warehouse; in the session's kernel (C1 then C2), the summary names that kernel's
    assert (summary(simulation.day_0)["mode"], summary(simulation.day_0)["driver_jit"]) == ("full", "c1")
    jits = [(summary(day.incremental)["mode"], summary(day.incremental)["driver_jit"]) for day in simulation.days]
    assert jits == [("incremental", "c1"), *[("incremental", "tiered")] * (DAYS - 1)]


def test_rerunning_a_delta_gives_the_same_files(simulation: Simulation) -> None:
    last = simulation.days[-1]
    assert (simulation.rerun / CSV).read_bytes() == (last.incremental / CSV).read_bytes()
    assert run_rejects(simulation.rerun) == last.expected_rejects
    assert summary(simulation.rerun)["mode"] == "incremental"


def test_a_delta_of_header_only_files_changes_nothing_and_rejects_nothing(simulation: Simulation) -> None:
    assert (simulation.header_only / CSV).read_bytes() == (simulation.days[-1].incremental / CSV).read_bytes()
    assert run_rejects(simulation.header_only) == collections.Counter()
    recorded = summary(simulation.header_only)
    assert recorded["mode"] == "incremental"
    months = ["invoice_months_rewritten", "line_months_rewritten", "total_months_recomputed"]
    months += ["daily_months_recomputed", "feature_months_recomputed"]
    assert {key: recorded[key] for key in ["delta_rows", *months, "invoices_recomputed", "accounts_recomputed"]} == {
        "delta_rows": {"accounts": 0, "invoice_line_items": 0, "invoices": 0, "skus": 0},
        **{key: [] for key in months},  # nothing changed, and as_of did not move
        "invoices_recomputed": 0,
        "accounts_recomputed": 0,
    }


def test_a_run_with_no_csv_publishes_its_version_and_leaves_the_csv_as_the_last_run_wrote_it(
    generated_extracts: Path, tmp_path: Path, stage_kernel: runner.SharedKernel
) -> None:
    """--no-csv (a daily run where nobody reads the file): a first run has no CSV to keep and writes one; a day's
    run commits and publishes its version and rejects but keeps that CSV (the same file, not a copy), its summary
    naming the version the CSV holds beside the rows of its own table; a run without the option catches it up."""
    output, warehouse = tmp_path / "out", tmp_path / "warehouse"
    csv = output / CSV
    pipeline(stage_kernel, generated_extracts, output, warehouse, "--no-csv")
    first = summary(output)
    assert first["csv_version"] == first["version"]  # nothing to keep: written
    written, inode = csv.read_bytes(), csv.stat().st_ino
    assert len(read_csv(csv)) - 1 == first["output_rows"]

    state, _ = initial_state(generated_extracts)
    made = make_delta(state, random.Random(23))
    state, rejects = apply_delta(state, made.delta)
    pipeline(stage_kernel, write_tables(tmp_path / "delta", made.delta), output, warehouse, "--incremental", "--no-csv")
    day = summary(output)
    expected = reference_contract.compute(write_tables(tmp_path / "merged", state_tables(state)))
    assert (day["mode"], day["csv_version"]) == ("incremental", first["version"])
    assert day["version"] != first["version"]
    current = Warehouse.on_this_machine(str(warehouse))
    assert current is not None and (pointer := current.pointer()) is not None and pointer.version == day["version"]
    # the rows of the day's version, not of the CSV kept: the delta added invoices
    assert day["output_rows"] == len(expected.rows) > first["output_rows"]
    assert (csv.read_bytes(), csv.stat().st_ino) == (written, inode)
    assert os.stat(output / "versions" / str(day["version"]) / CSV).st_ino == inode
    assert run_rejects(output) == rejects  # the rest of the run is published
    index = (output / "reports" / "index.html").read_text(encoding="utf-8")
    assert f"<b>not rewritten</b> (--no-csv): it holds version <code>{first['version']}</code>" in index

    header_only = write_tables(tmp_path / "header_only", {table: [] for table in TABLES})
    pipeline(stage_kernel, header_only, output, warehouse, "--incremental")
    caught_up = summary(output)
    assert caught_up["csv_version"] == caught_up["version"]
    rows = read_csv(csv)
    assert (rows[0], rows[1:]) == (expected.header, expected.rows)


def test_a_warehouse_the_entry_script_cannot_reach_is_committed_through_spark(
    simulation: Simulation,
    generated_extracts: Path,
    stage_kernel: runner.SharedKernel,
    viewfs_folder: Path,
    tmp_path: Path,
) -> None:
    """A warehouse at a Hadoop URI other than file: (viewfs:, which the session's kernel mounts on a local folder;
    hdfs: or s3a: on a cluster): the entry script cannot read its pointer, so it commits in the run's kernel,
    through Hadoop, and keeps each run's history record there the same way, a run stopped by a check included. A
    full run and a day's incremental run on it publish what the simulation's runs on a local warehouse
    published."""
    warehouse = f"{VIEWFS_WAREHOUSES}/{tmp_path.name}"
    mounted = viewfs_folder / tmp_path.name
    output_dir = tmp_path / "out"
    versions = []
    for extracts, options in ((generated_extracts, ()), (simulation.days[0].delta, ("--incremental",))):
        pipeline(stage_kernel, extracts, output_dir, warehouse, *options)
        versions.append(summary(output_dir)["version"])
        assert json.loads((mounted / "_current.json").read_text(encoding="utf-8"))["version"] == versions[-1]
    failing = tmp_path / "failing_checks.yml"  # every account has a first invoice: an error on any full run
    rule = "{name: repeat_accounts_only, type: minimum, level: error, feature: cum_tot_inv_acct, minimum: 2}"
    failing.write_text(f"checks:\n  - {rule}\n", encoding="utf-8")
    stopped = run_in_kernel(
        stage_kernel, "--extracts", str(generated_extracts), "--output", str(tmp_path / "stopped" / CSV),
        "--warehouse", warehouse, "--checks", str(failing), "--quiet",
    )  # fmt: skip
    assert stopped.returncode == 4, stopped.stderr
    runs = history.RunHistory(str(mounted), filesystem.LocalFiles())
    recorded = [runs.read(run_id) or {} for run_id in runs.run_ids()]
    assert [(record["status"], record["mode"]) for record in recorded] == [
        ("succeeded", "full"), ("succeeded", "incremental"), ("failed", "full"),
    ]  # fmt: skip
    assert [record["version"] for record in recorded[:2]] == versions
    assert [check["name"] for check in recorded[2]["checks"] if check["status"] == "failed"] == ["repeat_accounts_only"]
    assert json.loads((mounted / "_current.json").read_text(encoding="utf-8"))["version"] == versions[-1]
    assert (output_dir / CSV).read_bytes() == (simulation.days[0].incremental / CSV).read_bytes()
    assert run_rejects(output_dir) == simulation.days[0].expected_rejects
    assert sorted(path.name for path in (output_dir / "versions").iterdir()) == sorted(
        json.loads((mounted / "_current.json").read_text(encoding="utf-8"))["history"]
    )  # the newest --keep-versions runs' files: here both


def split_real_extracts(extracts: Path) -> tuple[Tables, Tables]:
    """Day 1: every account and SKU, the invoices issued up to 2021-01-31 with their lines, those issued after
    2021-01-01 still unpaid. Day 2: the later invoices with their lines, and January's invoices now paid (invoice
    rows only)."""
    tables = read_tables(extracts)

    def issued(record: tuple[str, ...]) -> datetime.date:
        date = parse_date(record[2])
        assert date is not None, record
        return date

    first_day, last_day = datetime.date(2021, 1, 2), datetime.date(2021, 1, 31)
    early = [record for record in tables[INVOICES] if issued(record) <= last_day]
    late = [record for record in tables[INVOICES] if issued(record) > last_day]
    january = [record for record in early if issued(record) >= first_day]
    early_ids = {int(record[0]) for record in early}

    def in_day_1(line: tuple[str, ...]) -> bool:
        keys = line_keys(line)
        assert keys is not None, line
        return keys[0] in early_ids

    day_1: Tables = {
        **tables,
        INVOICES: [(*record[:3], "") if issued(record) >= first_day else record for record in early],
        LINES: [line for line in tables[LINES] if in_day_1(line)],
    }
    day_2: Tables = {table: [] for table in TABLES}
    day_2[INVOICES] = late + january
    day_2[LINES] = [line for line in tables[LINES] if not in_day_1(line)]
    return day_1, day_2


def test_real_extracts_split_at_a_date_give_the_full_runs_csv(
    real_extracts_dir: Path, real_run: FinishedRun, stage_kernel: runner.SharedKernel, tmp_path: Path
) -> None:
    """The real extracts have no bad rows (the reference keeps every row, checked here), so the merged source after
    day 2 is the real extracts themselves: the incremental CSV is compared with the session's full run over them."""
    day_1, day_2 = split_real_extracts(real_extracts_dir)
    whole, whole_rejects = initial_state(real_extracts_dir)
    assert whole_rejects == collections.Counter()
    after_1, _ = apply_delta(initial_state(write_tables(tmp_path / "day_1", day_1))[0], day_2)
    assert after_1 == whole  # the split loses and adds nothing
    assert sum(1 for record in day_1[INVOICES] if record[3] == "") > 100  # January's invoices, unpaid on day 1

    warehouse = tmp_path / "warehouse"
    pipeline(stage_kernel, tmp_path / "day_1", tmp_path / "out_1", warehouse)
    pipeline(stage_kernel, write_tables(tmp_path / "day_2", day_2), tmp_path / "out_2", warehouse, "--incremental")
    got, want = tmp_path / "out_2" / CSV, real_run.output_dir / CSV
    assert got.read_bytes() == want.read_bytes(), differing_rows(got, want)
    assert run_rejects(tmp_path / "out_2") == collections.Counter()
    assert summary(tmp_path / "out_2")["mode"] == "incremental"


@pytest.mark.parametrize("warehouse_exists", [False, True], ids=["missing", "empty-folder"])
def test_incremental_on_an_empty_warehouse_is_a_one_line_error(warehouse_exists: bool, tmp_path: Path) -> None:
    delta = write_tables(tmp_path / "delta", {table: [] for table in TABLES})
    warehouse = tmp_path / "warehouse"
    if warehouse_exists:
        warehouse.mkdir()
    output = tmp_path / "out" / CSV
    result = run_pipeline(
        "--extracts", str(delta), "--output", str(output), "--warehouse", str(warehouse), "--incremental"
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "--incremental" in result.stderr, result.stderr
    assert "unrecognized arguments" not in result.stderr  # refused for the warehouse, not as an unknown option
    assert not output.exists()
    assert not (output.parent / "failed_runs").exists()  # refused before any stage ran
