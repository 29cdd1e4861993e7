"""The embedded server's lifecycle through the CLI, in private homes: start, reuse, stop, stale pid files,
and no server left behind by a command that started one itself (normal exit, Ctrl-C, SIGTERM).

Each test here pays for its own initdb (about a second), so there are few of them, each walking a whole story.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest
from conftest import REPO, run_harness, wait_for

from harness.server import DATABASE, EmbeddedServer


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A project home of its own; as root the cluster lands in /tmp/harness-cluster-* (tmp_path is 0700)."""
    home = tmp_path / ".harness"
    yield home
    server = EmbeddedServer(home)
    server.destroy()
    if server.data_dir.parent.name.startswith("harness-cluster-"):
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def harness(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_harness(*args, env={"HARNESS_HOME": str(home)})


def postgres_processes(data_dir: Path) -> list[int]:
    """Processes serving ``data_dir``: the postmaster names it in its arguments, every child works in it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            cwd = os.readlink(proc / "cwd")
        except OSError:  # gone, or a zombie
            continue
        if os.fsencode(data_dir) in cmdline.split(b"\0") or cwd == str(data_dir):
            found.append(int(proc.name))
    return found


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def test_start_status_url_reuse_stop_and_stale_pid_files(home: Path, pg_server: EmbeddedServer) -> None:
    server = EmbeddedServer(home)
    done = harness(home, "db", "start")
    assert done.returncode == 0, done.stderr
    postmaster = server.status().pid
    assert postmaster is not None and postmaster in postgres_processes(server.data_dir)
    if os.geteuid() == 0:
        assert uid_of(postmaster) == server.user.uid != 0

    status = harness(home, "db", "status")
    assert status.returncode == 0 and status.stdout.startswith(f"running: pid {postmaster}")
    url = harness(home, "db", "url").stdout.strip()
    assert url.startswith("postgresql://") and "password" not in url, url  # what DATABASE_URL expects
    libpq = harness(home, "db", "url", "--libpq").stdout.strip()
    assert libpq.startswith("host=") and f"port={server.status().port}" in libpq
    assert psycopg.conninfo.conninfo_to_dict(libpq)["dbname"] == url.rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database(), current_setting('listen_addresses')").fetchone() == (
            DATABASE,
            "127.0.0.1",
        )
        assert "pg_stat_statements" in conn.execute("SHOW shared_preload_libraries").fetchone()[0]  # type: ignore[index]
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone() == (1,)

    # A command run while `db start` holds the server uses it and does not stop it.
    done = harness(home, "seed", "--tier", "test")
    assert done.returncode == 0, done.stderr
    assert server.status().pid == postmaster

    done = harness(home, "db", "stop")
    assert done.returncode == 0 and "stopped" in done.stdout
    assert postgres_processes(server.data_dir) == []
    assert harness(home, "db", "status").stdout.startswith("stopped")

    # Warm start: the cluster exists, so it starts without initdb (its speed is README's figure, not a test).
    dsn = EmbeddedServer(home).ensure_running(persistent=True)
    with psycopg.connect(dsn) as conn:  # the seeded data survived the restart
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (20,)

    # A killed server leaves a postmaster.pid naming a dead process: detected, removed, started afresh.
    killed = server.status().pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: not postgres_processes(server.data_dir))
    assert (server.data_dir / "postmaster.pid").exists()
    assert harness(home, "db", "status").stdout.startswith("stopped")
    done = harness(home, "db", "start")
    assert done.returncode == 0, done.stderr
    restarted = server.status().pid
    assert restarted not in (None, killed) and restarted in postgres_processes(server.data_dir)
    harness(home, "db", "stop")

    # A pid file naming a live postgres of *another* cluster (pid reuse after a reboot) is not ours either.
    other = pg_server.status().pid
    assert other is not None
    (server.data_dir / "postmaster.pid").write_text(f"{other}\n{server.data_dir}\n")
    assert harness(home, "db", "status").stdout.startswith("stopped")
    done = harness(home, "db", "start")
    assert done.returncode == 0, done.stderr
    ours = server.status().pid
    assert ours not in (None, other) and ours in postgres_processes(server.data_dir)
    with psycopg.connect(harness(home, "db", "url").stdout.strip()) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (20,)

    done = harness(home, "db", "destroy", "--yes")
    assert done.returncode == 0
    assert postgres_processes(server.data_dir) == [] and not server.data_dir.exists()
    assert pg_server.status().pid == other  # the other cluster was never touched


def test_commands_that_start_the_server_leave_none_running(home: Path) -> None:
    server = EmbeddedServer(home)
    done = harness(home, "seed", "--tier", "test")  # cold: initdb, start, seed, stop
    assert done.returncode == 0, done.stderr
    assert server.initialised()
    assert postgres_processes(server.data_dir) == []
    assert not server.status().running

    def launch(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=REPO,
            env={**os.environ, "HARNESS_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # Ctrl-C the moment the server appears (while it starts): it is stopped again.
    child = launch("seed", "--tier", "test")
    try:
        wait_for(lambda: postgres_processes(server.data_dir) or child.poll() is not None)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=60) in (0, 130, -signal.SIGINT)  # -SIGINT: hit while exiting
    finally:
        if child.poll() is None:
            child.kill()
    assert postgres_processes(server.data_dir) == []

    # SIGTERM in the middle of a seed (streaming COPY): exit 143, server stopped.
    child = launch("seed", "--tier", "benchmark")
    try:
        port = wait_for(lambda: server.status().port if server.status().running else None)

        def copying() -> bool:
            try:
                with psycopg.connect(server.dsn(port), connect_timeout=2) as conn:
                    return bool(
                        conn.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY % FROM STDIN%'"
                        ).fetchone()[0]
                    )  # type: ignore[index]
            except psycopg.OperationalError:
                return False

        wait_for(copying, interval=0.02)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 143
    finally:
        if child.poll() is None:
            child.kill()
    assert postgres_processes(server.data_dir) == []
