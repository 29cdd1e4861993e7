"""Fail closed (issue 10): no query file can write, no seed changes data under a run, each layer on its own.

The attacks of the issue are replayed against a private embedded cluster (its own HARNESS_HOME, kept
running for the module), as `harness` commands a user would type, and against the library with one layer
switched off at a time. After each, the data checksum and the planner statistics are what they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import REPO, run_harness, wait_for

from harness.catalog import load_query
from harness.check import refuse_unrunnable
from harness.errors import ConfigError, InputError
from harness.locks import DATA_LOCK_KEY
from harness.measure import MeasureOptions, measure_query
from harness.params import ParamSampler
from harness.safety import is_writing_function
from harness.seed import TABLES, read_manifest, verify
from harness.server import READER, EmbeddedServer

MULTI = "BEGIN READ WRITE; DELETE FROM behavior_logs WHERE id % 7 = 0; COMMIT; SELECT 1 ORDER BY 1 USING <"
MULTI_PARAMS = "BEGIN READ WRITE; DELETE FROM behavior_logs WHERE id %% %(n)s = 0; COMMIT; SELECT 1 ORDER BY 1 USING <"
ALLOW = '[lint.allow]\nunparsed = "test: let the server judge it"\n'


@dataclass(frozen=True)
class Cluster:
    home: Path
    env: dict[str, str]
    dsn: str  # the owner's


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("safety") / ".harness"
    env = {"HARNESS_HOME": str(home)}
    started = run_harness("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    seeded = run_harness("seed", "--tier", "test", env=env)
    assert seeded.returncode == 0, seeded.stderr
    server = EmbeddedServer(home)
    port = server.status().port
    assert port is not None
    yield Cluster(home, env, server.dsn(port))
    server.destroy()


def harness(cluster: Cluster, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_harness(*args, env={**cluster.env, **(extra or {})}, timeout=180)


def state(dsn: str) -> dict[str, object]:
    """What a write would change: the data checksum, planner statistics, replication origins, stats resets."""
    result = verify(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        relations = conn.execute(
            "SELECT relname, reltuples, relpages FROM pg_class WHERE relname = ANY(%s) ORDER BY 1", [TABLES]
        ).fetchall()
        statistics = conn.execute(
            "SELECT md5(string_agg(s::text, '' ORDER BY s.starelid, s.staattnum, s.stainherit)) FROM pg_statistic s "
            "WHERE s.starelid = ANY (SELECT oid FROM pg_class WHERE relname = ANY(%s))",
            [TABLES],
        ).fetchone()
        origins = conn.execute("SELECT count(*) FROM pg_replication_origin").fetchone()
        resets = conn.execute("SELECT stats_reset FROM pg_stat_statements_info").fetchone()
    return {
        "intact": result.intact,
        "checksum": result.actual,
        "relations": relations,
        "statistics": statistics,
        "origins": origins,
        "stats_reset": resets,
    }


@pytest.fixture
def unchanged(cluster: Cluster) -> Iterator[None]:
    """The test's attacks leave the seeded data and its statistics exactly as they were."""
    before = state(cluster.dsn)
    assert before["intact"]
    yield
    assert state(cluster.dsn) == before


def catalog(directory: Path, sql: str, header: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = f"/* harness\nbudget_ms = 1000\n{header}*/\n{sql}\n" if header else sql + "\n"
    (directory / "q.sql").write_text(text)
    return directory


COMMANDS = {
    "run": ("run", "--tier", "test", "--iterations", "20", "--allow-few-samples"),
    "load": ("load", "--tier", "test", "--duration", "2s", "--users", "2"),
    "compare": ("compare", "--strategies", "none,baseline", "--tier", "test", "--iterations", "2", "--rounds", "1"),
}


def draw_file(sql: str) -> tuple[str, str]:
    """A query whose only write is in its sql draw."""
    return "SELECT count(*) FROM users WHERE id = %(u)s", f'[params]\nu = {{ draw = "sql", sql = "{sql}" }}\n'


# -- layer 2: nothing runs that the parser did not understand ------------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("where", ["query", "draw"])
def test_unparsable_multi_statement_is_refused_by_every_measuring_command(
    cluster: Cluster, unchanged: None, tmp_path: Path, command: str, where: str
) -> None:
    sql, header = (MULTI, "") if where == "query" else draw_file(MULTI)
    queries = catalog(tmp_path / "q", sql, header)
    reports = tmp_path / "reports"
    done = harness(cluster, *COMMANDS[command], "--queries", str(queries), "--reports-dir", str(reports))
    assert done.returncode == 2, done.stdout + done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("Error:"))
    assert line.startswith(f"Error: {queries / 'q.sql'}:"), line
    assert "sqlglot cannot parse" in line and 'unparsed = "' in line, line
    assert "Traceback" not in done.stderr
    assert not reports.exists()


