"""Reading extracts as they really arrive, and writing the single CSV the data scientists read."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F
from support.spark_views import jobs_in_group

from spark_etl.modelling import observations
from spark_etl.runtime import runner
from spark_etl.sources import extract
from spark_etl.storage import load

ACCOUNTS = extract.EXTRACTS[0]


def write_bytes(folder: Path, name: str, content: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)


def test_reads_bom_crlf_quoted_newlines_and_columns_by_name(spark: SparkSession, tmp_path: Path) -> None:
    content = (
        "\ufeffjoining_date,account_id,company_name,company_address,contact_person,contact_phone,gender,extra\r\n"
        '2019-01-01,1,"Smith, ""Jones"" & Co","1 Road\r\nTown",Ann,555,F,x\r\n'
        "2019-01-02,2,B,C,D,E,M\r\n"  # one field short: malformed, not dropped
    )
    write_bytes(tmp_path, "accounts.csv", content.encode("utf-8"))
    rows = extract.read_extract(spark, str(tmp_path), ACCOUNTS).collect()
    assert [row.asDict() for row in rows] == [
        {
            "account_id": "1",
            "company_name": 'Smith, "Jones" & Co',
            "company_address": "1 Road\nTown",
            "contact_person": "Ann",
            "contact_phone": "555",
            "gender": "F",
            "joining_date": "2019-01-01",
            "_corrupt_record": None,
        },
        {
            "account_id": "2",
            "company_name": "B",
            "company_address": "C",
            "contact_person": "D",
            "contact_phone": "E",
            "gender": "M",
            "joining_date": "2019-01-02",
            "_corrupt_record": "2019-01-02,2,B,C,D,E,M",
        },
    ]


LINES = extract.EXTRACTS[3]
LINES_HEADER = "invoice_id,item_id,quantity\n"


@pytest.fixture
def small_splits(spark: SparkSession) -> Iterator[None]:
    """Splits of 64 bytes, so a test file of a few lines is worth parsing in parallel."""
    spark.conf.set("spark.sql.files.maxPartitionBytes", "64b")
    try:
        yield
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")


def read_lines(spark: SparkSession, folder: Path, body: str) -> tuple[list[tuple[str | None, ...]], int]:
    write_bytes(folder, "invoice_line_items.csv", (LINES_HEADER + body).encode("utf-8"))
    lines_df = extract.read_extract(spark, str(folder), LINES)
    return [tuple(row) for row in lines_df.collect()], lines_df.rdd.getNumPartitions()


NUMBERED_LINES = "".join(f"{n},SKU-{n},{n}\n" for n in range(1, 9))
NUMBERED_ROWS = [(str(n), f"SKU-{n}", str(n), None) for n in range(1, 9)]


def test_a_large_file_of_whole_line_records_is_parsed_in_parallel_splits(
    spark: SparkSession, tmp_path: Path, small_splits: None
) -> None:
    rows, partitions = read_lines(spark, tmp_path, NUMBERED_LINES + '9,"SKU ""9""",x,extra\n\n10,,\n')
    assert partitions > 1
    assert rows == [
        *NUMBERED_ROWS,
        ("9", 'SKU "9"', "x", '9,"SKU ""9""",x,extra'),  # a field too many: malformed, kept
        ("10", None, None, None),  # the empty line between is no record, in either parser
    ]


def whole_file_rows(spark: SparkSession, folder: Path) -> list[tuple[str | None, ...]]:
    """The file as the whole-file parser reads it: the reference a read in splits must equal."""
    schema = "invoice_id string, item_id string, quantity string, _corrupt_record string"
    whole_df = spark.read.csv(
        str(folder / "invoice_line_items.csv"),
        schema=schema,
        header=True,
        multiLine=True,
        escape='"',
        columnNameOfCorruptRecord="_corrupt_record",
    )
    return [tuple(row) for row in whole_df.collect()]


