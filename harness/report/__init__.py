"""Run reports in reports/<run-id>/: run.json, summary.md, junit.xml (rewritten after each query) and
report.html (at the end, since its figures take a moment)."""

from __future__ import annotations

from pathlib import Path

from harness.report.json_report import render_json
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.results import RunResult


def write_reports(result: RunResult, directory: Path, *, html: bool = True) -> Path:
    """Write every report of ``result`` into ``directory`` (created), atomically per file."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "run.json": render_json(result),
        "summary.md": render_markdown(result),
        "junit.xml": render_junit(result),
    }
    if html:
        from harness.report.html import render_html  # matplotlib (its figures) only for the final report

        files["report.html"] = render_html(result)
    for name, text in files.items():
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(directory / name)
    return directory
