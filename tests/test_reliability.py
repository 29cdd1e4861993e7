"""Reliability guarantees (issue 7), each proven against a real PostgreSQL and real `harness` processes.

Faults while working (the server killed mid-seed and mid-compare, a backend terminated mid-query, SIGTERM,
two processes on one project, a taken port, a folder that cannot be written, a full disk); bad input refused
with one line and exit 2 before anything is written; passwords never printed; other people's data spared.

The fault tests share one private cluster (its own HARNESS_HOME), which they crash on purpose: each also
proves that the next command recovers it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import REPO, run_harness, wait_for
from psycopg.conninfo import conninfo_to_dict

from harness.cli import main
from harness.compare import CompareOptions, compare_strategies
from harness.seed import TABLES, read_manifest, seed, verify
from harness.server import EmbeddedServer, free_port
from harness.strategies import existing_indexes, load_strategy

SLEEPY = """/* harness
description = "sleeps {seconds} s"
budget_ms = 500
*/
SELECT pg_sleep({seconds}), count(*) FROM users
"""


@dataclass(frozen=True)
class Cluster:
    """A private project: its HARNESS_HOME, the environment that points `harness` at it, its server."""

    home: Path
    env: dict[str, str]
    server: EmbeddedServer
    checksum: str  # of the tier test, seed 42, seeded when the module starts


def harness(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_harness(*args, env=env, timeout=timeout)


def launch(env: dict[str, str], out: Path, *args: str) -> subprocess.Popen[str]:
    """Start `harness ARGS` in the background, its output going to files (no pipe to fill up)."""
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=(out / "stdout").open("w"),
        stderr=(out / "stderr").open("w"),
        text=True,
    )


def finish(proc: subprocess.Popen[str], out: Path, timeout: float = 90) -> tuple[int, str, str]:
    try:
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, (out / "stdout").read_text(), (out / "stderr").read_text()


def postmasters(data_dir: Path) -> list[int]:
    """Postmaster processes serving ``data_dir`` (started as `postgres -D <data_dir> …`).

    A backend keeps its parent's command line for a moment after fork, before it sets its own title:
    a process whose parent is itself a postgres of this data directory is such a child, not a postmaster.
    """
    candidates = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if argv[0].endswith(b"/postgres") and os.fsencode(data_dir) in argv:
            candidates[int(proc.name)] = parent
    return [pid for pid, parent in candidates.items() if parent not in candidates]


def running_port(server: EmbeddedServer) -> int | None:
    status = server.status()
    return status.port if status.running else None


def backend_running(dsn: str, pattern: str, application: str = "%") -> bool:
    """True once a backend other than ours runs a statement LIKE ``pattern``."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' "
                "AND query LIKE %s AND application_name LIKE %s",
                [pattern, application],
            ).fetchone()
    except psycopg.OperationalError:
        return False
    return bool(row and row[0])


def kill_server(server: EmbeddedServer) -> None:
    """Immediate shutdown (SIGQUIT to the postmaster): every backend dies at once, recovery needed later."""
    pid = server.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGQUIT)
    wait_for(lambda: not postmasters(server.data_dir))


