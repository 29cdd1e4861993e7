"""`harness compare BASE CAND`: two saved runs side by side (pure: no database).

Refuses to compare runs whose fingerprints differ (data, server, settings) unless told to, and gates on
work and timing regressions through ``harness.gate`` (work first, then a paired timing test with a
catalog-wide error rate). The interleaved A/B (``harness.compare.catalogs``) reuses it on its two sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.environment import COMPARED_SETTINGS, Environment
from harness.errors import InputError
from harness.gate import (
    DEFAULT_ALPHA,
    DEFAULT_FLOOR_MS,
    DEFAULT_MAX_REGRESSION,
    DEFAULT_MAX_WORK_REGRESSION,
    DEFAULT_SEPARATE_RUNS_BUDGET_SHARE,
    GateOptions,
    QueryDecision,
    Side,
    decide,
)
from harness.measure import MIN_SAMPLES_FOR_P95
from harness.plans import PlanChange
from harness.results import SavedQuery, SavedRun
from harness.stats import Summary

# What must be equal for two runs' timings to be comparable at all.
FINGERPRINT_FIELDS = ("tier", "seed", "data_checksum", "postgres_major")


@dataclass(frozen=True)
class Mismatch:
    """One fingerprint field that differs between the baseline and the candidate run."""

    field: str
    base: str
    cand: str

    def __str__(self) -> str:
        return f"{self.field}: {self.base} (base) vs {self.cand} (candidate)"


@dataclass(frozen=True)
class QueryDelta:
    """One query in both runs: the gate's decision (work, timing test), and each side's summary and indexes."""

    name: str
    decision: QueryDecision
    base_summary: Summary | None
    cand_summary: Summary | None
    base_indexes: tuple[str, ...]
    cand_indexes: tuple[str, ...]

    @property
    def regressed(self) -> bool:
        return self.decision.regressed

    @property
    def verdict(self) -> str:
        return self.decision.timing_verdict

    @property
    def plan_changes(self) -> tuple[PlanChange, ...]:
        return self.decision.work.plan_changes

    def headline(self) -> str:
        """The sentence a reviewer reads first: "q3: work regressed: shared buffers per call 12 → 4,210 (351x);
        plan switched from Index Scan using … to Seq Scan on …"."""
        return self.decision.headline()


@dataclass(frozen=True)
class Design:
    """How an A/B comparison was measured, printed beside its verdicts so a reader can judge them."""

    base: str  # "git ref main (commit 1a2b3c4d)" or the base catalog's folder
    candidate: str
    rounds: int
    iterations: int  # timed executions per query and side (n per side)
    warmup: int  # untimed executions per query, side and round
    order: str  # how the sides alternate within a round
    indexes: str  # whether both sides share the same index definitions
    paired: tuple[str, ...]  # queries whose two sides used the same draws: samples pair by draw index
    unpaired: tuple[str, ...]  # queries whose sides declare different parameters: compared as independent
    test: str  # the statistical test behind the timing verdict
    family_alpha: float | None  # the false-alarm rate controlled over the whole catalog, when there is one
    wall_s: float = 0.0
    looks: tuple[int, ...] = ()  # rounds after which a query could stop (sequential); () fixed design
    stopped: tuple[tuple[str, str], ...] = ()  # (query, why) measured fewer rounds: settled early, or cut short


@dataclass(frozen=True)
class RunComparison:
    """Baseline vs candidate run: per-query deltas, fingerprint mismatches, and the gate's exit code."""

    base_path: str
    cand_path: str
    base_run_id: str
    cand_run_id: str
    base_strategy: str
    cand_strategy: str
    max_regression: float
    gate: GateOptions
    mismatches: tuple[Mismatch, ...]
    queries: tuple[QueryDelta, ...]
    only_in_base: tuple[str, ...]
    only_in_cand: tuple[str, ...]
    warnings: tuple[str, ...]
    kind: str = "runs"  # "catalogs" for an interleaved A/B of two catalog versions (``design`` says how)
    design: Design | None = None
    unchanged: tuple[tuple[str, str], ...] = ()  # (query, why) the A/B did not measure: nothing that decides it changed

    @property
    def regressions(self) -> list[QueryDelta]:
        return [q for q in self.queries if q.regressed]

    @property
    def improvements(self) -> list[QueryDelta]:
        return [q for q in self.queries if q.decision.improved]

    @property
    def exit_code(self) -> int:
        """1 when any query failed the gate (work regressed, or significantly slower beyond both thresholds)."""
        return 1 if self.regressions else 0


