"""Shared fixtures: one real embedded PostgreSQL for the session, a fresh database per test that asks."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from harness.errors import ServerError
from harness.server import EmbeddedServer, find_binaries

REPO = Path(__file__).resolve().parent.parent
TEST_HOME = Path(os.environ.get("HARNESS_TEST_HOME", REPO / ".harness" / "test"))
_counter = itertools.count()
# The other majors the version tests run on: bin directories, separated by os.pathsep (Debian's 15 by default;
# .ci/run installs it). The embedded wheel's 18 is always in the matrix.
OTHER_PG_BINS = os.environ.get("HARNESS_TEST_PG_BINS", "/usr/lib/postgresql/15/bin").split(os.pathsep)
EMBEDDED = "embedded"


@pytest.fixture(scope="module", params=[EMBEDDED, *OTHER_PG_BINS])
def matrix_server(request: pytest.FixtureRequest) -> Iterator[EmbeddedServer]:
    """A private cluster of its own per major of the matrix (nothing else runs on it, so a test may watch the
    whole cluster's next transaction id), stopped after the module. Binaries that are missing are a failure, not
    a skip: CI installs them."""
    pg_bin = None if request.param == EMBEDDED else request.param
    try:
        binaries = find_binaries(pg_bin)
    except ServerError as exc:
        pytest.fail(f"PostgreSQL binaries for the version tests are missing ({exc}); install them (apt-get "
                    "install -y --no-install-recommends postgresql-15) or set HARNESS_TEST_PG_BINS")  # fmt: skip
    server = EmbeddedServer(TEST_HOME.parent / f"test-pg{binaries.major}", pg_bin=binaries.bindir)
    already_running = server.status().running
    server.ensure_running(persistent=True)  # autovacuum off, as every private cluster: no commit in a test's window
    yield server
    if not already_running:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedServer]:
    """The test session's embedded cluster: kept running during the session, stopped at its end unless
    another session (running concurrently) had started it."""
    server = EmbeddedServer(TEST_HOME)
    already_running = server.status().running
    server.ensure_running(persistent=True)
    yield server
    if not already_running:
        server.stop()


@pytest.fixture(scope="session")
def admin_dsn(pg_server: EmbeddedServer) -> str:
    port = pg_server.status().port
    assert port is not None
    return pg_server.dsn(port, "postgres")


@pytest.fixture
def new_database(admin_dsn: str, pg_server: EmbeddedServer) -> Callable[[], str]:
    """Factory: create an empty database for this test and return its DSN (dropped afterwards)."""
    created: list[str] = []

    def make() -> str:
        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        created.append(name)
        port = pg_server.status().port
        assert port is not None
        return pg_server.dsn(port, name)

    yield make  # type: ignore[misc]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for name in created:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_dsn(new_database: Callable[[], str]) -> str:
    return new_database()


def run_harness(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user types it (a separate process), with the test cluster as its home."""
    full_env = {**os.environ, "HARNESS_HOME": str(TEST_HOME), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
        check=False,
    )


def wait_for(condition: Callable[[], object], timeout: float = 60, interval: float = 0.01) -> object:
    """Poll ``condition`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {condition}")


@pytest.fixture(scope="module")
def tier_dsn(admin_dsn: str, pg_server: EmbeddedServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """One database seeded with tier test (baseline indexes), shared by the tests of one module."""
    from harness.seed import seed

    name = f"m{os.getpid()}_{request.module.__name__.rsplit('.', 1)[-1]}".lower()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    port = pg_server.status().port
    assert port is not None
    dsn = pg_server.dsn(port, name)
    seed(dsn, "test", 42, "baseline")
    yield dsn
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
