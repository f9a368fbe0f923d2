"""The run's reports: each executed notebook as a self-contained HTML page, and an index with the summary.

Pages embed their images and CSS and load no script from the network, so they open offline, as attachments or
from an artifact store.
"""

from __future__ import annotations

import html
import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat

from spark_etl.publishing.checks_banner import banner_html
from spark_etl.publishing.html_table import html_table

# nbconvert's templates reference MathJax and RequireJS on a CDN; the reports need neither
REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)

INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
td:nth-child(-n+2), th:nth-child(-n+2) { text-align: left; }
.failed { color: #b00020; font-weight: bold; }
.succeeded { color: #1b5e20; font-weight: bold; }
"""


def render_notebook(executed_path: Path, html_path: Path) -> None:
    """One executed notebook as one HTML file, images embedded, no remote scripts."""
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed_path, as_version=4)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_notebook_node(notebook)
    html_path.write_text(REMOTE_SCRIPT.sub("", body), encoding="utf-8")


MONITORING_REPORT = "04_monitoring.html#Checks"  # its checks, distributions and the run history below them


def index_page(summary: dict[str, Any], report_names: list[str]) -> str:
    """The run at a glance: status, as_of, row accounting, rejects, timings, a link to each report."""
    status = str(summary.get("status", "unknown"))
    parts = [
        f"<h1>Pipeline run: <span class='{html.escape(status)}'>{html.escape(status)}</span></h1>",
        *([banner_html(summary["checks"], MONITORING_REPORT)] if summary.get("checks") else []),
        f"<p>as_of <b>{html.escape(str(summary.get('as_of') or '-'))}</b> · output rows "
        f"<b>{summary.get('output_rows', '-')}</b> · {summary.get('seconds', '-')} s · extracts "
        f"<code>{html.escape(str(summary.get('extracts') or '-'))}</code></p>",
    ]
    if summary.get("mode"):
        parts.append(
            f"<p>{html.escape(str(summary['mode']))} run · warehouse version "
            f"<code>{html.escape(str(summary.get('version')))}</code> · invoice totals recomputed "
            f"<b>{summary.get('invoices_recomputed', '-')}</b> · accounts recomputed "
            f"<b>{summary.get('accounts_recomputed', '-')}</b></p>"
        )
    if summary.get("csv_version") not in (None, summary.get("version")):  # a --no-csv run kept an earlier CSV
        parts.append(
            f"<p>the feature CSV was <b>not rewritten</b> (--no-csv): it holds version "
            f"<code>{html.escape(str(summary['csv_version']))}</code></p>"
        )
    source = summary.get("source") or {}
    if source.get("kind") == "jdbc":
        parts.append(
            f"<p>source <code>{html.escape(str(source.get('url')))}</code> schema "
            f"<code>{html.escape(str(source.get('schema')))}</code></p>"
        )
    loaded = summary.get("loaded_table")
    if loaded:
        parts.append(
            f"<p>loaded table <code>{html.escape(str(loaded['table']))}</code> at "
            f"<code>{html.escape(str(loaded['url']))}</code>: <b>{loaded['rows']}</b> rows</p>"
        )
    if summary.get("error"):
        parts.append(f"<p class='failed'>{html.escape(str(summary['error']))}</p>")
    parts.append("<h2>Reports</h2><ul>")
    parts += [f"<li><a href='{html.escape(name)}'>{html.escape(name)}</a></li>" for name in report_names]
    parts.append("</ul>")
    tables = summary.get("tables", {})
    if tables:
        rows = [[name, c["read"], c["kept"], c["collapsed"], c["rejected"]] for name, c in tables.items()]
        parts += ["<h2>Rows per table</h2>", html_table(["table", "read", "kept", "collapsed", "rejected"], rows)]
    rejects = summary.get("rejects", {})
    parts.append("<h2>Rejects by reason</h2>")
    parts.append(
        html_table(["table/reason", "rows"], [[k, v] for k, v in rejects.items()]) if rejects else "<p>none</p>"
    )
    stages = summary.get("stages", [])
    if stages:
        rows = [
            [
                stage["notebook"] if i == 0 else "",
                model["model"],
                model["rows"] if model["rows"] is not None else "-",
                model["seconds"],
            ]
            for stage in stages
            for i, model in enumerate(stage["models"])
        ]
        rows += [[stage["notebook"], "(whole notebook)", "", stage["seconds"]] for stage in stages]
        parts += ["<h2>Stage timings</h2>", html_table(["notebook", "model", "rows", "seconds"], rows)]
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pipeline run</title>"
        f"<style>{INDEX_STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_index(reports_dir: Path, summary: dict[str, Any]) -> Path:
    index_path = reports_dir / "index.html"
    report_names = sorted(path.name for path in reports_dir.glob("*.html") if path != index_path)
    index_path.write_text(index_page(summary, report_names), encoding="utf-8")
    return index_path


class ReportRenderer:
    """Renders each executed notebook on a background thread while the next stage runs, so the reports add
    little to the run's wall time; `finish` renders whatever is left (a failed stage's copy) and the index."""

    def __init__(self, reports_dir: Path) -> None:
        self.reports_dir = reports_dir
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reports")
        self._pending: dict[Path, Future[None]] = {}

    def __enter__(self) -> ReportRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True)

    def _html_path(self, executed_path: Path) -> Path:
        return self.reports_dir / f"{executed_path.stem}.html"

    def submit(self, executed_path: Path) -> None:
        self._pending[executed_path] = self._pool.submit(render_notebook, executed_path, self._html_path(executed_path))

    def finish(self, executed_dir: Path, summary: dict[str, Any]) -> Path:
        """Wait for the renders (raising the first failure), render the executed copies no stage handed in,
        then write the index."""
        for future in self._pending.values():
            future.result()
        for executed_path in sorted(executed_dir.glob("*.ipynb")):
            if executed_path not in self._pending:
                render_notebook(executed_path, self._html_path(executed_path))
        return write_index(self.reports_dir, summary)
