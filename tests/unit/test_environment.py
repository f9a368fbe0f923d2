"""environment.yml (conda users) pins exactly what requirements*.txt (pip users and CI) pin."""

from __future__ import annotations

import re

from support.pipeline import PROJECT_DIR


def pins(text: str) -> set[str]:
    return {match.group(1) for match in re.finditer(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+==[^\s#]+)", text, re.M)}


def test_environment_yml_pins_the_same_pip_packages() -> None:
    requirements = pins((PROJECT_DIR / "requirements.txt").read_text()) | pins(
        (PROJECT_DIR / "requirements-dev.txt").read_text()
    )
    environment = (PROJECT_DIR / "environment.yml").read_text()
    assert "pyspark==3.4.0" in requirements
    assert pins(environment) == requirements
    assert re.search(r"^\s*-\s*python=3\.11\s*$", environment, re.M)
    assert re.search(r"^\s*-\s*openjdk=17\s*$", environment, re.M)
