"""The one HTML table builder behind the notebooks' tables and the run's index page."""

from __future__ import annotations

from spark_etl.publishing import reports
from spark_etl.publishing.html_table import html_table


def test_cells_are_escaped_none_is_empty_and_the_caption_comes_first() -> None:
    assert html_table(["a<b", "n"], [["x & y", None], [1, 2.5]], "rows & more") == (
        "<table><caption>rows &amp; more</caption><thead><tr><th>a&lt;b</th><th>n</th></tr></thead>"
        "<tbody><tr><td>x &amp; y</td><td></td></tr><tr><td>1</td><td>2.5</td></tr></tbody></table>"
    )
    assert html_table(["a"], []) == "<table><thead><tr><th>a</th></tr></thead><tbody></tbody></table>"


def test_the_index_page_builds_its_tables_with_it() -> None:
    page = reports.index_page({"status": "succeeded", "rejects": {"skus/invalid_value": 2}}, [])
    assert html_table(["table/reason", "rows"], [["skus/invalid_value", 2]]) in page
