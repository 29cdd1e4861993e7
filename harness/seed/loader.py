"""Seeding: generate a tier's rows, load them with binary COPY, build indexes, all in one transaction.

One transaction makes re-seeding atomic: an interrupted seed leaves the previous data (and manifest)
exactly as it was. Creating the tables in that transaction also lets COPY skip WAL and freeze rows.

The seed also does the maintenance a measurement must never do (a run commits nothing): it creates the
extensions the measurements use (pg_stat_statements, pg_prewarm) when the server ships them, and vacuums
the new tables, still under the data lock. Otherwise autovacuum does it between two runs, and its new
visibility map, hint bits and page counts change both the buffers a query touches and, through the
planner's size estimates, the plan some draws get.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import psycopg

from harness import __version__, paths
from harness.capabilities import forget
from harness.config import Tier, load_tier
from harness.db import connect
from harness.errors import DatabaseError, UnsafeOperation
from harness.extensions import create_extensions
from harness.locks import exclusively, lock_for_change
from harness.seed.binary_copy import CHUNK_ROWS, HEADER, TRAILER
from harness.seed.generate import GENERATOR_VERSION, TableData
from harness.seed.manifest import (
    MANIFEST_TABLE,
    Manifest,
    combine_checksums,
    read_manifest,
    table_checksum,
    write_manifest,
)
from harness.seed.pipeline import EncodedTables
from harness.strategies import Strategy, apply_strategy, load_strategy, managed_index_names, secondary_indexes

TABLES = ["users", "courses", "lessons", "enrollments", "user_progress", "behavior_logs", "points_ledger"]

# on_progress(table, rows_done, rows_total)
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class VerifyResult:
    intact: bool
    expected: str
    actual: str
    problems: list[str]


def seed(
    dsn: str,
    tier: str | Tier,
    seed: int = 42,
    strategy: str = "baseline",
    *,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    scenarios: Path | None = None,
) -> Manifest:
    """Replace the harness's tables with ``tier``'s data for ``seed`` and build ``strategy``'s indexes."""
    scenarios = scenarios or paths.scenarios_dir()
    tier = tier if isinstance(tier, Tier) else load_tier(tier, scenarios / "tiers")
    chosen = load_strategy(strategy, scenarios / "strategies")
    with exclusively(dsn, f"seed tier {tier.name}"):  # until the new tables are vacuumed
        manifest = _load(dsn, tier, seed, chosen, force, on_progress, scenarios)
        with connect(dsn, application_name="harness seed") as conn:
            for table in TABLES:
                conn.execute(f"VACUUM {table}")
    forget(dsn)  # the extensions may be new
    return manifest


