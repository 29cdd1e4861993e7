"""Turning a measurement into pass / fail / warn, each check with a reason a human can act on.

FAIL: p95 over budget; an expected index missing from the plan (on tiers big enough for the planner to
choose it) or not even usable (on smaller tiers); an error or timeout. WARN: plan smells, a p95 whose
confidence interval straddles the budget, too few samples for a p95.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

from harness.catalog import Query
from harness.measure import MIN_SAMPLES_FOR_P95, Measurement
from harness.plans import Misestimate, PlanFacts, index_serving
from harness.stats import MIN_SAMPLES_FOR_P95_UPPER, PERCENTILE_METHOD, Summary

Status = Literal["pass", "fail", "warn"]


@dataclass(frozen=True)
class Check:
    """One gate check of one query (a JUnit testcase)."""

    name: str
    status: Status
    reason: str


@dataclass(frozen=True)
class QueryVerdict:
    query: str
    status: Status
    checks: tuple[Check, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def split_expectations(query: Query, strategy: str, row_counts: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """(indexes the plan must use, indexes that need only be usable) for ``strategy`` at these sizes."""
    required: list[str] = []
    usable: list[str] = []
    for expectation in query.expectations:
        if not expectation.applies_to(strategy):
            continue
        target = required if expectation.requires_use(row_counts) else usable
        target.extend(i for i in expectation.indexes if i not in target)
    return required, usable


def judge(
    query: Query,
    measurement: Measurement,
    summary: Summary | None,
    budget_ms: float,
    strategy: str,
    row_counts: Mapping[str, int],
    allow_few_samples: bool = False,
) -> QueryVerdict:
    checks: list[Check] = []
    warnings: list[str] = []
    if measurement.error:
        checks.append(Check("execution", "fail", measurement.error))
    if summary is not None and summary.n:
        checks.append(_budget_check(summary, budget_ms))
        if _straddles(summary, budget_ms):
            warnings.append(
                f"p95 95% CI {summary.p95_ci_text()} ms straddles the budget "
                f"{budget_ms:g} ms: the verdict could flip; add --iterations or raise the budget"
            )
        if summary.n < MIN_SAMPLES_FOR_P95:
            message = f"only {summary.n} samples: a p95 needs at least {MIN_SAMPLES_FOR_P95} to mean something"
            if allow_few_samples:
                warnings.append(message)
            else:
                checks.append(Check("samples", "fail", message + " (use --iterations, or --allow-few-samples)"))
    elif not measurement.error:
        checks.append(Check("execution", "fail", "no timed executions"))
    required, usable = split_expectations(query, strategy, row_counts)
    used = set(measurement.plan.indexes_used) if measurement.plan else set()
    for index in required:
        if measurement.plan is None:
            continue
        serving = index_serving(measurement.plan, index)
        if serving is not None:
            checks.append(Check(f"index:{index}", "pass", f"plan uses {_serving_text(serving, index)}"))
        else:
            found = ", ".join(sorted(used)) or "no index"
            checks.append(
                Check(
                    f"index:{index}",
                    "fail",
                    f"expected index {index} not used (plan uses {found}); "
                    "check the index exists under this strategy and the predicate is sargable",
                )
            )
    usable_results = {u.index: u for u in measurement.usability}
    for index in usable:
        result = usable_results.get(index)
        if result is None:
            continue
        if result.usable:
            checks.append(
                Check(
                    f"index:{index}",
                    "pass",
                    f"{_serving_text(result.via or index, index)} usable"
                    " (tables too small for the planner to prefer it)",
                )
            )
        else:
            checks.append(
                Check(
                    f"index:{index}",
                    "fail",
                    f"expected index {index} is not usable for this query even with "
                    "sequential scans disabled; does it exist under this strategy?",
                )
            )
    if measurement.plan is not None:
        warnings.extend(f"seq scan on large table: {s}" for s in measurement.plan.large_seq_scans)
        warnings.extend(f"row misestimate: {m}" for m in actionable_misestimates(measurement.plan))
        warnings.extend(f"spilled to disk: {s}" for s in measurement.plan.spills)
    if measurement.retried:
        warnings.append(f"connection lost mid-measurement; retried {measurement.retried}x")
    status: Status = "fail" if any(c.status == "fail" for c in checks) else "warn" if warnings else "pass"
    return QueryVerdict(measurement.query, status, tuple(checks), tuple(warnings))


def _serving_text(serving: str, expected: str) -> str:
    """ "orders_2024_created_idx (partition of expected orders_created_idx)" when a child index served."""
    bare = expected.rsplit(".", 1)[-1]
    return serving if serving == bare else f"{serving} (partition of expected {bare})"


def actionable_misestimates(plan: PlanFacts, limit: int = 3) -> list[Misestimate]:
    """Misestimates on scans and joins, the nodes whose row estimates steer plan choice.

    Group counts of aggregates are routinely off by orders of magnitude, and a bad estimate low in the
    tree repeats in every node above it; reporting those would bury the one line worth acting on.
    """
    relevant = [m for m in plan.misestimates if "Scan" in m.node or "Join" in m.node or "Nested Loop" in m.node]
    return relevant[:limit]


def _straddles(summary: Summary, budget_ms: float) -> bool:
    """The p95's interval holds the budget, so another run could land on the other side of it.

    A side the samples cannot bound (n too small for a distribution-free bound) is not counted: that
    would warn on every query of a default run; the budget check's reason states it instead.
    """
    low, high = summary.p95_ci_low, summary.p95_ci_high
    return (high is not None and summary.p95 <= budget_ms < high) or (
        low is not None and low <= budget_ms < summary.p95
    )


def _budget_check(summary: Summary, budget_ms: float) -> Check:
    over = summary.p95 > budget_ms
    unbounded = ""
    if summary.p95_ci_high is None:
        unbounded = f"; {MIN_SAMPLES_FOR_P95_UPPER}+ samples bound p95 from above"
    reason = (
        f"p95 {summary.p95:.2f} ms {'>' if over else '<='} budget {budget_ms:g} ms "
        f"(n={summary.n}, 95% CI {summary.p95_ci_text()}{unbounded}, {PERCENTILE_METHOD})"
    )
    return Check("p95_budget", "fail" if over else "pass", reason)
