"""`harness grow`: measure the catalog at each tier in turn, then fit and forecast how each query grows.

Each tier is an ordinary `harness run` (seeded when needed, the data lock held, the witness checked) whose
reports, raw samples included, go to grow-<id>/tiers/<tier>/; grow.json and grow.md are rewritten after each
tier, grow.html at the end, so an interrupted grow keeps what it measured. The fits and forecasts are
``harness.growth_analysis``'s; this module validates the request before any server starts and runs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.config import Tier, load_tier
from harness.errors import InputError
from harness.growth_analysis import GrowResult, Target, analyse, largest_rows, largest_run, row_counts
from harness.report.export import Exporter, export
from harness.report.grow import GROW_EXPORTERS
from harness.report.run import write_reports
from harness.results import RunResult
from harness.roles import Access
from harness.run import Progress, RunOptions, run, selected_catalog
from harness.workload import incomplete_reason, now_iso, run_id

_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}


@dataclass(frozen=True)
class GrowOptions:
    """The tiers, the target, and what each tier's run measures (``run``: its ``tier`` is set per tier, its
    ``reports_dir`` and ``run_id`` name grow's own folder, reports_dir/<run_id>/)."""

    tiers: tuple[str, ...] = ("test", "dev")
    target_rows: tuple[str, float] | None = None  # (TABLE, N): size every query by TABLE, forecast for N rows
    target_tier: str | None = None
    run: RunOptions = field(default_factory=RunOptions)


@dataclass(frozen=True)
class GrowProgress:
    """Callbacks for a display: a tier starts (index, total, name); ``run`` is each tier's run progress."""

    tier_started: Callable[[int, int, str], None] = lambda i, n, name: None
    run: Progress = field(default_factory=Progress)


def parse_target_rows(text: str) -> tuple[str, float]:
    """``TABLE=N`` (N as 10000000, 10_000_000, 1e7 or 10M) → (table, rows); InputError otherwise."""
    table, sep, number = text.partition("=")
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kmgb]?)\s*", number.lower())
    if not sep or not table.strip() or match is None:
        raise InputError(f"--target-rows {text!r}: write TABLE=N, e.g. behavior_logs=10000000 or behavior_logs=10M")
    rows = float(match.group(1).replace("_", "")) * _SUFFIX.get(match.group(2), 1.0)
    if rows < 1:
        raise InputError(f"--target-rows {text!r}: the target must be at least one row")
    return table.strip(), rows


def validate(options: GrowOptions) -> list[Tier]:
    """The tiers to measure, checked before any connection (exit 2): at least two, distinct, known; one
    target at most, and above the largest measured tier where the tier files can tell."""
    tiers = [load_tier(name) for name in options.tiers]
    names = [t.name for t in tiers]
    if len(set(names)) < 2:
        raise InputError(f"--tiers {','.join(options.tiers)}: a growth fit needs at least two different tiers")
    if len(set(names)) < len(names):
        raise InputError(f"--tiers {','.join(options.tiers)}: a tier is named twice")
    if options.target_rows and options.target_tier:
        raise InputError("--target-rows and --target-tier are two targets: give one of them")
    largest = {table: max(declared_rows(t)[table] for t in tiers) for table in declared_rows(tiers[0])}
    if options.target_tier:
        target = declared_rows(load_tier(options.target_tier))
        if all(target[t] <= largest[t] for t in largest):
            raise InputError(
                f"--target-tier {options.target_tier} is not larger than the largest measured tier "
                f"({_describe(largest)}): a forecast is for sizes beyond the measurements"
            )
    if options.target_rows:
        table, rows = options.target_rows
        if table in largest and rows <= largest[table]:
            raise InputError(
                f"--target-rows {table}={rows:,.0f} is not above the largest measured tier's {largest[table]:,} "
                f"{table} rows: a forecast is for sizes beyond the measurements"
            )
    selected_catalog(replace(options.run, tier=options.tiers[0]))
    return tiers


def declared_rows(tier: Tier) -> dict[str, int]:
    """The row counts a tier file states outright (the other tables follow from the generator)."""
    return {"users": tier.users, "courses": tier.courses, "behavior_logs": tier.behavior_logs}


