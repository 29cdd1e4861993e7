"""From one `harness run` per tier to each query's growth: points, plan regimes and flips, fits, forecast, flags.

A query's size axis is the rows of its *driving table*: of the tables its plan reads at the largest tier, the
one holding the most rows (or the table a ``--target-rows TABLE=N`` names, for every query). Its p95 and its
shared buffers per call are fitted per plan regime (``harness.growth``); the forecast uses the regime of the
largest tier, whose plan is the one bigger data will run first.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from harness.growth import (
    CRITERION,
    ClassFit,
    Forecast,
    ForecastFit,
    Growth,
    Point,
    PowerFit,
    fit_forecast_model,
    fit_power,
    split_regimes,
)
from harness.plans import plan_diff, plan_shape, shape_fingerprint
from harness.results import QueryResult, RunResult
from harness.stats import PERCENTILE_METHOD, percentile_log_se, quantile_interval

GROW_SCHEMA_VERSION = 1
# Tiers are measured minutes apart, and runs minutes apart share no noise: on the shared 2-core development
# machine one benchmark-tier p95 was 690 ms quiet and 1,540 ms under load, and benchmarks/flake_rate.py saw
# test-tier p95s spread over 94-736 % of their median across 20 runs. So each tier's ln p95 carries this
# run-to-run standard error beside its bootstrap one (work counters do not move with the machine).
RUN_TO_RUN_LOG_SE = 0.25


class Flag(StrEnum):
    """What grow says about a query; ``FAILING`` ones make the command exit 1."""

    OVER_BUDGET = "over budget"  # measured: p95 over the budget at a measured tier
    CROSSES_BEFORE_TARGET = "crosses before target"  # forecast: the budget is reached below the target size
    FASTER_THAN_LINEAR = "faster than linear"  # the exponent's interval lies above 1 (p95 or buffers)
    PLAN_FLIP = "plan flip"  # the plan changed between tiers: the fit uses the last regime only
    NO_FORECAST = "no forecast"  # fewer than two sizes in the last regime, or no growth towards the budget


FAILING = frozenset({Flag.OVER_BUDGET, Flag.CROSSES_BEFORE_TARGET})


@dataclass(frozen=True)
class Target:
    """The size to forecast for: target rows per table, and the table every query is sized by (if one)."""

    rows: Mapping[str, float]
    label: str
    table: str | None = None
    estimated: tuple[str, ...] = ()  # tables whose target rows are an estimate (a tier file does not state them)

    def describe(self) -> str:
        return self.label + (f" (estimated: {', '.join(self.estimated)} rows)" if self.estimated else "")


@dataclass(frozen=True)
class TierPoint:
    """One query at one tier: timings, work, the rows of the tables its plan reads, the plan's shape."""

    tier: str
    table_rows: Mapping[str, int]
    n: int
    p50: float | None
    p50_ci: tuple[float | None, float | None]  # distribution-free, from order statistics (harness.stats)
    p95: float | None
    p95_ci: tuple[float | None, float | None]
    p95_log_se: float
    shared_blks_per_call: float | None
    temp_blks_per_call: float | None
    plan: str  # shape fingerprint of the tier's most common plan among the timed draws
    plan_lines: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class PlanFlip:
    before_tier: str
    tier: str
    changes: tuple[str, ...]

    def __str__(self) -> str:
        return f"plan flip {self.before_tier} → {self.tier}: {'; '.join(self.changes) or 'shape changed'}"


@dataclass(frozen=True)
class RegimeFit:
    """The fits of one plan regime (None when it has fewer than two sizes): the log-log exponents of p95 and
    of shared buffers per call, and the model the p95 forecast extrapolates."""

    plan: str
    tiers: tuple[str, ...]
    p95: PowerFit | None
    shared_buffers: PowerFit | None
    forecast_model: ForecastFit | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "tiers": list(self.tiers),
            "p95_ms": self.p95.as_dict() if self.p95 else None,
            "shared_buffers_per_call": self.shared_buffers.as_dict() if self.shared_buffers else None,
            "forecast_model": self.forecast_model.as_dict() if self.forecast_model else None,
        }