@pytest.mark.parametrize(
    ("content", "in_splits"),
    [
        (LINES_HEADER + NUMBERED_LINES + '9,"SKU, ""9""",9\n', True),
        ((LINES_HEADER + NUMBERED_LINES).replace("\n", "\r\n"), True),
        ("\ufeff" + (LINES_HEADER + NUMBERED_LINES).replace("\n", "\r\n"), True),
        (LINES_HEADER + NUMBERED_LINES + '9,"SKU\n9",1\n', False),
        (LINES_HEADER + NUMBERED_LINES + '9,SKU 5"x7,"3\n10,SKU-10,10\n', False),
        (LINES_HEADER + NUMBERED_LINES + "   \n9,SKU-9,9\n", False),
        (LINES_HEADER + NUMBERED_LINES + "9,SKU\r9,9\n", False),
        (LINES_HEADER + NUMBERED_LINES.replace("\n", "\r\n", 4), False),
    ],
    ids=[
        "quoted comma and quotes",
        "CRLF",
        "BOM and CRLF",
        "quoted line break",
        "stray quote",
        "line of spaces",
        "lone CR",
        "mixed line endings",
    ],
)
def test_a_file_read_in_splits_reads_as_the_whole_file_parser_reads_it(
    spark: SparkSession, tmp_path: Path, small_splits: None, content: str, in_splits: bool
) -> None:
    write_bytes(tmp_path, "invoice_line_items.csv", content.encode("utf-8"))
    lines_df = extract.read_extract(spark, str(tmp_path), LINES)
    assert (lines_df.rdd.getNumPartitions() > 1) == in_splits
    assert [tuple(row) for row in lines_df.collect()] == whole_file_rows(spark, tmp_path)


def test_a_file_is_checked_by_one_scan_of_its_lines(spark: SparkSession, tmp_path: Path) -> None:
    """The scan that proves the bytes are UTF-8 also tells whether a large file may be parsed in splits."""
    write_bytes(tmp_path, "invoice_line_items.csv", (LINES_HEADER + "1,SKU-1,1\n").encode("utf-8"))
    spark.sparkContext.setJobGroup("small_file", "reading a small extract")
    try:
        lines_df = extract.read_extract(spark, str(tmp_path), LINES)
        # one scan: adaptive execution runs its aggregation as a map job and a result job
        assert len(jobs_in_group(spark, "small_file")) == 2
    finally:
        spark.sparkContext.setJobGroup("tests", "tests")
    assert [tuple(row) for row in lines_df.collect()] == [("1", "SKU-1", "1", None)]


def test_missing_column_names_the_file_and_the_column(spark: SparkSession, tmp_path: Path) -> None:
    write_bytes(tmp_path, "accounts.csv", b"account_id,company_name\n1,A\n")
    with pytest.raises(extract.ExtractError, match=r"accounts\.csv: missing column company_address"):
        extract.read_extract(spark, str(tmp_path), ACCOUNTS)


