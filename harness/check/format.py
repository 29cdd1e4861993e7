"""Render ``harness check`` findings: text for people, JSON for programs, GitHub workflow annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from harness.check.findings import Finding

JSON_SCHEMA_VERSION = 1


def summarize(findings: list[Finding], queries: int, mode: str, exit_code: int) -> dict[str, object]:
    """The counts every format ends with."""
    return {
        "queries": queries,
        "errors": sum(f.severity == "error" for f in findings),
        "warnings": sum(f.severity == "warning" for f in findings),
        "files_with_findings": len({f.path for f in findings}),
        "mode": mode,
        "exit_code": exit_code,
    }


def format_text(findings: list[Finding], summary: dict[str, object]) -> str:
    """``path:line:col: severity RULE message (fix: …)`` per finding, then a one-line summary."""
    lines = [
        f"{_display(f.path)}:{f.line}:{f.col}: {f.severity} {f.rule_id} {f.message} (fix: {f.fix})" for f in findings
    ]
    lines.append(
        f"{summary['queries']} queries checked ({summary['mode']}): "
        f"{summary['errors']} errors, {summary['warnings']} warnings"
    )
    return "\n".join(lines) + "\n"


def format_json(findings: list[Finding], summary: dict[str, object]) -> str:
    """``{"schema_version": 1, "findings": [...], "summary": {...}}`` (documented in the README)."""
    document = {
        "schema_version": JSON_SCHEMA_VERSION,
        "findings": [
            {
                "rule_id": f.rule_id,
                "severity": f.severity,
                "path": _display(f.path),
                "line": f.line,
                "col": f.col,
                "message": f.message,
                "fix": f.fix,
            }
            for f in findings
        ],
        "summary": summary,
    }
    return json.dumps(document, indent=2) + "\n"


def format_github(findings: list[Finding], summary: dict[str, object]) -> str:
    """GitHub Actions workflow commands: one ``::error``/``::warning`` annotation per finding."""
    del summary
    return "".join(
        f"::{f.severity} file={_property(_display(f.path))},line={f.line},col={f.col},"
        f"title={_property(f.rule_id)}::{_data(f'{f.message} (fix: {f.fix})')}\n"
        for f in findings
    )


FORMATTERS: dict[str, Callable[[list[Finding], dict[str, object]], str]] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
}


def _display(path: str) -> str:
    """Paths relative to the working directory when inside it (what editors and GitHub expect)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
