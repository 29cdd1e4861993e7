"""Read-only that holds against the query itself (issue 16): the transaction layer and the data witness.

The attack of the issue switches its own connection's ``default_transaction_read_only`` off, then creates a
large object once its transaction runs read-write. It is written past the parser (``[lint.allow] unparsed``,
with an operator sqlglot cannot read) so that only the runtime layers stand in its way: each execution runs in
a transaction that is READ ONLY from its start and rolled back, so the flip never takes effect. After each
command the large objects, sequences, roles, settings file and data are what they were.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import wait_for
from test_safety import (
    ALLOW,
    COMMANDS,
    Cluster,
    catalog,
    cluster,
    harness,
    launch,
    measuring_lock_held,
    run_plugin,
    state,
)

from harness.catalog import load_query
from harness.measure import MeasureOptions, measure_query
from harness.querylayer import QueryLayer
from harness.server import READER

__all__ = ["cluster"]  # the module-scoped embedded cluster of test_safety, a fresh one for this module

# sqlglot cannot parse `~<~` (text_pattern_lt): with [lint.allow] unparsed the server alone judges the query.
FLIP = """SELECT set_config('default_transaction_read_only', 'off', false) AS a,
       CASE WHEN current_setting('transaction_read_only')::bool THEN NULL
            ELSE lo_from_bytea(0, '\\x4142'::bytea) END AS b,
       'a' ~<~ 'b' AS c"""
SWITCH = "SELECT set_config('transaction_read_only', 'off', true), 'a' ~<~ 'b' AS c"
ALL_MODES = {
    **COMMANDS,
    "compare A/B": ("compare", "--tier", "test", "--iterations", "2", "--rounds", "2"),
}


def cluster_state(dsn: str) -> dict[str, object]:
    """``state`` plus what any role could change: large objects, sequences, roles, the auto.conf settings."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        extra = conn.execute(
            "SELECT (SELECT count(*) FROM pg_largeobject_metadata),"
            " (SELECT string_agg(sequencename || '=' || coalesce(last_value::text, '-'), ',' ORDER BY 1)"
            "  FROM pg_sequences),"
            " (SELECT md5(string_agg(r::text, ',' ORDER BY r.rolname)) FROM pg_roles r),"
            " pg_read_file('postgresql.auto.conf')"
        ).fetchone()
    return {**state(dsn), "large_objects": extra[0], "sequences": extra[1], "roles": extra[2], "auto_conf": extra[3]}


@pytest.fixture
def untouched(cluster: Cluster) -> Iterator[None]:
    before = cluster_state(cluster.dsn)
    assert before["intact"]
    yield
    assert cluster_state(cluster.dsn) == before


@pytest.fixture(scope="module")
def sequence(cluster: Cluster) -> str:
    """A sequence of the owner's, so the state compares a real last_value."""
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS witness_seq")
        conn.execute("SELECT nextval('witness_seq')")
    return "witness_seq"


@pytest.mark.parametrize("command", list(ALL_MODES))
def test_the_read_only_flip_creates_nothing_under_any_measuring_command(
    cluster: Cluster, sequence: str, untouched: None, tmp_path: Path, command: str
) -> None:
    queries = catalog(tmp_path / "q", FLIP, ALLOW)
    args: tuple[str, ...] = ALL_MODES[command]
    if command == "compare A/B":
        args += ("--base-queries", str(catalog(tmp_path / "base", FLIP, ALLOW)))
    done = harness(cluster, *args, "--queries", str(queries), "--reports-dir", str(tmp_path / "r"))
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_the_read_only_flip_creates_nothing_under_the_pytest_plugin(
    cluster: Cluster, sequence: str, untouched: None, tmp_path: Path
) -> None:
    queries = catalog(tmp_path / "q", FLIP, ALLOW)
    done = run_plugin(cluster, tmp_path, queries)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_read_only_flip_creates_nothing_over_a_dsn_as_a_login_role_that_can_only_read(
    cluster: Cluster, sequence: str, tmp_path: Path
) -> None:
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE analyst LOGIN IN ROLE pg_read_all_data")
        conn.execute(f"GRANT UPDATE ON SEQUENCE {sequence} TO analyst")  # only the read-only transaction stops setval
    before = cluster_state(cluster.dsn)
    dsn = cluster.dsn.replace("user=harness", "user=analyst")
    queries = catalog(tmp_path / "q", FLIP, ALLOW)
    args = ("--queries", str(queries), "--dsn", dsn, "--no-seed", "--reports-dir", str(tmp_path / "r"))
    for command in ("run", "load"):
        done = harness(cluster, *COMMANDS[command], *args)
        assert done.returncode == 0, done.stdout + done.stderr
    setval = catalog(tmp_path / "setval", f"SELECT setval('{sequence}', 999), 'a' ~<~ 'b' AS c", ALLOW)
    args = ("--queries", str(setval), "--dsn", cluster.dsn, "--read-role", "analyst", "--no-seed")
    done = harness(cluster, *COMMANDS["run"], *args, "--reports-dir", str(tmp_path / "r2"))
    assert done.returncode == 1 and "cannot execute setval() in a read-only transaction" in done.stdout, done.stdout
    assert cluster_state(cluster.dsn) == before


