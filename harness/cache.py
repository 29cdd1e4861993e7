"""Repeatable cache state: measurements start with the workload's relations loaded, and say so.

Without this, the first run after a seed or an index switch measures a cold cache and the next one a warm
one, and a comparison between them reports the difference as a regression. ``warm_cache`` loads every
table and index of the schema into shared buffers with pg_prewarm when the database has it, smallest first
so that the relations that fit stay resident; without it (the harness never creates an extension while
measuring, nor ever in a database it did not seed) it falls back to a full read of each table (which warms
the OS page cache; PostgreSQL's ring buffer keeps a large sequential scan from filling shared buffers). It
only reads. The returned ``CacheState`` goes into run.json, and the work metrics' buffers read vs hit show
whether the timed executions then found their pages in cache.

Seeded tables are vacuumed by the seed itself (``harness.seed``), never here: a run commits nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from harness.capabilities import capabilities
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

    @property
    def fits(self) -> bool:
        """Everything loaded fits in shared buffers: the timed executions should read nothing from disk."""
        return self.blocks <= self.shared_buffers_blocks

    def describe(self) -> str:
        if self.method == "none":
            return f"cache not warmed ({self.note})"
        fit = "fits in" if self.fits else "exceeds"
        note = f" ({self.note})" if self.note else ""
        return (f"cache warmed with {self.method}{note}: {self.relations} relations, {self.blocks:,} blocks "
                f"({fit} shared_buffers of {self.shared_buffers_blocks:,}) in {self.seconds:.2f} s")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fits": self.fits, "text": self.describe()}


def warm_cache(admin_dsn: str) -> CacheState:
    """Load the schema's tables and indexes into cache (pg_prewarm, else a full read of each table)."""
    started = time.perf_counter()
    method: CacheMethod = "pg_prewarm" if capabilities(admin_dsn).pg_prewarm else "full read"
    try:
        with connect(admin_dsn, application_name="harness-cache") as conn:
            relations = conn.execute(_RELATIONS).fetchall()
            shared = int(conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'")
                         .fetchone()[0])  # type: ignore[index]  # fmt: skip
            blocks = 0
            for oid, kind, _size in relations:
                if method == "pg_prewarm":
                    blocks += int(conn.execute("SELECT pg_prewarm(%s::oid)", [oid]).fetchone()[0])  # type: ignore[index]
                elif kind == "r":
                    conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*_qualified(conn, oid))))
                    blocks += int(_size) // 8192
    except psycopg.Error as exc:
        return CacheState("none", 0, 0, 0, time.perf_counter() - started, str(exc).strip().splitlines()[0])
    note = "" if method == "pg_prewarm" else "pg_prewarm is not installed: tables read, indexes as the server has them"
    return CacheState(method, len(relations), blocks, shared, time.perf_counter() - started, note)


def _qualified(conn: psycopg.Connection, oid: int) -> tuple[str, str]:
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
        [oid],
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else ("", "")


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
