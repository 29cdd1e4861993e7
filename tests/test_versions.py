"""Every major of the matrix (the embedded 18, Debian's 15, HARNESS_TEST_PG_BINS): as the user's own database
(``--dsn --no-seed``) the commands work and write nothing at all; as the private cluster (``--pg-bin``) the
reference workload seeds, runs and compares strategies."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from conftest import EMBEDDED, OTHER_PG_BINS, run_harness, wait_for

from harness.errors import ServerError
from harness.server import EmbeddedServer

# A small schema the harness did not create: two tables, a view over them, an event trigger that logs every
# DDL command into a schema of its own. Everything is vacuumed and analyzed, so no maintenance is due.
OWN_SCHEMA = """
CREATE SCHEMA audit;
CREATE TABLE audit.ddl_log (tag text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION audit.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO audit.ddl_log (tag) VALUES (tg_tag); END $$;
CREATE TABLE branches (bid int PRIMARY KEY, name text NOT NULL);
CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL REFERENCES branches, balance int NOT NULL);
INSERT INTO branches SELECT b, 'branch ' || b FROM generate_series(1, 10) b;
INSERT INTO accounts SELECT a, 1 + a % 10, a % 1000 FROM generate_series(1, 20000) a;
CREATE VIEW branch_totals AS SELECT bid, sum(balance) AS total FROM accounts GROUP BY bid;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst') THEN CREATE ROLE analyst LOGIN; END IF;
END $$;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO analyst;
"""
WATCH = """
SELECT (SELECT count(*) FROM audit.ddl_log),
       (SELECT array_agg(extname::text ORDER BY extname) FROM pg_extension),
       (SELECT array_agg(concat_ws('/', schemaname, relname, n_tup_ins, n_tup_upd, n_tup_del, vacuum_count,
                                   autovacuum_count, analyze_count, autoanalyze_count) ORDER BY schemaname, relname)
        FROM pg_stat_user_tables),
       (SELECT array_agg(relname || ':' || relfilenode ORDER BY relname) FROM pg_class
        WHERE relnamespace = 'public'::regnamespace),
       (SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = current_database()),
       pg_snapshot_xmax(pg_current_snapshot())::text
"""
ONE_ACCOUNT = """/* harness
description = "One account by key"
budget_ms = 200
[params]
aid = {{ draw = "int", min = 1, max = 20000 }}
[[expect]]
indexes = ["accounts_pkey"]
*/
SELECT aid, balance FROM accounts WHERE {key} = %(aid)s
"""
BRANCH_TOTAL = """/* harness
description = "One branch's total, through a view"
budget_ms = 500
[params]
bid = { draw = "int", min = 1, max = 10 }
*/
SELECT bid, total FROM branch_totals WHERE bid = %(bid)s
"""


def catalog(folder: Path, key: str) -> Path:
    folder.mkdir()
    (folder / "one_account.sql").write_text(ONE_ACCOUNT.format(key=key))
    (folder / "branch_total.sql").write_text(BRANCH_TOTAL)
    return folder


def own_database(server: EmbeddedServer) -> str:
    """A database the harness did not create, without any extension (template0), watched for DDL."""
    port = server.status().port
    assert port is not None
    with psycopg.connect(server.dsn(port, "postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS own WITH (FORCE)")
        conn.execute("CREATE DATABASE own TEMPLATE template0")
    dsn = server.dsn(port, "own")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(OWN_SCHEMA)
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE EVENT TRIGGER log_ddl ON ddl_command_start EXECUTE FUNCTION audit.log_ddl()")
    return dsn


def watched(dsn: str) -> tuple[object, ...]:
    """What any write would change, read once every other session on the database has ended (a backend's
    statistics reach the cumulative counters when it exits)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        wait_for(lambda: not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0])  # type: ignore[index]  # fmt: skip
        row = conn.execute(WATCH).fetchone()
    assert row is not None
    return tuple(row)


def ships_hypopg(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone())


def no_traceback(done: object) -> str:
    stderr = str(getattr(done, "stderr", ""))
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    return stderr


