"""Switch seeded data to another index strategy, recording it in the seed manifest (one transaction)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.db import connect
from harness.errors import UnsafeOperation
from harness.locks import lock_for_change
from harness.seed.manifest import read_manifest, write_manifest
from harness.strategies import StrategyApplied, apply_strategy, load_strategy


def switch_strategy(dsn: str, name: str, *, force: bool = False, directory: Path | None = None) -> StrategyApplied:
    """Switch seeded data to strategy ``name`` in one transaction and record it in the manifest."""
    strategy = load_strategy(name, directory)
    with connect(dsn, autocommit=False) as conn:
        lock_for_change(conn, f"switch indexes to strategy {name}")  # never under a measurement
        manifest = read_manifest(conn)
        if manifest is None and not force:
            raise UnsafeOperation(
                "this database was not seeded by harness (no harness_manifest); "
                "seed it first (harness seed) or pass --force to change its indexes anyway"
            )
        tables = manifest.tables if manifest else sorted({i.table for i in strategy.indexes})
        applied = apply_strategy(conn, strategy, tables, manifest.indexes if manifest else [], directory)
        if manifest is not None:
            write_manifest(
                conn,
                replace(manifest, strategy=name, indexes=applied.created, index_build_s=round(applied.build_s, 3)),
            )
        conn.commit()
    return applied
