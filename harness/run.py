"""`harness run`: make sure the tier is seeded, measure every selected query, judge it, report as we go.

Reports are rewritten after each query (hyperfine's habit), so an interrupted or crashed run still leaves
a partial, clearly marked report behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.anchor import unseeded_anchor_source
from harness.cache import warm_cache
from harness.capabilities import capabilities
from harness.catalog import Catalog, Query
from harness.config import project_config
from harness.environment import Environment
from harness.errors import InputError, UnsafeOperation
from harness.maintenance import Maintenance
from harness.measure import MeasureOptions, Timer, measure_query
from harness.report import write_reports
from harness.results import QueryResult, RunResult
from harness.roles import Access, measuring_warning
from harness.stats import summarize
from harness.verdicts import judge, split_expectations
from harness.workload import Workload, incomplete_reason, now_iso, run_id


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
    maintenance: Maintenance = field(default_factory=Maintenance)  # --create-extensions, --analyze


@dataclass(frozen=True)
class Progress:
    """Callbacks for a display: a query starts (index, total, name) and finishes (its result)."""

    query_started: Callable[[int, int, str], None] = lambda i, n, name: None
    query_finished: Callable[[QueryResult], None] = lambda result: None
    seeding: Callable[[str], None] = lambda message: None
    warning: Callable[[str], None] = lambda message: None


def run(
    dsn: str,
    options: RunOptions,
    progress: Progress | None = None,
    database_label: str = "",
    write: Callable[[RunResult], None] | None = None,
    access: Access | None = None,
) -> RunResult:
    """Measure and judge every selected query; ``write`` is called after each one and at the end.

    ``write`` defaults to writing the reports into ``options.reports_dir``/<run-id>/ when that is set. The
    user's SQL runs through ``access.reader_dsn`` (default: ``dsn`` itself), holding the shared data lock so
    no seed changes the data meanwhile; DataChanged (exit 3, run marked invalid) if it changed anyway on the
    harness's own cluster (``access.private_cluster``), a warning in the report over ``--dsn``.
    """
    progress = progress or Progress()
    workload = Workload.of(options, dsn, database_label)
    result = RunResult(
        run_id=run_id(options.run_id), started_at=now_iso(), environment=None, options=_options_dict(options)
    )
    write = write or report_writer(options.reports_dir)
    access = access or Access.owner_only(dsn)
    refused = False
    try:
        for line in options.maintenance.run(dsn):  # asked for by name, and before measuring: never while
            result.warnings.append(f"note: {line}")
            progress.warning(line)
        with contextlib.ExitStack() as held:
            manifest = workload.prepare_and_hold(held, "run", progress.seeding)
            result.options["anchor"] = (
                f"seeded data (tier {manifest.tier}, {manifest.anchor_date})" if manifest else unseeded_anchor_source()
            )
            result.environment = workload.environment(manifest)
            tables = workload.measured_tables(manifest, result.environment)
            witness = workload.take_witness(tables)  # at once: a write from here on makes the run invalid
            warning = measuring_warning(access)
            if warning:
                result.warnings.append(warning)
                progress.warning(warning)
            for note in capabilities(dsn).notes():  # e.g. no pg_stat_statements: work from EXPLAIN instead
                result.warnings.append(note)
                progress.warning(note)
            result.cache = warm_cache(dsn).as_dict()
            draws = workload.draws(manifest, options.measure.warmup + options.measure.iterations, access.reader_dsn)
            write(result)
            queries = workload.catalog.queries
            for index, query in enumerate(queries):
                progress.query_started(index, len(queries), query.name)
                query_result = measure_and_judge(
                    access,
                    query,
                    draws[query.name],
                    result.environment,
                    options.measure,
                    options.budget_ms,
                    options.allow_few_samples,
                )
                result.queries.append(query_result)
                progress.query_finished(query_result)
                write(result)
            changed = workload.refuse_changed_data(tables, witness, strict=access.private_cluster)
            if changed:
                advisory = f"the data witness saw writes while measuring (advisory over --dsn): {'; '.join(changed)}"
                result.warnings.append(advisory)
                progress.warning(advisory)
        result.complete = True
    except BaseException as exc:
        result.incomplete_reason = incomplete_reason(exc)
        refused = isinstance(exc, InputError | UnsafeOperation) and not result.queries  # no report folder either
        raise
    finally:
        result.finished_at = now_iso()
        if not refused:
            write(result)
    return result


def selected_catalog(options: RunOptions) -> Catalog:
    """The catalog to measure, validated with the tier and strategy names before any connection."""
    return Workload.of(options).catalog


def report_writer(reports_dir: Path | None) -> Callable[[RunResult], None]:
    """Write the reports into ``reports_dir``/<run-id>/ (report.html once finished); nothing when None."""

    def write(result: RunResult) -> None:
        if reports_dir is not None:
            write_reports(result, reports_dir / result.run_id, html=result.finished_at is not None)

    return write


def measure_and_judge(
    access: Access,
    query: Query,
    param_sets: Sequence[Mapping[str, Any]],
    environment: Environment,
    measure: MeasureOptions,
    budget_ms: float | None = None,
    allow_few_samples: bool = False,
    timer: Timer | None = None,
) -> QueryResult:
    """Measure one query and judge it against its budget (``budget_ms`` overrides the query's) and
    expectations: what `harness run` does for each query, and the pytest plugin for each test (``timer``)."""
    budget = budget_ms if budget_ms is not None else query.budget_ms
    _, usable = split_expectations(query, environment.strategy, environment.row_counts)
    measurement = measure_query(
        access.reader_dsn,
        query,
        param_sets,
        measure,
        budget,
        environment.row_counts,
        usability_indexes=usable,
        admin_dsn=access.admin_dsn,
        reader_role=access.reader_role,
        timer=timer,
    )
    summary = summarize(measurement.samples_ms) if measurement.samples_ms else None
    verdict = judge(
        query, measurement, summary, budget, environment.strategy, environment.row_counts, allow_few_samples
    )
    return QueryResult(query.name, query.description, budget, str(query.path), measurement, summary, verdict)


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
        "project_config": str(project.path) if (project := project_config()).path else None,
    }