def test_a_file_with_no_statement_is_refused(tmp_path: Path) -> None:
    for text in ("-- only a comment", ";;;", "/* harness\n*/\n;"):
        directory = tmp_path / str(abs(hash(text)))
        directory.mkdir()
        (directory / "q.sql").write_text(text + "\n")
        with pytest.raises(ConfigError, match=r"no SQL statement|no SQL after"):
            refuse_unrunnable_dir(directory)


def refuse_unrunnable_dir(directory: Path) -> None:
    from harness.catalog import load_catalog

    refuse_unrunnable(load_catalog(directory))


# Each as PostgreSQL 18 resolves it: U&-escaped, with UESCAPE, quoted, schema-qualified (issue 16).
REFUSED_SPELLINGS = {
    "set_config": (r"""SELECT U&"set\005Fconfig"('work_mem', '1GB', false)""", "", "set_config() changes state"),
    "setval": (r"""SELECT U&"pg_catalog".U&"set!0076al" UESCAPE '!'('users_id_seq', 1)""", "", "setval() changes"),
    "txid_current": (r'SELECT "pg_catalog".u&"txid\005fcurrent"()', "", "txid_current() changes state"),
    "pg_notify": (r"""SELECT pg_catalog.U&"pg\+00005Fnotify"('c', 'x')""", "", "pg_notify() changes state"),
    "pg_advisory_lock_shared": (
        r'SELECT U&"pg_advisory\005Flock_shared"(1751217774)',
        "",
        "pg_advisory_lock_shared() changes state",
    ),
    "the issue's attack": (
        r"""SELECT U&"set\005Fconfig"('default_transaction_read_only', 'off', false) AS a,
       CASE WHEN current_setting('transaction_read_only')::bool THEN NULL
            ELSE U&"lo\005Ffrom\005Fbytea"(0, '\x4142'::bytea) END AS b""",
        "",
        "set_config() changes state",
    ),
    "ts_stat": (r"SELECT * FROM ts_stat('SELECT to_tsvector(display_name) FROM users')", "", "ts_stat() executes SQL"),
    "query_to_xml": (r"SELECT query_to_xml('SELECT 1', true, true, '')", "", "query_to_xml() executes SQL given as"),
    "undecodable, though unparsed is allowed": (r'SELECT U&"\zzzz"(1)', ALLOW, "invalid Unicode escape '\\zzzz'"),
}


@pytest.mark.parametrize("case", list(REFUSED_SPELLINGS))
def test_escaped_writers_and_sql_in_strings_are_refused_by_check_and_by_run_before_connecting(
    tmp_path: Path, case: str
) -> None:
    sql, header, words = REFUSED_SPELLINGS[case]
    queries = catalog(tmp_path / "q", sql, header)
    line = (queries / "q.sql").read_text().split("\n").index(sql.split("\n")[0]) + 1
    checked = run_harness("check", "--queries", str(queries))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"{queries / 'q.sql'}:{line}:" in checked.stdout and words in checked.stdout, checked.stdout
    home, reports = tmp_path / "home", tmp_path / "reports"
    done = run_harness("run", "--tier", "test", "--queries", str(queries), "--reports-dir", str(reports),
                       env={"HARNESS_HOME": str(home)})  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {queries / 'q.sql'}:{line}:"), done.stderr
    assert words in errors[0], errors[0]
    assert not reports.exists() and not home.exists()  # refused before a server was even started