def error_line(stderr: str) -> str:
    """The command's single ``Error:`` line: one line (only the reports path may follow), no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert all(line.startswith("reports:") for line in lines[errors[0] + 1 :]), stderr
    return lines[errors[0]]


def checksum_in(stdout: str) -> str:
    return stdout.split("checksum ")[1].split()[0]


def sleepy_catalog(directory: Path, count: int, seconds: float) -> Path:
    directory.mkdir(parents=True)
    for i in range(count):
        (directory / f"q{i}.sql").write_text(SLEEPY.format(seconds=seconds))
    return directory


def remove_cluster(home: Path) -> None:
    server = EmbeddedServer(home)
    server.destroy()
    if server.data_dir.parent.name.startswith("harness-cluster-"):  # as root: kept under the temp folder
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("reliability") / ".harness"
    env = {"HARNESS_HOME": str(home)}
    done = harness(env, "seed", "--tier", "test")  # cold: initdb, start, seed, stop
    assert done.returncode == 0, done.stderr
    yield Cluster(home, env, EmbeddedServer(home), checksum_in(done.stdout))
    remove_cluster(home)


def assert_recovered_intact(cluster: Cluster) -> None:
    """The next command restarts the crashed cluster, finds the tier test data intact, and stops it again."""
    assert not postmasters(cluster.server.data_dir), "a postgres process outlived the failure"
    done = harness(cluster.env, "seed", "--verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"intact: checksum {cluster.checksum}" in done.stdout
    assert not postmasters(cluster.server.data_dir)


# -- the server dies under a command ---------------------------------------------------------------------------


def test_server_killed_mid_seed_is_exit_3_keeps_the_previous_data_and_the_next_command_recovers(
    cluster: Cluster, tmp_path: Path
) -> None:
    proc = launch(cluster.env, tmp_path, "seed", "--tier", "demo", "--seed", "7")
    try:
        port = wait_for(lambda: running_port(cluster.server))
        wait_for(lambda: backend_running(cluster.server.dsn(int(port)), "COPY % FROM STDIN%"))  # type: ignore[arg-type]
        kill_server(cluster.server)
    finally:
        code, _, stderr = finish(proc, tmp_path)
    assert code == 3, stderr
    line = error_line(stderr)
    assert "connection lost while seeding (previous data kept)" in line
    assert_recovered_intact(cluster)


@pytest.mark.slow
def test_server_killed_mid_compare_is_exit_3_and_the_next_command_recovers(cluster: Cluster, tmp_path: Path) -> None:
    catalog = sleepy_catalog(tmp_path / "queries", 2, 0.05)
    args = ["compare", "--strategies", "none,baseline", "--tier", "test", "--queries", str(catalog)]
    args += ["--iterations", "30", "--warmup", "0", "--rounds", "1", "--reports-dir", str(tmp_path / "r")]
    proc = launch(cluster.env, tmp_path / "out", *args)
    try:
        port = wait_for(lambda: running_port(cluster.server))
        dsn = cluster.server.dsn(int(port))  # type: ignore[arg-type]
        wait_for(lambda: backend_running(dsn, "%pg_sleep%", "harness-measure"))
        kill_server(cluster.server)
    finally:
        code, _, stderr = finish(proc, tmp_path / "out")
    assert code == 3, stderr
    assert "lost the database while measuring q" in error_line(stderr)  # the cause, not a failed clean-up
    report = json.loads(next((tmp_path / "r").glob("compare-*/compare.json")).read_text())
    assert report["complete"] is False and "database" in report["incomplete_reason"]
    assert report["original_restored"] is False  # the server was gone: the report must not claim otherwise
    assert [q["name"] for q in report["queries"]] == ["q0", "q1"]
    assert_recovered_intact(cluster)


def locust_processes(reports: Path) -> list[int]:
    """Locust processes writing into ``reports`` (their command line names the report folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes() if proc.name.isdigit() else b""
        except OSError:
            continue
        if b"locust" in cmdline and os.fsencode(reports) in cmdline:
            found.append(int(proc.name))
    return found


def start_load(cluster: Cluster, tmp_path: Path, duration: str) -> tuple[subprocess.Popen[str], Path, str]:
    """`harness load` of one 50 ms query, once its users are running queries: (process, reports, dsn)."""
    catalog = sleepy_catalog(tmp_path / "queries", 1, 0.05)
    reports = tmp_path / "reports"
    args = ["load", "--users", "4", "--duration", duration, "--queries", str(catalog), "--reports-dir", str(reports)]
    proc = launch(cluster.env, tmp_path / "out", *args)
    port = wait_for(lambda: running_port(cluster.server))
    dsn = cluster.server.dsn(int(port))  # type: ignore[arg-type]
    wait_for(lambda: backend_running(dsn, "%pg_sleep(0.05), count(*) FROM users%") or proc.poll() is not None)
    assert proc.poll() is None, (tmp_path / "out" / "stderr").read_text()
    time.sleep(1)  # some requests complete
    return proc, reports, dsn


def partial_load_report(reports: Path) -> dict:
    document = json.loads(next(reports.glob("*/load.json")).read_text())
    assert document["complete"] is False and document["incomplete_reason"]
    assert document["queries"] and document["queries"][0]["requests"] > 0, "what was measured was not kept"
    return document


@pytest.mark.slow
def test_server_killed_mid_load_is_exit_3_with_a_partial_report_and_no_orphans(
    cluster: Cluster, tmp_path: Path
) -> None:
    proc, reports, _ = start_load(cluster, tmp_path, "6s")
    try:
        kill_server(cluster.server)
    finally:
        code, _, stderr = finish(proc, tmp_path / "out")
    assert code == 3, stderr
    assert "cannot connect" in error_line(stderr)
    partial_load_report(reports)
    assert not locust_processes(reports)
    assert_recovered_intact(cluster)


@pytest.mark.slow
def test_sigterm_mid_load_is_143_keeps_partial_results_and_leaves_nothing_running(
    cluster: Cluster, tmp_path: Path
) -> None:
    proc, reports, _ = start_load(cluster, tmp_path, "60s")
    try:
        proc.send_signal(signal.SIGTERM)
    finally:
        code, _, stderr = finish(proc, tmp_path / "out", timeout=30)
    assert code == 143, stderr
    assert "Traceback" not in stderr
    assert "SIGTERM" in partial_load_report(reports)["incomplete_reason"]
    assert not locust_processes(reports)
    assert not postmasters(cluster.server.data_dir)


# -- a backend terminated mid-query ------------------------------------------------------------------------


class BackendKiller(threading.Thread):
    """Terminates, from another connection, every `harness-measure` backend running a query LIKE ``pattern``
    (at most ``limit`` of them) until stopped."""

    def __init__(self, admin_dsn: str, pattern: str, limit: int):
        super().__init__(daemon=True)
        self.admin_dsn, self.pattern, self.limit = admin_dsn, pattern, limit
        self.terminated = 0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            while not self.done.is_set() and self.terminated < self.limit:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'harness-measure' AND state = 'active' AND query LIKE %s",
                    [self.pattern],
                ).fetchone()
                self.terminated += row[0] if row else 0
                time.sleep(0.005)


