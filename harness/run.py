"""`harness run`: make sure the tier is seeded, measure every selected query, judge it, report as we go.

Reports are rewritten after each query (hyperfine's habit), so an interrupted or crashed run still leaves
a partial, clearly marked report behind.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import __version__, paths
from harness.cache import warm_cache
from harness.catalog import Catalog, Query, load_catalog
from harness.check import refuse_unrunnable
from harness.config import load_tier
from harness.db import connect, redact
from harness.errors import DatabaseError, InputError, Interrupted
from harness.measure import MeasureOptions, measure_query
from harness.params import ParamSampler
from harness.results import FINGERPRINT_SETTINGS, Environment, QueryResult, RunResult, now_iso
from harness.seed import Manifest, read_manifest
from harness.seed import seed as seed_data
from harness.seed.loader import is_current
from harness.stats import summarize
from harness.strategies import load_strategy, switch_strategy
from harness.verdicts import judge, split_expectations
from harness.work import ensure_pg_stat_statements


@dataclass(frozen=True)
class RunOptions:
    tier: str = "test"
    seed: int = 42
    strategy: str | None = None  # None: keep the seeded strategy (baseline when seeding)
    queries_dir: Path | None = None
    only: tuple[str, ...] = ()
    budget_ms: float | None = None  # overrides every query's budget
    measure: MeasureOptions = field(default_factory=MeasureOptions)
    allow_few_samples: bool = False
    seed_if_needed: bool = True
    force: bool = False
    reports_dir: Path | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Progress:
    """Callbacks for a display: a query starts (index, total, name) and finishes (its result)."""

    query_started: Callable[[int, int, str], None] = lambda i, n, name: None
    query_finished: Callable[[QueryResult], None] = lambda result: None
    seeding: Callable[[str], None] = lambda message: None


def prepare_database(dsn: str, options: RunOptions, progress: Progress) -> Manifest | None:
    """Seed the tier when the database does not hold it (per the manifest), switch strategy if asked."""
    with connect(dsn) as conn:
        manifest = read_manifest(conn)
    wanted_strategy = options.strategy or (manifest.strategy if manifest else "baseline")
    if not options.seed_if_needed:
        return manifest
    if manifest is None or not is_current(manifest, options.tier, options.seed):
        progress.seeding(f"seeding tier {options.tier} (seed {options.seed}, strategy {wanted_strategy})")
        return seed_data(dsn, options.tier, options.seed, wanted_strategy, force=options.force)
    if manifest.strategy != wanted_strategy:
        progress.seeding(f"switching indexes: {manifest.strategy} -> {wanted_strategy}")
        applied = switch_strategy(dsn, wanted_strategy, force=options.force)
        return replace(manifest, strategy=wanted_strategy, indexes=applied.created)
    return manifest


def fingerprint(dsn: str, manifest: Manifest | None, database_label: str) -> Environment:
    with connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        rows = conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            [list(FINGERPRINT_SETTINGS)],
        ).fetchall()
        row_counts = manifest.row_counts if manifest else _estimated_row_counts(conn)
    settings = {name: value for name, value in rows}
    return Environment(
        postgres_version=version,
        postgres_major=int(settings.get("server_version_num", "0")) // 10000,
        settings=settings,
        tier=manifest.tier if manifest else "(unseeded)",
        seed=manifest.seed if manifest else -1,
        strategy=manifest.strategy if manifest else "(unknown)",
        data_checksum=manifest.checksum if manifest else "",
        row_counts=row_counts,
        anchor_date=manifest.anchor_date if manifest else dt.date.today().isoformat(),
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


def run(
    dsn: str,
    options: RunOptions,
    progress: Progress | None = None,
    database_label: str = "",
    write: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Measure and judge every selected query; ``write`` is called after each one and at the end."""
    progress = progress or Progress()
    catalog = selected_catalog(options)
    run_id = options.run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    result = RunResult(run_id=run_id, started_at=now_iso(), environment=None, options=_options_dict(options))
    write = write or (lambda r: None)
    try:
        manifest = prepare_database(dsn, options, progress)
        result.environment = fingerprint(dsn, manifest, database_label or redact(dsn))
        ensure_pg_stat_statements(dsn)  # work metrics; harness.work falls back to EXPLAIN without it
        result.cache = warm_cache(dsn, vacuum_new=manifest is not None).as_dict()
        anchor = manifest.anchor if manifest else dt.datetime.now(dt.UTC)
        with connect(dsn) as conn:
            sampler = ParamSampler(conn, anchor, options.seed)
            draws = {
                q.name: sampler.draw_sets(
                    q, options.measure.warmup + options.measure.iterations, query_seed(options.seed, q)
                )
                for q in catalog.queries
            }
        write(result)
        for index, query in enumerate(catalog.queries):
            progress.query_started(index, len(catalog.queries), query.name)
            query_result = _measure_and_judge(dsn, query, draws[query.name], options, result.environment)
            result.queries.append(query_result)
            progress.query_finished(query_result)
            write(result)
        result.complete = True
    except KeyboardInterrupt:
        result.incomplete_reason = "interrupted (SIGINT)"
        raise
    except Interrupted as exc:
        result.incomplete_reason = f"interrupted: {exc}"
        raise
    except DatabaseError as exc:
        result.incomplete_reason = f"database failure: {exc}"
        raise
    except BaseException as exc:
        result.incomplete_reason = f"stopped: {type(exc).__name__}: {exc}"
        raise
    finally:
        result.finished_at = now_iso()
        write(result)
    return result