@dataclass(frozen=True)
class QueryGrowth:
    name: str
    budget_ms: float
    table: str | None  # the size axis: None when the plan reads no table the data counts
    points: tuple[tuple[float, TierPoint], ...]  # (the table's rows, the tier's point), smallest first
    flips: tuple[PlanFlip, ...]
    regimes: tuple[RegimeFit, ...]
    forecast: Forecast | None
    target_rows: float | None
    p95_at_target: tuple[float, float, float] | None  # fitted p95 and its band at the target (extrapolated)
    reasons: tuple[tuple[Flag, str], ...]  # each flag raised, with the sentence that says why

    @property
    def flags(self) -> tuple[Flag, ...]:
        return tuple(dict.fromkeys(flag for flag, _ in self.reasons))

    @property
    def failed(self) -> bool:
        return any(flag in FAILING for flag in self.flags)

    @property
    def failures(self) -> list[str]:
        return [text for flag, text in self.reasons if flag in FAILING]

    @property
    def current(self) -> RegimeFit | None:
        """The regime of the largest tier: the one the forecast extrapolates."""
        return self.regimes[-1] if self.regimes else None

    def as_dict(self) -> dict[str, Any]:
        forecast = None
        if self.forecast is not None:
            forecast = {"kind": "extrapolated (a model's forecast, not a measurement)", **asdict(self.forecast)}
        return {
            "name": self.name,
            "budget_ms": self.budget_ms,
            "table": self.table,
            "points": [{"rows": rows, **asdict(point)} for rows, point in self.points],
            "plan_flips": [asdict(f) for f in self.flips],
            "regimes": [r.as_dict() for r in self.regimes],
            "forecast": forecast,
            "target_rows": self.target_rows,
            "p95_at_target_ms": list(self.p95_at_target) if self.p95_at_target else None,
            "flags": [str(f) for f in self.flags],
            "reasons": [{"flag": str(flag), "text": text} for flag, text in self.reasons],
        }


@dataclass
class GrowResult:
    """A `harness grow`: the run of every tier measured so far, and the growth of each query across them."""

    grow_id: str
    started_at: str
    options: dict[str, Any]
    runs: list[RunResult] = field(default_factory=list)
    target: Target | None = None
    queries: list[QueryGrowth] = field(default_factory=list)
    complete: bool = False
    incomplete_reason: str | None = None
    finished_at: str | None = None

    @property
    def status(self) -> str:
        if any(q.failed for q in self.queries):
            return "fail"
        return "pass" if self.complete else "incomplete"

    @property
    def failed(self) -> list[QueryGrowth]:
        return [q for q in self.queries if q.failed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": GROW_SCHEMA_VERSION,
            "kind": "grow",
            "grow_id": self.grow_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "complete": self.complete,
            "incomplete_reason": self.incomplete_reason,
            "status": self.status,
            "percentile_method": PERCENTILE_METHOD,
            "method": METHOD,
            "options": self.options,
            "target": asdict(self.target) if self.target else None,
            "tiers": [_tier_dict(r) for r in self.runs],
            "environment": asdict(self.runs[-1].environment) if self.runs and self.runs[-1].environment else None,
            "queries": [q.as_dict() for q in self.queries],
        }


def _tier_dict(run: RunResult) -> dict[str, Any]:
    env = run.environment
    return {
        "tier": env.tier if env else run.run_id,
        "run": f"tiers/{run.run_id}/run.json",
        "row_counts": env.row_counts if env else {},
        "strategy": env.strategy if env else None,
        "data_checksum": env.data_checksum if env else None,
    }


METHOD = (
    "Per query and plan regime, ln(cost) is fitted against ln(rows of the driving table) by weighted least squares "
    f"(weights: 1 / the variance of each tier's ln p95, its bootstrap plus {RUN_TO_RUN_LOG_SE:g} run to run); the "
    "exponent's interval is normal from that noise, or Student's t (n - 2 df) with the residual variance when "
    f"points scatter more. No fit crosses a plan flip. The forecast model: {CRITERION}. The forecast is where it "
    "reaches the budget, with the interval where the bands of the models not rejected do: an extrapolation of "
    "models, never a measurement."
)