VICTIM = """/* harness
description = "the query whose backend gets terminated"
budget_ms = 500
*/
SELECT pg_sleep(0.02), 'victim' AS marker
"""
BYSTANDER = VICTIM.replace("victim", "bystander").replace("the query whose backend gets terminated", "left alone")


def run_with_killer(admin_dsn: str, dsn: str, tmp_path: Path, limit: int) -> tuple[int, str, dict, int]:
    catalog = tmp_path / "queries"
    catalog.mkdir()
    (catalog / "a_victim.sql").write_text(VICTIM)
    (catalog / "b_bystander.sql").write_text(BYSTANDER)
    killer = BackendKiller(admin_dsn, "%'victim'%", limit)
    killer.start()
    try:
        done = run_harness(
            "run", "--dsn", dsn, "--no-seed", "--queries", str(catalog), "--iterations", "20", "--warmup", "2",
            "--reports-dir", str(tmp_path / "reports"),
        )  # fmt: skip
    finally:
        killer.done.set()
        killer.join(timeout=10)
    run = json.loads(next((tmp_path / "reports").glob("*/run.json")).read_text())
    return done.returncode, done.stdout + done.stderr, {q["name"]: q for q in run["queries"]}, killer.terminated


def test_a_terminated_backend_is_retried_once_and_the_verdict_says_so(
    admin_dsn: str, fresh_dsn: str, tmp_path: Path
) -> None:
    code, output, queries, terminated = run_with_killer(admin_dsn, fresh_dsn, tmp_path, limit=1)
    assert terminated == 1
    assert code == 0, output
    victim = queries["a_victim"]
    assert victim["retried"] == 1 and victim["error"] is None
    assert len(victim["samples_ms"]) >= 20  # measured again in full on a new connection
    assert victim["verdict"]["status"] == "warn"
    assert any("retried 1x" in w for w in victim["verdict"]["warnings"])
    assert queries["b_bystander"]["retried"] == 0 and queries["b_bystander"]["verdict"]["status"] == "pass"


