"""Reading what a query observed (row counts, profiles) without ever waiting for a query that will not come."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import Observation, SparkSession

# how long to wait for Spark's listener bus to report the queries that have finished (it is normally
# milliseconds behind); past it the run fails instead of waiting for ever
LISTENER_BUS_TIMEOUT_MS = 120_000
QUICK_LOOK_SECONDS = 0.2


def observed(spark: SparkSession, observation: Observation) -> dict[str, Any] | None:
    """The metrics `observation` holds once every finished query has been reported, or None if none filled it.

    `Observation.get` waits, with no bound, for a query carrying the observation to finish. When adaptive
    execution prunes the observed scan (a window or join over an input that turned out empty), or the query was
    never run, no query ever fills it and `get` never returns. So: wait (bounded) until the listener bus has
    delivered every query that has already finished, then look without blocking.
    """
    java_observation = observation._jo
    if java_observation is None:  # never attached to a DataFrame
        return None
    # Spark 3.4 has no non-blocking accessor; the field is Option[Map] and set once, under the object's lock
    field = java_observation.getClass().getDeclaredField("metrics")
    field.setAccessible(True)
    # usually filled within milliseconds of the query's end: look for a moment before draining the whole bus, whose
    # event-log queue (spark.eventLog.enabled) can lag by a second behind a run of small queries
    deadline = time.monotonic() + QUICK_LOOK_SECONDS
    while not field.get(java_observation).isDefined():
        if time.monotonic() > deadline:
            spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(LISTENER_BUS_TIMEOUT_MS)
            if not field.get(java_observation).isDefined():
                return None
            break
        time.sleep(0.005)
    return dict(observation.get)


def observed_or(spark: SparkSession, observation: Observation, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The observed metrics, or `compute()` (an explicit query) when no query filled them."""
    metrics = observed(spark, observation)
    return compute() if metrics is None else metrics
