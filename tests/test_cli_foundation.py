"""The foundation commands end to end (a real `harness` process): refusal, index strategies, DSN errors."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from conftest import run_harness

from harness.seed import TABLES, read_manifest, seed, verify
from harness.server import free_port
from harness.strategies import existing_indexes, load_strategy


def secondary_indexes(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return set(existing_indexes(conn, TABLES))


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# -- refusing a foreign database ----------------------------------------------------------------------------


def test_seed_refuses_foreign_tables_with_exit_2_and_force_keeps_them(fresh_dsn: str) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE foo (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO foo VALUES (1, 'keep me')")
    done = run_harness("seed", "--tier", "test", "--dsn", fresh_dsn)
    assert done.returncode == 2
    assert "foo" in one_line_error(done.stderr) and "--force" in done.stderr
    with psycopg.connect(fresh_dsn) as conn:
        assert read_manifest(conn) is None

    done = run_harness("seed", "--tier", "test", "--force", "--dsn", fresh_dsn)
    assert done.returncode == 0, done.stderr
    assert "seeded tier test" in done.stdout
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT note FROM foo").fetchall() == [("keep me",)]
        manifest = read_manifest(conn)
    assert manifest is not None and manifest.tier == "test"
    assert verify(fresh_dsn).intact


# -- index strategies ---------------------------------------------------------------------------------------


def test_baseline_strategy_has_the_shipped_shape() -> None:
    baseline = load_strategy("baseline")
    per_table: dict[str, int] = {}
    for index in baseline.indexes:
        per_table[index.table] = per_table.get(index.table, 0) + 1
    assert len(baseline.indexes) == 23
    assert per_table == {"behavior_logs": 7, "user_progress": 6, "users": 6, "courses": 4}
    assert any(i.table == "behavior_logs" and "(user_id, occurred_at)" in i.sql for i in baseline.indexes)
    assert load_strategy("none").indexes == ()


def test_indexes_apply_switches_strategies_and_spares_user_indexes(fresh_dsn: str) -> None:
    seed(fresh_dsn, "test", strategy="baseline")
    assert secondary_indexes(fresh_dsn) == set(load_strategy("baseline").index_names)
    checksum = verify(fresh_dsn).actual
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE INDEX my_own_idx ON users (display_name)")

    for name in ("tuned", "none", "baseline"):
        done = run_harness("indexes", "apply", name, "--dsn", fresh_dsn)
        assert done.returncode == 0, done.stderr
        expected = set(load_strategy(name).index_names)
        assert secondary_indexes(fresh_dsn) == expected | {"my_own_idx"}, name
        with psycopg.connect(fresh_dsn) as conn:
            manifest = read_manifest(conn)
        assert manifest is not None
        assert manifest.strategy == name and set(manifest.indexes) == expected
    result = verify(fresh_dsn)
    assert result.intact and result.actual == checksum  # indexes never change the data


def test_indexes_apply_refuses_a_database_harness_did_not_seed(fresh_dsn: str) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE foo (id int PRIMARY KEY, v int)")
        conn.execute("CREATE INDEX foo_v_idx ON foo (v)")
    done = run_harness("indexes", "apply", "baseline", "--dsn", fresh_dsn)
    assert done.returncode == 2
    assert "not seeded by harness" in one_line_error(done.stderr)
    # Forced onto a database without the strategy's tables: a bad-input error naming the file, no traceback.
    done = run_harness("indexes", "apply", "baseline", "--force", "--dsn", fresh_dsn)
    assert done.returncode == 2
    assert "baseline.sql:" in one_line_error(done.stderr)
    with psycopg.connect(fresh_dsn) as conn:
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'").fetchall()
    assert sorted(indexes) == [("foo_pkey",), ("foo_v_idx",)]


def test_unknown_strategy_is_bad_input_with_a_suggestion(fresh_dsn: str) -> None:
    done = run_harness("seed", "--tier", "test", "--strategy", "tunned", "--dsn", fresh_dsn)
    assert done.returncode == 2
    assert "did you mean 'tuned'" in one_line_error(done.stderr)


# -- DSNs ---------------------------------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "dsn",
    [
        "this is not a dsn",
        f"postgresql://harness:{SECRET}@127.0.0.1:5432/db?no_such_option=1",
        f"host=127.0.0.1 password={SECRET} port='unterminated",
    ],
)
def test_malformed_dsn_is_bad_input_and_hides_the_password(dsn: str) -> None:
    done = run_harness("seed", "--tier", "test", "--dsn", dsn)
    assert done.returncode == 2, done.stderr
    assert "malformed DSN" in one_line_error(done.stderr)
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://harness:{secret}@127.0.0.1:{port}/harness?connect_timeout=3",
        "host=127.0.0.1 port={port} user=harness password='{secret}' dbname=harness connect_timeout=3",
    ],
)
@pytest.mark.parametrize("command", [("seed", "--tier", "test"), ("seed", "--verify"), ("indexes", "apply", "none")])
def test_unreachable_server_is_exit_3_without_the_password(template: str, command: tuple[str, ...]) -> None:
    dsn = template.format(secret=SECRET, port=free_port())
    done = run_harness(*command, "--dsn", dsn)
    assert done.returncode == 3, done.stderr
    assert "cannot connect" in one_line_error(done.stderr)
    assert SECRET not in done.stdout + done.stderr


def test_dsn_from_the_environment_is_used_and_redacted(new_database: Callable[[], str]) -> None:
    dsn = f"postgresql://harness:{SECRET}@127.0.0.1:{free_port()}/x?connect_timeout=3"
    done = run_harness("seed", "--verify", env={"HARNESS_DSN": dsn})
    assert done.returncode == 3
    assert SECRET not in done.stdout + done.stderr
    target = new_database()
    done = run_harness("seed", "--tier", "test", env={"DATABASE_URL": target})
    assert done.returncode == 0, done.stderr
    assert verify(target).intact
