"""Repeatable cache state on a real server: new data is vacuumed once, every relation is prewarmed and said so."""

from __future__ import annotations

import psycopg

from harness.cache import warm_cache


def test_new_tables_are_vacuumed_once_and_every_relation_is_prewarmed(fresh_dsn: str) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE facts (id bigint PRIMARY KEY, v text)")
        conn.execute("INSERT INTO facts SELECT i, repeat('v', 100) FROM generate_series(1, 5000) i")
        conn.execute("CREATE INDEX facts_v_idx ON facts (v)")
        pages = conn.execute(
            "SELECT sum(pg_relation_size(oid)) / 8192 FROM pg_class "
            "WHERE relname IN ('facts', 'facts_pkey', 'facts_v_idx')"
        ).fetchone()[0]  # type: ignore[index]
    first = warm_cache(fresh_dsn, vacuum_new=True)
    assert first.method == "pg_prewarm" and first.vacuumed == ("facts",)
    assert first.relations == 3 and first.fits
    assert first.blocks >= pages  # the vacuum may add the visibility and free-space maps
    assert first.describe().startswith("vacuumed facts (new data); cache warmed with pg_prewarm: 3 relations")
    again = warm_cache(fresh_dsn, vacuum_new=True)
    assert again.vacuumed == () and again.blocks == first.blocks
    assert warm_cache(fresh_dsn).as_dict()["fits"] is True
