"""The extensions the measurements use when a database has them, what each one's absence costs, and
creating them, which only the harness's own databases and ``--create-extensions`` ever do."""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql

EXTENSIONS = {
    "pg_stat_statements": "work metrics (buffers, temp blocks, rows) come from one EXPLAIN (ANALYZE, BUFFERS) "
    "per distinct draw instead of the timed executions themselves",
    "pg_prewarm": "the cache is warmed by reading each table (indexes stay as the server has them)",
}
PRELOADED = ("pg_stat_statements",)  # needs shared_preload_libraries (a restart) before CREATE EXTENSION


def create_extensions(conn: psycopg.Connection) -> list[str]:
    """Create the extensions the measurements use that the server ships and this database lacks (each in a
    transaction or savepoint of its own: a role that may not create one loses only that one); the names made.
    Reads only when nothing is missing."""
    missing = conn.execute(
        "SELECT name FROM pg_available_extensions WHERE name = ANY(%s) AND installed_version IS NULL ORDER BY 1",
        [list(EXTENSIONS)],
    ).fetchall()
    created = []
    for (name,) in missing:
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
            created.append(name)
    return created
