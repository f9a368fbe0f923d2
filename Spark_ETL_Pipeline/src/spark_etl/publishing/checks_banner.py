"""The checks' banner, shown first on the index page and in the monitoring report: light enough for the entry
script, which renders the index and draws no chart (no notebook display code imported)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

BANNER_STYLE = {
    "error": "background:#fde2e1;border:1px solid #c0392b",
    "warn": "background:#fff4d6;border:1px solid #b9770e",
    "passed": "background:#e3f4e8;border:1px solid #1e8449",
}


def banner_level(outcomes: Sequence[Mapping[str, Any]]) -> str:
    """error, warn or passed: the worst failed check's level (outcomes as `checks.Outcome.as_json` gives them)."""
    failed_levels = {outcome["level"] for outcome in outcomes if outcome["status"] == "failed"}
    return "error" if "error" in failed_levels else "warn" if "warn" in failed_levels else "passed"


def banner_html(outcomes: Sequence[Mapping[str, Any]], link: str = "") -> str:
    """One line a reviewer sees first: how many checks failed at each level, and which; `link`: to the details."""
    level = banner_level(outcomes)
    failed = [outcome for outcome in outcomes if outcome["status"] == "failed"]
    if level == "passed":
        text = f"all {sum(o['status'] == 'passed' for o in outcomes)} checks passed"
        skipped = sum(outcome["status"] == "skipped" for outcome in outcomes)
        text += f" ({skipped} skipped: nothing to compare with yet, or too few rows)" if skipped else ""
    else:
        listed = "; ".join(f"{o['level']}: {o['name']}: {o['message']}" for o in failed)
        text = f"{len(failed)} check(s) failed: {listed}"
    more = f" <a href='{html.escape(link)}'>checks, distributions and run history</a>" if link else ""
    return (
        f"<div class='checks-banner checks-{level}' style='{BANNER_STYLE[level]};padding:8px 12px;margin:8px 0'>"
        f"<b>Checks</b>: {html.escape(text)}{more}</div>"
    )
