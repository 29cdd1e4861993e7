"""Seeding on a real server: determinism, tier bounds, realistic shapes, refusal of foreign data, recovery."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import psycopg
import pytest
from conftest import REPO, TEST_HOME, run_harness

from harness.config import Tier, load_tier
from harness.errors import DatabaseError, UnsafeOperation
from harness.seed import TABLES, read_manifest, seed, verify
from harness.seed.binary_copy import Fixed, Text
from harness.seed.generate import TableData, generate
from harness.server import EmbeddedServer

# -- helpers -------------------------------------------------------------------------------------------


def scalar(dsn: str, sql: str, params: list | None = None) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def row_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def tables_in(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def manifest_of(dsn: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(dsn) as conn:
        return read_manifest(conn)


@pytest.fixture(scope="module")
def demo_dsn(admin_dsn: str, pg_server: EmbeddedServer) -> Iterator[str]:
    """The demo tier (seed 42) in its own database, shared by this module's read-only checks."""
    name = f"demo_{os.getpid()}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    port = pg_server.status().port
    assert port is not None
    dsn = pg_server.dsn(port, name)
    seed(dsn, "demo", seed=42)
    yield dsn
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def benchmark_tables() -> dict[str, TableData]:
    """The benchmark tier's rows, generated (about a second) but not loaded."""
    return {table.name: table for table in generate(load_tier("benchmark"), 42)}


def column(table: TableData, name: str) -> np.ndarray:
    values = dict(zip(table.columns, table.values, strict=True))[name]
    if isinstance(values, Text):
        return values.codes
    assert isinstance(values, Fixed)
    return values.values


# -- determinism and verification -------------------------------------------------------------------------


def test_same_tier_and_seed_give_the_same_checksum_in_another_process(
    new_database: Callable[[], str],
) -> None:
    first, second, third = new_database(), new_database(), new_database()
    ours = seed(first, "test", seed=42)
    # Another interpreter, another hash seed and another client time zone: the same rows all the same.
    done = run_harness(
        "seed",
        "--tier",
        "test",
        "--seed",
        "42",
        "--dsn",
        second,
        env={"PYTHONHASHSEED": "12345", "PGTZ": "Asia/Kolkata", "PGDATESTYLE": "SQL, DMY"},
    )
    assert done.returncode == 0, done.stderr
    theirs = manifest_of(second)
    assert theirs is not None
    assert theirs.checksum == ours.checksum
    assert theirs.row_counts == ours.row_counts
    other = seed(third, "test", seed=43)
    assert other.checksum != ours.checksum
    # Re-seeding a database with the first seed gives back exactly the first data.
    assert seed(third, "test", seed=42).checksum == ours.checksum


def test_verify_detects_a_modified_row(fresh_dsn: str) -> None:
    manifest = seed(fresh_dsn, "dev", seed=7)
    result = verify(fresh_dsn)
    assert result.intact and result.actual == manifest.checksum, result.problems
    done = run_harness("seed", "--verify", "--dsn", fresh_dsn, env={"PGTZ": "America/Los_Angeles"})
    assert done.returncode == 0 and "intact" in done.stdout and "NOT" not in done.stdout

    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("UPDATE behavior_logs SET duration_ms = duration_ms + 1 WHERE id = 17")
    result = verify(fresh_dsn)
    assert not result.intact
    assert result.actual != manifest.checksum
    assert any("checksum" in p for p in result.problems)
    done = run_harness("seed", "--verify", "--dsn", fresh_dsn)
    assert done.returncode == 1 and "NOT intact" in done.stdout

    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM points_ledger WHERE id = 1")
    assert any(p.startswith("points_ledger:") for p in verify(fresh_dsn).problems)


def test_verify_of_an_unseeded_database_is_not_intact(fresh_dsn: str) -> None:
    result = verify(fresh_dsn)
    assert not result.intact
    assert "no harness manifest" in result.problems[0]


# -- sizes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier_name", ["test", "dev", "demo"])
def test_row_counts_within_the_tiers_bounds(tier_name: str, new_database: Callable[[], str], demo_dsn: str) -> None:
    tier = load_tier(tier_name)
    assert {"users", "courses", "behavior_logs", "enrollments", "user_progress"} <= set(tier.bounds)
    dsn = demo_dsn if tier_name == "demo" else new_database()
    manifest = manifest_of(dsn) if tier_name == "demo" else seed(dsn, tier_name, seed=42)
    assert manifest is not None
    counts = row_counts(dsn)
    assert counts == manifest.row_counts
    assert tier.out_of_bounds(counts) == []
    assert counts["users"] == tier.users and counts["courses"] == tier.courses


