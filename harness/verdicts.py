"""The gate: a measurement (``harness run``) or a load's samples (``harness load``) → pass / fail / warn,
each check with a reason a human can act on.

FAIL: p95 over budget; an expected index missing from the plan (on tiers big enough for the planner to
choose it) or not even usable (on smaller tiers); an error or timeout; under load, a failure rate over the
maximum. WARN: one of ``WarningKind`` (plan smells, a p95 whose confidence interval straddles the budget, too
few samples for a p95, …), each with a stable code, a message and a fix, as hyperfine's warnings are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Literal

from harness.catalog import Query
from harness.environment import NO_STRATEGY
from harness.measure import MIN_SAMPLES_FOR_P95, Measurement
from harness.plans import Misestimate, PlanFacts, index_serving
from harness.stats import MIN_SAMPLES_FOR_P95_UPPER, PERCENTILE_METHOD, Summary

Status = Literal["pass", "fail", "warn"]
_DURATION_FIX = "lengthen --duration or raise its weight"


class WarningKind(Enum):
    """Every warning a verdict can carry: (code, message template, fix). The code is stable (run.json's
    ``warning_codes``); a template names its fields, and ``{fix}`` where today's text states the fix."""

    CI_STRADDLES_BUDGET = (
        "ci_straddles_budget",
        "p95 95% CI {ci} ms straddles the budget {budget:g} ms: the verdict could flip; {fix}",
        "add --iterations or raise the budget",
    )
    FEW_SAMPLES = (
        "few_samples",
        "only {n} samples: a p95 needs at least {minimum} to mean something",
        "use --iterations, or --allow-few-samples",
    )
    SEQ_SCAN_LARGE_TABLE = (
        "seq_scan_large_table",
        "seq scan on large table: {detail}",
        "index the columns it filters on, or expect the scan if the query reads most of the table",
    )
    ROW_MISESTIMATE = (
        "row_misestimate",
        "row misestimate: {detail}",
        "ANALYZE the table, or raise the column's statistics target (ALTER TABLE … SET STATISTICS)",
    )
    SPILL = (
        "spill",
        "spilled to disk: {detail}",
        "raise work_mem for this query, or make it sort or hash fewer rows",
    )
    RETRIED = (
        "retried",
        "connection lost mid-measurement; retried {times}x",
        "look in the server's log for why the connection dropped",
    )
    FEW_REQUESTS = (
        "few_requests",
        "only {n} successful requests: a p95 needs at least {minimum}",
        _DURATION_FIX,
    )
    NO_REQUESTS = ("no_requests", "no request completed: {fix}", _DURATION_FIX)
    TIMINGS_ON_WORKERS = (
        "timings_on_workers",
        "the workers keep the exact timings (their reports/<run-id>/load.md); "
        "Locust's rounded view is in locust_stats.csv here",
        "read each worker's load.md",
    )

    def __init__(self, code: str, template: str, fix: str) -> None:
        self.code = code
        self.template = template
        self.fix = fix

    def __call__(self, **fields: Any) -> QueryWarning:
        """This warning with its fields filled in."""
        return QueryWarning(self.template.format(fix=self.fix, **fields), self)


class QueryWarning(str):
    """A warning: its text (a ``str``, so every report, JSON and test reads it unchanged) and its kind.

    Read back from a run.json written before codes existed, or text of no kind, ``kind`` is None.
    """

    __slots__ = ("kind",)
    kind: WarningKind | None

    def __new__(cls, text: str, kind: WarningKind | None = None) -> QueryWarning:
        warning = super().__new__(cls, text)
        warning.kind = kind
        return warning

    @property
    def code(self) -> str | None:
        return self.kind.code if self.kind else None

    @classmethod
    def read(cls, text: str, code: str | None) -> QueryWarning:
        """A warning as run.json stored it: its text and, since warning codes exist, its code."""
        return cls(text, _BY_CODE.get(code or ""))


