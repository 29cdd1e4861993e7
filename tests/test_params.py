"""Parameter draws on a real database, and the reference queries' results on the seeded dev tier."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from harness.catalog import load_catalog, load_query
from harness.config import load_tier
from harness.errors import InputError
from harness.params import ParamSampler
from harness.seed import seed

REPO = Path(__file__).resolve().parent.parent
ANCHOR = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture
def conn(fresh_dsn: str):
    with psycopg.connect(fresh_dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE activity (user_id int, events int, seen_at timestamptz)")
        connection.execute(
            "INSERT INTO activity VALUES (1, 1, '2026-01-01'), (2, 1, '2026-01-01'), (3, 98, '2026-06-29')"
        )
        connection.execute("CREATE SEQUENCE s")
        yield connection


def query_with(tmp_path: Path, params: str, name: str = "q"):
    path = tmp_path / f"{name}.sql"
    path.write_text(f"/* harness\n[params]\n{params}\n*/\nSELECT 1\n")
    return load_query(path)


def test_anchor_draws_are_timezone_aware_offsets(conn, tmp_path: Path):
    query = query_with(tmp_path, 'start = { draw = "anchor", offset_days = -30 }\nend = { draw = "anchor" }')
    values = ParamSampler(conn, datetime(2026, 7, 1), seed=1).draw(query, 0)  # a naive anchor is UTC
    assert values == {"start": ANCHOR - timedelta(days=30), "end": ANCHOR}
    assert values["start"].tzinfo is not None


def test_draws_are_deterministic_per_seed_and_index(conn, tmp_path: Path):
    query = query_with(
        tmp_path,
        'u = { draw = "sql", sql = "SELECT user_id FROM activity" }\n'
        'k = { draw = "int", min = 1, max = 1000 }\n'
        'c = { draw = "choice", values = ["a", "b", "c"] }',
    )
    first = ParamSampler(conn, ANCHOR, seed=7).draw_sets(query, 20)
    again = ParamSampler(conn, ANCHOR, seed=7)
    assert [again.draw(query, i) for i in reversed(range(20))] == first[::-1]  # order of asking is irrelevant
    assert ParamSampler(conn, ANCHOR, seed=8).draw_sets(query, 20) != first
    assert all(1 <= s["k"] <= 1000 and s["c"] in "abc" and s["u"] in (1, 2, 3) for s in first)
    assert type(first[0]["k"]) is int


def test_weighted_sql_draw_follows_the_weights_and_is_cached(conn, tmp_path: Path):
    query = query_with(tmp_path, 'u = { draw = "sql", weighted = true, sql = "SELECT user_id, events FROM activity" }')
    sampler = ParamSampler(conn, ANCHOR, seed=3)
    counts = Counter(s["u"] for s in sampler.draw_sets(query, 300))
    assert counts[3] > 270  # weight 98 of 100
    conn.execute("DELETE FROM activity")
    assert sampler.draw(query, 0)["u"] in (1, 2, 3)  # queried once, then cached


def test_sql_draw_can_use_the_anchor(conn, tmp_path: Path):
    query = query_with(
        tmp_path,
        'u = { draw = "sql", sql = "SELECT user_id FROM activity WHERE seen_at >= %(anchor)s - interval \'7 days\'" }',
    )
    assert {s["u"] for s in ParamSampler(conn, ANCHOR, seed=1).draw_sets(query, 10)} == {3}


def test_sql_draw_errors_are_input_errors(conn, tmp_path: Path):
    empty = query_with(tmp_path, 'u = { draw = "sql", sql = "SELECT user_id FROM activity WHERE false" }')
    with pytest.raises(InputError, match=r"q.sql:3: parameter 'u': the draw query returned no rows"):
        ParamSampler(conn, ANCHOR, seed=1).draw(empty, 0)
    writes = query_with(tmp_path, 'u = { draw = "sql", sql = "SELECT nextval(\'s\')" }', name="w")
    with pytest.raises(InputError, match=r"w.sql:3: parameter 'u': .*nextval\(\) in a read-only transaction"):
        ParamSampler(conn, ANCHOR, seed=1).draw(writes, 0)


@pytest.fixture
def dev(fresh_dsn: str):
    seed(fresh_dsn, "dev", seed=42)
    catalog = load_catalog(REPO / "queries")
    with psycopg.connect(fresh_dsn, autocommit=True) as connection:
        sampler = ParamSampler(connection, load_tier("dev").anchor, seed=42)

        def run(name: str, index: int = 0) -> list[tuple]:
            query = catalog.get(name)
            with connection.cursor(row_factory=psycopg.rows.namedtuple_row) as cursor:
                return cursor.execute(query.sql, sampler.draw(query, index)).fetchall()

        yield run, catalog, connection


def test_every_reference_query_returns_rows_on_dev(dev):
    run, catalog, _ = dev
    for query in catalog.queries:
        for index in range(3):
            assert run(query.name, index), f"{query.name} draw {index} returned no rows"


def test_reference_query_invariants_on_dev(dev):
    run, _, conn = dev
    users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    dau = run("daily_active_users")
    assert all(0 < row.active_users <= min(users, row.events) for row in dau)
    assert [row.day for row in dau] == sorted({row.day for row in dau})

    retention = run("cohort_retention")
    assert all(row.retention_pct == 100 for row in retention if row.week_offset == 0)
    assert all(0 < row.active_users <= row.cohort_users for row in retention)
    assert {row.cohort_week for row in retention} == {r.cohort_week for r in retention if r.week_offset == 0}

    for index in range(3):
        funnel = run("course_funnel", index)
        assert [row.stage for row in funnel] == ["enrolled", "started", "halfway", "completed"]
        counts = [row.users for row in funnel]
        assert counts[0] > 0 and counts == sorted(counts, reverse=True)

    leaderboard = run("points_leaderboard")
    ranks = [row.rank for row in leaderboard]
    assert ranks == sorted(ranks) and ranks[0] == 1 and max(ranks) <= 10
    points = [row.points for row in leaderboard]
    assert points == sorted(points, reverse=True)

    sections = Counter(row.section for row in run("student_behavior"))
    assert set(sections) == {"weekday_hour", "event_type", "session"} and sections["session"] <= 5

    levels = run("completion_by_level")
    assert all(0 <= row.completions <= row.enrollments for row in levels)
    dropoff = run("lesson_dropoff")
    assert [row.position for row in dropoff] == sorted(row.position for row in dropoff)
    assert all(row.completed <= row.learners for row in dropoff)
    personas = run("engagement_by_persona")
    assert sum(row.users for row in personas) == users
    assert all(row.active_users <= row.users for row in personas)
    first = run("time_to_first_completion")
    assert all(row.completers <= row.signups and (row.median_days or 0) >= 0 for row in first)