def test_benchmark_tier_shape_without_loading(benchmark_tables: dict[str, TableData]) -> None:
    tier = load_tier("benchmark")
    counts = {name: table.rows for name, table in benchmark_tables.items()}
    assert sorted(counts) == sorted(TABLES)
    assert counts["users"] >= 10_000 and counts["behavior_logs"] >= 1_000_000
    assert sum(counts.values()) >= 1_300_000
    assert tier.out_of_bounds(counts) == []
    for table in benchmark_tables.values():
        for values in table.values:
            n = len(values.values) if isinstance(values, Fixed) else len(values.codes)
            assert n == table.rows, table.name


# -- realistic shapes -------------------------------------------------------------------------------------


def test_top_one_percent_of_users_produce_an_outsized_share(
    demo_dsn: str, benchmark_tables: dict[str, TableData]
) -> None:
    with psycopg.connect(demo_dsn) as conn:
        per_user = [
            r[0]
            for r in conn.execute(
                "SELECT count(b.id) FROM users u LEFT JOIN behavior_logs b ON b.user_id = u.id "
                "GROUP BY u.id ORDER BY 1 DESC"
            )
        ]
    top = math.ceil(len(per_user) / 100)
    assert sum(per_user[:top]) / sum(per_user) > 5 * 0.01

    users = column(benchmark_tables["behavior_logs"], "user_id")
    counts = np.sort(np.bincount(users, minlength=benchmark_tables["users"].rows + 1)[1:])[::-1]
    assert counts[: len(counts) // 100].sum() / counts.sum() > 5 * 0.01


def test_weekly_retention_falls(demo_dsn: str) -> None:
    """Of users who signed up at least 6 weeks before the anchor, fewer are active in each following week."""
    with psycopg.connect(demo_dsn) as conn:
        shares = [
            r[1]
            for r in conn.execute(
                """
            WITH cohort AS (
                SELECT id, signup_at FROM users WHERE signup_at < %(anchor)s - interval '6 weeks'
            ), active AS (
                SELECT DISTINCT c.id,
                       floor(extract(epoch FROM b.occurred_at - c.signup_at) / 604800)::int AS week
                FROM cohort c JOIN behavior_logs b ON b.user_id = c.id
            )
            SELECT w, (SELECT count(*) FROM active WHERE week = w)::float8 / (SELECT count(*) FROM cohort)
            FROM generate_series(0, 5) AS w ORDER BY w
            """,
                {"anchor": load_tier("demo").anchor},
            )
        ]
    assert all(later <= earlier for earlier, later in itertools.pairwise(shares)), shares
    assert shares[5] < 0.7 * shares[0], shares


def test_signups_arrive_in_cohorts_over_the_history(demo_dsn: str) -> None:
    tier = load_tier("demo")
    with psycopg.connect(demo_dsn) as conn:
        weeks, early, late = conn.execute(
            "SELECT count(DISTINCT date_trunc('week', signup_at)), "
            "count(*) FILTER (WHERE signup_at < %(mid)s), "
            "count(*) FILTER (WHERE signup_at >= %(mid)s) FROM users",
            {"mid": tier.anchor - dt.timedelta(days=tier.history_days / 2)},
        ).fetchone()  # type: ignore[misc]
    assert weeks >= tier.history_days // 7 - 1
    assert late > early  # the platform grows


def test_hour_and_weekday_rhythm(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        hours = dict(
            conn.execute(
                "SELECT extract(hour FROM occurred_at)::int, count(*) FROM behavior_logs GROUP BY 1"
            ).fetchall()
        )
        days = dict(
            conn.execute(
                "SELECT extract(isodow FROM occurred_at)::int, count(*) FROM behavior_logs GROUP BY 1"
            ).fetchall()
        )
    night = np.mean([hours.get(h, 0) for h in (1, 2, 3, 4)])
    evening = np.mean([hours[h] for h in (18, 19, 20, 21)])
    assert night * 3 < evening, hours
    weekday = np.mean([days[d] for d in (1, 2, 3, 4, 5)])
    weekend = np.mean([days.get(d, 0) for d in (6, 7)])
    assert weekend < 0.9 * weekday, days


def test_no_weekday_is_a_spike(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        days = [
            r[0]
            for r in conn.execute(
                "SELECT count(*) FROM behavior_logs WHERE extract(isodow FROM occurred_at) <= 5 GROUP BY "
                "extract(isodow FROM occurred_at)"
            )
        ]
    assert max(days) < 1.3 * min(days), days


def test_sessions_hold_several_events(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        per_session, login_share = conn.execute(
            "SELECT count(*)::float8 / count(DISTINCT session_id), avg((event_type = 'login')::int) FROM behavior_logs"
        ).fetchone()  # type: ignore[misc]
    assert per_session >= 2.5 and login_share < 0.4


def test_course_funnels_narrow(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        funnels = conn.execute(
            """
            WITH size AS (SELECT course_id, count(*) AS lessons FROM lessons GROUP BY course_id),
            per_user AS (
                SELECT course_id, user_id, count(*) FILTER (WHERE status = 'completed') AS done
                FROM user_progress GROUP BY course_id, user_id
            )
            SELECT c.id,
                   (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id),
                   (SELECT count(*) FROM per_user p WHERE p.course_id = c.id),
                   (SELECT count(*) FROM per_user p WHERE p.course_id = c.id AND 2 * p.done >= s.lessons),
                   (SELECT count(*) FROM per_user p WHERE p.course_id = c.id AND p.done = s.lessons)
            FROM courses c JOIN size s ON s.course_id = c.id
            """
        ).fetchall()
        orphans = conn.execute(
            "SELECT count(*) FROM user_progress p "
            "WHERE NOT EXISTS (SELECT 1 FROM enrollments e "
            "WHERE (e.user_id, e.course_id) = (p.user_id, p.course_id))"
        ).fetchone()
    assert orphans == (0,)
    for course, enrolled, started, halfway, completed in funnels:
        assert enrolled >= started >= halfway >= completed, course
    totals = np.array([f[1:] for f in funnels]).sum(axis=0)
    assert totals[0] > totals[1] > totals[2] > totals[3] > 0, totals


def test_every_timestamp_lies_before_the_anchor(demo_dsn: str, benchmark_tables: dict[str, TableData]) -> None:
    tier = load_tier("demo")
    with psycopg.connect(demo_dsn) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' "
            "AND table_name = ANY(%s)",
            [TABLES],
        ).fetchall()
        assert len(columns) >= 9
        for table, name in columns:
            latest = conn.execute(f"SELECT max({name}) FROM {table}").fetchone()[0]  # type: ignore[index]
            assert latest < tier.anchor, f"{table}.{name} = {latest}"
        first_event = conn.execute("SELECT min(occurred_at) FROM behavior_logs").fetchone()[0]  # type: ignore[index]
        assert first_event >= tier.anchor - dt.timedelta(days=tier.history_days)
        # Coherence: nobody acts before signing up; nothing completes before it starts.
        assert conn.execute(
            "SELECT count(*) FROM behavior_logs b JOIN users u ON u.id = b.user_id WHERE b.occurred_at < u.signup_at"
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM user_progress WHERE completed_at < started_at").fetchone() == (0,)

    anchor = np.datetime64(load_tier("benchmark").anchor.replace(tzinfo=None), "us")
    for table in benchmark_tables.values():
        for values in table.values:
            if isinstance(values, Fixed) and values.pgtype == "timestamptz":
                present = values.values if values.nulls is None else values.values[~values.nulls]
                assert present.max() < anchor, table.name


# -- safety -------------------------------------------------------------------------------------------------


def test_refuses_a_database_with_foreign_tables(fresh_dsn: str) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE foo (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO foo VALUES (1, 'keep me')")
    with pytest.raises(UnsafeOperation, match=r"\bfoo\b"):
        seed(fresh_dsn, "test")
    assert tables_in(fresh_dsn) == {"foo"}  # nothing written

    manifest = seed(fresh_dsn, "test", force=True)
    assert tables_in(fresh_dsn) == {"foo", "harness_manifest", *TABLES}
    assert scalar(fresh_dsn, "SELECT note FROM foo WHERE id = 1") == "keep me"
    assert verify(fresh_dsn).intact and manifest.tier == "test"


def test_refuses_tables_added_after_seeding_and_names_clashes(new_database: Callable[[], str]) -> None:
    seeded = new_database()
    seed(seeded, "test")
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("CREATE TABLE my_notes (id int)")
    with pytest.raises(UnsafeOperation, match="my_notes"):
        seed(seeded, "test", seed=2)
    assert manifest_of(seeded).seed == 42  # type: ignore[union-attr]

    clash = new_database()
    with psycopg.connect(clash, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, precious text)")
    with pytest.raises(UnsafeOperation, match="would replace: users"):
        seed(clash, "test")
    assert scalar(clash, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'precious'") == 1


def test_a_users_view_on_seeded_data_is_never_dropped(fresh_dsn: str) -> None:
    before = seed(fresh_dsn, "test")
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE VIEW active_users AS SELECT * FROM users WHERE is_active")
    with pytest.raises(UnsafeOperation, match="active_users"):
        seed(fresh_dsn, "test", seed=2)
    with pytest.raises(UnsafeOperation, match="view active_users depends on table users"):
        seed(fresh_dsn, "test", seed=2, force=True)
    assert manifest_of(fresh_dsn).checksum == before.checksum  # type: ignore[union-attr]
    assert verify(fresh_dsn).intact
    assert scalar(fresh_dsn, "SELECT count(*) FROM pg_views WHERE viewname = 'active_users'") == 1


# -- interrupted seeds --------------------------------------------------------------------------------------


def wait_for_copy(dsn: str, timeout: float = 60) -> int:
    """The backend pid of a running seed once it is streaming COPY data (i.e. mid-way through a seed)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE 'COPY % FROM STDIN%'"
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.01)
    raise AssertionError("the seed never reached COPY")


def wait_until_gone(dsn: str, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while scalar(dsn, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]):
        assert time.monotonic() < deadline, f"backend {pid} still there"
        time.sleep(0.05)


def assert_previous_seed_intact(dsn: str, tier: str, seed_value: int, checksum: str) -> None:
    manifest = manifest_of(dsn)
    assert manifest is not None
    assert (manifest.tier, manifest.seed, manifest.checksum) == (tier, seed_value, checksum)
    result = verify(dsn)
    assert result.intact, result.problems
    assert tables_in(dsn) == {"harness_manifest", *TABLES}


def test_killed_seed_leaves_the_previous_data(fresh_dsn: str) -> None:
    before = seed(fresh_dsn, "dev", seed=1)
    child = subprocess.Popen(
        [sys.executable, "-m", "harness", "seed", "--tier", "benchmark", "--seed", "2", "--dsn", fresh_dsn],
        cwd=REPO,
        env={**os.environ, "HARNESS_HOME": str(TEST_HOME)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        backend = wait_for_copy(fresh_dsn)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    wait_until_gone(fresh_dsn, backend)
    assert_previous_seed_intact(fresh_dsn, "dev", 1, before.checksum)
    after = seed(fresh_dsn, "test", seed=3)
    assert_previous_seed_intact(fresh_dsn, "test", 3, after.checksum)


def test_seed_whose_connection_dies_keeps_the_previous_data(fresh_dsn: str) -> None:
    before = seed(fresh_dsn, "dev", seed=1)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            seed(fresh_dsn, "benchmark", seed=2)
        except BaseException as exc:  # handed to the test thread
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    backend = wait_for_copy(fresh_dsn)
    assert scalar(fresh_dsn, "SELECT pg_terminate_backend(%s)", [backend]) is True
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], DatabaseError), failure
    assert "previous data kept" in str(failure[0])
    assert_previous_seed_intact(fresh_dsn, "dev", 1, before.checksum)
    assert seed(fresh_dsn, "dev", seed=1).checksum == before.checksum


def test_tier_object_and_name_seed_alike(new_database: Callable[[], str]) -> None:
    tier: Tier = load_tier("test")
    assert seed(new_database(), tier).checksum == seed(new_database(), "test").checksum


def test_verbose_seed_prints_where_the_time_went(fresh_dsn: str) -> None:
    done = run_harness("seed", "--tier", "test", "--verbose", "--dsn", fresh_dsn)
    assert done.returncode == 0, done.stdout + done.stderr
    phases = {line.rsplit(None, 2)[0].strip(): float(line.split()[-2]) for line in done.stderr.splitlines()
              if line.endswith(" s") and not line.startswith(("━", " ━"))}  # fmt: skip
    inside = ("connect, lock, drop, schema, checksum", "generate and copy", "keys and constraints", "indexes",
              "analyze", "manifest and commit")  # fmt: skip
    assert set(inside) | {"database ready (server start if needed)", "seed"} <= set(phases), done.stderr
    assert sum(phases[name] for name in inside) == pytest.approx(phases["seed"], abs=0.005)