def test_a_backend_terminated_twice_fails_that_query_and_the_run_goes_on(
    admin_dsn: str, fresh_dsn: str, tmp_path: Path
) -> None:
    code, output, queries, terminated = run_with_killer(admin_dsn, fresh_dsn, tmp_path, limit=10)
    assert terminated == 2  # the first attempt and its one retry; no third
    assert code == 1, output
    assert "FAIL: a_victim" in output and "Traceback" not in output
    victim = queries["a_victim"]
    assert victim["verdict"]["status"] == "fail" and "connection lost twice" in victim["error"]
    assert any("connection lost twice" in c["reason"] for c in victim["verdict"]["checks"])
    assert len(queries["b_bystander"]["samples_ms"]) >= 20
    assert queries["b_bystander"]["verdict"]["status"] == "pass"


# -- SIGTERM ---------------------------------------------------------------------------------------------


def wait_for_first_query(reports: Path, proc: subprocess.Popen[str]) -> None:
    def measured_one() -> bool:
        assert proc.poll() is None, "the run ended before it was signalled"
        return any(json.loads(p.read_text() or "{}").get("queries") for p in reports.glob("*/run.json"))

    wait_for(measured_one)


def sigterm_mid_run(cluster: Cluster, tmp_path: Path) -> dict:
    catalog = sleepy_catalog(tmp_path / "queries", 4, 0.05)
    reports = tmp_path / "reports"
    args = ["run", "--queries", str(catalog), "--iterations", "40", "--warmup", "0", "--reports-dir", str(reports)]
    proc = launch(cluster.env, tmp_path / "out", *args)
    try:
        wait_for_first_query(reports, proc)
        assert postmasters(cluster.server.data_dir)
        proc.send_signal(signal.SIGTERM)
    finally:
        code, _, stderr = finish(proc, tmp_path / "out")
    assert code == 143, stderr
    assert "Traceback" not in stderr and "SIGTERM" in stderr
    run = json.loads(next(reports.glob("*/run.json")).read_text())
    assert run["complete"] is False and "SIGTERM" in run["incomplete_reason"]
    assert 1 <= len(run["queries"]) < 4  # what was measured is kept
    return run


@pytest.mark.slow
def test_sigterm_mid_run_is_143_keeps_partial_results_and_stops_the_server_it_started(
    cluster: Cluster, tmp_path: Path
) -> None:
    assert not postmasters(cluster.server.data_dir)
    sigterm_mid_run(cluster, tmp_path)
    assert not postmasters(cluster.server.data_dir), "the run left its server running"


@pytest.mark.slow
def test_sigterm_mid_run_leaves_a_server_started_by_db_start_running(cluster: Cluster, tmp_path: Path) -> None:
    assert harness(cluster.env, "db", "start").returncode == 0
    try:
        before = cluster.server.status().pid
        sigterm_mid_run(cluster, tmp_path)
        assert cluster.server.status().pid == before and postmasters(cluster.server.data_dir) == [before]
    finally:
        assert harness(cluster.env, "db", "stop").returncode == 0
    assert not postmasters(cluster.server.data_dir)


# -- two processes on one project ------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_seeds_at_once_share_one_server_take_turns_and_both_finish(tmp_path: Path) -> None:
    home = tmp_path / "project" / ".harness"  # cold: both race to initialise and start the cluster
    env = {"HARNESS_HOME": str(home)}
    server = EmbeddedServer(home)
    procs = [launch(env, tmp_path / name, "seed", "--tier", "demo") for name in ("a", "b")]
    most_servers = most_copies = 0
    try:
        while any(p.poll() is None for p in procs):
            most_servers = max(most_servers, len(postmasters(server.data_dir)))
            port = running_port(server)
            if port is not None:
                most_copies = max(most_copies, _active_copies(server.dsn(port)))
            time.sleep(0.01)
        results = [finish(p, tmp_path / name) for p, name in zip(procs, ("a", "b"), strict=True)]
        for code, stdout, stderr in results:
            assert code == 0, stderr
            assert "seeded tier demo" in stdout
        assert most_servers == 1, "two postmasters served one data directory"
        assert most_copies <= 1, "two seeds wrote at the same time"
        assert checksum_in(results[0][1]) == checksum_in(results[1][1])
        assert not postmasters(server.data_dir), "the last command out left the server running"
        done = harness(env, "seed", "--verify")
        assert done.returncode == 0 and f"intact: checksum {checksum_in(results[0][1])}" in done.stdout
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        remove_cluster(home)


