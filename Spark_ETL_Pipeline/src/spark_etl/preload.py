"""What the stage notebooks import, loaded by each run's kernel while it boots: the runner starts the kernel
and the Spark JVM together, so these imports (about a second: PySpark, matplotlib, IPython's display) overlap
the JVM's start instead of delaying the first stage's first cell. `%reset` between stages clears names, not
loaded modules."""

from __future__ import annotations

import matplotlib.pyplot  # noqa: F401  # the charts' first draw
from IPython.display import HTML  # noqa: F401

from spark_etl import (  # noqa: F401
    extract,
    filesystem,
    increments,
    jdbc,
    load,
    models,
    notebook_display,
    quality,
    registry,
    serving,
    source_state,
    stage_metrics,
    versions,
)
from spark_etl.session import spark_session  # noqa: F401

