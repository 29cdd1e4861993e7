"""Repeatable cache state on a real server: every relation is prewarmed and said so, or read without pg_prewarm."""

from __future__ import annotations

import psycopg

from harness.cache import warm_cache
from harness.capabilities import forget


def make_facts(dsn: str) -> int:
    """A table with two indexes; returns their size in blocks."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE facts (id bigint PRIMARY KEY, v text)")
        conn.execute("INSERT INTO facts SELECT i, repeat('v', 100) FROM generate_series(1, 5000) i")
        conn.execute("CREATE INDEX facts_v_idx ON facts (v)")
        return int(
            conn.execute(
                "SELECT sum(pg_relation_size(oid)) / 8192 FROM pg_class "
                "WHERE relname IN ('facts', 'facts_pkey', 'facts_v_idx')"
            ).fetchone()[0]  # type: ignore[index]
        )


def test_every_relation_is_prewarmed(fresh_dsn: str) -> None:
    pages = make_facts(fresh_dsn)
    first = warm_cache(fresh_dsn)  # the embedded cluster's databases hold pg_prewarm from their creation
    assert first.method == "pg_prewarm" and first.relations == 3 and first.fits
    assert first.blocks == pages
    assert first.describe().startswith("cache warmed with pg_prewarm: 3 relations")
    assert warm_cache(fresh_dsn).as_dict()["fits"] is True


def test_without_pg_prewarm_the_tables_are_read_and_nothing_is_created(fresh_dsn: str) -> None:
    make_facts(fresh_dsn)
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("DROP EXTENSION pg_prewarm")
    forget(fresh_dsn)
    state = warm_cache(fresh_dsn)
    assert state.method == "full read" and "pg_prewarm is not installed" in state.describe()
    with psycopg.connect(fresh_dsn) as conn:
        assert not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_prewarm'").fetchone()