@pytest.mark.parametrize(
    "name",
    [
        "pg_restore_relation_stats",
        "pg_restore_attribute_stats",
        "pg_clear_relation_stats",
        "pg_clear_attribute_stats",
        "pg_replication_origin_create",
        "pg_replication_origin_advance",
        "pg_stat_statements_reset",
        "pg_stat_reset_shared",
        "dblink_connect",
        "dblink_send_query",
        "lo_creat",
        "pg_logical_emit_message",
        "pg_advisory_unlock_all",
        "pg_try_advisory_xact_lock",
        "pg_create_restore_point",
        "pg_prewarm",
        "pg_buffercache_evict_relation",
        "setseed",
        "pg_terminate_backend",
        "pg_log_standby_snapshot",
        "lowrite",
        "crosstab3",
        "connectby",
        "xpath_table",
        "ts_rewrite",
        "cursor_to_xmlschema",
        "query_to_xml_and_xmlschema",
    ],
)
def test_the_denylist_names_whole_families(name: str) -> None:
    assert is_writing_function(name)


@pytest.mark.parametrize(
    "name",
    ["count", "date_trunc", "pg_stat_get_db_stat_reset_time", "lower", "pg_size_pretty", "table_to_xml", "SET_CONFIG"],
)
def test_the_denylist_leaves_readers_alone(name: str) -> None:
    assert not is_writing_function(name)


# -- layer 1: one statement per execution, with the parser bypassed ----------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("variant", ["no params", "params", "draw"])
def test_with_the_parser_bypassed_the_protocol_refuses_a_second_statement(
    cluster: Cluster, unchanged: None, tmp_path: Path, command: str, variant: str
) -> None:
    if variant == "no params":
        sql, header = MULTI, ALLOW
    elif variant == "params":
        sql, header = MULTI_PARAMS, "[params]\nn = { value = 7 }\n" + ALLOW
    else:
        sql, header = draw_file(MULTI)
        header += ALLOW
    queries = catalog(tmp_path / "q", sql, header)
    done = harness(cluster, *COMMANDS[command], "--queries", str(queries), "--reports-dir", str(tmp_path / "r"))
    assert "Traceback" not in done.stderr
    # the query fails (run, load: exit 1; compare reports it per strategy) or is refused (a draw: exit 2)
    assert done.returncode in ((0, 1, 2) if command == "compare" else (1, 2)), done.stdout + done.stderr
    assert "cannot insert multiple commands" in done.stdout + done.stderr + reports_text(tmp_path / "r")


def reports_text(directory: Path) -> str:
    return (
        "".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file())
        if directory.exists()
        else ""
    )


@pytest.mark.parametrize("prepare", ["auto", "custom", "generic"])
@pytest.mark.parametrize("params", [False, True])
def test_layer_1_alone_blocks_a_superuser(
    cluster: Cluster, unchanged: None, tmp_path: Path, prepare: str, params: bool
) -> None:
    """As the owner (a superuser: no layer 3), with the parser skipped (no layer 2), nothing commits."""
    sql = MULTI_PARAMS if params else MULTI
    header = f'prepare = "{prepare}"\n' + ("[params]\nn = { value = 7 }\n" if params else "")
    query = load_query(catalog(tmp_path, sql, header) / "q.sql")
    sets = [{"n": 7}] * 6 if params else [{}] * 6
    measured = measure_query(cluster.dsn, query, sets, MeasureOptions(iterations=1, warmup=5), 1000)
    assert measured.error and "cannot insert multiple commands" in measured.error


def test_layer_1_alone_blocks_a_draw(cluster: Cluster, unchanged: None, tmp_path: Path) -> None:
    sql, header = draw_file(MULTI)
    query = load_query(catalog(tmp_path, sql, header) / "q.sql")
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        anchor = read_manifest(conn).anchor  # type: ignore[union-attr]
        with pytest.raises(InputError, match=r"q.sql:\d+: parameter 'u': .*cannot insert multiple commands"):
            ParamSampler(conn, anchor, seed=1).draw(query, 0)


def test_a_literal_percent_still_works_without_parameters(cluster: Cluster, tmp_path: Path) -> None:
    query = load_query(catalog(tmp_path, "SELECT count(*) FROM users WHERE display_name LIKE '%a%'") / "q.sql")
    for prepare in ("auto", "custom", "generic"):
        options = MeasureOptions(iterations=2, warmup=1, prepare=prepare)
        measured = measure_query(cluster.dsn, query, [{}] * 3, options, 1000)
        assert measured.error is None and measured.rows_returned == 1, (prepare, measured.error)