def selected_catalog(options: RunOptions) -> Catalog:
    """The catalog to measure, validated with the tier and strategy names before any connection: exit 2 on bad
    files, unknown names, or a query that writes, holds several statements or mismatches its parameters."""
    if options.seed_if_needed:
        load_tier(options.tier)
    if options.strategy:
        load_strategy(options.strategy)
    catalog = load_catalog(options.queries_dir or paths.queries_dir()).select(list(options.only))
    if not catalog.queries:
        raise InputError(f"no queries in {catalog.directory}; add .sql files or pass --queries DIR")
    refuse_unrunnable(catalog)
    return catalog


def _measure_and_judge(
    dsn: str, query: Query, param_sets: list[dict], options: RunOptions, environment: Environment
) -> QueryResult:
    budget = options.budget_ms if options.budget_ms is not None else query.budget_ms
    _, usable = split_expectations(query, environment.strategy, environment.row_counts)
    measurement = measure_query(
        dsn, query, param_sets, options.measure, budget, environment.row_counts, usability_indexes=usable
    )
    summary = summarize(measurement.samples_ms) if measurement.samples_ms else None
    verdict = judge(
        query,
        measurement,
        summary,
        budget,
        environment.strategy,
        environment.row_counts,
        options.allow_few_samples,
    )
    return QueryResult(query.name, query.description, budget, str(query.path), measurement, summary, verdict)


def query_seed(seed: int, query: Query) -> int:
    """A per-query parameter stream: stable across runs, independent of which other queries are selected."""
    return (seed * 1_000_003 + zlib.crc32(query.name.encode())) % 2**32


def _estimated_row_counts(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rows = conn.execute(
        "SELECT relname, greatest(reltuples, 0)::bigint FROM pg_class "
        "WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace"
    ).fetchall()
    return {name: int(count) for name, count in rows}


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _options_dict(options: RunOptions) -> dict[str, object]:
    m = options.measure
    return {
        "tier": options.tier,
        "seed": options.seed,
        "strategy": options.strategy,
        "only": list(options.only),
        "budget_ms": options.budget_ms,
        "iterations": m.iterations,
        "warmup": m.warmup,
        "prepare": m.prepare or "per query (default auto)",
        "timeout_factor": m.timeout_factor,
        "allow_few_samples": options.allow_few_samples,
    }
