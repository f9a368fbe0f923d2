"""The package's layout as a reader meets it: every module named in README's layout table, in its own sub-package's
row, and every sub-package saying in its docstring, in two lines, what lives there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from support.pipeline import PROJECT_DIR

PACKAGE_DIR = PROJECT_DIR / "Spark_ETL_Pipeline" / "src" / "spark_etl"


def layout_rows() -> dict[str, str]:
    """README's layout table: path -> what."""
    text = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        matched = re.match(r"^\| `([^`]+)` \| (.*) \|$", line)
        if matched:
            rows[matched.group(1)] = matched.group(2)
    return rows


def sub_packages() -> list[Path]:
    return sorted(path.parent for path in PACKAGE_DIR.glob("*/__init__.py"))


def test_every_module_is_named_in_its_sub_packages_row_of_the_layout_table() -> None:
    rows = layout_rows()
    assert sub_packages(), "no sub-package found"
    for package in sub_packages():
        row = rows.get(f"spark_etl/{package.name}/")
        assert row is not None, f"README's layout table has no row for spark_etl/{package.name}/"
        modules = sorted(path.name for path in package.glob("*.py") if path.name != "__init__.py")
        missing = [name for name in modules if f"`{name}`" not in row]
        assert missing == [], f"spark_etl/{package.name}/: {missing} not in README's layout table"
    top_level = sorted(path.name for path in PACKAGE_DIR.glob("*.py") if path.name != "__init__.py")
    assert [name for name in top_level if f"`{name}`" not in rows["Spark_ETL_Pipeline/src/spark_etl/"]] == []


def test_each_sub_package_says_in_two_lines_what_lives_there() -> None:
    for package in sub_packages():
        docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert docstring is not None, package.name
        assert 1 <= len(docstring.splitlines()) <= 2, f"{package.name}: {docstring!r}"
