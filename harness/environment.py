"""The environment fingerprint: server, settings, data and machine — what must match for timings to compare.

Every report carries one (run.json, load.json, compare reports); `harness compare BASE CAND` refuses two
runs whose data, server major or compared settings differ.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from harness import __version__
from harness.db import connect
from harness.seed.manifest import Manifest, anchor_of

NO_STRATEGY = "(unknown)"  # data the harness did not seed: its indexes are the database's own, no strategy


class Setting(NamedTuple):
    name: str
    compared: bool  # two runs differing on it are not comparable (harness compare BASE CAND)


# The server settings recorded in every fingerprint; the compared ones must match between two runs.
SETTINGS = (
    Setting("shared_buffers", True),
    Setting("work_mem", True),
    Setting("effective_cache_size", True),
    Setting("random_page_cost", True),
    Setting("jit", True),
    Setting("max_parallel_workers_per_gather", True),
    Setting("plan_cache_mode", False),
    Setting("default_statistics_target", False),
    Setting("enable_seqscan", False),
    Setting("server_version_num", False),  # the major version is compared on its own (postgres_major)
    Setting("search_path", False),  # how the catalog's unqualified table names resolved
)
COMPARED_SETTINGS = tuple(s.name for s in SETTINGS if s.compared)


@dataclass(frozen=True)
class Environment:
    """What must match for two runs to be comparable, plus where and when the run happened."""

    postgres_version: str
    postgres_major: int
    settings: dict[str, str]
    tier: str
    seed: int
    strategy: str
    data_checksum: str
    row_counts: dict[str, int]
    anchor_date: str
    harness_version: str
    git_commit: str | None
    host: dict[str, Any]
    database: str  # redacted DSN or "embedded"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Environment:
        """The environment of a saved report; keys this harness does not know are ignored, missing ones
        (a report from an older or partial writer) read as empty."""
        empty: dict[str, Any] = {
            "postgres_version": "",
            "postgres_major": 0,
            "settings": {},
            "tier": "",
            "seed": -1,
            "strategy": "",
            "data_checksum": "",
            "row_counts": {},
            "anchor_date": "",
            "harness_version": "",
            "git_commit": None,
            "host": {},
            "database": "",
        }
        known = {f.name for f in fields(cls)}
        return cls(**{**empty, **{k: v for k, v in data.items() if k in known}})


def fingerprint(dsn: str, manifest: Manifest | None, database_label: str) -> Environment:
    """The fingerprint of the database at ``dsn`` holding ``manifest``'s data (None: not seeded by harness)."""
    with connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        rows = conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            [[s.name for s in SETTINGS]],
        ).fetchall()
        row_counts = manifest.row_counts if manifest else _estimated_row_counts(conn)
    settings = {name: value for name, value in rows}
    return Environment(
        postgres_version=version,
        postgres_major=int(settings.get("server_version_num", "0")) // 10000,
        settings=settings,
        tier=manifest.tier if manifest else "(unseeded)",
        seed=manifest.seed if manifest else -1,
        strategy=manifest.strategy if manifest else NO_STRATEGY,
        data_checksum=manifest.checksum if manifest else "",
        row_counts=row_counts,
        anchor_date=manifest.anchor_date if manifest else anchor_of(None).date().isoformat(),
        harness_version=__version__,
        git_commit=_git_commit(),
        host={
            "hostname": platform.node(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        database=database_label,
    )


def _estimated_row_counts(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The planner's row estimates per table, a partitioned table's summed over its partitions (which are not
    listed themselves); keyed by the name a query uses: bare when search_path finds it, else ``schema.name``."""
    rows = conn.execute(
        """SELECT n.nspname, c.relname, pg_table_is_visible(c.oid),
                  CASE WHEN c.relkind = 'p'
                       THEN (SELECT coalesce(sum(greatest(l.reltuples, 0)), 0) FROM pg_partition_tree(c.oid) t
                             JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
                       ELSE greatest(c.reltuples, 0) END::bigint
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"""
    ).fetchall()
    return {name if visible else f"{schema}.{name}": int(count) for schema, name, visible, count in rows}


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
