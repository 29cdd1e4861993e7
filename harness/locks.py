"""Seeding and measuring exclude each other on one database, so a report's fingerprint is the data it measured.

One PostgreSQL advisory lock per database (``DATA_LOCK_KEY``): run, compare, load and the pytest plugin
hold it *shared* on an owner connection for as long as they measure; seed and a strategy switch take it
*exclusively* in their transaction, and ``compare --strategies`` (which switches indexes itself) for its
whole duration. A command that must wait says so once on stderr and gives up after ``wait_seconds()``
(``HARNESS_LOCK_WAIT``, default 300 s) with UnsafeOperation (exit 2) naming who holds the lock.

The lock keeps harness commands apart; ``harness.witness`` proves at the end of a run that nothing else wrote.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from harness.errors import UnsafeOperation
from harness.server import wait_seconds

if TYPE_CHECKING:
    import psycopg

DATA_LOCK_KEY = 0x6861726E  # "harn"
_EXCLUSIVE_HERE: set[tuple[str, str, str]] = set()  # databases this process holds exclusively


def _database(conn: psycopg.Connection) -> tuple[str, str, str]:
    info = conn.info
    return (info.host, str(info.port), info.dbname)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _acquire(conn: psycopg.Connection, function: str, doing: str, on_wait: Callable[[str], None] | None = None) -> None:
    deadline = time.monotonic() + wait_seconds()
    told = False
    while True:
        row = conn.execute(f"SELECT {function}(%s)", [DATA_LOCK_KEY]).fetchone()
        if row and row[0]:
            return
        others = holders(conn)
        if time.monotonic() >= deadline:
            raise UnsafeOperation(
                f"cannot {doing}: {others or 'another harness command'} is using this database; "
                "wait for it to finish and retry (or set HARNESS_LOCK_WAIT to wait longer)"
            )
        if not told:
            (on_wait or _say)(f"waiting to {doing}: {others or 'another harness command'} is using this database …")
            told = True
        time.sleep(0.2)


def holders(conn: psycopg.Connection) -> str:
    """Who else holds the data lock: 'harness run (pid 123, measuring)', …"""
    rows = conn.execute(
        "SELECT a.pid, coalesce(nullif(a.application_name, ''), 'a client'), l.mode FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.objid = %s AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.pid <> pg_backend_pid() ORDER BY a.pid",
        [DATA_LOCK_KEY],
    ).fetchall()
    return ", ".join(f"{name} (backend pid {pid})" for pid, name, _ in rows)


@contextlib.contextmanager
def measuring(dsn: str, command: str) -> Iterator[None]:
    """Hold the data lock shared while the block measures: no seed or strategy switch can start meanwhile."""
    from harness.db import connect

    with connect(dsn, application_name=f"harness {command}") as conn:
        if _database(conn) in _EXCLUSIVE_HERE:
            yield
            return
        _acquire(conn, "pg_try_advisory_lock_shared", f"measure ({command})")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # the server may be gone; the session lock dies with it
                conn.execute("SELECT pg_advisory_unlock_shared(%s)", [DATA_LOCK_KEY])


@contextlib.contextmanager
def exclusively(dsn: str, command: str) -> Iterator[None]:
    """Hold the data lock exclusively for the block (this process's own seeds and switches go ahead)."""
    from harness.db import connect

    with connect(dsn, application_name=f"harness {command}") as conn:
        database = _database(conn)
        if database in _EXCLUSIVE_HERE:  # re-entered (a seed inside compare --strategies): already ours
            yield
            return
        _acquire(conn, "pg_try_advisory_lock", command)
        _EXCLUSIVE_HERE.add(database)
        try:
            yield
        finally:
            _EXCLUSIVE_HERE.discard(database)
            with contextlib.suppress(Exception):
                conn.execute("SELECT pg_advisory_unlock(%s)", [DATA_LOCK_KEY])


def lock_for_change(conn: psycopg.Connection, doing: str) -> None:
    """Take the data lock exclusively until ``conn``'s transaction ends (seed, strategy switch), waiting for
    measuring commands to finish; a no-op when this process already holds it (``exclusively``)."""
    if _database(conn) not in _EXCLUSIVE_HERE:
        _acquire(conn, "pg_try_advisory_xact_lock", doing)