def analyse(runs: Sequence[RunResult], target: Target | None) -> list[QueryGrowth]:
    """Each query's growth across ``runs`` (one per tier, any order), in the largest tier's query order."""
    if not runs:
        return []
    largest = largest_run(runs)
    return [_query_growth(q.name, runs, largest, target) for q in largest.queries]


def _query_growth(name: str, runs: Sequence[RunResult], largest: RunResult, target: Target | None) -> QueryGrowth:
    results = [(run, q) for run in runs for q in run.queries if q.name == name]
    budget = results[0][1].budget_ms
    table = target.table if target and target.table else _driving_table(_find(largest, name), largest)
    measured = [(run, q) for run, q in results if table and row_counts(run).get(table, 0) > 0]
    measured.sort(key=lambda pair: row_counts(pair[0])[table or ""])
    points = tuple((float(row_counts(run)[table or ""]), _tier_point(run, q)) for run, q in measured)
    timed = [(rows, p, q) for (rows, p), (_, q) in zip(points, measured, strict=True) if p.p95 is not None]
    flips = tuple(_flips(timed))
    regimes = tuple(_regime_fits(timed))
    fit = regimes[-1].forecast_model if regimes else None
    forecast = fit.forecast(budget) if fit else None
    target_rows = target.rows.get(table) if target and table else None
    at_target = None
    if fit and target_rows:
        at_target = (fit.predict(target_rows), *fit.band(target_rows))
    reasons = _judge(name, budget, table, timed, flips, regimes, forecast, target, target_rows)
    return QueryGrowth(name, budget, table, points, flips, regimes, forecast, target_rows, at_target, reasons)


def _tier_point(run: RunResult, q: QueryResult) -> TierPoint:
    m, s = q.measurement, q.summary
    plans = Counter(m.draw_plans).most_common(1)
    fingerprint = plans[0][0] if plans else (shape_fingerprint(m.plan) if m.plan else "")
    lines = m.plan_shapes.get(fingerprint) or (plan_shape(m.plan) if m.plan else [])
    read = _tables_read(q)
    return TierPoint(
        tier=run.environment.tier if run.environment else run.run_id,
        table_rows={t: n for t, n in row_counts(run).items() if t in read},
        n=s.n if s else 0,
        p50=s.p50 if s else None,
        p50_ci=quantile_interval(m.samples_ms, 0.5) if m.samples_ms else (None, None),
        p95=s.p95 if s else None,
        p95_ci=(s.p95_ci_low, s.p95_ci_high) if s else (None, None),
        p95_log_se=math.hypot(percentile_log_se(m.samples_ms), RUN_TO_RUN_LOG_SE) if m.samples_ms else 0.0,
        shared_blks_per_call=m.work.shared_blks_per_call if m.work else None,
        temp_blks_per_call=m.work.temp_blks_per_call if m.work else None,
        plan=fingerprint,
        plan_lines=tuple(lines),
        error=m.error,
    )


def _flips(timed: Sequence[tuple[float, TierPoint, QueryResult]]) -> list[PlanFlip]:
    flips = []
    for (_, before, bq), (_, after, aq) in itertools.pairwise(timed):
        if before.plan != after.plan:
            old, new = bq.measurement.plan, aq.measurement.plan
            changes = tuple(plan_diff(old, new)) if old and new else ()
            flips.append(PlanFlip(before.tier, after.tier, changes))
    return flips


def _regime_fits(timed: Sequence[tuple[float, TierPoint, QueryResult]]) -> list[RegimeFit]:
    p95 = [Point(rows, p.p95 or 0.0, p.p95_log_se, p.tier) for rows, p, _ in timed]
    fits = []
    for regime in split_regimes(p95, [p.plan for _, p, _ in timed]):
        tiers = tuple(point.label for point in regime.points)
        work = [Point(rows, p.shared_blks_per_call or 0.0, 0.0, p.tier) for rows, p, _ in timed if p.tier in tiers]
        fits.append(RegimeFit(regime.plan, tiers, fit_power(regime.points), fit_power(work),
                              fit_forecast_model(regime.points)))  # fmt: skip
    return fits


