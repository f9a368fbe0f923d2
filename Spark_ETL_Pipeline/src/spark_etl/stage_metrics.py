"""A stage's metrics: its notebook publishes them as a display output of their own MIME type, and the entry script
reads them back from the executed copy. Writer and reader live together, so the format is stated once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS_MIME_TYPE = "application/vnd.spark-etl.stage-metrics+json"


def publish(metrics: dict[str, Any]) -> None:
    """Leave the stage's metrics in the executed notebook (and readable as JSON in its report)."""
    from IPython.display import display

    display({METRICS_MIME_TYPE: metrics, "text/plain": json.dumps(metrics, indent=1)}, raw=True)


def read(executed_path: Path) -> dict[str, Any] | None:
    """The metrics a notebook published, or None when it published none."""
    import nbformat  # here, not above: the stages' kernel imports this module to publish, and nbformat's schema
    # validator takes 0.7 s to import; only the entry script, which has it loaded already, reads

    notebook = nbformat.read(executed_path, as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if METRICS_MIME_TYPE in data:
                return dict(data[METRICS_MIME_TYPE])
    return None