def _active_copies(dsn: str) -> int:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY % FROM STDIN%'"
            ).fetchone()
    except psycopg.Error:  # starting, stopping, or the database is not created yet
        return 0
    return int(row[0]) if row else 0


# -- the machine: port, folder, disk ------------------------------------------------------------------------


def remembered_port(cluster: Cluster) -> int:
    return int(json.loads((cluster.server.state_file).read_text())["port"])


def remember_port(cluster: Cluster, port: int) -> None:
    cluster.server.state_file.write_text(json.dumps({"port": port, "persistent": False}))


def test_a_taken_port_makes_the_server_move_to_another(cluster: Cluster) -> None:
    assert not postmasters(cluster.server.data_dir)
    with socket.socket() as listener:  # somebody else now listens on the port the cluster used last time
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        remember_port(cluster, taken)
        done = harness(cluster.env, "seed", "--verify")
        assert done.returncode == 0, done.stderr
        assert remembered_port(cluster) != taken
    with socket.socket() as squatter:  # bound but not listening: invisible to a connect() probe
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        remember_port(cluster, taken)
        done = harness(cluster.env, "seed", "--verify")
        assert done.returncode == 0, done.stderr
        assert remembered_port(cluster) != taken
    assert not postmasters(cluster.server.data_dir)


def test_harness_home_that_cannot_be_a_folder_is_one_line_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    done = harness({"HARNESS_HOME": str(blocker / ".harness")}, "seed", "--tier", "test")
    assert done.returncode == 3, done.stderr
    line = error_line(done.stderr)
    assert str(blocker) in line and "Not a directory" in line and "HARNESS_HOME at a writable folder" in line


@pytest.fixture
def tmpfs() -> Iterator[Callable[..., Path]]:
    """Mount small tmpfs file systems (root only) in folders the server account can enter; unmounted after."""
    mounted: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        point = Path(tempfile.mkdtemp(prefix="h7fs-"))
        point.chmod(0o755)
        options = f"size={size},mode=0755" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            point.rmdir()
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); needs root")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        for proc in postmasters(point / ".harness" / "pg"):
            os.kill(proc, signal.SIGQUIT)
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=False)
        point.rmdir()


def test_read_only_harness_home_is_one_line_exit_3(tmpfs: Callable[..., Path]) -> None:
    home = tmpfs("1m", read_only=True) / ".harness"
    for command in (("seed", "--tier", "test"), ("db", "start")):
        done = harness({"HARNESS_HOME": str(home)}, *command)
        assert done.returncode == 3, done.stderr
        line = error_line(done.stderr)
        assert str(home) in line and "Read-only file system" in line and "HARNESS_HOME at a writable folder" in line


@pytest.mark.slow
def test_a_full_disk_is_one_line_exit_3_and_freeing_space_recovers(tmpfs: Callable[..., Path]) -> None:
    point = tmpfs("48m")  # a fresh cluster takes ~46 MB: the demo tier cannot fit
    env = {"HARNESS_HOME": str(point / ".harness")}
    done = harness(env, "seed", "--tier", "demo")
    assert done.returncode == 3, done.stderr
    line = error_line(done.stderr)
    assert "no space left on device" in line.lower() and "free" in line
    assert not postmasters(point / ".harness" / "pg")
    subprocess.run(["mount", "-o", "remount,size=200m", str(point)], check=True)
    done = harness(env, "seed", "--tier", "demo")
    assert done.returncode == 0, done.stderr
    assert not postmasters(point / ".harness" / "pg")


