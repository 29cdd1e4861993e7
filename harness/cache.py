"""Repeatable cache state: measurements start with the workload's relations loaded, and say so.

Without this, the first run after a seed or an index switch measures a cold cache and the next one a warm
one, and a comparison between them reports the difference as a regression. ``warm_cache`` loads every
table and index of the schema into shared buffers with pg_prewarm (created as an extension when the server
ships it), smallest first so that the relations that fit stay resident; where pg_prewarm is unavailable it
falls back to a full read of each table (which warms the OS page cache; PostgreSQL's ring buffer keeps a
large sequential scan from filling shared buffers). The returned ``CacheState`` goes into run.json, and the
work metrics' buffers read vs hit show whether the timed executions then found their pages in cache.

On data the harness seeded, tables never vacuumed are vacuumed first (once, right after a seed): otherwise
autovacuum does it between two runs, and its new visibility map, hint bits and page counts change both the
buffers a query touches and, through the planner's size estimates, the plan some draws get.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from harness.db import connect

CacheMethod = Literal["pg_prewarm", "full read", "none"]


@dataclass(frozen=True)
class CacheState:
    """How the relations were brought into cache before measuring."""

    method: CacheMethod
    relations: int
    blocks: int  # 8 kB blocks loaded (pg_prewarm) or read (full read)
    shared_buffers_blocks: int
    seconds: float
    note: str = ""
    vacuumed: tuple[str, ...] = ()  # tables vacuumed first (never vacuumed since they were loaded)

    @property
    def fits(self) -> bool:
        """Everything loaded fits in shared buffers: the timed executions should read nothing from disk."""
        return self.blocks <= self.shared_buffers_blocks

    def describe(self) -> str:
        if self.method == "none":
            return f"cache not warmed ({self.note})"
        fit = "fits in" if self.fits else "exceeds"
        vacuumed = f"vacuumed {', '.join(self.vacuumed)} (new data); " if self.vacuumed else ""
        return (f"{vacuumed}cache warmed with {self.method}: {self.relations} relations, {self.blocks:,} blocks "
                f"({fit} shared_buffers of {self.shared_buffers_blocks:,}) in {self.seconds:.2f} s")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fits": self.fits, "text": self.describe()}


def warm_cache(admin_dsn: str, vacuum_new: bool = False) -> CacheState:
    """Load the schema's tables and indexes into cache (pg_prewarm, else a full read of each table).

    ``vacuum_new``: first VACUUM the tables never vacuumed (pass it only for data the harness seeded).
    """
    started = time.perf_counter()
    vacuumed: list[str] = []
    try:
        with connect(admin_dsn, application_name="harness-cache") as conn:
            if vacuum_new:
                for schema, table in conn.execute(_NEVER_VACUUMED).fetchall():
                    conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(schema, table)))
                    vacuumed.append(table)
            relations = conn.execute(_RELATIONS).fetchall()
            shared = int(conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'")
                         .fetchone()[0])  # type: ignore[index]  # fmt: skip
            method: CacheMethod = "pg_prewarm" if _has_prewarm(conn) else "full read"
            blocks = 0
            for oid, kind, _size in relations:
                if method == "pg_prewarm":
                    blocks += int(conn.execute("SELECT pg_prewarm(%s::oid)", [oid]).fetchone()[0])  # type: ignore[index]
                elif kind == "r":
                    conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*_qualified(conn, oid))))
                    blocks += int(_size) // 8192
    except psycopg.Error as exc:
        return CacheState("none", 0, 0, 0, time.perf_counter() - started, str(exc).strip().splitlines()[0])
    return CacheState(method, len(relations), blocks, shared, time.perf_counter() - started, vacuumed=tuple(vacuumed))


def _has_prewarm(conn: psycopg.Connection) -> bool:
    """pg_prewarm is usable here, creating the extension when the server ships it (needs privilege)."""
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        return True
    except psycopg.Error:
        return False


def _qualified(conn: psycopg.Connection, oid: int) -> tuple[str, str]:
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
        [oid],
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else ("", "")


_NEVER_VACUUMED = """
SELECT schemaname, relname FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND last_vacuum IS NULL AND last_autovacuum IS NULL
ORDER BY relname
"""

# Tables, materialized views and their indexes in the current schema, smallest first; extension members
# (pg_stat_statements' objects) are skipped.
_RELATIONS = """
SELECT c.oid, c.relkind, pg_relation_size(c.oid)
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace
  AND c.relkind IN ('r', 'm', 'i')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY pg_relation_size(c.oid), c.relname
"""