def test_missing_file_names_the_file(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(extract.ExtractError, match=r"accounts\.csv: file not found"):
        extract.read_extract(spark, str(tmp_path), ACCOUNTS)


def test_empty_file_is_an_error(spark: SparkSession, tmp_path: Path) -> None:
    write_bytes(tmp_path, "accounts.csv", b"")
    with pytest.raises(extract.ExtractError, match=r"accounts\.csv: empty file"):
        extract.read_extract(spark, str(tmp_path), ACCOUNTS)


def test_rows_read_are_observed_during_the_first_scan(spark: SparkSession, tmp_path: Path) -> None:
    for spec in extract.EXTRACTS:
        body = "\n".join([",".join(spec.columns), ",".join("v" for _ in spec.columns), ""])
        write_bytes(tmp_path, spec.file_name, body.encode("utf-8"))
    write_bytes(tmp_path, "invoices.csv", b"invoice_id,account_id,date_issued,payment_dates\n1,1,a,b\n2,2,c,d\n")
    observations = extract.register_extracts(spark, str(tmp_path))
    spark.table("raw_invoices").write.mode("overwrite").format("noop").save()
    invoices_observation = observations["invoices"]
    assert isinstance(invoices_observation, Observation) and invoices_observation.get == {"rows": 2}


def test_the_four_extracts_are_scanned_in_one_job_and_each_gets_its_own_answer(
    spark: SparkSession, tmp_path: Path
) -> None:
    """scan_lines counts per file in one aggregation; a file with no line at all has no group, and still an answer."""
    files = {
        "plain.csv": b"a,b\n1,2\n",
        "crlf.csv": b"a,b\r\n1,2\r\n",
        "quoted_break.csv": b'a,b\n1,"x\ny"\n',  # a quote left open on its line: not whole records
        "not_utf8.csv": b"a,b\n1,\xff\n2,\xfe\n",
        "empty.csv": b"",
        "lone_cr.csv": b"a,b\n1,x\ry\n",  # a CR inside a line: the line reader would end the line there
    }
    for name, content in files.items():
        write_bytes(tmp_path, name, content)
    spark.sparkContext.setJobGroup("scan_all", "scanning several files' lines")
    try:
        scans = extract.scan_lines(spark, [str(tmp_path / name) for name in files])
        assert len(jobs_in_group(spark, "scan_all")) == 2  # one scan: its map job and its result job
    finally:
        spark.sparkContext.setJobGroup("tests", "tests")
    assert dict(zip(files, scans, strict=True)) == {
        "plain.csv": extract.LineScan(not_utf8=0, are_records=True),
        "crlf.csv": extract.LineScan(not_utf8=0, are_records=True),
        "quoted_break.csv": extract.LineScan(not_utf8=0, are_records=False),
        "not_utf8.csv": extract.LineScan(not_utf8=2, are_records=True),
        "empty.csv": extract.LineScan(not_utf8=0, are_records=True),
        "lone_cr.csv": extract.LineScan(not_utf8=0, are_records=False),
    }
    assert extract.scan_lines(spark, []) == []


def test_every_header_is_checked_before_any_file_is_scanned(spark: SparkSession, tmp_path: Path) -> None:
    """A run with a file that is not UTF-8 and another without a required column names the column: the headers
    are read first, without a Spark job."""
    for spec in extract.EXTRACTS:
        write_bytes(
            tmp_path,
            spec.file_name,
            (",".join(spec.columns) + "\n" + ",".join("v" for _ in spec.columns) + "\n").encode(),
        )
    write_bytes(tmp_path, "accounts.csv", ",".join(ACCOUNTS.columns).encode() + b"\n" + b"1,\xff,x,x,x,x,x\n")
    write_bytes(tmp_path, "invoice_line_items.csv", b"invoice_id,item_id\n1,2\n")
    spark.sparkContext.setJobGroup("headers_first", "registering extracts with two faults")
    try:
        with pytest.raises(extract.ExtractError, match=r"invoice_line_items\.csv: missing column quantity"):
            extract.register_extracts(spark, str(tmp_path))
        assert jobs_in_group(spark, "headers_first") == []
    finally:
        spark.sparkContext.setJobGroup("tests", "tests")


def test_a_header_only_extract_is_known_empty_without_a_scan(spark: SparkSession, tmp_path: Path) -> None:
    headers = {spec.table_name: ",".join(spec.columns).encode("utf-8") for spec in extract.EXTRACTS}
    write_bytes(tmp_path, "accounts.csv", headers["accounts"] + b"\r\n")
    write_bytes(tmp_path, "skus.csv", headers["skus"])  # no line break at all
    write_bytes(tmp_path, "invoices.csv", headers["invoices"] + b"\n\n")  # a blank line is no record
    write_bytes(tmp_path, "invoice_line_items.csv", headers["invoice_line_items"] + b"\n5")  # a record, too short
    spark.sparkContext.setJobGroup("header_only", "registering header-only extracts")
    try:
        read = extract.register_extracts(spark, str(tmp_path))
        assert len(jobs_in_group(spark, "header_only")) == 2  # the one scan, of the lines (a map and a result job)
    finally:
        spark.sparkContext.setJobGroup("tests", "tests")
    assert {table: count for table, count in read.items() if isinstance(count, int)} == {
        "accounts": 0,
        "skus": 0,
        "invoices": 0,
    }
    assert isinstance(read["invoice_line_items"], Observation)
    # the line's observation was filled by no scan: counted by a query of its own
    assert extract.rows_read(spark, read) == {"accounts": 0, "skus": 0, "invoices": 0, "invoice_line_items": 1}
    assert [spark.table(f"raw_{spec.table_name}").count() for spec in extract.EXTRACTS] == [0, 0, 0, 1]


def test_a_header_only_extract_with_a_byte_that_is_not_utf8_is_still_refused(
    spark: SparkSession, tmp_path: Path
) -> None:
    write_bytes(tmp_path, "accounts.csv", ",".join(ACCOUNTS.columns).encode("utf-8") + b",not\xffes\n")
    assert not extract.is_header_only(spark, str(tmp_path / "accounts.csv"))
    with pytest.raises(extract.ExtractError, match=r"accounts\.csv: line 1 is not valid UTF-8"):
        extract.read_extract(spark, str(tmp_path), ACCOUNTS)


def test_an_observation_is_read_without_waiting_for_a_query_that_never_ran(spark: SparkSession) -> None:
    observation = Observation("rows_of_three")
    assert observations.observed(spark, observation) is None  # attached to nothing
    observed_df = spark.range(3).observe(observation, F.count(F.lit(1)).alias("rows"))
    assert observations.observed(spark, observation) is None  # attached, not run
    observed_df.write.mode("overwrite").format("noop").save()
    assert observations.observed(spark, observation) == {"rows": 3}


def test_single_csv_is_sorted_numerically_with_two_decimals_and_empty_unknowns(
    spark: SparkSession, tmp_path: Path
) -> None:
    features_df = spark.createDataFrame(
        [(10, Decimal("5.50"), None, date(2021, 1, 2)), (2, None, 3, None), (1, Decimal("0.00"), 0, None)],
        "inv_id bigint, inv_total decimal(38, 2), acct_age int, issue_date date",
    )
    target = tmp_path / "out" / "features.csv"
    target.parent.mkdir()
    rows = load.write_single_csv(features_df, str(target), ["inv_id"])
    assert rows == 3
    assert target.read_text(encoding="utf-8") == (
        "inv_id,inv_total,acct_age,issue_date\n1,0.00,0,\n2,,3,\n10,5.50,,2021-01-02\n"
    )
    assert sorted(path.name for path in target.parent.iterdir()) == ["features.csv"]  # no temporary folder left


def test_single_csv_joins_the_sorted_parts_in_order_and_an_empty_one_is_its_header(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Rows spread over several partitions, in no order: the sorted parts, joined, are one file in order."""
    scattered_df = spark.range(0, 3000, 1, 6).selectExpr("(id * 7919) % 3000 as inv_id", "id % 7 as n")
    target = tmp_path / "features.csv"
    assert load.write_single_csv(scattered_df, str(target), ["inv_id"]) == 3000
    expected = "".join(f"{inv_id},{(inv_id * 1679) % 3000 % 7}\n" for inv_id in range(3000))
    assert target.read_text(encoding="utf-8") == "inv_id,n\n" + expected  # 1679 = 7919^-1 mod 3000
    empty = tmp_path / "empty.csv"
    assert load.write_single_csv(scattered_df.limit(0), str(empty), ["inv_id"]) == 0
    assert empty.read_text(encoding="utf-8") == "inv_id,n\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.csv", "features.csv"]


def test_single_csv_quotes_json_and_newlines(spark: SparkSession, tmp_path: Path) -> None:
    rejects_df = spark.createDataFrame(
        [("accounts", "invalid_value", '{"company_address":"1 Road\\nTown, \\"X\\""}')],
        "table_name string, reject_reason string, source_record string",
    )
    target = tmp_path / "rejects.csv"
    load.write_single_csv(rejects_df, str(target), ["table_name"])
    with target.open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [
            ["table_name", "reject_reason", "source_record"],
            ["accounts", "invalid_value", '{"company_address":"1 Road\\nTown, \\"X\\""}'],
        ]


def test_parquet_models_replace_the_previous_version(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "warehouse" / "staging" / "stg_example")
    assert load.write_parquet(spark.range(5), path) == 5
    assert load.write_parquet(spark.range(2), path) == 2
    assert sorted(row["id"] for row in spark.read.parquet(path).collect()) == [0, 1]
    assert [p.name for p in (tmp_path / "warehouse" / "staging").iterdir()] == ["stg_example"]


def test_a_model_this_process_wrote_is_read_back_without_a_schema_job(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "warehouse" / "staging" / "stg_typed")
    written_df = spark.sql("select cast(id as int) as item_id, cast(id * 1.5 as decimal(21, 6)) as price from range(3)")
    load.write_parquet(written_df, path)
    spark.sparkContext.setJobGroup("read_back", "reading a stored model")
    try:
        read_df = load.read_parquet(spark, path)
        assert jobs_in_group(spark, "read_back") == []  # Spark infers a schema with a job of its own
    finally:
        spark.sparkContext.setJobGroup("tests", "tests")
    assert read_df.dtypes == [("item_id", "int"), ("price", "decimal(21,6)")]
    assert sorted(tuple(row) for row in read_df.collect()) == [
        (0, Decimal("0.000000")),
        (1, Decimal("1.500000")),
        (2, Decimal("3.000000")),
    ]
    unknown_path = str(tmp_path / "elsewhere")
    spark.range(2).write.parquet(unknown_path)  # written outside load: its schema is inferred
    assert load.read_parquet(spark, unknown_path).dtypes == [("id", "bigint")]


def test_a_java_error_is_told_by_its_exception_line_not_the_call() -> None:
    value = (
        "An error occurred while calling o244.parquet.\n"
        ": java.io.IOException: Mkdirs failed to create file:/x\n\tat org.apache.hadoop.fs.ChecksumFileSystem.create"
    )
    assert runner.error_line("Py4JJavaError", value) == "java.io.IOException: Mkdirs failed to create file:/x"
    assert runner.error_line("ExtractError", "x.csv: file not found\nmore") == "x.csv: file not found"


ACCOUNTS_HEADER = b"account_id,company_name,company_address,contact_person,contact_phone,gender,joining_date\n"


def test_a_file_that_is_not_utf8_stops_naming_its_first_bad_line(spark: SparkSession, tmp_path: Path) -> None:
    body = ACCOUNTS_HEADER + b"1,Acme,A,B,C,F,2019-01-01\n2,Caf\xe9,A,B,C,F,2019-01-01\n3,Caf\xe9,A,B,C,F,2019-01-01\n"
    write_bytes(tmp_path, "accounts.csv", body)
    with pytest.raises(extract.ExtractError) as raised:
        extract.read_extract(spark, str(tmp_path), ACCOUNTS)
    assert str(raised.value) == (
        f"{tmp_path}/accounts.csv: line 3 is not valid UTF-8 (2 such line(s) in all); "
        "pass --encoding NAME if the extracts are encoded otherwise"
    )
    decoded = extract.read_extract(spark, str(tmp_path), ACCOUNTS, encoding="ISO-8859-1")
    assert [row["company_name"] for row in decoded.collect()] == ["Acme", "Café", "Café"]


def test_a_replacement_character_really_in_the_file_is_valid_utf8(spark: SparkSession, tmp_path: Path) -> None:
    write_bytes(tmp_path, "accounts.csv", ACCOUNTS_HEADER + "1,Caf\ufffd,A,B,C,F,2019-01-01\n".encode())
    assert [row["company_name"] for row in extract.read_extract(spark, str(tmp_path), ACCOUNTS).collect()] == [
        "Caf\ufffd"
    ]


def test_an_unknown_encoding_is_named(spark: SparkSession, tmp_path: Path) -> None:
    write_bytes(tmp_path, "accounts.csv", ACCOUNTS_HEADER)
    with pytest.raises(extract.ExtractError, match=r"^--encoding klingon: not an encoding Java knows"):
        extract.read_extract(spark, str(tmp_path), ACCOUNTS, encoding="klingon")


def test_header_names_are_trimmed_as_values_are(spark: SparkSession, tmp_path: Path) -> None:
    header = b" account_id , company_name,company_address,contact_person,contact_phone,gender,joining_date \n"
    write_bytes(tmp_path, "accounts.csv", header + b"7,Acme,A,B,C,F,2019-01-01\n")
    rows = extract.read_extract(spark, str(tmp_path), ACCOUNTS).collect()
    assert [(row["account_id"], row["joining_date"]) for row in rows] == [("7", "2019-01-01")]
