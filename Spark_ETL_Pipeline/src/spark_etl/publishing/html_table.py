"""One small HTML table builder, shared by the notebooks' tables and the run's index page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """Escaped cells, None as an empty cell, an optional caption."""

    def cell(value: Any) -> str:
        return html.escape("" if value is None else str(value))

    head = "".join(f"<th>{cell(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(value)}</td>" for value in row) + "</tr>" for row in rows)
    title = f"<caption>{cell(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