_BY_CODE = {kind.code: kind for kind in WarningKind}


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
    warnings: tuple[str, ...] = field(default_factory=tuple)  # QueryWarning values, or any text

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def as_dict(self) -> dict[str, object]:
        """run.json's verdict: ``warnings`` as text, as always, and ``warning_codes`` beside them."""
        data = asdict(self)
        data["warnings"] = [str(w) for w in self.warnings]
        data["warning_codes"] = [getattr(w, "code", None) for w in self.warnings]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str) -> QueryVerdict:
        """A verdict as ``as_dict`` wrote it (``warning_codes`` absent before they existed)."""
        warnings = list(data.get("warnings") or ())
        codes = list(data.get("warning_codes") or ())
        codes = codes if len(codes) == len(warnings) else [None] * len(warnings)
        return cls(
            query=data.get("query", name),
            status=data["status"],
            checks=tuple(Check(c["name"], c["status"], c["reason"]) for c in data.get("checks") or ()),
            warnings=tuple(QueryWarning.read(text, code) for text, code in zip(warnings, codes, strict=True)),
        )


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
    """The verdict of one query of ``harness run``: its execution, p95 budget, samples and expectations."""
    checks: list[Check] = []
    warnings: list[QueryWarning] = []
    if measurement.error:
        checks.append(Check("execution", "fail", measurement.error))
    if summary is not None and summary.n:
        checks.append(_budget_check(summary, budget_ms))
        if _straddles(summary, budget_ms):
            warnings.append(WarningKind.CI_STRADDLES_BUDGET(ci=summary.p95_ci_text(), budget=budget_ms))
        if _too_few(summary):
            few = WarningKind.FEW_SAMPLES(n=summary.n, minimum=MIN_SAMPLES_FOR_P95)
            if allow_few_samples:
                warnings.append(few)
            else:
                checks.append(Check("samples", "fail", f"{few} ({WarningKind.FEW_SAMPLES.fix})"))
    elif not measurement.error:
        checks.append(Check("execution", "fail", "no timed executions"))
    required, usable = split_expectations(query, strategy, row_counts)
    used = set(measurement.plan.indexes_used) if measurement.plan else set()
    where = "in this database" if strategy == NO_STRATEGY else "under this strategy"
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
                    f"check the index exists {where} and the predicate is sargable",
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
                    f"sequential scans disabled; does it exist {where}?",
                )
            )
    if measurement.plan is not None:
        warnings.extend(WarningKind.SEQ_SCAN_LARGE_TABLE(detail=s) for s in measurement.plan.large_seq_scans)
        warnings.extend(WarningKind.ROW_MISESTIMATE(detail=m) for m in actionable_misestimates(measurement.plan))
        warnings.extend(WarningKind.SPILL(detail=s) for s in measurement.plan.spills)
    if measurement.retried:
        warnings.append(WarningKind.RETRIED(times=measurement.retried))
    return _verdict(measurement.query, checks, warnings)


def judge_load(
    name: str,
    summary: Summary | None,
    budget_ms: float | None,
    failures: int,
    errors: Mapping[str, int],
    *,
    users: int,
    max_failure_rate: float,
    on_master: bool = False,
) -> QueryVerdict:
    """The verdict of one query (or the total) of ``harness load``: its p95 under load against the budget
    (None: not gated on p95), its failure rate against the maximum, and enough requests for a p95.

    ``summary`` holds the successful requests' latencies; ``errors`` counts failures by message. A master
    of distributed workers sees no requests of its own (``on_master``): it says where the timings are.
    """
    checks: list[Check] = []
    warnings: list[QueryWarning] = []
    if summary is not None and budget_ms is not None and _over_budget(summary, budget_ms):
        reason = f"p95 {summary.p95:.2f} ms > budget {budget_ms:g} ms under load ({users} users, n={summary.n})"
        checks.append(Check("p95_budget", "fail", reason))
    total = (summary.n if summary is not None else 0) + failures
    rate = failures / total if total else 0.0
    if rate > max_failure_rate:
        top = "; ".join(f"{message} ×{count}" for message, count in _most_common(errors, 3))
        reason = f"failure rate {rate:.1%} > {max_failure_rate:.1%} ({failures} of {total}: {top})"
        checks.append(Check("failure_rate", "fail", reason))
    if total == 0:
        warnings.append(WarningKind.TIMINGS_ON_WORKERS() if on_master else WarningKind.NO_REQUESTS())
    elif summary is not None and _too_few(summary):
        warnings.append(WarningKind.FEW_REQUESTS(n=summary.n, minimum=MIN_SAMPLES_FOR_P95))
    return _verdict(name, checks, warnings)


def _verdict(name: str, checks: list[Check], warnings: list[QueryWarning]) -> QueryVerdict:
    """Fail if any check fails, warn if anything is worth a warning, pass otherwise."""
    status: Status = "fail" if any(c.status == "fail" for c in checks) else "warn" if warnings else "pass"
    return QueryVerdict(name, status, tuple(checks), tuple(warnings))


def _over_budget(summary: Summary, budget_ms: float) -> bool:
    """The budget rule of run and load alike: the sample p95 above the budget fails."""
    return summary.p95 > budget_ms


def _too_few(summary: Summary) -> bool:
    """Fewer samples than a p95 needs to mean something (run fails or warns, load warns)."""
    return summary.n < MIN_SAMPLES_FOR_P95


def _most_common(counts: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: -item[1])[:n]


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
    over = _over_budget(summary, budget_ms)
    unbounded = ""
    if summary.p95_ci_high is None:
        unbounded = f"; {MIN_SAMPLES_FOR_P95_UPPER}+ samples bound p95 from above"
    reason = (
        f"p95 {summary.p95:.2f} ms {'>' if over else '<='} budget {budget_ms:g} ms "
        f"(n={summary.n}, 95% CI {summary.p95_ci_text()}{unbounded}, {PERCENTILE_METHOD})"
    )
    return Check("p95_budget", "fail" if over else "pass", reason)
