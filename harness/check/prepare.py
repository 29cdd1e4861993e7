"""Live mode of ``harness check``: PREPARE every query on the server, never executing it."""

from __future__ import annotations

import psycopg

from harness.catalog import Query
from harness.check.findings import Finding, finding
from harness.check.parse import rewrite
from harness.db import connect
from harness.safety import execute_one, read_only

PREPARE_TIMEOUT_MS = 5_000


def prepare_queries(dsn: str, queries: list[Query]) -> list[Finding]:
    """PREPARE each query (``$n`` parameters, typed as the runner will bind them) in a read-only transaction.

    Nothing is executed: PREPARE only parses, resolves names and types, and plans nothing yet.
    """
    findings: list[Finding] = []
    with connect(dsn, autocommit=True, application_name="harness check") as conn:
        for number, query in enumerate(queries):
            names = list(query.param_names)
            text, offsets, _ = rewrite(query.sql, lambda name, names=names: f"${_position_of(names, name)}")
            types = ", ".join(_param_type(query, name) for name in names)
            prefix = f"PREPARE harness_check_{number}{f'({types})' if types else ''} AS "
            try:
                with read_only(conn):
                    conn.execute(f"SET LOCAL statement_timeout = {PREPARE_TIMEOUT_MS}")
                    execute_one(conn.cursor(), prefix + text, None, prepare=False)  # one statement, never two
                    conn.execute(f"DEALLOCATE harness_check_{number}")
            except psycopg.errors.QueryCanceled:
                raise
            except psycopg.Error as exc:
                position = exc.diag.statement_position
                offset = int(position) - 1 - len(prefix) if position else -1
                line, col = query.position(offsets[offset]) if 0 <= offset < len(offsets) else (query.sql_start_line, 1)
                message = (exc.diag.message_primary or str(exc)).strip()
                findings.append(finding("prepare_error", str(query.path), line, col, message))
    return findings


def _position_of(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name) + 1


def _param_type(query: Query, name: str) -> str:
    """The type psycopg will send for a drawn value, so PREPARE infers what the runner will bind."""
    spec = next((p for p in query.params if p.name == name), None)
    if spec is None:
        return "unknown"
    if spec.draw == "anchor":
        return "timestamptz"
    sample = spec.value if spec.draw == "value" else spec.values[0] if spec.draw == "choice" else None
    if spec.draw == "int" or (isinstance(sample, int) and not isinstance(sample, bool)):
        return "bigint"
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, float):
        return "double precision"
    return "unknown"
