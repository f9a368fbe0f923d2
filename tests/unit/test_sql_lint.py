"""The SQL lint configuration: every rule it switches off says why, on the line before."""

from __future__ import annotations

import configparser
import re

from support.pipeline import PROJECT_DIR


def test_every_excluded_rule_has_a_one_line_reason() -> None:
    text = (PROJECT_DIR / ".sqlfluff").read_text(encoding="utf-8")
    config = configparser.ConfigParser()
    config.read_string(text)
    assert config["sqlfluff"]["dialect"] == "sparksql"
    excluded = [code.strip() for code in config["sqlfluff"]["exclude_rules"].split(",")]
    assert excluded
    for code in excluded:
        assert re.search(rf"^# {code}: \S.*$", text, re.M), f"{code} is excluded without a '# {code}: reason' line"
