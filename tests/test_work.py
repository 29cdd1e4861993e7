"""Work metrics on a real server: deterministic for fixed data and draws, and what the CLI gates on."""

from __future__ import annotations

from pathlib import Path

import psycopg
from conftest import run_harness

from harness.capabilities import capabilities
from harness.catalog import load_catalog
from harness.measure import MeasureOptions, measure_query
from harness.work import WorkProbe, explain_work

OPTIONS = MeasureOptions(iterations=20, warmup=3)


def make_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id bigint PRIMARY KEY, k integer NOT NULL, pad text NOT NULL)")
        conn.execute("INSERT INTO events SELECT i, i % 500, repeat('x', 60) FROM generate_series(1, 30000) i")
        conn.execute("CREATE INDEX events_k_idx ON events (k)")
        conn.execute("ANALYZE events")


def by_k(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "by_k.sql").write_text(
        '/* harness\ndescription = "events of one k"\nbudget_ms = 100\n'
        '[params]\nk = { draw = "int", min = 0, max = 499 }\n*/\n'
        "SELECT id, pad FROM events WHERE k = %(k)s\n"
    )
    return load_catalog(tmp_path).queries[0]


def test_the_same_data_and_draws_give_identical_work(fresh_dsn: str, tmp_path: Path) -> None:
    make_table(fresh_dsn)
    query = by_k(tmp_path)
    draws = [{"k": (i * 37) % 500} for i in range(OPTIONS.warmup + OPTIONS.iterations)]
    assert capabilities(fresh_dsn).pg_stat_statements  # the embedded cluster's databases have it from creation
    first = measure_query(fresh_dsn, query, draws, OPTIONS, 100.0)
    second = measure_query(fresh_dsn, query, draws, OPTIONS, 100.0)
    assert first.work is not None and first.work.source == "pg_stat_statements"
    assert first.work.calls == OPTIONS.iterations
    assert first.work.rows == 60 * OPTIONS.iterations  # 30,000 rows over 500 values of k
    # buffers, temp blocks and rows are exactly equal (tolerance: none); only the times differ
    for counter in ("calls", "shared_blks_hit", "shared_blks_read", "temp_blks_read", "temp_blks_written", "rows"):
        assert getattr(first.work, counter) == getattr(second.work, counter), counter
    assert first.draw_plans == second.draw_plans and len(first.draw_plans) == OPTIONS.iterations
    assert first.draws_digest == second.draws_digest != ""
    assert set(first.plan_shapes) == set(first.draw_plans)


def test_without_pg_stat_statements_work_comes_from_explain(fresh_dsn: str, tmp_path: Path) -> None:
    make_table(fresh_dsn)
    query = by_k(tmp_path)
    draws = [{"k": 7}, {"k": 7}, {"k": 9}]
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        work, plans = explain_work(conn, query.sql, draws)
        probe = WorkProbe(fresh_dsn + " dbname=postgres_does_not_exist")  # an admin that cannot connect
        probe.start(conn, query.sql, draws[0])
        assert probe.finish() is None  # measure_query then falls back to explain_work
    assert work.source == "explain" and work.calls == 3 and work.rows == 180
    assert work.shared_blks > 0 and plans[0] is plans[1] and len(plans) == 3


def test_back_to_back_runs_pass_and_a_planted_regression_fails_with_work_evidence(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    runs = []
    for run_id in ("a", "b"):
        done = run_harness("run", "--tier", "test", "--run-id", run_id, "--reports-dir", str(reports))
        assert done.returncode == 0, done.stdout + done.stderr
        runs.append(str(reports / run_id / "run.json"))
    same = run_harness("compare", *runs, "--reports-dir", str(tmp_path / "cmp"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.startswith("PASS: ")

    # the same catalog with one query made non-sargable: its index can no longer serve it
    planted = tmp_path / "queries"
    planted.mkdir()
    source = Path(__file__).resolve().parents[1] / "queries"
    for file in source.glob("*.sql"):
        text = file.read_text()
        if file.stem == "student_behavior":
            text = text.replace("WHERE b.user_id = %(user_id)s", "WHERE b.user_id + 0 = %(user_id)s")
        (planted / file.name).write_text(text)
    assert "user_id + 0" in (planted / "student_behavior.sql").read_text()
    cand = run_harness("run", "--tier", "test", "--run-id", "c", "--reports-dir", str(reports),
                       "--queries", str(planted))  # fmt: skip
    assert cand.returncode in (0, 1), cand.stdout + cand.stderr
    slower = run_harness("compare", runs[0], str(reports / "c" / "run.json"), "--reports-dir", str(tmp_path / "c2"))
    assert slower.returncode == 1, slower.stdout + slower.stderr
    assert "REGRESSION: student_behavior: work regressed: shared buffers per call " in slower.stdout