def test_own_database_is_measured_and_never_written(matrix_server: EmbeddedServer, tmp_path: Path) -> None:
    dsn = own_database(matrix_server)
    base, cand = catalog(tmp_path / "base", "aid"), catalog(tmp_path / "cand", "aid + 0")  # cand: no index
    reports = tmp_path / "reports"
    before = watched(dsn)
    assert before[0] == 0 and before[1] == ["plpgsql"]

    check = run_harness("check", "--dsn", dsn, "--queries", str(base))
    assert check.returncode == 0, no_traceback(check)
    analyst = dsn.replace("user=harness", "user=analyst")  # no superuser: may not read shared_preload_libraries
    run = run_harness("run", "--dsn", analyst, "--no-seed", "--queries", str(base), "--iterations", "20",
                      "--reports-dir", str(reports), "--run-id", "own")  # fmt: skip
    assert run.returncode == 0, no_traceback(run)
    load = run_harness("load", "--dsn", dsn, "--no-seed", "--queries", str(base), "--users", "2",
                       "--duration", "2s", "--reports-dir", str(reports))  # fmt: skip
    assert load.returncode == 0, no_traceback(load)
    compare = run_harness("compare", "--dsn", dsn, "--no-seed", "--base-queries", str(base), "--queries",
                          str(cand), "--iterations", "20", "--rounds", "2", "--reports-dir", str(reports))  # fmt: skip
    assert compare.returncode == 1, no_traceback(compare)  # the candidate lost its index: work regressed
    assert "REGRESSION: one_account: work regressed" in compare.stdout
    assert "database holds" not in compare.stderr  # measured as it is, never seeded
    assert "warning: note: pg_stat_statements is not installed in this database" in compare.stdout
    if ships_hypopg(dsn):  # Debian's 15 with postgresql-15-hypopg (.ci/run installs it)
        what_if = run_harness("compare", "--dsn", dsn, "--queries", str(base), "--what-if",
                              "CREATE INDEX ON accounts (balance)")  # fmt: skip
        assert what_if.returncode == 2 and "CREATE EXTENSION hypopg;" in no_traceback(what_if)  # not even rolled back

    assert watched(dsn) == before  # no DDL, no extension, no row written, no VACUUM/ANALYZE, no commit at all

    report = json.loads((reports / "own" / "run.json").read_text())
    assert report["environment"]["postgres_major"] == matrix_server.binaries.major
    assert report["environment"]["strategy"] == "(unknown)"
    assert {q["work"]["source"] for q in report["queries"]} == {"explain"}
    assert not any("can write" in w for w in report["warnings"])  # the analyst only reads
    notes = " ".join(report["warnings"])
    assert "pg_stat_statements is not installed in this database" in notes and "CREATE EXTENSION" in notes
    assert report["cache"]["method"] == "full read"
    (ab,) = reports.glob("compare-*")
    side = json.loads((ab / "cand" / "run.json").read_text())
    failed = next(q for q in side["queries"] if q["name"] == "one_account")["verdict"]["checks"]
    assert any("check the index exists in this database" in c["reason"] for c in failed), failed


@pytest.mark.parametrize("matrix_server", OTHER_PG_BINS, indirect=True)  # the embedded 18: the whole suite
def test_private_cluster_seeds_runs_and_compares_strategies(matrix_server: EmbeddedServer, tmp_path: Path) -> None:
    home = {"HARNESS_HOME": str(matrix_server.home)}
    pg_bin = str(matrix_server.binaries.bindir)
    reports = tmp_path / "reports"
    run = run_harness("run", "--tier", "test", "--pg-bin", pg_bin, "--iterations", "20", "--reports-dir",
                      str(reports), "--run-id", "tier", env=home)  # fmt: skip
    assert run.returncode == 0, no_traceback(run)
    report = json.loads((reports / "tier" / "run.json").read_text())
    assert report["environment"]["postgres_major"] == matrix_server.binaries.major
    contrib = matrix_server.binaries.ships("pg_stat_statements")  # a build without contrib (pgserver): fallbacks
    assert {q["work"]["source"] for q in report["queries"]} == {"pg_stat_statements" if contrib else "explain"}
    assert report["cache"]["method"] == ("pg_prewarm" if contrib else "full read")
    compare = run_harness("compare", "--strategies", "none,baseline", "--tier", "test", "--iterations", "20",
                          "--rounds", "2", "--pg-bin", pg_bin, "--reports-dir", str(reports), env=home)  # fmt: skip
    assert compare.returncode == 0, no_traceback(compare)
    port = matrix_server.status().port
    assert port is not None
    if ships_hypopg(matrix_server.dsn(port)):  # the harness's own database: HypoPG in a rolled-back transaction
        what_if = run_harness("compare", "--tier", "test", "--pg-bin", pg_bin, "--what-if",
                              "CREATE INDEX ON behavior_logs (event_type, occurred_at)", env=home)  # fmt: skip
        assert what_if.returncode == 0 and "estimates" in what_if.stdout, no_traceback(what_if)


def test_a_cluster_refuses_binaries_of_another_major(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "home")
    server.data_dir.mkdir(parents=True)
    (server.data_dir / "PG_VERSION").write_text("13\n")
    with pytest.raises(ServerError, match=r"is PostgreSQL 13, the binaries in .* keep one cluster per major"):
        server.ensure_running()


@pytest.mark.parametrize("matrix_server", [EMBEDDED], indirect=True)
def test_maintenance_happens_only_when_a_flag_names_it(matrix_server: EmbeddedServer, tmp_path: Path) -> None:
    dsn = own_database(matrix_server)
    before = watched(dsn)
    run = run_harness("run", "--dsn", dsn, "--no-seed", "--queries", str(catalog(tmp_path / "q", "aid")),
                      "--iterations", "20", "--create-extensions", "--analyze", "--reports-dir", str(tmp_path),
                      "--run-id", "maintained")  # fmt: skip
    assert run.returncode == 0, no_traceback(run)
    after = watched(dsn)
    assert after[1] == ["pg_prewarm", "pg_stat_statements", "plpgsql"] and after[0] > 0  # the trigger saw it
    assert "public/accounts/20000/0/0/1/0/2/0" in after[2]  # ANALYZEd once more, no row written
    report = json.loads((tmp_path / "maintained" / "run.json").read_text())
    assert "note: --create-extensions: created pg_prewarm, pg_stat_statements" in report["warnings"]
    assert {q["work"]["source"] for q in report["queries"]} == {"pg_stat_statements"}  # preloaded by the cluster
    assert report["cache"]["method"] == "pg_prewarm" and before[1] == ["plpgsql"]