def _load(
    dsn: str,
    tier: Tier,
    seed: int,
    chosen: Strategy,
    force: bool,
    on_progress: ProgressCallback | None,
    scenarios: Path,
) -> Manifest:
    """The one transaction: replace the tables, load, index, ANALYZE, write the manifest."""
    durations: dict[str, float] = {}
    started = time.perf_counter()
    schema_sql = (scenarios / "schema.sql").read_text()
    constraints_sql = (scenarios / "constraints.sql").read_text()
    with connect(dsn, autocommit=False) as conn:
        try:
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL TimeZone = 'UTC'")
            lock_for_change(conn, f"seed tier {tier.name}")  # one seed at a time, never under a measurement
            previous = read_manifest(conn)
            refuse_foreign_tables(conn, previous, force)
            create_extensions(conn)
            kept = user_indexes(conn, TABLES, scenarios / "strategies", previous.indexes if previous else [])
            try:
                conn.execute("DROP TABLE IF EXISTS " + ", ".join(TABLES))
            except psycopg.errors.DependentObjectsStillExist as exc:
                dependents = "; ".join((exc.diag.message_detail or _first_line(exc)).splitlines())
                raise UnsafeOperation(
                    f"{dependents}: harness never drops objects it did not create, even with --force; drop them first"
                ) from None
            conn.execute(schema_sql)
            primary_keys = _detach_primary_keys(conn, TABLES)
            t0 = time.perf_counter()
            stream = EncodedTables(tier, seed)
            row_counts: dict[str, int] = {}
            per_table: dict[str, str] = {}
            try:
                for table, chunks in stream:
                    per_table[table.name] = _copy_table(conn, table, chunks, on_progress)
                    row_counts[table.name] = table.rows
            finally:
                stream.close()
            durations["generate_and_copy"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            for keyed_table, name, definition in primary_keys:
                conn.execute(f'ALTER TABLE {keyed_table} ADD CONSTRAINT "{name}" {definition}')
            conn.execute(constraints_sql)
            durations["keys_and_constraints"] = time.perf_counter() - t0
            applied = apply_strategy(
                conn, chosen, TABLES, previous.indexes if previous else [], scenarios / "strategies", analyze=False
            )
            durations["indexes"] = applied.build_s
            recreate_user_indexes(conn, kept)
            t0 = time.perf_counter()
            conn.execute("ANALYZE " + ", ".join(TABLES))
            durations["analyze"] = time.perf_counter() - t0
            checksum = combine_checksums(per_table, TABLES)  # of the exact bytes loaded: see jsonb_text
            durations["total"] = time.perf_counter() - started
            manifest = Manifest(
                tier=tier.name,
                seed=seed,
                strategy=chosen.name,
                anchor_date=tier.anchor_date.isoformat(),
                tables=TABLES,
                row_counts={name: row_counts[name] for name in TABLES},
                checksum=checksum,
                indexes=applied.created,
                durations_s={k: round(v, 3) for k, v in durations.items()},
                harness_version=__version__,
                generator_versions=generator_versions(),
                seeded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                tier_file_sha256=hashlib.sha256(tier.path.read_bytes()).hexdigest(),
                index_build_s=round(applied.build_s, 3),
            )
            write_manifest(conn, manifest)
            conn.commit()
        except psycopg.errors.DiskFull as exc:
            raise DatabaseError(
                f"no space left on device: the database ran out of disk while seeding (previous data kept): "
                f"{_first_line(exc)}; free disk space where the database lives, or seed a smaller tier"
            ) from None
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"connection lost while seeding (previous data kept): {_first_line(exc)}") from None
    return manifest


def _first_line(exc: psycopg.Error) -> str:
    """The server's one-line message (psycopg appends HINT/DETAIL lines and libpq's explanations)."""
    lines = (exc.diag.message_primary or str(exc)).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _detach_primary_keys(conn: psycopg.Connection, tables: list[str]) -> list[tuple[str, str, str]]:
    """Drop the just-created tables' primary keys, returning (table, name, definition) to add back.

    Building a key's index once over loaded rows is much cheaper than maintaining it row by row during
    COPY (pgbench -i does the same); schema.sql stays the one place that declares the keys.
    """
    rows = conn.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype = 'p' AND c.conrelid = ANY (SELECT t::regclass FROM unnest(%s::text[]) AS t)
        """,
        [tables],
    ).fetchall()
    for table, name, _ in rows:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return [(table, name, definition) for table, name, definition in rows]


def _copy_table(
    conn: psycopg.Connection, table: TableData, chunks: Iterator[bytes], on_progress: ProgressCallback | None
) -> str:
    """Stream one table's binary COPY; return the SHA-256 of the stream (what verify recomputes)."""
    digest = hashlib.sha256()
    done = 0
    if on_progress:
        on_progress(table.name, 0, table.rows)
    statement = f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN (FORMAT binary, FREEZE)"
    with conn.cursor().copy(statement) as copy:
        for chunk in chunks:
            copy.write(chunk)
            digest.update(chunk)
            if on_progress and chunk is not HEADER and chunk is not TRAILER:
                done = min(table.rows, done + CHUNK_ROWS)
                on_progress(table.name, done, table.rows)
    return digest.hexdigest()