def test_a_query_cannot_switch_its_own_transaction_to_read_write(cluster: Cluster, tmp_path: Path) -> None:
    query = load_query(catalog(tmp_path / "q", SWITCH, ALLOW) / "q.sql")
    reader = cluster.dsn.replace("user=harness", f"user={READER}")
    measured = measure_query(reader, query, [{}] * 3, MeasureOptions(iterations=2, warmup=1), budget_ms=1000)
    assert measured.error is not None and "read-write mode must be set before any query" in measured.error


def test_the_query_layer_rolls_back_what_a_query_set(cluster: Cluster, tmp_path: Path) -> None:
    sql = "SELECT set_config('application_name', 'changed by the query', false), 'a' ~<~ 'b' AS c"
    layer = QueryLayer(cluster.dsn.replace("user=harness", f"user={READER}"), catalog(tmp_path / "q", sql, ALLOW))
    with layer.connect() as conn:
        assert layer.execute(conn, "q", {})[0][0] == "changed by the query"
        assert conn.execute("SELECT current_setting('application_name')").fetchone()[0] != "changed by the query"
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"


def test_a_write_committed_by_a_session_that_stays_open_makes_the_run_invalid(cluster: Cluster, tmp_path: Path) -> None:
    """The writer commits, then stays busy: its table counters are not published before the run ends, but the
    commit is in the commit log, which the witness reads."""
    queries = catalog(tmp_path / "q", "SELECT pg_sleep(0.05), count(*) FROM users")
    args = ("run", "--tier", "test", "--iterations", "40", "--queries", str(queries), "--run-id", "x")
    runner = launch(cluster, tmp_path / "run", *args, "--reports-dir", str(tmp_path / "r"))
    writer: subprocess.Popen[str] | None = None
    try:
        stderr_file = tmp_path / "run" / "stderr"
        wait_for(lambda: stderr_file.exists() and "measuring q" in stderr_file.read_text(), timeout=60, interval=0.05)
        assert measuring_lock_held(cluster)
        delete = "DELETE FROM points_ledger WHERE ctid = (SELECT min(ctid) FROM points_ledger)"
        writer = subprocess.Popen(["psql", cluster.dsn, "-qc", delete, "-c", "SELECT pg_sleep(30)"], text=True)
        code = runner.wait(timeout=120)
        assert writer.poll() is None  # still open when the run ended
    finally:
        for proc in (runner, writer):
            if proc is not None and proc.poll() is None:
                proc.kill()
        assert harness(cluster, "seed", "--tier", "test").returncode == 0  # the next tests need intact data
    stderr = stderr_file.read_text()
    assert code == 3, stderr
    assert "the data changed while measuring (1 transaction committed in the cluster)" in stderr, stderr
    report = json.loads((tmp_path / "r" / "x" / "run.json").read_text())
    assert report["complete"] is False and report["incomplete_reason"].startswith("invalid:")


def test_over_a_dsn_the_witness_is_advisory(cluster: Cluster, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "q", "SELECT pg_sleep(0.05), count(*) FROM users")
    args = ("run", "--no-seed", "--dsn", cluster.dsn, "--iterations", "40", "--queries", str(queries))
    runner = launch(cluster, tmp_path / "run", *args, "--run-id", "x", "--reports-dir", str(tmp_path / "r"))
    try:
        stderr_file = tmp_path / "run" / "stderr"
        wait_for(lambda: stderr_file.exists() and "measuring q" in stderr_file.read_text(), timeout=60, interval=0.05)
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS someone_elses (id int)")
            conn.execute("INSERT INTO someone_elses VALUES (1)")
        code = runner.wait(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS someone_elses")
    stderr = (tmp_path / "run" / "stderr").read_text()
    assert code == 0, stderr
    assert "the data witness saw writes while measuring (advisory over --dsn)" in stderr, stderr
    report = json.loads((tmp_path / "r" / "x" / "run.json").read_text())
    assert report["complete"] is True
    assert any("advisory over --dsn" in w for w in report["warnings"])
