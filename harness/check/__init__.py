"""``harness check``: find broken or risky catalog SQL before anything is timed, with file:line:col.

Offline, the schema comes from the DDL (``schema.sql`` + the strategies' CREATE INDEX statements), parsed
with sqlglot; with a DSN it comes from the live catalog, and every query is also PREPAREd (never executed)
inside a read-only transaction. The package, one idea per module: ``findings`` (what is reported),
``escapes`` (PostgreSQL's Unicode escapes, decoded before sqlglot reads the SQL), ``parse`` (the sqlglot
adapter), ``rules`` (correctness rules; style rules are in ``harness.lint``),
``prepare`` (live PREPARE), ``format`` (text, JSON, GitHub annotations); here, the command and its exit code.
The SQL that runs is always the file's own text: sqlglot only reads it.
"""

from __future__ import annotations

from pathlib import Path

from harness.catalog import Catalog, Query, load_query, query_files
from harness.check.findings import CHECK_RULES, Finding, finding
from harness.check.format import FORMATTERS, summarize
from harness.check.prepare import prepare_queries
from harness.check.rules import RUN_BLOCKERS, check_query, run_blockers
from harness.db import connect
from harness.ddl import load_schema_ddl
from harness.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, ConfigError, InputError
from harness.schema import SchemaInfo, load_schema_live

__all__ = [
    "CHECK_RULES",
    "FORMATTERS",
    "RUN_BLOCKERS",
    "Finding",
    "check_catalog",
    "check_query",
    "prepare_queries",
    "refuse_unrunnable",
    "run_blockers",
    "run_check",
]


def check_catalog(catalog: Catalog, schema: SchemaInfo, dsn: str | None = None) -> list[Finding]:
    """Findings for every query, sorted by file and position; with ``dsn``, PREPARE results too."""
    findings: list[Finding] = []
    clean: list[Query] = []
    for query in catalog.queries:
        found = check_query(query, schema)
        findings += found
        if not any(f.severity == "error" for f in found):
            clean.append(query)
    if dsn is not None:
        findings += prepare_queries(dsn, clean)
    return sorted(findings, key=_by_position)


def run_check(
    queries_dir: Path, schema_sql: Path, strategies_dir: Path | None, dsn: str | None, fmt: str, strict: bool
) -> tuple[str, int]:
    """The whole ``harness check`` command: (rendered output, exit code 0 clean / 1 findings / 2 bad input).

    A malformed query header is reported like any finding (rule ``config_error``) and exits 2; a schema
    statement that could not be read is a ``schema_unread`` warning at its line. A missing directory or
    unreadable schema file raises InputError; an unreachable database DatabaseError. Without
    ``strategies_dir`` only the schema's own indexes count for expectations.
    """
    if fmt not in FORMATTERS:
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATTERS)}")
    queries: list[Query] = []
    findings: list[Finding] = []
    for path in query_files(queries_dir):
        try:
            queries.append(load_query(path))
        except ConfigError as exc:
            findings.append(finding("config_error", exc.path, exc.line or 1, exc.col or 1, exc.message))
    if dsn is not None:
        with connect(dsn) as conn:
            schema = load_schema_live(conn)
    else:
        schema = load_schema_ddl(schema_sql, sorted(strategies_dir.glob("*.sql")) if strategies_dir else [])
        findings += [
            finding("schema_unread", u.path, u.line, u.col, f"{u.kind} not read: {u.reason}") for u in schema.unread
        ]
    findings = sorted(
        findings + check_catalog(Catalog(queries_dir, tuple(queries)), schema, dsn),
        key=_by_position,
    )
    if any(f.rule_id == "config_error" for f in findings):
        code = EXIT_BAD_INPUT
    elif any(f.severity == "error" or strict for f in findings):
        code = EXIT_FAILED
    else:
        code = EXIT_OK
    summary = summarize(
        findings,
        len(queries) + sum(f.rule_id == "config_error" for f in findings),
        "live" if dsn is not None else "ddl",
        code,
    )
    return FORMATTERS[fmt](findings, summary), code


def refuse_unrunnable(catalog: Catalog) -> None:
    """ConfigError (exit 2) at the first query that writes, holds several statements or none, that sqlglot
    cannot parse (without ``[lint.allow] unparsed``), or whose placeholders do not match its parameters."""
    for query in catalog.queries:
        blockers = run_blockers(query)
        if blockers:
            first = blockers[0]
            raise ConfigError(first.path, f"{first.message}; {first.fix}", first.line, first.col)


def _by_position(finding: Finding) -> tuple[str, int, int, str]:
    return finding.path, finding.line, finding.col, finding.rule_id