def resolve_target(options: GrowOptions, runs: Sequence[RunResult]) -> Target | None:
    """The target in rows per table, from the measured data: InputError for a table the data lacks, or a
    target not above the largest measured size."""
    largest = largest_rows(runs)
    if options.target_rows:
        table, rows = options.target_rows
        if table not in largest:
            raise InputError(f"--target-rows {table}=…: no table {table!r} in the data ({', '.join(sorted(largest))})")
        if rows <= largest[table]:
            raise InputError(
                f"--target-rows {table}={rows:,.0f} is not above the largest measured {largest[table]:,} rows"
            )
        return Target({table: rows}, f"{table}={rows:,.0f}", table)
    if options.target_tier:
        tier = load_tier(options.target_tier)
        rows = tier_rows(tier, runs)
        return Target(rows, f"tier {tier.name}", estimated=tuple(t for t in rows if t not in declared_rows(tier)))
    return None


def tier_rows(tier: Tier, runs: Sequence[RunResult]) -> dict[str, float]:
    """A tier's rows per table before it is ever seeded: what its file declares, and for the other tables
    the largest measured tier's rows scaled by the ratio of users (an estimate, stated in the report)."""
    declared = declared_rows(tier)
    largest = largest_run(runs)
    measured_users = row_counts(largest).get("users") or 0
    scale = tier.users / measured_users if measured_users else 1.0
    return {table: float(declared.get(table, rows * scale)) for table, rows in row_counts(largest).items()}


def grow(
    dsn: str,
    options: GrowOptions,
    progress: GrowProgress | None = None,
    database_label: str = "",
    access: Access | None = None,
) -> GrowResult:
    """Measure every tier (smallest first, as given), analysing after each; reports in ``reports_dir``/<id>/."""
    validate(options)
    progress = progress or GrowProgress()
    result = GrowResult(run_id(options.run.run_id, prefix="grow-"), now_iso(), _options_dict(options))
    reports_dir = options.run.reports_dir
    directory = reports_dir / result.grow_id if reports_dir is not None else None
    try:
        for index, tier in enumerate(options.tiers):
            progress.tier_started(index, len(options.tiers), tier)
            tier_options = replace(
                options.run,
                tier=tier,
                allow_few_samples=True,  # grow gates on the forecast, not on each tier's sample count
                seed_if_needed=True,
                reports_dir=None,  # each tier's reports go to grow's folder (``_tier_writer``)
                run_id=_folder_name(load_tier(tier).name),
            )
            measured = run(dsn, tier_options, progress.run, database_label, _tier_writer(directory), access)
            result.runs.append(measured)
            result.target = resolve_target(options, result.runs)
            result.queries = analyse(result.runs, result.target)
            _write(result, directory, html=False)
        result.complete = True
    except BaseException as exc:
        result.incomplete_reason = incomplete_reason(exc)
        raise
    finally:
        result.finished_at = now_iso()
        _write(result, directory, html=True)
    return result


def _tier_writer(directory: Path | None) -> Callable[[RunResult], None]:
    def write(measured: RunResult) -> None:
        if directory is not None:
            write_reports(measured, directory / "tiers" / measured.run_id, html=False)

    return write


def _write(result: GrowResult, directory: Path | None, html: bool) -> None:
    """grow.json and grow.md into ``directory``, and grow.html when ``html`` (its figures take a moment)."""
    if directory is not None:
        export(result, directory, GROW_EXPORTERS + ((Exporter.file("grow.html", _render_html),) if html else ()))


def _render_html(result: GrowResult) -> str:
    from harness.report.grow_html import render_grow_html  # matplotlib only for the final report

    return render_grow_html(result)


def _folder_name(tier: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", tier)[:100] or "tier"


def _describe(rows: Mapping[str, int]) -> str:
    return ", ".join(f"{table} {n:,}" for table, n in rows.items())


def _options_dict(options: GrowOptions) -> dict[str, object]:
    o, m = options.run, options.run.measure
    return {
        "tiers": list(options.tiers),
        "target_rows": list(options.target_rows) if options.target_rows else None,
        "target_tier": options.target_tier,
        "strategy": o.strategy,
        "seed": o.seed,
        "only": list(o.only),
        "budget_ms": o.budget_ms,
        "iterations": m.iterations,
        "warmup": m.warmup,
        "prepare": m.prepare or "per query (default auto)",
    }
