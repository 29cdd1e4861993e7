"""Comparisons on synthetic input: the baseline-vs-candidate gate on samples with known differences (false
alarms and power), and what-if rendering from stored plans. No database: these only read data.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from harness.compare import compare_runs
from harness.environment import Environment
from harness.plans import plan_diff, plan_facts
from harness.report.compare import render_what_if_text
from harness.results import SavedQuery, SavedRun
from harness.whatif import WhatIf

PLANS = Path(__file__).parent / "fixtures" / "plans"

ENVIRONMENT = Environment.from_dict(
    {
        "tier": "test",
        "seed": 42,
        "data_checksum": "abc",
        "postgres_major": 18,
        "strategy": "baseline",
        "settings": {"work_mem": "4MB", "jit": "off"},
        "host": {"hostname": "ci"},
    }
)
TRIALS = 150
N = 30


def saved_run(run_id: str, samples: dict[str, np.ndarray]) -> SavedRun:
    queries = {
        name: SavedQuery(name, 100.0, [float(v) for v in values], None, None, "pass", None)
        for name, values in samples.items()
    }
    return SavedRun(Path(f"{run_id}/run.json"), run_id, True, ENVIRONMENT, queries)


def latencies(rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Right-skewed latencies around 5 ms, like real query timings."""
    return 5.0 * scale * rng.lognormal(0.0, 0.3, N)


def test_identical_distributions_rarely_fail_the_gate() -> None:
    rng = np.random.default_rng(2024)
    failed = flagged = 0
    for _ in range(TRIALS):
        base = saved_run("base", {"q": latencies(rng)})
        cand = saved_run("cand", {"q": latencies(rng)})
        comparison = compare_runs(base, cand, max_regression=0.10)
        failed += comparison.exit_code
        flagged += comparison.queries[0].verdict != "no significant difference"
    # the CI of the ratio excludes 1 by chance ~5% of the time (either direction); the gate also needs
    # a >10% slowdown, so false alarms must stay well under that
    assert flagged / TRIALS <= 0.12
    assert failed / TRIALS <= 0.05


def test_a_planted_slowdown_is_caught_on_the_right_query() -> None:
    rng = np.random.default_rng(7)
    caught = wrong = 0
    for _ in range(TRIALS // 3):
        base = saved_run("base", {"same": latencies(rng), "slowed": latencies(rng)})
        # 5 → 75 ms against a 100 ms budget: a time-only change between separate runs must pass half of it
        cand = saved_run("cand", {"same": latencies(rng), "slowed": latencies(rng, scale=15.0)})
        comparison = compare_runs(base, cand, max_regression=0.10)
        names = {q.name for q in comparison.regressions}
        caught += "slowed" in names
        wrong += "same" in names
    assert caught / (TRIALS // 3) >= 0.9
    reported = compare_runs(saved_run("b", {"q": latencies(rng)}), saved_run("c", {"q": latencies(rng, scale=1.8)}))
    assert reported.exit_code == 0 and "time-only change between separate runs" in reported.queries[0].decision.notes[0]
    assert wrong / (TRIALS // 3) <= 0.1


def test_what_if_output_says_it_is_an_estimate() -> None:
    before = plan_facts(json.loads((PLANS / "seq_scan.json").read_text()))
    after = plan_facts(json.loads((PLANS / "index_scan.json").read_text()))
    result = WhatIf("by_user", {}, before.root.total_cost, after.root.total_cost, before.indexes_used,
                    after.indexes_used, tuple(plan_diff(before, after)), before, after)  # fmt: skip
    text = render_what_if_text([result])
    assert text.startswith("ESTIMATES ONLY: what-if figures are planner cost estimates")
    assert "by_user" in text and f"{result.cost_ratio:.2f}x" in text and after.indexes_used[0] in text


def test_a_schema_1_run_json_still_reads_and_compares_on_timings_only(tmp_path: Path) -> None:
    from harness.results import load_run

    rng = np.random.default_rng(3)
    old = {
        "schema_version": 1,
        "run_id": "old",
        "complete": True,
        "environment": asdict(ENVIRONMENT),
        "queries": [
            {
                "name": "q",
                "budget_ms": 100.0,
                "samples_ms": list(latencies(rng)),
                "summary": None,
                "plan": None,
                "verdict": {"status": "pass"},
                "error": None,
            }
        ],
    }
    (tmp_path / "run.json").write_text(json.dumps(old))
    base = load_run(tmp_path / "run.json")
    assert base.queries["q"].work is None and base.queries["q"].draws_digest == ""
    comparison = compare_runs(base, saved_run("cand", {"q": latencies(rng)}))
    assert comparison.exit_code == 0 and comparison.queries[0].decision.work.status == "unknown"
    assert any("no work metrics on one side" in w for w in comparison.warnings)
    assert any("not paired by draw" in w for w in comparison.warnings)