def parse_max_regression(text: str, option: str = "--max-regression") -> float:
    """ "10%" or "0.1" → 0.10; InputError naming ``option`` for anything else (negative, not a number)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"{option} {text!r}: write a percentage like 10% (or a fraction like 0.1)") from None
    if value < 0 or value != value:
        raise InputError(f"{option} {text!r} must be a non-negative percentage, e.g. 10%")
    return value


def fingerprint_mismatches(base: Environment | None, cand: Environment | None) -> list[Mismatch]:
    """The fingerprint fields (data, server major, compared settings) on which two run environments differ."""
    if not base or not cand:
        return [Mismatch("environment fingerprint", "present" if base else "missing", "present" if cand else "missing")]
    found = [
        Mismatch(name, str(getattr(base, name)), str(getattr(cand, name)))
        for name in FINGERPRINT_FIELDS
        if getattr(base, name) != getattr(cand, name)
    ]
    base_settings, cand_settings = base.settings, cand.settings
    found += [
        Mismatch(name, str(base_settings.get(name)), str(cand_settings.get(name)))
        for name in COMPARED_SETTINGS
        if base_settings.get(name) != cand_settings.get(name)
    ]
    return found


def compare_runs(
    base: SavedRun,
    cand: SavedRun,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    allow_mismatch: bool = False,
    max_work_regression: float = DEFAULT_MAX_WORK_REGRESSION,
    alpha: float = DEFAULT_ALPHA,
    floor_ms: float = DEFAULT_FLOOR_MS,
    separate_runs_budget_share: float = DEFAULT_SEPARATE_RUNS_BUDGET_SHARE,
    interleaved: bool = False,
    *,
    gate: GateOptions | None = None,
) -> RunComparison:
    """Compare a candidate run against a baseline; InputError when the fingerprints differ (unless allowed).

    The decision is ``harness.gate.decide``: work first, then a timing test paired by draw where both runs
    timed the same draws, Holm-corrected across the catalog at ``alpha``. The runs were measured separately,
    so a time-only change (same work, same plan) fails only beyond ``separate_runs_budget_share`` of the
    budget, unless ``interleaved`` (the two runs are the sides of one A/B job, sharing the machine's noise).
    ``gate``, when given, holds every threshold instead of the separate keywords (the A/B mode's, with its looks).
    """
    gate = gate or GateOptions(
        max_regression,
        max_work_regression,
        alpha,
        floor_ms,
        interleaved=interleaved,
        separate_runs_budget_share=separate_runs_budget_share,
    )
    mismatches = fingerprint_mismatches(base.environment, cand.environment)
    if mismatches and not allow_mismatch:
        raise InputError(
            f"{base.path} and {cand.path} are not comparable: {'; '.join(map(str, mismatches))} — re-run "
            "both on the same data and server settings, or pass --allow-mismatch to compare anyway"
        )
    warnings = [f"FINGERPRINT MISMATCH (compared anyway): {m}" for m in mismatches]
    base_strategy = base.environment.strategy if base.environment else "?"
    cand_strategy = cand.environment.strategy if cand.environment else "?"
    if base_strategy != cand_strategy:
        warnings.append(f"index strategy differs: {base_strategy} (base) vs {cand_strategy} (candidate)")
    for label, run in (("base", base), ("candidate", cand)):
        if not run.complete:
            warnings.append(f"the {label} run {run.run_id} is incomplete: queries it did not reach are missing")
    base_host = base.environment.host.get("hostname") if base.environment else None
    cand_host = cand.environment.host.get("hostname") if cand.environment else None
    if base_host != cand_host:
        warnings.append(f"runs come from different machines ({base_host} vs {cand_host}): timings may differ "
                        "for reasons unrelated to the change")  # fmt: skip
    common = [name for name in base.queries if name in cand.queries]
    decisions = decide(
        {name: (saved_side(base.queries[name]), saved_side(cand.queries[name])) for name in common}, gate
    )
    deltas = [_query_delta(base.queries[d.name], cand.queries[d.name], d) for d in decisions]
    few = sorted(d.name for d in decisions if d.timing and min(d.timing.n_base, d.timing.n_cand) < MIN_SAMPLES_FOR_P95)
    if few:
        warnings.append(
            f"fewer than {MIN_SAMPLES_FOR_P95} samples for {', '.join(few)}: timing tests have little power; "
            "re-run with more --iterations"
        )
    unpaired = sorted(d.name for d in decisions if d.timing and not d.timing.paired)
    if unpaired:
        warnings.append(
            f"samples not paired by draw for {', '.join(unpaired)} (different draws, or a run.json without a "
            "draws digest): compared with Mann-Whitney U, which has less power"
        )
    if any(d.work.status == "unknown" for d in decisions):
        warnings.append("no work metrics on one side (a schema 1 run.json?): those queries gate on timing only")
    return RunComparison(
        base_path=str(base.path),
        cand_path=str(cand.path),
        base_run_id=base.run_id,
        cand_run_id=cand.run_id,
        base_strategy=base_strategy,
        cand_strategy=cand_strategy,
        max_regression=max_regression,
        gate=gate,
        mismatches=tuple(mismatches),
        queries=tuple(deltas),
        only_in_base=tuple(n for n in base.queries if n not in cand.queries),
        only_in_cand=tuple(n for n in cand.queries if n not in base.queries),
        warnings=tuple(warnings),
    )


def saved_side(query: SavedQuery) -> Side:
    """A saved query as one side of the gate."""
    return Side(
        samples_ms=tuple(query.samples_ms),
        work=query.work,
        plan=query.plan,
        draw_plans=query.draw_plans,
        draws_digest=query.draws_digest,
        slices=query.slices,
        budget_ms=query.budget_ms,
        error=query.error,
    )


def _query_delta(base: SavedQuery, cand: SavedQuery, decision: QueryDecision) -> QueryDelta:
    base_idx = base.plan.indexes_used if base.plan else ()
    cand_idx = cand.plan.indexes_used if cand.plan else ()
    return QueryDelta(base.name, decision, base.summary, cand.summary, base_idx, cand_idx)
