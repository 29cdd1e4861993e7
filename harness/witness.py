"""The data witness: proof that nothing wrote while a run measured, so its fingerprint is the data it measured.

It is taken as soon as the run holds the data lock and checked again at the end. It records what any role
could change (the manifest row; each measured table's storage file and write counters; the large objects;
every sequence's last value) and the cluster's transaction snapshot. At the end, any transaction that
committed after that snapshot counts as a write, wherever it wrote: ``pg_xact_status`` reads the commit log
itself, so a writer whose session stays open, or whose table counters are not yet published, is still seen.
Measuring never commits one: each execution is read-only and rolled back (``harness.safety``), the
usability check is rolled back, and the embedded cluster runs without autovacuum (seeding vacuums and
analyzes instead), so on the harness's own cluster a committed transaction means somebody else wrote.

Over ``--dsn`` other clients may write to their own database at any time: there the witness is advisory
(the run reports what changed and goes on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.seed.manifest import MANIFEST_TABLE

if TYPE_CHECKING:
    import psycopg

# Beyond this many transaction ids the commit log is not scanned one by one: the cluster is busy, so it wrote.
MAX_XIDS_SCANNED = 1_000_000

_TABLES = """
SELECT coalesce(string_agg(concat_ws('/', c.relname, c.relfilenode, s.n_tup_ins, s.n_tup_upd, s.n_tup_del), ','
                           ORDER BY c.relname), '')
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace
"""
_LARGE_OBJECTS = """
SELECT count(*) || ' (highest oid ' || coalesce(max(oid::text::bigint), 0) || ')' FROM pg_largeobject_metadata
"""
_SEQUENCES = """
SELECT coalesce(string_agg(format('%I.%I=%s', schemaname, sequencename, coalesce(last_value::text, '-')), ', '
                           ORDER BY schemaname, sequencename), 'none')
FROM pg_sequences
"""
_COMMITTED_SINCE = """
SELECT count(*) FILTER (WHERE NOT pg_visible_in_snapshot(x, s) AND pg_xact_status(x) = 'committed'), max(n)
FROM (SELECT %(snapshot)s::pg_snapshot AS s) given,
     LATERAL (SELECT pg_snapshot_xmin(given.s)::text::bigint AS low,
                     pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS high) bounds,
     LATERAL (SELECT bounds.high - bounds.low AS n) span,
     LATERAL generate_series(bounds.low, least(bounds.high, bounds.low + %(limit)s) - 1) AS g(id),
     LATERAL (SELECT g.id::text::xid8 AS x) ids
"""


@dataclass(frozen=True)
class Witness:
    """What the data looked like when the run started measuring, and the cluster's snapshot at that moment."""

    parts: tuple[tuple[str, str], ...]  # (what, its state): manifest, tables, large objects, sequences
    snapshot: str  # pg_current_snapshot(): transactions committed after it are writes under the run


def take_witness(conn: psycopg.Connection, tables: list[str]) -> Witness:
    """The witness of ``tables`` (and of what any role can change) on ``conn``, an owner connection."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [MANIFEST_TABLE]).fetchone()
    manifest = f"SELECT md5(m::text) FROM {MANIFEST_TABLE} m" if row and row[0] else "SELECT 'no manifest'"
    parts = (
        ("the manifest", _one(conn, manifest)),
        ("the measured tables", _one(conn, _TABLES, [tables])),
        ("large objects", _one(conn, _LARGE_OBJECTS)),
        ("sequences", _one(conn, _SEQUENCES)),
    )
    return Witness(parts, _one(conn, "SELECT pg_current_snapshot()::text"))


def changes_since(conn: psycopg.Connection, before: Witness, tables: list[str]) -> list[str]:
    """What changed since ``before`` was taken, in words ('' nothing): differing parts, then committed writes."""
    after = take_witness(conn, tables)
    found = [
        f"{what} changed ({_short(old)} → {_short(new)})"
        for (what, old), (_, new) in zip(before.parts, after.parts, strict=True)
        if old != new
    ]
    row = conn.execute(_COMMITTED_SINCE, {"snapshot": before.snapshot, "limit": MAX_XIDS_SCANNED}).fetchone()
    committed, span = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
    if span > MAX_XIDS_SCANNED:
        found.append(f"more than {MAX_XIDS_SCANNED:,} transactions started in the cluster")
    elif committed:
        found.append(f"{committed} transaction{'s' if committed != 1 else ''} committed in the cluster")
    return found


def _one(conn: psycopg.Connection, query: str, params: list[object] | None = None) -> str:
    row = conn.execute(query, params).fetchone()
    return str(row[0]) if row and row[0] is not None else ""


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