def _judge(
    name: str,
    budget: float,
    table: str | None,
    timed: Sequence[tuple[float, TierPoint, QueryResult]],
    flips: Sequence[PlanFlip],
    regimes: Sequence[RegimeFit],
    forecast: Forecast | None,
    target: Target | None,
    target_rows: float | None,
) -> tuple[tuple[Flag, str], ...]:
    """The flags, each with the sentence that says why, naming the query, the budget and the sizes."""
    reasons: list[tuple[Flag, str]] = []
    over = [(rows, p) for rows, p, _ in timed if p.p95 is not None and p.p95 > budget]
    if over:
        rows, point = over[0]
        reasons.append((Flag.OVER_BUDGET, f"{name}: measured p95 {point.p95:,.2f} ms > budget {budget:g} ms at "
                        f"tier {point.tier} ({rows:,.0f} {table} rows)"))  # fmt: skip
    elif forecast is not None and target and target_rows and forecast.below(target_rows):
        where = f"{target.label}, estimated" if table in target.estimated else target.label
        reasons.append((Flag.CROSSES_BEFORE_TARGET,
            f"{name}: forecast (extrapolated) p95 reaches budget {budget:g} ms at {_rows_text(forecast.rows)} "
            f"{table} rows [{forecast.confidence:.0%} CI {_rows_text(forecast.rows_low)}, "
            f"{_rows_text(forecast.rows_high)}], below the target {target_rows:,.0f} ({where})"))  # fmt: skip
    current = regimes[-1] if regimes else None
    for label, fit in (("p95", current.p95 if current else None),
                       ("shared buffers", current.shared_buffers if current else None)):  # fmt: skip
        if fit is not None and fit.growth is Growth.FASTER_THAN_LINEAR:
            reasons.append((Flag.FASTER_THAN_LINEAR, f"{name}: {label} grows faster than linear: exponent "
                            f"{fit.exponent:.2f} [{fit.exponent_low:.2f}, {fit.exponent_high:.2f}]"))  # fmt: skip
    model = current.forecast_model if current else None
    if model is not None and isinstance(model.chosen, ClassFit) and model.chosen.exponent > 1.0:
        reasons.append((Flag.FASTER_THAN_LINEAR, f"{name}: p95 is extrapolated as {model.describe()}"))
    reasons += [(Flag.PLAN_FLIP, f"{name}: {flip}") for flip in flips]
    if forecast is None or forecast.rows is None:
        why = "fewer than two sizes in the current plan regime" if forecast is None else "p95 does not grow"
        reasons.append((Flag.NO_FORECAST, f"{name}: no forecast: {why}"))
    return tuple(reasons)


def _rows_text(rows: float | None) -> str:
    if rows is None:
        return "unbounded"
    return f"{rows:,.0f}" if rows < 1e15 else f"{rows:.2g}"


def _driving_table(q: QueryResult | None, run: RunResult) -> str | None:
    """Of the tables the plan reads, the one with the most rows (else the largest table of the data)."""
    rows = row_counts(run)
    read = [t for t in _tables_read(q) if t in rows] if q else []
    candidates = read or list(rows)
    return max(candidates, key=lambda t: (rows[t], t)) if candidates else None


def _tables_read(q: QueryResult) -> set[str]:
    plan = q.measurement.plan
    return {n.relation for n in plan.root.walk() if n.relation} if plan else set()


def _find(run: RunResult, name: str) -> QueryResult | None:
    return next((q for q in run.queries if q.name == name), None)


def row_counts(run: RunResult) -> Mapping[str, int]:
    """The rows per table of the data a tier's run measured (empty when it stopped before connecting)."""
    return run.environment.row_counts if run.environment else {}


def largest_rows(runs: Sequence[RunResult]) -> dict[str, int]:
    """Per table, the most rows any of ``runs`` measured."""
    largest: dict[str, int] = {}
    for run in runs:
        for table, rows in row_counts(run).items():
            largest[table] = max(largest.get(table, 0), rows)
    return largest


def largest_run(runs: Sequence[RunResult]) -> RunResult:
    """The run of the largest tier (the most rows in all)."""
    return max(runs, key=lambda run: sum(row_counts(run).values()))