# -- layer 3: a measuring role that can only read, with the parser and the denylist bypassed ----------------


def reader_dsn(cluster: Cluster) -> str:
    return psycopg.conninfo.make_conninfo(cluster.dsn, user=READER)


WRITERS = {
    "restore stats": "SELECT pg_restore_relation_stats('schemaname', 'public', 'relname', 'behavior_logs', "
    "'reltuples', 5e8::real)",
    "clear stats": "SELECT pg_clear_relation_stats('public', 'behavior_logs')",
    "replication origin": "SELECT pg_replication_origin_create('harness_attack')",
    "stats reset": "SELECT pg_stat_statements_reset()",
    "plpgsql writer": "SELECT harness_test_wipe()",
    "dblink": "SELECT dblink_exec('host=127.0.0.1 port={port} user=harness dbname=harness', "
    "'DELETE FROM behavior_logs')",
}


@pytest.fixture(scope="module")
def owner_objects(cluster: Cluster) -> Iterator[None]:
    """A plpgsql function that writes and the dblink extension, created by the owner (as a user might)."""
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        conn.execute(
            "CREATE OR REPLACE FUNCTION harness_test_wipe() RETURNS bigint LANGUAGE plpgsql AS "
            "$$ BEGIN DELETE FROM behavior_logs; RETURN 0; END $$"
        )
    yield
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP FUNCTION harness_test_wipe()")
        conn.execute("DROP EXTENSION dblink")


@pytest.mark.parametrize("writer", list(WRITERS))
def test_layer_3_alone_blocks_writing_functions(
    cluster: Cluster, owner_objects: None, unchanged: None, tmp_path: Path, writer: str
) -> None:
    """One statement, parseable: layers 1 and 2 let it through; the reader's missing privileges stop it."""
    port = psycopg.conninfo.conninfo_to_dict(cluster.dsn)["port"]
    query = load_query(catalog(tmp_path, WRITERS[writer].format(port=port)) / "q.sql")
    measured = measure_query(reader_dsn(cluster), query, [{}], MeasureOptions(iterations=1, warmup=0), 1000)
    assert measured.error, "the reader was allowed to call a writer"
    assert any(word in measured.error for word in ("permission denied", "password", "read-only", "read-write mode")), (
        measured.error
    )
    # without the read-only transaction the harness adds: the privileges alone refuse it
    with psycopg.connect(reader_dsn(cluster), autocommit=True) as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute(query.sql, prepare=True).fetchall()
    assert "permission denied" in str(raised.value) or "password" in str(raised.value), raised.value


