"""Applying a strategy to seeded data: drop the indexes the harness manages, build the strategy's own.

Only indexes the harness created or a strategy file names are dropped; primary keys, constraints and anybody
else's indexes are never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.errors import ConfigError
from harness.strategies.files import Strategy, managed_index_names


@dataclass(frozen=True)
class StrategyApplied:
    """What applying a strategy did: the indexes dropped and built, and how long building took."""

    strategy: str
    build_s: float
    dropped: list[str]
    created: list[str]


def existing_indexes(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Secondary indexes (not backing a constraint) on ``tables``, in the current schema."""
    return [name for name, _ in secondary_indexes(conn, tables)]


def secondary_indexes(conn: psycopg.Connection, tables: list[str]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX …) of the indexes on ``tables`` that back no constraint, in the current schema."""
    rows = conn.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relname = ANY (%s) AND t.relnamespace = current_schema()::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY c.relname
        """,
        [tables],
    ).fetchall()
    return [(name, definition) for name, definition in rows]


def apply_strategy(
    conn: psycopg.Connection,
    strategy: Strategy,
    tables: list[str],
    previously_created: list[str],
    directory: Path | None = None,
    analyze: bool = True,
) -> StrategyApplied:
    """Drop the indexes the harness manages on ``tables`` and build ``strategy``'s (caller commits).

    ANALYZE afterwards gives expression indexes their statistics; a caller about to ANALYZE every table
    anyway (the seeder) passes ``analyze=False``."""
    droppable = managed_index_names(directory) | set(previously_created)
    dropped = [name for name in existing_indexes(conn, tables) if name in droppable]
    for name in dropped:
        conn.execute(f'DROP INDEX "{name}"')
    started = time.perf_counter()
    for index in strategy.indexes:
        try:
            conn.execute(index.sql)
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            problem = f"{exc.diag.message_primary}: seed this database first, or fix the index"
            raise ConfigError(strategy.path, problem, index.line) from None
    build_s = time.perf_counter() - started
    for table in sorted({index.table for index in strategy.indexes} if analyze else ()):
        conn.execute(f"ANALYZE {table}")
    return StrategyApplied(strategy.name, build_s, dropped, strategy.index_names)
