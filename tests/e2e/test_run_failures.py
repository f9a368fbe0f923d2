"""What a run does when things go wrong: one line per failure with the detail in a log, secrets in no file,
the last good run's files kept together until a new run succeeds, and dead runs' leftovers cleaned up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from support.pipeline import PROJECT_DIR, run_in_kernel, run_pipeline, start_pipeline

from spark_etl.publishing import run_files
from spark_etl.runtime import runner

pytestmark = pytest.mark.e2e
SECRET = "s3cr3t-Value-4821"
# a setting made secret by a redaction regex of the user's own: its value must still reach Spark
CHECKSUMMED_FS = "org.apache.hadoop.fs.LocalFileSystem"


def files_holding(folder: Path, text: str) -> list[str]:
    return sorted(str(path) for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes())


def published_files(output_dir: Path) -> dict[str, bytes]:
    """The files a successful run publishes together: data, summary, notebooks, reports, log."""
    names = ["features.csv", "rejects.csv", "run_summary.json", "run.log"]
    paths = [output_dir / name for name in names]
    paths += sorted((output_dir / "notebooks").iterdir()) + sorted((output_dir / "reports").iterdir())
    return {str(path.relative_to(output_dir)): path.read_bytes() for path in paths}


def wait_for_a_running_cell(output_dir: Path, process: subprocess.Popen[str]) -> Path:
    """Wait until the staging notebook has finished its set-up cells, so a model's cell is running; return the
    run's own folder."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        for executed in output_dir.glob("_tmp_run_*/notebooks/01_staging.ipynb"):
            try:
                notebook = nbformat.read(executed, as_version=4)
            except Exception:  # caught while papermill rewrites it
                continue
            counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
            if sum(count is not None for count in counts) >= 3:  # parameters, injected parameters, set-up
                return executed.parent.parent
        time.sleep(0.1)
    raise AssertionError("the run never reached a model's cell")


