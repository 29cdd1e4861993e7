"""The workload a run, a comparison, a load or the pytest plugin measures, resolved once at the edge.

A ``Workload`` is the tier (identified by its name and its file's content hash, never by the string typed),
the seed, the index strategy, the selected query catalog and the target database. It prepares the database
(seeding when the data is missing or stale, saying why; switching indexes), draws the parameter sets, and
names runs and the reasons they stopped, so every command means the same thing by them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from harness import paths
from harness.catalog import Catalog, Query, load_catalog
from harness.check import refuse_unrunnable
from harness.config import Tier, load_tier
from harness.db import connect, redact
from harness.environment import Environment, fingerprint
from harness.errors import DatabaseError, DataChanged, InputError, Interrupted, UnsafeOperation
from harness.locks import measuring
from harness.params import ParamSampler
from harness.seed import Manifest, anchor_of, read_manifest, switch_strategy
from harness.seed import seed as seed_data
from harness.seed.generate import GENERATOR_VERSION
from harness.strategies import load_strategy
from harness.witness import Witness, changes_since, take_witness

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class WorkloadOptions(Protocol):
    """What `run` and `load` options (``RunOptions``, ``LoadOptions``) say about the workload."""

    @property
    def tier(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def strategy(self) -> str | None: ...
    @property
    def queries_dir(self) -> Path | None: ...
    @property
    def only(self) -> tuple[str, ...]: ...
    @property
    def seed_if_needed(self) -> bool: ...
    @property
    def force(self) -> bool: ...


@dataclass(frozen=True)
class Workload:
    """What is measured, and where: see the module docstring."""

    tier_name: str  # the tier's own name (the manifest's), whatever was typed to select it
    tier: Tier | None  # None when the data is used as it is (--no-seed): the tier file need not exist
    tier_sha256: str  # of the tier file's bytes: a changed file means stale data
    seed: int
    strategy: str | None  # None: keep the seeded strategy (baseline when seeding)
    catalog: Catalog
    dsn: str = ""
    database_label: str = ""  # what reports show for the database (a redacted DSN by default)
    seed_if_needed: bool = True
    force: bool = False

    @classmethod
    def resolve(
        cls,
        dsn: str = "",
        *,
        tier: str = "test",
        seed: int = 42,
        strategy: str | None = None,
        queries_dir: Path | None = None,
        only: Sequence[str] = (),
        seed_if_needed: bool = True,
        force: bool = False,
        database_label: str = "",
    ) -> Workload:
        """Validate everything before any connection (exit 2 on a bad tier, strategy or query file, an unknown
        name, or a query that writes, holds several statements or mismatches its parameters)."""
        chosen = load_tier(tier) if seed_if_needed else None
        if strategy:
            load_strategy(strategy)
        catalog = load_catalog(queries_dir or paths.queries_dir()).select(list(only))
        if not catalog.queries:
            raise InputError(f"no queries in {catalog.directory}; add .sql files or pass --queries DIR")
        refuse_unrunnable(catalog)
        return cls(
            tier_name=chosen.name if chosen else tier,
            tier=chosen,
            tier_sha256=hashlib.sha256(chosen.path.read_bytes()).hexdigest() if chosen else "",
            seed=seed,
            strategy=strategy,
            catalog=catalog,
            dsn=dsn,
            database_label=database_label or redact(dsn),
            seed_if_needed=seed_if_needed,
            force=force,
        )

    @classmethod
    def of(cls, options: WorkloadOptions, dsn: str = "", database_label: str = "") -> Workload:
        """The workload of a command's options (see ``resolve``)."""
        return cls.resolve(
            dsn,
            tier=options.tier,
            seed=options.seed,
            strategy=options.strategy,
            queries_dir=options.queries_dir,
            only=options.only,
            seed_if_needed=options.seed_if_needed,
            force=options.force,
            database_label=database_label,
        )

    def stale(self, manifest: Manifest | None) -> str | None:
        """Why the seeded data is not this workload's (None when it is): the reason a re-seed prints."""
        if manifest is None:
            return "the database holds no harness data"
        if manifest.tier != self.tier_name:
            return f"the database holds tier {manifest.tier}"
        if manifest.seed != self.seed:
            return f"the database holds seed {manifest.seed}"
        if manifest.generator_versions.get("harness-generator") != str(GENERATOR_VERSION):
            return "the data was made by an older generator"
        if manifest.tier_file_sha256 and self.tier_sha256 and manifest.tier_file_sha256 != self.tier_sha256:
            where = self.tier.path if self.tier else self.tier_name
            return f"the tier file {where} changed since the data was seeded"
        return None

    def prepare(self, say: Callable[[str], None] = lambda message: None) -> Manifest | None:
        """Seed the tier when the data is missing or stale (saying why), switch strategy if asked.

        With ``seed_if_needed`` off the data is used as it is: the manifest (None for data harness did not
        seed) is returned untouched."""
        with connect(self.dsn) as conn:
            manifest = read_manifest(conn)
        if not self.seed_if_needed or self.tier is None:
            return manifest
        wanted_strategy = self.strategy or (manifest.strategy if manifest else "baseline")
        reason = self.stale(manifest)
        if manifest is None or reason is not None:
            say(f"seeding tier {self.tier_name} (seed {self.seed}, strategy {wanted_strategy}): {reason}")
            return seed_data(self.dsn, self.tier, self.seed, wanted_strategy, force=self.force)
        if manifest.strategy != wanted_strategy:
            say(f"switching indexes: {manifest.strategy} -> {wanted_strategy}")
            applied = switch_strategy(self.dsn, wanted_strategy, force=self.force)
            return replace(manifest, strategy=wanted_strategy, indexes=applied.created)
        return manifest

    def prepare_and_hold(
        self, stack: contextlib.ExitStack, command: str, say: Callable[[str], None] = lambda message: None
    ) -> Manifest | None:
        """``prepare``, then hold the shared data lock on ``stack`` until it closes, so no seed or strategy
        switch changes the data while ``command`` measures. The manifest is read again under the lock: a seed
        that slipped in between is caught and prepared for."""
        for _ in range(3):
            manifest = self.prepare(say)
            hold = contextlib.ExitStack()
            hold.enter_context(measuring(self.dsn, command))
            with connect(self.dsn) as conn:
                current = read_manifest(conn)
            if _identity(current) == _identity(manifest):
                stack.push(hold.pop_all())
                return current
            hold.close()
        raise UnsafeOperation("another harness command keeps re-seeding this database; wait for it, then retry")

    def environment(self, manifest: Manifest | None) -> Environment:
        """The fingerprint of this workload's database holding ``manifest``'s data."""
        return fingerprint(self.dsn, manifest, self.database_label)

    @staticmethod
    def measured_tables(manifest: Manifest | None, environment: Environment) -> list[str]:
        """The tables whose data a measurement depends on (the seeded ones, else all of the schema's)."""
        return list(manifest.tables) if manifest else sorted(environment.row_counts)

    def take_witness(self, tables: list[str]) -> Witness:
        """The data witness (``harness.witness``), to take as soon as the data lock is held."""
        with connect(self.dsn) as conn:
            return take_witness(conn, tables)

    def refuse_changed_data(self, tables: list[str], before: Witness, strict: bool = True) -> list[str]:
        """What changed since ``before``; DataChanged (exit 3: the run is invalid) when ``strict`` and anything did.

        Strict on the harness's own cluster, where nothing else writes; advisory over ``--dsn``, where the
        database's own clients may write at any time (the caller reports what changed)."""
        with connect(self.dsn) as conn:
            changed = changes_since(conn, before, tables)
        if changed and strict:
            raise DataChanged(
                f"the data changed while measuring ({'; '.join(changed)}): this run's numbers do not belong to its "
                "fingerprint; find what wrote (pg_stat_activity, pg_stat_user_tables) and run again"
            )
        return changed

    def draws(
        self, manifest: Manifest | None, count: int, reader_dsn: str = "", queries: Sequence[Query] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """``count`` parameter sets per query (default: the catalog's), from each query's own stream
        (``query_seed``), anchored on the data's anchor: the same sets on every run, whatever else is selected.
        ``sql`` draws are the user's SQL too, so they run as the measuring role (``reader_dsn``) when given."""
        with connect(reader_dsn or self.dsn) as conn:
            sampler = ParamSampler(conn, anchor_of(manifest, conn), self.seed)
            chosen = self.catalog.queries if queries is None else queries
            return {q.name: sampler.draw_sets(q, count, query_seed(self.seed, q)) for q in chosen}


def _identity(manifest: Manifest | None) -> tuple[str, str, str] | None:
    return (manifest.seeded_at, manifest.checksum, manifest.strategy) if manifest else None


def query_seed(seed: int, query: Query) -> int:
    """A per-query parameter stream: stable across runs, independent of which other queries are selected."""
    return (seed * 1_000_003 + zlib.crc32(query.name.encode())) % 2**32


def check_run_id(value: str) -> str:
    """``value`` if it can name a report folder; InputError (exit 2) otherwise."""
    if not RUN_ID.fullmatch(value):
        raise InputError(
            f"run id {value!r}: use letters, digits, '.', '_' and '-' only, at most 100 (it names a folder)"
        )
    return value


def run_id(given: str | None = None, prefix: str = "") -> str:
    """The run id: ``given`` validated, else ``prefix`` + the UTC time (``20261201T091000Z``)."""
    if given is not None:
        return check_run_id(given)
    return prefix + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def now_iso() -> str:
    """The UTC time to the second, as reports record it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def incomplete_reason(exc: BaseException) -> str:
    """Why a run, comparison or load stopped early, in the words every report uses."""
    if isinstance(exc, DataChanged):
        return f"invalid: {exc}"
    if isinstance(exc, InputError | UnsafeOperation):
        return f"refused: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    if isinstance(exc, Interrupted):
        return f"interrupted: {exc}"
    if isinstance(exc, DatabaseError):
        return f"database failure: {exc}"
    return f"stopped: {type(exc).__name__}: {exc}"