def test_the_plpgsql_writer_is_refused_from_a_query_file_in_run(
    cluster: Cluster, owner_objects: None, unchanged: None, tmp_path: Path
) -> None:
    queries = catalog(tmp_path / "q", "SELECT harness_test_wipe()")
    done = harness(cluster, *COMMANDS["run"], "--queries", str(queries), "--reports-dir", str(tmp_path / "r"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot execute DELETE in a read-only transaction" in done.stdout + done.stderr


def test_the_embedded_cluster_measures_as_the_reader(cluster: Cluster, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "q", "SELECT current_user, session_user")
    done = harness(cluster, *COMMANDS["run"], "--queries", str(queries), "--reports-dir", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr
    assert "warning: the measuring role" not in done.stderr
    with psycopg.connect(reader_dsn(cluster)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (READER,)
        row = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s", [READER])
        assert row.fetchone() == (False, False, False)
        assert conn.execute("SELECT has_database_privilege(current_database(), 'TEMP, CREATE')").fetchone() == (False,)
        owned = conn.execute("SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole").fetchone()
        assert owned == (0,)


def test_a_dsn_measuring_role_that_can_write_is_warned_about_in_stderr_and_report(
    cluster: Cluster, tmp_path: Path
) -> None:
    queries = catalog(tmp_path / "q", "SELECT count(*) FROM users")
    args = (*COMMANDS["run"], "--no-seed", "--queries", str(queries), "--dsn", cluster.dsn)
    done = harness(cluster, *args, "--reports-dir", str(tmp_path / "r"), "--run-id", "w")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning: the measuring role 'harness' can write (is a superuser") == 1, done.stderr
    report = json.loads((tmp_path / "r" / "w" / "run.json").read_text())
    assert report["warnings"] and "can write" in report["warnings"][0]
    done = harness(cluster, *args, "--read-role", READER, "--reports-dir", str(tmp_path / "r2"), "--run-id", "w")
    assert done.returncode == 0, done.stderr
    assert "warning: the measuring role" not in done.stderr
    assert json.loads((tmp_path / "r2" / "w" / "run.json").read_text())["warnings"] == []


# -- rows: counted as they arrive ------------------------------------------------------------------------------


def test_a_query_returning_millions_of_rows_is_counted_not_held(cluster: Cluster, tmp_path: Path) -> None:
    query = load_query(catalog(tmp_path, "SELECT g, g::text FROM generate_series(1, 2000000) g") / "q.sql")
    tracemalloc.start()
    try:
        measured = measure_query(reader_dsn(cluster), query, [{}], MeasureOptions(iterations=1, warmup=0), 60_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert measured.error is None, measured.error
    assert measured.rows_returned == 2_000_000
    assert peak < 30 * 2**20, f"Python held {peak / 2**20:.0f} MiB: the rows were kept"  # fetchall: ~250 MiB


# -- seeds and runs exclude each other ------------------------------------------------------------------------


SLEEPY = "SELECT pg_sleep(0.05), count(*) FROM users"


def launch(cluster: Cluster, out: Path, *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO,
        env={**os.environ, **cluster.env, **(extra or {})},
        stdout=(out / "stdout").open("w"),
        stderr=(out / "stderr").open("w"),
        text=True,
    )


def measuring_lock_held(cluster: Cluster) -> bool:
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND mode = 'ShareLock' "
            "AND granted",
            [DATA_LOCK_KEY],
        ).fetchone()
    return bool(row and row[0])


def test_a_seed_during_a_run_waits_for_it_or_is_refused_and_the_fingerprint_is_true(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The run is held mid-measurement (a table lock the test takes once the run holds the data lock) until the
    waiting seed has said it waits: no start-up time, machine load or luck decides who goes first."""
    test_checksum = state(cluster.dsn)["checksum"]
    queries = catalog(tmp_path / "q", SLEEPY)
    args = ("run", "--tier", "test", "--iterations", "20", "--queries", str(queries), "--run-id", "long")
    args += ("--budget", "60000")  # a statement_timeout of 240 s: the held query waits, it does not time out
    runner = launch(cluster, tmp_path / "run", *args, "--reports-dir", str(tmp_path / "r"))
    waiting: subprocess.Popen[str] | None = None
    seed_stderr = tmp_path / "seed" / "stderr"
    try:
        wait_for(lambda: runner.poll() is not None or measuring_lock_held(cluster), timeout=60, interval=0.05)
        assert runner.poll() is None, (tmp_path / "run" / "stderr").read_text()
        with psycopg.connect(cluster.dsn) as blocker:  # its transaction holds the run at its next read of users
            blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            refused = harness(cluster, "seed", "--tier", "dev", extra={"HARNESS_LOCK_WAIT": "0.5"})
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert "cannot seed tier dev: harness run" in refused.stderr, refused.stderr
            waiting = launch(cluster, tmp_path / "seed", "seed", "--tier", "dev")
            wait_for(lambda: "waiting to seed tier dev: harness run" in seed_stderr.read_text(), timeout=120)
            assert runner.poll() is None and waiting.poll() is None
            blocker.rollback()
        assert runner.wait(timeout=120) == 0, (tmp_path / "run" / "stderr").read_text()
        assert waiting.wait(timeout=120) == 0, seed_stderr.read_text()
    finally:
        for proc in (runner, waiting):
            if proc is not None and proc.poll() is None:
                proc.kill()
    environment = json.loads((tmp_path / "r" / "long" / "run.json").read_text())["environment"]
    assert environment["tier"] == "test" and environment["data_checksum"] == test_checksum
    assert read_tier(cluster) == "dev"  # the seed went ahead after the run
    assert harness(cluster, "seed", "--tier", "test").returncode == 0


def read_tier(cluster: Cluster) -> str:
    with psycopg.connect(cluster.dsn) as conn:
        return read_manifest(conn).tier  # type: ignore[union-attr]


def test_db_stop_does_not_stop_the_server_under_a_run(cluster: Cluster, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "q", SLEEPY)
    args = ("run", "--tier", "test", "--iterations", "40", "--queries", str(queries))
    runner = launch(cluster, tmp_path / "run", *args, "--reports-dir", str(tmp_path / "r"))
    try:
        wait_for(lambda: measuring_lock_held(cluster), timeout=60, interval=0.05)
        refused = harness(cluster, "db", "stop", extra={"HARNESS_LOCK_WAIT": "0.5"})
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "another harness command is using the embedded server" in refused.stderr
        assert runner.wait(timeout=120) == 0, (tmp_path / "run" / "stderr").read_text()
    finally:
        if runner.poll() is None:
            runner.kill()
    assert EmbeddedServer(cluster.home).status().running


def test_data_written_under_a_run_marks_it_invalid_and_exits_3(cluster: Cluster, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "q", SLEEPY)
    args = ("run", "--tier", "test", "--iterations", "40", "--queries", str(queries), "--run-id", "x")
    runner = launch(cluster, tmp_path / "run", *args, "--reports-dir", str(tmp_path / "r"))
    try:
        stderr_file = tmp_path / "run" / "stderr"
        # Once the query is being timed (so after the run took its data witness), someone else's client writes.
        wait_for(lambda: stderr_file.exists() and "measuring q" in stderr_file.read_text(), timeout=60, interval=0.05)
        assert measuring_lock_held(cluster)
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM points_ledger WHERE ctid = (SELECT min(ctid) FROM points_ledger)")
        time.sleep(1.2)  # cumulative statistics are flushed within a second
        code = runner.wait(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
        assert harness(cluster, "seed", "--tier", "test").returncode == 0  # the next tests need intact data
    stderr = (tmp_path / "run" / "stderr").read_text()
    assert code == 3, stderr
    assert "the data changed while measuring" in stderr
    report = json.loads((tmp_path / "r" / "x" / "run.json").read_text())
    assert report["complete"] is False and report["incomplete_reason"].startswith("invalid:")


def test_a_run_refused_for_a_foreign_database_writes_no_report(fresh_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int)")
    queries = catalog(tmp_path / "q", "SELECT 1")
    reports = tmp_path / "r"
    done = run_harness("run", "--dsn", fresh_dsn, "--queries", str(queries), "--reports-dir", str(reports))
    assert done.returncode == 2, done.stderr
    assert "did not create (tables customers)" in done.stderr
    assert not reports.exists()


def test_load_accepts_a_run_id(cluster: Cluster, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "q", "SELECT count(*) FROM users")
    args = ("load", "--tier", "test", "--duration", "2s", "--users", "1", "--queries", str(queries))
    done = harness(cluster, *args, "--run-id", "mine", "--reports-dir", str(tmp_path / "r"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "r" / "mine").is_dir()


# -- user indexes survive a re-seed -----------------------------------------------------------------------------


def test_a_reseed_recreates_the_users_own_indexes(fresh_dsn: str) -> None:
    from harness.seed import seed

    seed(fresh_dsn, "test")
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE INDEX my_duration_idx ON behavior_logs (duration_ms) WHERE duration_ms > 1000")
    seed(fresh_dsn, "dev")  # a different tier: the tables are dropped and loaded again
    with psycopg.connect(fresh_dsn) as conn:
        row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'my_duration_idx'").fetchone()
    assert row is not None, "the user's index was dropped by the re-seed"
    assert "WHERE (duration_ms > 1000)" in row[0]


def test_a_user_index_that_cannot_be_rebuilt_makes_the_seed_refuse_and_keep_everything(fresh_dsn: str) -> None:
    from harness.errors import UnsafeOperation
    from harness.seed import seed

    first = seed(fresh_dsn, "test")
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:  # unique on test data, not on dev data
        conn.execute("CREATE UNIQUE INDEX my_unique_idx ON users ((id % 25))")
    with pytest.raises(UnsafeOperation, match=r"your index my_unique_idx .* cannot be rebuilt"):
        seed(fresh_dsn, "dev")
    with psycopg.connect(fresh_dsn) as conn:
        assert read_manifest(conn).checksum == first.checksum  # type: ignore[union-attr]
        assert conn.execute("SELECT to_regclass('my_unique_idx') IS NOT NULL").fetchone() == (True,)


# -- bad input is exit 2 with file:line and the fix --------------------------------------------------------------


TIER = (REPO / "scenarios" / "tiers" / "test.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("anchor_date = 2026-06-30", "anchor_date = 9999-12-31", 4, "anchor_date must be between"),
        ("enrollments_per_user = 2.0", "enrollments_per_user = 1e300", 11, "enrollments_per_user must be <="),
        ("history_days = 56 ", "history_days = 99999999 ", 5, "history_days must be <="),
    ],
)
def test_a_tier_out_of_range_is_exit_2_naming_its_line(
    cluster: Cluster, tmp_path: Path, old: str, new: str, line: int, words: str
) -> None:
    tier = tmp_path / "t.toml"
    tier.write_text(TIER.replace(old, new))
    done = harness(cluster, "seed", "--tier", str(tier))
    assert done.returncode == 2, done.stderr
    assert f"Error: {tier}:{line}: {words}" in done.stderr


def test_a_sql_draw_naming_an_unknown_column_is_exit_2(cluster: Cluster, tmp_path: Path) -> None:
    sql, header = draw_file("SELECT no_such_column FROM users")
    queries = catalog(tmp_path / "q", sql, header)
    done = harness(cluster, *COMMANDS["run"], "--queries", str(queries), "--reports-dir", str(tmp_path / "r"))
    assert done.returncode == 2, done.stderr
    assert f"Error: {queries / 'q.sql'}:4: parameter 'u': the draw query failed: column" in done.stderr
    assert not (tmp_path / "r").exists()


def test_other_bad_inputs_are_exit_2_with_one_line(cluster: Cluster, fresh_dsn: str, tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "a.sql").symlink_to(loop / "b.sql")
    (loop / "b.sql").symlink_to(loop / "a.sql")
    single = catalog(tmp_path / "one", "SELECT 1") / "q.sql"
    cases = {
        "symlink loop": (("run", "--queries", str(loop)), "Too many levels of symbolic links"),
        "bogus sslmode": (("run", "--dsn", "postgresql://127.0.0.1/x?sslmode=bogus"), "sslmode='bogus' is not one of"),
        "verify a foreign database": (("seed", "--verify", "--dsn", fresh_dsn), "not seeded by harness"),
        "queries is a file": (("run", "--queries", str(single)), "is a file: pass the folder"),
    }
    for name, (args, words) in cases.items():
        done = harness(cluster, *args)
        assert done.returncode == 2, (name, done.stderr)
        errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and words in errors[0], (name, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("run", "--warmup", "999999999999999999999"), "'--warmup': 999999999999999999999 is not in the range 0<="),
        (("run", "--iterations", "100001"), "'--iterations': 100001 is not in the range 1<=x<=100000"),
        (("run", "--seed", "-1"), "'--seed': -1 is not in the range"),
        (("compare", "--strategies", "none,tuned", "--rounds", "1001"), "'--rounds': 1001 is not in the range"),
        (("compare", "--strategies", "none,tuned", "--warmup", "10001"), "'--warmup': 10001 is not in the range"),
        (("load", "--users", "10001"), "'--users' / '-u': 10001 is not in the range 1<=x<=10000"),
        (("load", "--spawn-rate", "1e30"), "'--spawn-rate' / '-r': 1e+30 is not in the range"),
        (("load", "--duration", "24h1s"), "'--duration' / '-t': '24h1s' is longer than 24h"),
        (("load", "--duration", "999999999999999999h"), "is longer than 24h"),
        (("seed", "--seed", "99999999999999999999999"), "'--seed': 99999999999999999999999 is not in the range"),
        (("run", "--queries", "{nul}"), "{nul}/q.sql:2:14: NUL byte"),
        (("run", "--queries", "{big}"), "{big}/q.sql:1:1: larger than 1 MB"),
    ],
)
def test_counts_past_their_ceiling_and_nul_or_huge_query_files_are_exit_2_before_connecting(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    nul, big = tmp_path / "nul", tmp_path / "big"
    for folder, content in ((nul, b"-- a NUL byte\nSELECT 1 AS a\x00b\n"), (big, b"SELECT 1" + b" " * 2**20)):
        folder.mkdir()
        (folder / "q.sql").write_bytes(content)
    home, reports = tmp_path / "home", tmp_path / "reports"
    paths = {"nul": str(nul), "big": str(big)}
    nowhere = "host=127.0.0.1 port=1 dbname=x connect_timeout=2"
    where = ["--dsn", nowhere] + ([] if args[0] == "seed" else ["--reports-dir", str(reports)])
    done = run_harness(*(a.format(**paths) for a in args), *where, env={"HARNESS_HOME": str(home)})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words.format(**paths) in lines[0], done.stderr
    assert not reports.exists() and not home.exists()


def test_check_live_prepares_one_statement_only(cluster: Cluster, unchanged: None, tmp_path: Path) -> None:
    """`check --dsn` PREPAREs each clean query: an allowed unparsable one cannot smuggle a second statement."""
    sql = "SELECT 1; COMMIT; DELETE FROM behavior_logs WHERE id % 7 = 0; SELECT 1 ORDER BY 1 USING <"
    queries = catalog(tmp_path / "q", sql, ALLOW)
    done = harness(cluster, "check", "--queries", str(queries), "--dsn", cluster.dsn)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot insert multiple commands" in done.stdout


def run_plugin(cluster: Cluster, cwd: Path, queries: Path) -> subprocess.CompletedProcess[str]:
    """The catalog in ``queries`` measured by the pytest plugin, as a user's test suite would run it."""
    env = {**os.environ, **cluster.env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    plugins = ["-p", "pytest_benchmark.plugin", "-p", "harness.pytest_plugin", "-p", "no:cacheprovider"]
    command = [
        sys.executable,
        "-m",
        "pytest",
        *plugins,
        "-q",
        "--harness-tier",
        "test",
        "--harness-queries",
        str(queries),
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)


@pytest.mark.parametrize("header", ["", ALLOW])
def test_the_pytest_plugin_refuses_or_cannot_run_a_second_statement(
    cluster: Cluster, unchanged: None, tmp_path: Path, header: str
) -> None:
    queries = catalog(tmp_path / "q", MULTI, header)
    done = run_plugin(cluster, tmp_path, queries)
    output = done.stdout + done.stderr
    if header:  # allowed past the parser: the server refuses the second statement
        assert done.returncode == 1 and "cannot insert multiple commands" in output, output
    else:
        assert done.returncode == 2 and "sqlglot cannot parse" in output, output


def test_an_unknown_read_role_is_exit_2(cluster: Cluster, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "q", "SELECT 1")
    args = ("run", "--no-seed", "--dsn", cluster.dsn, "--read-role", "no_such_role", "--queries", str(queries))
    done = harness(cluster, *args, "--reports-dir", str(tmp_path / "r"))
    assert done.returncode == 2, done.stderr
    assert "Error: --read-role 'no_such_role': no such role; create it" in done.stderr
    assert not (tmp_path / "r").exists()


def test_load_and_compare_report_a_measuring_role_that_can_write(cluster: Cluster, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "q", "SELECT count(*) FROM users")
    common = ("--queries", str(queries), "--dsn", cluster.dsn)
    load = harness(cluster, *COMMANDS["load"], "--no-seed", *common, "--run-id", "l", "--reports-dir", str(tmp_path))
    assert load.returncode == 0, load.stderr
    assert "warning: the measuring role 'harness' can write" in load.stderr
    assert "can write" in json.loads((tmp_path / "l" / "load.json").read_text())["warnings"][0]
    compare = harness(cluster, *COMMANDS["compare"], *common, "--reports-dir", str(tmp_path / "c"))
    assert "warning: the measuring role 'harness' can write" in compare.stderr, compare.stderr
    (report,) = (tmp_path / "c").glob("compare-*/compare.json")
    assert any("can write" in w for w in json.loads(report.read_text())["warnings"])
