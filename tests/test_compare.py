"""`harness compare` against a real PostgreSQL: saved runs side by side, strategies side by side, what-if."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from conftest import REPO, TEST_HOME

from harness.catalog import load_catalog
from harness.compare import (
    CompareOptions,
    CompareProgress,
    StrategyComparison,
    compare_runs,
    compare_strategies,
    parse_max_regression,
)
from harness.compare.interleave import rotated, round_slices
from harness.errors import InputError
from harness.measure import MeasureOptions
from harness.report import write_reports
from harness.report.compare import render_compare_text, write_compare_reports
from harness.results import SavedRun, load_run
from harness.run import RunOptions, run
from harness.seed import TABLES, read_manifest
from harness.strategies import existing_indexes, load_strategy
from harness.whatif import what_if

FEW = MeasureOptions(iterations=20, warmup=2)
SLEEPS = MeasureOptions(iterations=40, warmup=2)  # p95 of 40 samples: one scheduler hiccup cannot move it


def write_catalog(directory: Path, queries: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in queries.items():
        (directory / f"{name}.sql").write_text(f'/* harness\ndescription = "{name}"\nbudget_ms = 200\n*/\n{sql}\n')
    return directory


def measure_run(dsn: str, catalog: Path, out: Path, measure: MeasureOptions = FEW, **options: object) -> SavedRun:
    """A real `harness run` of ``catalog``, written to ``out``/run.json and read back."""
    result = run(dsn, RunOptions(queries_dir=catalog, measure=measure, allow_few_samples=True, **options))  # type: ignore[arg-type]
    write_reports(result, out, html=False)
    return load_run(out / "run.json")


@pytest.fixture(scope="module")
def sleep_runs(tier_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[SavedRun, SavedRun]:
    """Base and candidate runs whose latency is dominated by pg_sleep: `planted` sleeps 110 ms longer in
    the candidate (10 ms → 120 ms: a time-only change beyond half its 200 ms budget, which is what fails
    between separate runs); `steady` sleeps 25 ms in both. Sleeps this long dwarf the few-ms scheduler
    hiccups of a busy CI machine, so the verdicts are stable."""
    root = tmp_path_factory.mktemp("sleep")
    steady = "SELECT pg_sleep(0.025), count(*) FROM users"
    base_catalog = write_catalog(root / "q_base", {"steady": steady, "planted": "SELECT pg_sleep(0.010)"})
    cand_catalog = write_catalog(root / "q_cand", {"steady": steady, "planted": "SELECT pg_sleep(0.120)"})
    base = measure_run(tier_dsn, base_catalog, root / "base", SLEEPS, run_id="base")
    cand = measure_run(tier_dsn, cand_catalog, root / "cand", SLEEPS, run_id="cand")
    return base, cand


def test_a_run_compared_with_itself_shows_no_difference(sleep_runs: tuple[SavedRun, SavedRun]) -> None:
    base, _ = sleep_runs
    comparison = compare_runs(base, base)
    assert [q.name for q in comparison.queries] == ["planted", "steady"]
    assert all(q.verdict == "no significant difference" and not q.regressed for q in comparison.queries)
    assert all(q.decision.timing and q.decision.timing.paired for q in comparison.queries)  # same draws
    assert all(q.decision.work.status == "pass" and not q.decision.work.changes for q in comparison.queries)
    assert comparison.exit_code == 0
    assert comparison.mismatches == () and comparison.warnings == ()


def test_a_planted_slowdown_is_flagged_on_the_right_query(
    sleep_runs: tuple[SavedRun, SavedRun], tmp_path: Path
) -> None:
    base, cand = sleep_runs
    comparison = compare_runs(base, cand, max_regression=0.10)
    by_name = {q.name: q for q in comparison.queries}
    planted, steady = by_name["planted"], by_name["steady"]
    assert planted.verdict == "slower" and planted.regressed
    timing = planted.decision.timing
    assert timing is not None and timing.paired and 8 < timing.ratio < 16
    assert planted.headline().startswith("planted: got 1") and "Wilcoxon paired Holm p=" in planted.headline()
    assert not steady.regressed
    assert comparison.exit_code == 1
    assert [q.name for q in comparison.regressions] == ["planted"]
    # a threshold above the slowdown lets it through: the gate is the threshold, not mere significance
    assert compare_runs(base, cand, max_regression=20.0).exit_code == 0

    out = write_compare_reports(comparison, tmp_path / "report")
    data = json.loads((out / "compare.json").read_text())
    assert data["schema_version"] == 1 and data["kind"] == "runs" and data["exit_code"] == 1
    assert data["headlines"][0].startswith("REGRESSION: planted: got ")
    assert data["queries"][0]["timing"]["test"].startswith("Wilcoxon") and data["queries"][0]["work"]["status"]
    markdown = (out / "compare.md").read_text()
    assert "REGRESSION: planted: got" in markdown and "| planted | " in markdown
    html = (out / "compare.html").read_text()
    assert "data:image/png;base64," in html and (out / "compare_ratios.png").read_bytes().startswith(b"\x89PNG")
    text = render_compare_text(comparison)
    assert text.startswith("FAIL: candidate cand") and "FAIL: slower" in text


def test_mismatched_fingerprints_are_refused_unless_allowed(sleep_runs: tuple[SavedRun, SavedRun]) -> None:
    base, cand = sleep_runs
    assert cand.environment is not None
    env = dataclasses.replace(
        cand.environment,
        seed=7,
        settings={**cand.environment.settings, "work_mem": "64MB"},
        strategy="tuned",  # a different strategy is a legitimate comparison, reported but not refused
    )
    other = dataclasses.replace(cand, environment=env)
    with pytest.raises(InputError) as refused:
        compare_runs(base, other)
    message = str(refused.value)
    assert "seed: 42 (base) vs 7 (candidate)" in message and "work_mem" in message
    assert "--allow-mismatch" in message and "strategy" not in message.split("—")[0]
    assert refused.value.exit_code == 2

    allowed = compare_runs(base, other, allow_mismatch=True)
    assert [m.field for m in allowed.mismatches] == ["seed", "work_mem"]
    assert any(w.startswith("FINGERPRINT MISMATCH") and "seed" in w for w in allowed.warnings)
    assert any("index strategy differs: baseline (base) vs tuned (candidate)" in w for w in allowed.warnings)
    assert allowed.exit_code == 1  # the comparison still runs and still gates
    # same data, different strategy: no refusal
    other_strategy = dataclasses.replace(cand.environment, strategy="x")
    assert compare_runs(base, dataclasses.replace(cand, environment=other_strategy))


def test_queries_in_one_run_only_are_listed(sleep_runs: tuple[SavedRun, SavedRun]) -> None:
    base, cand = sleep_runs
    fewer = dataclasses.replace(cand, queries={"steady": cand.queries["steady"]})
    comparison = compare_runs(base, fewer)
    assert [q.name for q in comparison.queries] == ["steady"]
    assert comparison.only_in_base == ("planted",) and comparison.only_in_cand == ()
    assert "only in base (not compared): planted" in render_compare_text(comparison)


def test_a_dropped_index_appears_as_a_plan_diff(fresh_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE lookups (id bigint PRIMARY KEY, k integer NOT NULL, pad text NOT NULL)")
        conn.execute("INSERT INTO lookups SELECT i, i % 2000, repeat('x', 40) FROM generate_series(1, 40000) i")
        conn.execute("CREATE INDEX lookups_k_idx ON lookups (k)")
        conn.execute("ANALYZE lookups")
    catalog = write_catalog(tmp_path / "q", {"by_k": "SELECT id, pad FROM lookups WHERE k = 7"})
    base = measure_run(fresh_dsn, catalog, tmp_path / "base", seed_if_needed=False)
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX lookups_k_idx")
    cand = measure_run(fresh_dsn, catalog, tmp_path / "cand", seed_if_needed=False)

    comparison = compare_runs(base, cand)
    (delta,) = comparison.queries
    assert delta.base_indexes == ("lookups_k_idx",) and delta.cand_indexes == ()
    lines = [str(change) for change in delta.plan_changes]
    assert "index no longer used: lookups_k_idx" in lines
    assert any(line.endswith("→ Seq Scan on lookups") for line in lines), lines
    # the work gate fails it whatever the timings say, with the evidence
    assert delta.regressed and delta.decision.work.status == "fail" and comparison.exit_code == 1
    assert delta.headline().startswith("by_k: work regressed: shared buffers per call ")
    assert "plan switched from " in delta.headline() and "to Seq Scan on lookups" in delta.headline()


def test_a_candidate_that_no_longer_runs_counts_as_a_regression(
    sleep_runs: tuple[SavedRun, SavedRun],
) -> None:
    base, cand = sleep_runs
    broken = dataclasses.replace(
        cand.queries["planted"],
        samples_ms=[],
        summary=None,
        error="timed out after 2000 ms (statement_timeout)",
    )
    comparison = compare_runs(base, dataclasses.replace(cand, queries={**cand.queries, "planted": broken}))
    planted = next(q for q in comparison.queries if q.name == "planted")
    assert planted.regressed and planted.decision.timing is None and "timed out" in planted.headline()
    assert comparison.exit_code == 1


def test_max_regression_parsing() -> None:
    assert parse_max_regression("10%") == pytest.approx(0.10)
    assert parse_max_regression("0.25") == pytest.approx(0.25)
    for bad in ("ten", "-5%", "%"):
        with pytest.raises(InputError):
            parse_max_regression(bad)


def test_rounds_rotate_strategies_and_split_iterations() -> None:
    assert [rotated("ABC", r) for r in range(4)] == [list("ABC"), list("BCA"), list("CAB"), list("ABC")]
    assert [len(s) for s in round_slices(10, 3)] == [4, 3, 3]
    assert [i for s in round_slices(10, 3) for i in s] == list(range(10))


# -- mode 1 ------------------------------------------------------------------------------------------

STRATEGY_QUERIES = {
    "user_events": (
        '/* harness\ndescription = "one user\'s events"\nbudget_ms = 200\n'
        '[params]\nuid = { draw = "sql", sql = "SELECT id FROM users" }\n*/\n'
        "SELECT event_type, count(*) FROM behavior_logs WHERE user_id = %(uid)s GROUP BY 1"
    ),
    "recent_days": (
        '/* harness\ndescription = "daily events"\nbudget_ms = 200\n'
        '[params]\nsince = { draw = "anchor", offset_days = -14 }\n*/\n'
        "SELECT date_trunc('day', occurred_at) AS day, count(*) FROM behavior_logs "
        "WHERE occurred_at >= %(since)s GROUP BY 1 ORDER BY 1"
    ),
}


def test_strategies_side_by_side(tier_dsn: str, tmp_path: Path) -> None:
    queries = tmp_path / "q"
    queries.mkdir()
    for name, text in STRATEGY_QUERIES.items():
        (queries / f"{name}.sql").write_text(text + "\n")
    seen: list[tuple[str, str]] = []
    written: list[StrategyComparison] = []
    progress = CompareProgress(measured=lambda done, total, q, s: seen.append((q, s)))
    options = CompareOptions(("none", "baseline", "tuned"), tier="test", queries_dir=queries, iterations=6,
                             warmup=1, rounds=2, write_rows=2000, write_trials=2)  # fmt: skip
    comparison = compare_strategies(tier_dsn, options, progress, write=written.append)
    assert comparison.reference == "none" and comparison.exit_code == 0
    assert comparison.complete and comparison.incomplete_reason is None and comparison.original_restored
    # written before the first round, after each round, and at the end
    assert len(written) == 4 and written[-1] is comparison
    assert [len(written[i].measurement("user_events", "tuned").samples_ms) for i in range(3)] == [0, 3, 6]
    assert not any(w.complete or w.finished_at for w in written[:3])
    assert all(c.write_rows_per_s is None for c in written[2].costs)  # not measured until after the reads
    assert len(seen) == 2 * 3 * 2  # queries × strategies × rounds
    # round 2 visits the strategies in rotated order
    assert [s for _, s in seen[:6:2]] == ["none", "baseline", "tuned"]
    assert [s for _, s in seen[6::2]] == ["baseline", "tuned", "none"]
    for name in ("recent_days", "user_events"):
        for strategy in ("none", "baseline", "tuned"):
            m = comparison.measurement(name, strategy)
            assert m.error is None and len(m.samples_ms) == 6 and m.summary is not None
        for strategy in ("baseline", "tuned"):
            v = comparison.verdict(name, strategy)
            assert v is not None and v.reference == "none"
            assert v.verdict in ("faster", "slower", "no significant difference")
        assert comparison.measurement(name, "none").indexes_used == ()
    none, baseline, tuned = (comparison.cost(s) for s in ("none", "baseline", "tuned"))
    assert none.index_count == 0 and none.index_bytes == 0
    assert baseline.index_count == 23 and 0 < tuned.index_bytes < baseline.index_bytes
    assert all(c.write_rows_per_s > 0 and len(c.write_rows_per_s_samples) == 2 for c in comparison.costs)
    assert len(baseline.build_s_samples) >= 2  # built once per round (and again for its write trial or not)

    # the strategy in place before (baseline, from the seed) is back, and the manifest says so
    assert comparison.original_strategy == "baseline"
    with psycopg.connect(tier_dsn) as conn:
        assert read_manifest(conn).strategy == "baseline"  # type: ignore[union-attr]
        assert set(existing_indexes(conn, ["behavior_logs", "user_progress", "users", "courses"])) >= set(
            load_strategy("baseline").index_names
        )
        assert conn.execute("SELECT count(*) FROM behavior_logs").fetchone()[0] <= 500  # inserts rolled back

    out = write_compare_reports(comparison, tmp_path / "report")
    data = json.loads((out / "compare.json").read_text())
    assert data["kind"] == "strategies" and [c["strategy"] for c in data["costs"]] == [
        "none",
        "baseline",
        "tuned",
    ]
    assert len(data["queries"][0]["strategies"]["tuned"]["samples_ms"]) == 6
    assert (out / "compare_p95.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "compare_costs.png").read_bytes().startswith(b"\x89PNG")
    markdown = (out / "compare.md").read_text()
    tuned_indexes = len(load_strategy("tuned").indexes)
    assert "### Cost per strategy" in markdown and f"| tuned | {tuned_indexes} |" in markdown
    assert "p95 vs none [95% CI]" in render_compare_text(comparison)


def test_an_interrupted_strategy_comparison_restores_the_original_indexes(tier_dsn: str, tmp_path: Path) -> None:
    queries = write_catalog(tmp_path / "q", {"count_logs": "SELECT count(*) FROM behavior_logs"})

    def interrupt(done: int, total: int, query: str, strategy: str) -> None:
        raise KeyboardInterrupt

    written: list[StrategyComparison] = []
    with pytest.raises(KeyboardInterrupt):
        options = CompareOptions(("none", "tuned"), tier="test", queries_dir=queries, iterations=2, warmup=0,
                                 rounds=1)  # fmt: skip
        compare_strategies(tier_dsn, options, CompareProgress(measured=interrupt), write=written.append)
    with psycopg.connect(tier_dsn) as conn:
        assert read_manifest(conn).strategy == "baseline"  # type: ignore[union-attr]
        assert "bl_event_type_idx" in existing_indexes(conn, ["behavior_logs"])

    partial = written[-1]  # what was measured (none's slice), marked incomplete, the restore noted
    assert not partial.complete and partial.incomplete_reason == "interrupted (SIGINT)"
    assert partial.finished_at and partial.original_restored
    assert len(partial.measurement("count_logs", "none").samples_ms) == 2
    assert partial.measurement("count_logs", "tuned").samples_ms == () and partial.verdicts == ()
    assert partial.cost("tuned").build_s is None and partial.cost("none").write_rows_per_s is None
    out = write_compare_reports(partial, tmp_path / "report")
    markdown = (out / "compare.md").read_text()
    assert "> **INCOMPLETE: interrupted (SIGINT)" in markdown
    assert "| count_logs | tuned | – | – | 0 | – | not compared |" in markdown
    assert "| tuned | – | – | – | – |" in markdown and "'baseline', were restored" in markdown
    assert "<div class='fail'>INCOMPLETE: interrupted (SIGINT)" in (out / "compare.html").read_text()
    assert json.loads((out / "compare.json").read_text())["complete"] is False


def test_sigint_mid_compare_exits_130_and_keeps_a_partial_report(tier_dsn: str, tmp_path: Path) -> None:
    """A real `harness compare` process, interrupted once its first round is on disk: the report keeps that
    round, says it is incomplete and why, and the original (baseline) indexes are back."""
    naps = {f"nap{i}": "SELECT pg_sleep(0.1), count(*) FROM users" for i in range(2)}
    catalog = write_catalog(tmp_path / "q", naps)
    reports = tmp_path / "r"
    args = ["compare", "--strategies", "none,tuned", "--tier", "test", "--dsn", tier_dsn, "--queries", str(catalog)]
    args += ["--iterations", "12", "--warmup", "0", "--rounds", "3", "--reports-dir", str(reports)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=REPO, env={**os.environ, "HARNESS_HOME": str(TEST_HOME)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(q["strategies"]["tuned"]["samples_ms"] for q in _compare_json(reports).get("queries", [])):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the first round never reached compare.json"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and f"reports: {reports}" in stderr
    data = _compare_json(reports)
    assert data["complete"] is False and "interrupted" in data["incomplete_reason"]
    assert data["original_restored"] is True
    counts = [len(q["strategies"][s]["samples_ms"]) for q in data["queries"] for s in ("none", "tuned")]
    assert min(counts) >= 4 and sum(counts) < 4 * 12, counts  # round 1 (4 per query) kept, not all measured
    assert all(q["strategies"]["tuned"]["vs_reference"] for q in data["queries"])
    assert all(cost["write_rows_per_s"] is None for cost in data["costs"])
    folder = next(reports.glob("compare-*"))
    assert "INCOMPLETE: interrupted (SIGINT)" in (folder / "compare.md").read_text()
    assert "INCOMPLETE: interrupted (SIGINT)" in (folder / "compare.html").read_text()
    with psycopg.connect(tier_dsn) as conn:
        assert read_manifest(conn).strategy == "baseline"  # type: ignore[union-attr]
        assert set(existing_indexes(conn, TABLES)) == set(load_strategy("baseline").index_names)


def _compare_json(reports: Path) -> dict:
    found = list(reports.glob("*/compare.json"))
    return json.loads(found[0].read_text()) if found else {}


def test_strategy_comparison_refuses_bad_input(tier_dsn: str, fresh_dsn: str, tmp_path: Path) -> None:
    queries = write_catalog(tmp_path / "q", {"one": "SELECT 1"})
    with pytest.raises(InputError, match="at least two strategies"):
        compare_strategies(tier_dsn, CompareOptions(("baseline",), tier="test", queries_dir=queries))
    with pytest.raises(InputError, match="unknown strategy 'tunde'"):
        compare_strategies(tier_dsn, CompareOptions(("baseline", "tunde"), tier="test", queries_dir=queries))
    with pytest.raises(InputError, match="rounds"):
        options = CompareOptions(("none", "baseline"), tier="test", queries_dir=queries, iterations=2, rounds=3)
        compare_strategies(tier_dsn, options)
    with pytest.raises(InputError, match="seeded by harness"):
        options = CompareOptions(("none", "baseline"), tier="test", queries_dir=queries, seed_if_needed=False)
        compare_strategies(fresh_dsn, options)


def test_what_if_says_hypopg_is_missing_on_the_embedded_server(tier_dsn: str, tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path / "q", {"one": "SELECT count(*) FROM behavior_logs"}))
    with pytest.raises(InputError) as missing:
        what_if(tier_dsn, ["CREATE INDEX ON behavior_logs (event_type)"], catalog.queries)
    message = str(missing.value)
    assert "HypoPG" in message and "embedded" in message and "postgresql-15-hypopg" in message
    assert missing.value.exit_code == 2
    with psycopg.connect(tier_dsn) as conn:  # nothing was left behind
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone()[0] == 0
