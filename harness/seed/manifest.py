"""The seed manifest: a table in the seeded database saying what data it holds and that the harness owns it.

It is written in the same transaction as the data, so a manifest exists only for a complete seed. Its
checksum is recomputed by ``harness seed --verify``; its index list is what strategies may drop.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.anchor import configured_anchor

if TYPE_CHECKING:
    import psycopg

MANIFEST_TABLE = "harness_manifest"

CREATE_MANIFEST = f"""
CREATE TABLE {MANIFEST_TABLE} (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    document        jsonb NOT NULL
)"""


@dataclass(frozen=True)
class Manifest:
    """What a seed produced: enough to reproduce it, verify it and fingerprint runs on it."""

    tier: str
    seed: int
    strategy: str
    anchor_date: str
    tables: list[str]
    row_counts: dict[str, int]
    checksum: str
    indexes: list[str]
    durations_s: dict[str, float]
    harness_version: str
    generator_versions: dict[str, str]
    seeded_at: str
    tier_file_sha256: str = ""
    index_build_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def anchor(self) -> dt.datetime:
        """Exclusive upper bound of the data's timestamps (midnight after the anchor date, UTC)."""
        day = dt.date.fromisoformat(self.anchor_date) + dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Manifest:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in document.items() if k in known})


def anchor_of(manifest: Manifest | None, conn: psycopg.Connection | None = None) -> dt.datetime:
    """The data's anchor, which every draw counts back from: the manifest's; for unseeded data the project
    config's (``harness.anchor``; a column's max is read through ``conn``), else now (UTC)."""
    if manifest is not None:
        return manifest.anchor
    return configured_anchor(conn) or dt.datetime.now(dt.UTC)


def manifest_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [MANIFEST_TABLE]).fetchone()
    return bool(row and row[0])


def read_manifest(conn: psycopg.Connection) -> Manifest | None:
    """The manifest of the data in this database, or None when the harness has not seeded it."""
    if not manifest_exists(conn):
        return None
    row = conn.execute(f"SELECT document FROM {MANIFEST_TABLE}").fetchone()
    return Manifest.from_document(row[0]) if row else None


def write_manifest(conn: psycopg.Connection, manifest: Manifest) -> None:
    """Replace the manifest (call inside the seeding or strategy transaction)."""
    if not manifest_exists(conn):
        conn.execute(CREATE_MANIFEST)
    conn.execute(
        f"INSERT INTO {MANIFEST_TABLE} (singleton, document) VALUES (true, %s::jsonb) "
        "ON CONFLICT (singleton) DO UPDATE SET document = EXCLUDED.document",
        [manifest.to_json()],
    )


def table_checksum(conn: psycopg.Connection, tables: list[str]) -> str:
    """Checksum of the data: see ``combine_checksums``; each table is read back with binary COPY in
    primary-key order. Binary output does not depend on DateStyle, TimeZone or locale settings, so the
    same rows give the same checksum on any machine running the same PostgreSQL major version."""
    per_table = {}
    for table in tables:
        digest = hashlib.sha256()
        keys = primary_key(conn, table)
        with conn.cursor().copy(
            f"COPY (SELECT * FROM {table} ORDER BY {', '.join(keys)}) TO STDOUT (FORMAT binary)"
        ) as copy:
            for chunk in copy:
                digest.update(chunk)
        per_table[table] = digest.hexdigest()
    return combine_checksums(per_table, tables)


def combine_checksums(per_table: dict[str, str], tables: list[str]) -> str:
    """SHA-256 over ``name:sha256-of-its-binary-COPY-stream`` lines, in ``tables`` order."""
    lines = "".join(f"{table}:{per_table[table]}\n" for table in tables)
    return hashlib.sha256(lines.encode()).hexdigest()


def primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = %s::regclass AND i.indisprimary
        ORDER BY array_position(i.indkey, a.attnum)
        """,
        [table],
    ).fetchall()
    if not rows:
        raise ValueError(f"table {table} has no primary key; the checksum needs one to order rows")
    return [r[0] for r in rows]