# -- bad input: one line naming file, line and key; exit 2; nothing written -----------------------------------

# case: file content → (":line:" after the path, words the message must contain)
BAD_QUERY_FILES: dict[str, tuple[bytes, str, list[str]]] = {
    "malformed TOML": (b"/* harness\nbudget_ms = = 5\n*/\nSELECT 1\n", ":2:", ["invalid TOML"]),
    "unknown key": (b"/* harness\nbudgett_ms = 5\n*/\nSELECT 1\n", ":2:", ["budgett_ms", "did you mean 'budget_ms'"]),
    "wrong type": (b'/* harness\nbudget_ms = "fast"\n*/\nSELECT 1\n', ":2:", ["budget_ms", "'fast'"]),
    "negative budget": (b"/* harness\nbudget_ms = -5\n*/\nSELECT 1\n", ":2:", ["budget_ms", "positive"]),
    "negative weight": (b"/* harness\nweight = -1\n*/\nSELECT 1\n", ":2:", ["weight", "0 or more"]),
    "not UTF-8": (b"SELECT 1 -- caf\xe9\n", ":1:", ["UTF-8"]),
    "empty file": (b"\n   \n", ":1:", ["empty file"]),
    "DELETE": (b"DELETE FROM users\n", ":1:", ["DELETE", "read-only"]),
    "UPDATE": (b"\nUPDATE users SET display_name = 'x'\n", ":2:", ["UPDATE", "read-only"]),
    "CTE with a write": (
        b"WITH gone AS (DELETE FROM users RETURNING user_id)\nSELECT count(*) FROM gone\n",
        ":1:15",
        ["DELETE", "write"],
    ),
    "SELECT FOR UPDATE": (b"SELECT * FROM users\nFOR UPDATE\n", ":2:1", ["FOR UPDATE", "lock"]),
    "nextval": (b"SELECT nextval('users_user_id_seq')\n", ":1:8", ["nextval() changes state"]),
    "SELECT INTO": (b"SELECT * INTO users_copy FROM users\n", ":1:", ["INTO creates a table"]),
    "two statements": (b"SELECT 1;\nSELECT 2\n", ":1:", ["statements"]),
    "parameter missing": (b"SELECT * FROM users WHERE user_id = %(user_id)s\n", ":1:37", ["user_id", "[params]"]),
    "parameter extra": (
        b"/* harness\n[params]\nuser_id = { value = 3 }\n*/\nSELECT count(*) FROM users\n",
        ":3:",
        ["'user_id' is never used"],
    ),
    "budget 1e308": (b"/* harness\nbudget_ms = 1e308\n*/\nSELECT 1\n", ":2:", ["budget_ms", "up to 3600000"]),
    "budget 1e26": (b"/* harness\nbudget_ms = 1e26\n*/\nSELECT 1\n", ":2:", ["budget_ms", "up to 3600000"]),
    "int draw past bigint": (
        b'/* harness\n[params]\nn = { draw = "int", min = 0, max = 100000000000000000000 }\n*/\nSELECT %(n)s\n',
        ":3:",
        ["does not fit a bigint"],
    ),
    "int draw max 1e20": (
        b'/* harness\n[params]\nn = { draw = "int", min = 0, max = 1e20 }\n*/\nSELECT %(n)s\n',
        ":3:",
        ["max must be int"],
    ),
    "offset_days huge": (
        b'/* harness\n[params]\nd = { draw = "anchor", offset_days = 99999999 }\n*/\nSELECT %(d)s\n',
        ":3:",
        ["offset_days must be within"],
    ),
    "value is a table": (
        b"/* harness\n[params]\nv = { value = { a = 1 } }\n*/\nSELECT %(v)s\n",
        ":3:",
        ["a value must be a string, number"],
    ),
    "only a comment": (b"-- nothing here\n", ":1:1", ["no SQL statement"]),
    "only semicolons": (b";;;\n", ":1:1", ["no SQL statement"]),
    "unparsable multi-statement": (
        b"BEGIN READ WRITE; DELETE FROM behavior_logs; COMMIT; SELECT 1 ORDER BY 1 USING <\n",
        ":1:",
        ["sqlglot cannot parse", "unparsed"],
    ),
    "statistics writer": (
        b"SELECT pg_restore_relation_stats('relname', 'users', 'reltuples', 5e8::real)\n",
        ":1:8",
        ["pg_restore_relation_stats() changes state"],
    ),
    "dblink": (b"SELECT * FROM dblink_exec('dbname=x', 'DELETE FROM t')\n", ":1:", ["dblink_exec() changes state"]),
    "draw that writes": (
        b'/* harness\n[params]\nu = { draw = "sql", sql = "DELETE FROM users RETURNING user_id" }\n*/\n'
        b"SELECT %(u)s::bigint\n",
        ":3:",
        ["draw sql of 'u'", "DELETE"],
    ),
}


