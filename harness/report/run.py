"""Run reports in reports/<run-id>/: run.json, summary.md, junit.xml (rewritten after each query) and
report.html (at the end, since its figures take a moment)."""

from __future__ import annotations

from pathlib import Path

from harness.report.export import Exporter, export
from harness.report.json_report import render_json
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.results import RunResult


def _render_html(result: RunResult) -> str:
    from harness.report.html import render_html  # matplotlib (its figures) only for the final report

    return render_html(result)


RUN_EXPORTERS: tuple[Exporter[RunResult], ...] = (
    Exporter.file("run.json", render_json),
    Exporter.file("summary.md", render_markdown),
    Exporter.file("junit.xml", render_junit),
)
HTML_EXPORTER: Exporter[RunResult] = Exporter.file("report.html", _render_html)


def write_reports(result: RunResult, directory: Path, *, html: bool = True) -> Path:
    """Write every report of ``result`` into ``directory`` (created), atomically per file."""
    return export(result, directory, RUN_EXPORTERS + ((HTML_EXPORTER,) if html else ()))
