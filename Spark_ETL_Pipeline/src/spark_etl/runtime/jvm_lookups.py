"""Py4J's name lookups, answered once per process.

PySpark reaches the JVM through names (`jvm.functions`, `jvm.org.apache.spark.sql.api.python.PythonSQLUtils`,
`jvm.py4j.reflection.TypeUtil` when it converts an exception), and Py4J asks the JVM to resolve every part of such
a name each time, as `Class.forName` under each of PySpark's imported packages. Every miss (`org`, `org.apache`,
`functions` under `java.lang`) searches each of the 250 jars on the driver's class path: a warm run on the real
extracts made about 3,800 lookups, and in warm runs of 300 invoices a quarter of the driver JVM's sampled time
was spent in them. A name resolves the same way for the JVM's whole life (the class path is fixed when it
starts), so the answer is kept on the gateway's client and asked once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from py4j import java_gateway

# where the answers are kept: an attribute of the GatewayClient, so they go with the JVM they describe
ANSWERS_ATTRIBUTE = "_spark_etl_lookups"
_INSTALLED_ATTRIBUTE = "_spark_etl_remembers_lookups"


def remember_lookups() -> None:
    """Have Py4J's JVM views and packages keep each name's answer (a class or a package) on their gateway's client.
    Idempotent; an error (a name that is neither) is not kept, so it is raised again."""
    if getattr(java_gateway.JVMView, _INSTALLED_ATTRIBUTE, False):
        return
    view_lookup = java_gateway.JVMView.__getattr__
    package_lookup = java_gateway.JavaPackage.__getattr__

    def view_getattr(view: java_gateway.JVMView, name: str) -> Any:
        return _remembered(view._gateway_client, (view._id, name), lambda: view_lookup(view, name))

    def package_getattr(package: java_gateway.JavaPackage, name: str) -> Any:
        key = (package._jvm_id, f"{package._fqn}.{name}")
        return _remembered(package._gateway_client, key, lambda: package_lookup(package, name))

    java_gateway.JVMView.__getattr__ = view_getattr
    java_gateway.JavaPackage.__getattr__ = package_getattr
    setattr(java_gateway.JVMView, _INSTALLED_ATTRIBUTE, True)


def _remembered(client: Any, key: tuple[str, str], look_up: Callable[[], Any]) -> Any:
    answers: dict[tuple[str, str], Any] = client.__dict__.setdefault(ANSWERS_ATTRIBUTE, {})
    if key in answers:
        return answers[key]
    answer = look_up()
    if isinstance(answer, java_gateway.JavaClass | java_gateway.JavaPackage):  # not a help object or magic name
        answers[key] = answer
    return answer