def user_indexes(
    conn: psycopg.Connection, tables: list[str], strategies: Path, ours: list[str]
) -> list[tuple[str, str]]:
    """(name, CREATE INDEX …) of the indexes on ``tables`` that the user made: no strategy file names them,
    no constraint backs them. Dropping the tables drops them too; ``recreate_user_indexes`` puts them back."""
    managed = managed_index_names(strategies) | set(ours)
    return [(name, definition) for name, definition in secondary_indexes(conn, tables) if name not in managed]


def recreate_user_indexes(conn: psycopg.Connection, indexes: list[tuple[str, str]]) -> None:
    """Build the user's indexes again on the new data; UnsafeOperation (the seed rolls back) if one cannot be."""
    for name, definition in indexes:
        try:
            with conn.transaction():
                conn.execute(definition)
        except psycopg.Error as exc:
            raise UnsafeOperation(
                f"your index {name} on the harness's tables cannot be rebuilt on the new data ({_first_line(exc)}); "
                f"the previous data and the index are kept: drop it (DROP INDEX {name}) if it is not needed"
            ) from None


def refuse_foreign_tables(conn: psycopg.Connection, manifest: Manifest | None, force: bool) -> None:
    """Refuse to write into a database holding tables (or views …) the harness did not create, unless forced."""
    present = conn.execute(
        # Tables, views and foreign tables, except those an extension owns (pg_stat_statements' views).
        "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT EXISTS (SELECT 1 FROM pg_depend d "
        "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') ORDER BY 1"
    ).fetchall()
    ours = set(manifest.tables if manifest else []) | {MANIFEST_TABLE}
    foreign = [(name, kind) for name, kind in present if name not in ours]
    if foreign and not force:
        clash = [name for name, _ in foreign if name in TABLES]
        detail = f" (would replace: {', '.join(clash)})" if clash else ""
        kinds = {"r": "tables", "p": "tables", "v": "views", "m": "materialized views", "f": "foreign tables"}
        listed = {kind: [n for n, k in foreign if kinds[k] == kind] for kind in dict.fromkeys(kinds.values())}
        held = "; ".join(f"{kind} {_names(names)}" for kind, names in listed.items() if names)
        raise UnsafeOperation(
            f"database holds objects the harness did not create ({held}){detail}; seeding would write into it: "
            "use an empty database, measure your data as it is with --no-seed, or pass --force"
        )


def _names(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (" …" if len(names) > shown else "")


def verify(dsn: str) -> VerifyResult:
    """Recompute the checksum and row counts of the seeded data and compare them with the manifest."""
    with connect(dsn) as conn:
        manifest = read_manifest(conn)
        if manifest is None:
            return VerifyResult(False, "", "", ["no harness manifest: this database was not seeded by harness"])
        problems = []
        for table, expected in manifest.row_counts.items():
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if row is None or row[0] != expected:
                problems.append(f"{table}: {row[0] if row else '?'} rows, manifest says {expected}")
        actual = table_checksum(conn, manifest.tables)
        if actual != manifest.checksum:
            problems.append("checksum differs from the manifest: the data was modified since it was seeded")
        current = generator_versions()
        for package, seeded_with in manifest.generator_versions.items():
            if current.get(package) != seeded_with:
                problems.append(
                    f"note: seeded with {package} {seeded_with}, this machine has {current.get(package)}; "
                    "a re-seed here may produce different rows"
                )
        intact = not [p for p in problems if not p.startswith("note:")]
        return VerifyResult(intact, manifest.checksum, actual, problems)


def generator_versions() -> dict[str, str]:
    """Versions of what generates the data (numpy streams and Faker word lists can change across releases,
    and our own generators change shape between harness versions)."""
    return {"harness-generator": str(GENERATOR_VERSION), "numpy": version("numpy"), "faker": version("faker")}
