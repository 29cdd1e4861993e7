"""Bounded p95 intervals by default (issue 19): a run keeps timing until the interval is bounded and tight,
or a cap stops it and the report says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.catalog import load_query
from harness.measure import MeasureOptions, measure_query, p95_precise
from harness.stats import MIN_SAMPLES_FOR_P95_UPPER, summarize
from harness.verdicts import judge


def query_file(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "q.sql"
    path.write_text(sql + "\n")
    return path


def test_precision_needs_a_bounded_interval_and_a_tight_upper_limit() -> None:
    rng = np.random.default_rng(3)
    tight = list(rng.normal(10.0, 0.1, 500))
    assert p95_precise(tight, 0.10)
    assert not p95_precise(tight[: MIN_SAMPLES_FOR_P95_UPPER - 1], 0.10)  # unbounded: too few samples
    heavy = list(rng.lognormal(0.0, 1.5, 100))
    assert not p95_precise(heavy, 0.10)


def test_a_run_keeps_timing_until_the_p95_is_bounded(fresh_dsn: str, tmp_path: Path) -> None:
    query = load_query(query_file(tmp_path, "SELECT count(*) FROM generate_series(1, 100)"))
    sets = [{}] * (5 + 200)
    adaptive = measure_query(fresh_dsn, query, sets, MeasureOptions(iterations=20, max_iterations=200), 100.0)
    assert MIN_SAMPLES_FOR_P95_UPPER <= len(adaptive.samples_ms) <= 200
    summary = summarize(adaptive.samples_ms)
    assert summary.p95_ci_high is not None
    assert adaptive.cut_short is not None or summary.p95_ci_high <= 1.1 * summary.p95
    fixed = measure_query(fresh_dsn, query, sets, MeasureOptions(iterations=20, p95_precision=None), 100.0)
    assert len(fixed.samples_ms) == 20 and fixed.cut_short is None
    assert adaptive.draws_digest == fixed.draws_digest  # the fixed prefix pairs runs whatever n each reached


def test_a_time_cap_leaves_the_p95_unbounded_and_the_verdict_says_why(fresh_dsn: str, tmp_path: Path) -> None:
    query = load_query(query_file(tmp_path, "SELECT pg_sleep(0.02)"))
    options = MeasureOptions(iterations=20, warmup=1, max_iterations=200, max_seconds=0.1)
    measured = measure_query(fresh_dsn, query, [{}] * 201, options, 1000.0)
    assert len(measured.samples_ms) < MIN_SAMPLES_FOR_P95_UPPER
    assert measured.cut_short and "after 0.1 s" in measured.cut_short
    summary = summarize(measured.samples_ms)
    verdict = judge(query, measured, summary, 1000.0, "baseline", {})
    assert any("not bounded: sampling stopped at" in str(w) for w in verdict.warnings)
