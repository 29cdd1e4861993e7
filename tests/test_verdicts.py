"""The gate's warnings as an enumeration, and one gate for `run` and `load`: unit tests of pure logic.

The texts are pinned to what reports, run.json and load.json have always said, so that the enumeration
changes nothing a reader or a script sees; the codes are what it adds.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.catalog import Query
from harness.measure import MIN_SAMPLES_FOR_P95, Measurement
from harness.plans import plan_facts
from harness.stats import summarize
from harness.verdicts import Check, QueryVerdict, QueryWarning, WarningKind, judge, judge_load

PLANS = Path(__file__).parent / "fixtures" / "plans"


@pytest.mark.parametrize(
    ("kind", "fields", "text"),
    [
        (WarningKind.CI_STRADDLES_BUDGET, {"ci": "[0.90, 1.40]", "budget": 1.2},
         "p95 95% CI [0.90, 1.40] ms straddles the budget 1.2 ms: the verdict could flip; "
         "add --iterations or raise the budget"),
        (WarningKind.FEW_SAMPLES, {"n": 5, "minimum": 20}, "only 5 samples: a p95 needs at least 20 to mean something"),
        (WarningKind.SEQ_SCAN_LARGE_TABLE, {"detail": "Seq Scan on events (200000 rows)"},
         "seq scan on large table: Seq Scan on events (200000 rows)"),
        (WarningKind.ROW_MISESTIMATE, {"detail": "x"}, "row misestimate: x"),
        (WarningKind.SPILL, {"detail": "Sort"}, "spilled to disk: Sort"),
        (WarningKind.RETRIED, {"times": 2}, "connection lost mid-measurement; retried 2x"),
        (WarningKind.FEW_REQUESTS, {"n": 3, "minimum": 20}, "only 3 successful requests: a p95 needs at least 20"),
        (WarningKind.NO_REQUESTS, {}, "no request completed: lengthen --duration or raise its weight"),
        (WarningKind.TIMINGS_ON_WORKERS, {},
         "the workers keep the exact timings (their reports/<run-id>/load.md); "
         "Locust's rounded view is in locust_stats.csv here"),
    ],
)  # fmt: skip
def test_each_warning_renders_the_text_reports_have_always_shown(
    kind: WarningKind, fields: dict[str, Any], text: str
) -> None:
    warning = kind(**fields)
    assert warning == text and str(warning) == text and json.dumps([warning]) == json.dumps([text])
    assert warning.kind is kind and warning.code == kind.code


def test_every_kind_has_its_own_code_and_a_fix() -> None:
    codes = [kind.code for kind in WarningKind]
    assert len(set(codes)) == len(codes) == len(WarningKind)
    assert all(kind.fix and kind.code.islower() for kind in WarningKind)


def measurement(samples: list[float], plan: str | None = None, retried: int = 0) -> Measurement:
    m = Measurement(query="q", prepare="auto", timeout_ms=1000, samples_ms=samples, retried=retried)
    if plan is not None:
        m.explain_json = json.loads((PLANS / f"{plan}.json").read_text())
        m.plan = plan_facts(m.explain_json)
    return m


def run_verdict(samples: list[float], budget: float, allow_few: bool = False, **kwargs: Any) -> QueryVerdict:
    return judge_query(measurement(samples, **kwargs), budget, allow_few)


def judge_query(m: Measurement, budget: float, allow_few: bool) -> QueryVerdict:
    query = Query("q", Path("q.sql"), "SELECT 1", 1, "", budget, (), 1, "auto", (), (), {})
    return judge(query, m, summarize(m.samples_ms), budget, "baseline", {}, allow_few_samples=allow_few)


def test_too_few_samples_fail_run_unless_allowed_then_warn_with_the_same_words() -> None:
    samples = [1.0] * (MIN_SAMPLES_FOR_P95 - 1)
    failed = run_verdict(samples, 10)
    assert failed.status == "fail" and failed.warnings == ()
    assert failed.failures == [
        Check(
            "samples",
            "fail",
            f"only {MIN_SAMPLES_FOR_P95 - 1} samples: a p95 needs at least {MIN_SAMPLES_FOR_P95} to mean "
            "something (use --iterations, or --allow-few-samples)",
        )
    ]
    warned = run_verdict(samples, 10, allow_few=True)
    assert warned.status == "warn" and [w.kind for w in warned.warnings] == [WarningKind.FEW_SAMPLES]  # type: ignore[attr-defined]
    assert run_verdict([1.0] * MIN_SAMPLES_FOR_P95, 10).status == "pass"


def test_plan_smells_and_retries_are_warnings_of_their_kind() -> None:
    verdict = run_verdict([1.0] * 40, 10, plan="sort_spill", retried=1)
    kinds = [w.kind for w in verdict.warnings]  # type: ignore[attr-defined]
    assert verdict.status == "warn" and WarningKind.SPILL in kinds and kinds[-1] is WarningKind.RETRIED
    assert "spilled to disk: Sort" in verdict.warnings[kinds.index(WarningKind.SPILL)]


def test_run_json_carries_codes_and_reads_back_both_ways() -> None:
    verdict = run_verdict([1.0] * 40, 10, retried=1)
    data = json.loads(json.dumps(verdict.as_dict()))
    assert data["warnings"] == ["connection lost mid-measurement; retried 1x"] and data["warning_codes"] == ["retried"]
    again = QueryVerdict.from_dict(data, "q")
    assert again == verdict and again.warnings[0].kind is WarningKind.RETRIED  # type: ignore[attr-defined]
    older = {k: v for k, v in data.items() if k != "warning_codes"}  # run.json before codes (schema 1 and 2)
    read = QueryVerdict.from_dict(older, "q")
    assert read == verdict and isinstance(read.warnings[0], QueryWarning) and read.warnings[0].kind is None


def load_verdict(ms: list[float], failures: int = 0, budget: float | None = 10.0, **kwargs: Any) -> QueryVerdict:
    errors = Counter({"DivisionByZero: division by zero": failures}) if failures else Counter()
    summary = summarize(ms) if ms else None
    return judge_load("q", summary, budget, failures, errors, users=4, max_failure_rate=0.01, **kwargs)


def test_load_fails_over_budget_and_over_the_failure_rate_in_that_order() -> None:
    verdict = load_verdict([50.0] * 99, failures=2, budget=10)
    assert verdict.status == "fail" and [c.name for c in verdict.failures] == ["p95_budget", "failure_rate"]
    assert verdict.failures[0].reason == "p95 50.00 ms > budget 10 ms under load (4 users, n=99)"
    assert verdict.failures[1].reason == "failure rate 2.0% > 1.0% (2 of 101: DivisionByZero: division by zero ×2)"


def test_load_at_the_limits_passes() -> None:
    assert load_verdict([10.0] * 100, failures=1).status == "pass"  # p95 = budget, 1 failure in 101 < 1%
    assert load_verdict([50.0] * 100, budget=None).status == "pass"  # the total without --p95-budget


def test_load_warnings_name_what_is_missing() -> None:
    assert load_verdict([]).warnings == ("no request completed: lengthen --duration or raise its weight",)
    assert load_verdict([], on_master=True).warnings[0].kind is WarningKind.TIMINGS_ON_WORKERS  # type: ignore[attr-defined]
    few = load_verdict([1.0] * 3)
    assert few.status == "warn" and few.warnings == (
        f"only 3 successful requests: a p95 needs at least {MIN_SAMPLES_FOR_P95}",
    )
    all_failed = load_verdict([], failures=5)
    assert all_failed.status == "fail" and all_failed.warnings == ()