def main_output(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`harness ARGS` in this process (fast): exit code, stdout, stderr."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = main(list(args))
    finally:
        signal.signal(signal.SIGTERM, previous)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


def tables_in(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


@pytest.mark.parametrize("case", list(BAD_QUERY_FILES))
def test_run_refuses_a_bad_query_file_before_touching_the_database(
    case: str, fresh_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, where, words = BAD_QUERY_FILES[case]
    catalog = tmp_path / "queries"
    catalog.mkdir()
    (catalog / "fine.sql").write_text("SELECT 1\n")
    bad = catalog / "bad.sql"
    bad.write_bytes(content)
    code, stdout, stderr = main_output(
        capsys, "run", "--dsn", fresh_dsn, "--queries", str(catalog), "--reports-dir", str(tmp_path / "r")
    )
    assert code == 2, stderr
    assert stdout == ""
    line = only_error_line(stderr)
    assert line.startswith(f"Error: {bad}{where}"), line
    for word in words:
        assert word in line, line
    assert tables_in(fresh_dsn) == [], "the run wrote to the database before refusing"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", [("run",), ("load", "--duration", "2s"), ("compare", "--strategies", "none,tuned")])
def test_every_measuring_command_refuses_a_query_that_writes(
    command: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "queries"
    catalog.mkdir()
    bad = catalog / "touch.sql"
    bad.write_text("/* harness\nweight = 1\n*/\nUPDATE users SET display_name = 'x'\n")
    reports = tmp_path / "r"
    args = ["--dsn", UNREACHABLE, "--queries", str(catalog), "--reports-dir", str(reports)]
    code, _, stderr = main_output(capsys, *command, *args)
    assert code == 2, stderr  # before connecting: the DSN points nowhere
    assert only_error_line(stderr).startswith(f"Error: {bad}:4:1: UPDATE statement")
    assert not reports.exists()


UNREACHABLE = f"host=127.0.0.1 port={free_port()} dbname=x connect_timeout=2"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--strategy", "tunned"), ["unknown strategy 'tunned'", "did you mean 'tuned'"]),
        (("--tier", "benchmrk"), ["unknown tier 'benchmrk'", "did you mean 'benchmark'"]),
        (("--only", "q_0"), ["no query named 'q_0'", "did you mean 'q0'"]),
        (("--iterations", "-3"), ["--iterations", "-3"]),
        (("--budget", "fast"), ["--budget", "fast"]),
        (("--prepare", "sometimes"), ["--prepare", "sometimes"]),
    ],
)
def test_run_refuses_bad_names_and_arguments_before_connecting(
    args: tuple[str, ...], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = sleepy_catalog(tmp_path / "queries", 1, 0)
    reports = tmp_path / "r"
    code, _, stderr = main_output(
        capsys, "run", "--dsn", UNREACHABLE, "--queries", str(catalog), "--reports-dir", str(reports), *args
    )
    assert code == 2, stderr  # not 3: the names are checked before the (unreachable) database
    text = " ".join(stderr.split())
    for word in words:
        assert word in text, stderr
    assert "Traceback" not in stderr
    assert not reports.exists()


def test_run_refuses_a_bad_tier_file_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tier = tmp_path / "mine.toml"
    tier.write_text("anchor_date = 2026-06-30\nusers = 10\ncourses = 2\nbehavior_logs = -5\n")
    catalog = sleepy_catalog(tmp_path / "queries", 1, 0)
    reports = tmp_path / "r"
    args = ["--queries", str(catalog), "--tier", str(tier), "--reports-dir", str(reports)]
    code, _, stderr = main_output(capsys, "run", "--dsn", UNREACHABLE, *args)
    assert code == 2 and not reports.exists()
    assert only_error_line(stderr).startswith(f"Error: {tier}:4: behavior_logs must be >= 0")


SECRET = "SECRETPW"


def assert_secret_nowhere(done: subprocess.CompletedProcess[str], reports: Path) -> None:
    assert SECRET not in done.stdout + done.stderr
    for path in reports.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_password_in_the_dsn_is_never_printed_nor_written(fresh_dsn: str, pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    catalog = sleepy_catalog(tmp_path / "queries", 1, 0)
    reports = tmp_path / "reports"
    nowhere = f"postgresql://u:{SECRET}@127.0.0.1:1/x?connect_timeout=2"
    done = run_harness("run", "--dsn", nowhere, "--queries", str(catalog), "--reports-dir", str(reports))
    assert done.returncode == 3, done.stderr
    assert "cannot connect" in error_line(done.stderr)
    assert_secret_nowhere(done, reports)
    assert list(reports.glob("*/run.json")), "the failed run left no report to check"

    # trust authentication ignores the password: a full, successful run with it in the DSN
    dbname = conninfo_to_dict(fresh_dsn)["dbname"]
    live = f"postgresql://harness:{SECRET}@127.0.0.1:{pg_server.status().port}/{dbname}"
    done = run_harness("run", "--dsn", live, "--queries", str(catalog), "--reports-dir", str(reports))
    assert done.returncode == 0, done.stderr
    assert {"run.json", "summary.md", "junit.xml", "report.html"} <= {p.name for p in reports.rglob("*")}
    assert_secret_nowhere(done, reports)

    done = run_harness("check", "--queries", str(catalog), "--dsn", nowhere)
    assert done.returncode == 3 and SECRET not in done.stdout + done.stderr


# -- data safety -----------------------------------------------------------------------------------------------


def test_run_refuses_to_seed_a_database_it_does_not_own(fresh_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, precious text)")
        conn.execute("INSERT INTO users VALUES (1, 'keep me')")
    catalog = sleepy_catalog(tmp_path / "queries", 1, 0)
    done = run_harness("run", "--dsn", fresh_dsn, "--queries", str(catalog), "--reports-dir", str(tmp_path / "r"))
    assert done.returncode == 2, done.stderr
    line = error_line(done.stderr)
    assert "would replace: users" in line and "--force" in line
    assert tables_in(fresh_dsn) == ["users"]
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT precious FROM users").fetchall() == [("keep me",)]


def test_a_strategy_comparison_spares_user_indexes_and_restores_the_original(fresh_dsn: str, tmp_path: Path) -> None:
    seed(fresh_dsn, "test", strategy="tuned")
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE INDEX my_own_idx ON users (display_name)")
    catalog = tmp_path / "queries"
    catalog.mkdir()
    (catalog / "users.sql").write_text("SELECT count(*) FROM users WHERE display_name > 'a'\n")
    options = CompareOptions(("none", "baseline"), tier="test", queries_dir=catalog, iterations=2, warmup=0, rounds=1,
                             write_rows=100, write_trials=1)  # fmt: skip
    compare_strategies(fresh_dsn, options)
    with psycopg.connect(fresh_dsn) as conn:
        indexes = set(existing_indexes(conn, TABLES))
        manifest = read_manifest(conn)
    assert indexes == set(load_strategy("tuned").index_names) | {"my_own_idx"}
    assert manifest is not None and manifest.strategy == "tuned"
    assert verify(fresh_dsn).intact