@pytest.fixture
def killed_processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_run_that_dies_keeps_the_last_good_run_published_and_the_next_run_cleans_up(
    small_extracts: Path,
    tmp_path: Path,
    killed_processes: list[subprocess.Popen[str]],
    stage_kernel: runner.SharedKernel,
) -> None:
    output_dir = tmp_path / "out"
    common = ["--extracts", str(small_extracts), "--output", str(output_dir / "features.csv"), "--as-of", "2030-01-01"]

    # 1. a good run, given a secret and a setting made secret by the user's own redaction regex
    good = run_pipeline(
        *common,
        "--conf", f"spark.hadoop.fs.s3a.secret.key={SECRET}",
        "--conf", "spark.redaction.regex=(?i)secret|fs[.]file[.]impl",
        "--conf", f"spark.hadoop.fs.file.impl={CHECKSUMMED_FS}",
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert SECRET not in good.stderr and CHECKSUMMED_FS not in good.stderr
    summary = json.loads((output_dir / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["is_as_of_after_data"] is True and summary["latest_data_date"] < "2030-01-01"
    warning = f"warning: --as-of 2030-01-01 is after the latest date in the data ({summary['latest_data_date']})"
    assert good.stderr.splitlines()[-2:-1] == [warning]
    assert files_holding(tmp_path, SECRET) == [] and files_holding(tmp_path, CHECKSUMMED_FS) == []
    assert "*********(redacted)" in (output_dir / "notebooks" / "01_staging.ipynb").read_text(encoding="utf-8")
    # the real value reached Spark: the checksummed local file system writes a .crc beside each file
    assert any(path.suffix == ".crc" for path in (output_dir / "warehouse").rglob("*"))
    first_publication = published_files(output_dir)

    # 2. a run stopped by SIGTERM while a model's cell runs; a second run meanwhile is refused at once
    stopped = start_pipeline(*common, "--quiet")
    killed_processes.append(stopped)
    stopped_run_id = wait_for_a_running_cell(output_dir, stopped).name.removeprefix("_tmp_run_")
    refused = run_pipeline(*common, timeout=120)
    assert refused.returncode == 3
    assert refused.stderr.startswith(
        f"error: the warehouse {output_dir / 'warehouse'} is locked by run {stopped_run_id} (pid {stopped.pid} on "
    )
    assert refused.stderr.endswith("); nothing was changed\n")
    stopped.send_signal(signal.SIGTERM)
    _, stopped_stderr = stopped.communicate(timeout=180)
    assert stopped.returncode == 143, stopped_stderr
    (error_line,) = stopped_stderr.splitlines()
    (failed,) = (output_dir / "failed_runs").iterdir()
    assert error_line.startswith("error: stopped by SIGTERM in 01_staging.ipynb, cell ")
    assert error_line.endswith(f" (notebooks, reports and log: {failed})")
    assert error_cell(failed / "notebooks" / "01_staging.ipynb", error_line) == "KeyboardInterrupt"
    assert (failed / "reports" / "01_staging.html").exists() and (failed / "run.log").exists()
    assert published_files(output_dir) == first_publication

    # 3. a run killed outright: its folder stays, and so does the version it was writing into the warehouse
    killed = start_pipeline(*common, "--quiet")
    killed_processes.append(killed)
    killed_folder = wait_for_a_running_cell(output_dir, killed)
    killed.kill()
    killed.wait()
    killed_run_id = killed_folder.name.removeprefix("_tmp_run_")
    dead_version = output_dir / "warehouse" / "versions" / killed_run_id
    dead_model = dead_version / "staging" / f"_tmp_stg_skus__{killed_run_id}__0123456789ab"  # half written
    dead_model.mkdir(parents=True, exist_ok=True)
    (dead_model / "part-00000.parquet").write_bytes(b"half written")
    good_version = json.loads((output_dir / "run_summary.json").read_text(encoding="utf-8"))["version"]
    assert published_files(output_dir) == first_publication

    # 4. the next run removes what the killed run left, and only that (its commit's vacuum), then publishes its own
    after = run_in_kernel(stage_kernel, *common, "--quiet")
    assert after.returncode == 0, after.stderr
    assert after.stderr == ""
    assert not killed_folder.exists() and not dead_version.exists()
    assert (output_dir / "warehouse" / "versions" / good_version / "_manifest.json").is_file()  # kept
    assert sorted(path.name for path in output_dir.glob("_tmp_*")) == []
    assert published_files(output_dir)["features.csv"] == first_publication["features.csv"]
    assert published_files(output_dir)["run_summary.json"] != first_publication["run_summary.json"]
    assert [path.name for path in (output_dir / "failed_runs").iterdir()] == [failed.name]


def error_cell(executed_path: Path, line: str) -> str:
    """The error a line's `cell N` points at, read from that cell of the executed notebook."""
    position = int(line.split(", cell ")[1].split(":")[0].split(" ")[0])
    cell = nbformat.read(executed_path, as_version=4).cells[position - 1]
    (error,) = [output for output in cell.get("outputs", []) if output.output_type == "error"]
    return str(error.ename)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """--quiet: the terminal gets the error line and nothing else (no traceback, no Java stack)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def logged_folder(line: str) -> Path:
    folder = Path(line.rsplit("(notebooks, reports and log: ", 1)[1].rstrip(")"))
    assert (folder / "run.log").is_file()
    return folder


def test_a_bad_master_is_one_line(small_extracts: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "features.csv"
    result = run_pipeline(
        "--extracts", str(small_extracts), "--output", str(output), "--master", "bogus://x", "--quiet"
    )
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith(
        "error: Spark could not start with --master bogus://x: org.apache.spark.SparkException: "
        "Master must either be yarn or start with spark, mesos, k8s, or local (notebooks, reports and log: "
    )
    assert "SparkException" in (logged_folder(line) / "run.log").read_text(encoding="utf-8")


def test_a_missing_extracts_folder_stops_before_spark_and_makes_nothing(tmp_path: Path) -> None:
    """A typo in --extracts is known before any JVM or kernel starts: one line, status 2, and no output folder, lock
    or failed run's files to clean up."""
    output = tmp_path / "out" / "features.csv"
    missing = tmp_path / "extracts_typo"
    result = run_pipeline("--extracts", str(missing), "--output", str(output))
    assert result.returncode == 2
    assert one_error_line(result) == f"error: {missing}: folder not found"
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    result = run_pipeline("--extracts", f"file://{tmp_path / 'a_file'}", "--output", str(output))
    assert result.returncode == 2
    assert one_error_line(result) == f"error: file://{tmp_path / 'a_file'}: not a folder"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"]


def test_an_output_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    result = run_pipeline("--output", str(tmp_path / "a_file" / "out" / "features.csv"), "--quiet")
    assert result.returncode == 2
    assert one_error_line(result) == f"error: cannot write the output at {tmp_path / 'a_file' / 'out'}: not a directory"


def test_an_unwritable_warehouse_is_one_line_and_creates_nothing(small_extracts: Path, tmp_path: Path) -> None:
    """The warehouse's lock is taken before anything else, so a warehouse that cannot hold it stops the run there,
    before the output folder is made."""
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    warehouse = tmp_path / "a_file" / "warehouse"
    output = tmp_path / "out" / "features.csv"
    result = run_pipeline(
        "--extracts", str(small_extracts), "--output", str(output), "--warehouse", str(warehouse), "--quiet"
    )  # fmt: skip
    assert result.returncode == 2
    assert one_error_line(result) == f"error: cannot write the warehouse at {warehouse}: not a directory"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 400 KiB file system: room for a run to start, not for its notebooks."""
    mount_point = tmp_path / "full_disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)], check=False)
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but a small tmpfs cannot be mounted here (CI runs as root)")
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_is_one_line(
    small_extracts: Path, tmp_path: Path, full_disk: Path, stage_kernel: runner.SharedKernel
) -> None:
    output = full_disk / "features.csv"
    result = run_in_kernel(
        stage_kernel,
        "--extracts", str(small_extracts), "--output", str(output), "--warehouse", str(tmp_path / "wh"), "--quiet",
    )  # fmt: skip
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"error: cannot write the run's files in {full_disk}: No space left on device (")
    assert not output.exists() and list(full_disk.glob("_tmp_*")) == []


def test_an_extract_that_is_not_utf8_is_one_line(small_extracts: Path, tmp_path: Path) -> None:
    extracts = tmp_path / "extracts"
    shutil.copytree(small_extracts, extracts)
    accounts = (extracts / "accounts.csv").read_bytes().splitlines(keepends=True)
    accounts[2] = accounts[2].replace(b",", "é,".encode("latin-1"), 1)
    (extracts / "accounts.csv").write_bytes(b"".join(accounts))
    output = tmp_path / "out" / "features.csv"
    result = run_pipeline("--extracts", str(extracts), "--output", str(output), "--quiet")
    assert result.returncode == 2
    line = one_error_line(result)
    assert f": ExtractError: {extracts}/accounts.csv: line 3 is not valid UTF-8 (1 such line(s) in all); " in line
    assert not output.exists()


def test_cluster_up_over_a_recorded_cluster_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(json.dumps({"master_url": "spark://x", "pids": [], "log_dir": "."}))
    result = subprocess.run(
        [sys.executable, "-m", "spark_etl.devtools.cluster", "up", "--state-dir", str(tmp_path)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"error: a cluster is already recorded in {tmp_path}; run `make cluster-down` first\n"


def test_publishing_names_the_published_place_in_the_notebooks_and_reports(tmp_path: Path) -> None:
    """A run's notebooks and reports name its own folder, where they were written; once published, they name
    where they are now (papermill's metadata and the parameters cell included). The CSVs and the summary stay in
    the version's folder, and the published names are links to them."""
    paths = run_files.RunPaths("20990101T000000Z_abcdef", "extracts", "warehouse", tmp_path / "features.csv")
    run_files.start(paths)
    paths.version_outputs.mkdir(parents=True)  # the marts notebook writes the CSVs there
    for name in ("features.csv", "rejects.csv"):
        (paths.version_outputs / name).write_text(f"{name}\n", encoding="utf-8")
    (paths.executed_notebooks / "03_marts.ipynb").write_text(
        json.dumps({"output_path": str(paths.executed_notebooks / "03_marts.ipynb")}), encoding="utf-8"
    )
    (paths.reports / "03_marts.html").write_text(f"<td>{paths.pending / 'run.log'}</td>", encoding="utf-8")
    run_files.keep_summary(paths, {"status": "succeeded"})
    run_files.publish(paths, ["features.csv", "rejects.csv"])
    run_files.remove([paths.pending])  # as the entry script does once the run has published
    assert json.loads((tmp_path / "notebooks" / "03_marts.ipynb").read_text(encoding="utf-8")) == {
        "output_path": str(tmp_path / "notebooks" / "03_marts.ipynb")
    }
    assert (tmp_path / "reports" / "03_marts.html").read_text(encoding="utf-8") == f"<td>{tmp_path / 'run.log'}</td>"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "features.csv", "notebooks", "rejects.csv", "reports", "run.log", "run_summary.json", "versions",
    ]  # fmt: skip
    for name in ("features.csv", "rejects.csv", "run_summary.json"):
        assert (tmp_path / name).samefile(paths.version_outputs / name)
    assert (tmp_path / "features.csv").read_text(encoding="utf-8") == "features.csv\n"


def test_where_the_pointer_is_out_of_reach_the_newest_versions_files_stay(tmp_path: Path) -> None:
    """A warehouse on hdfs: or s3a: cannot be read from the entry script, so the output folder keeps the files of
    the newest --keep-versions runs, this one among them."""
    paths = run_files.RunPaths("20990103T000000Z_cccccc", "extracts", "hdfs://nn/warehouse", tmp_path / "features.csv")
    for run_id in ("20990101T000000Z_aaaaaa", "20990102T000000Z_bbbbbb", paths.run_id):
        (tmp_path / "versions" / run_id).mkdir(parents=True)
    kept = run_files.newest_versions(paths, 2)
    assert kept == ["20990102T000000Z_bbbbbb", "20990103T000000Z_cccccc"]
    run_files.remove_output_versions(tmp_path, kept)
    assert sorted(path.name for path in (tmp_path / "versions").iterdir()) == kept
