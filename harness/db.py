"""Where the database is and how to talk to it: DSN resolution, connections, password redaction.

Order: ``--dsn`` / ``HARNESS_DSN``, then the variable the project config names (``dsn_env``), then
``DATABASE_URL``, then libpq's ``PG*`` variables, and otherwise the embedded cluster (see
``harness.server``). psycopg is imported inside the functions: Locust processes import this module, and
gevent must patch the standard library before psycopg is imported.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from harness.config import project_config
from harness.errors import DatabaseError, InputError
from harness.server import EmbeddedServer

if TYPE_CHECKING:
    import psycopg


_ENUMERATED_OPTIONS = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "sslnegotiation": ("postgres", "direct"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
}
LIBPQ_TARGET_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE")
CONNECT_TIMEOUT_S = 10


@dataclass
class Target:
    """A database to work on: its DSN, and the embedded server behind it when the harness owns one."""

    dsn: str
    source: str  # "--dsn", "HARNESS_DSN", the config's dsn_env, "DATABASE_URL", "PG* environment", "embedded"
    server: EmbeddedServer | None = None

    @property
    def display(self) -> str:
        return redact(self.dsn)


def explicit_dsn(dsn: str | None = None) -> tuple[str, str] | None:
    """The DSN the user chose (argument or environment), with where it came from; None for embedded."""
    if dsn:
        return dsn, "--dsn"
    for var in ("HARNESS_DSN", project_config().dsn_env, "DATABASE_URL"):
        if var and os.environ.get(var):
            return os.environ[var], var
    if any(os.environ.get(var) for var in LIBPQ_TARGET_VARS):
        return "", "PG* environment"
    return None


def resolve(dsn: str | None = None, project: Path | None = None, pg_bin: str | None = None) -> Target:
    """Pick the database: an explicit one if given, else the embedded cluster (started on demand)."""
    chosen = explicit_dsn(dsn)
    if chosen is not None:
        validate_dsn(chosen[0])
        return Target(dsn=chosen[0], source=chosen[1])
    server = EmbeddedServer(harness_home(project), pg_bin=pg_bin)
    return Target(dsn=server.ensure_running(), source="embedded", server=server)


def harness_home(project: Path | None = None) -> Path:
    """The per-project state folder (``.harness/``), overridable with HARNESS_HOME."""
    if os.environ.get("HARNESS_HOME"):
        return Path(os.environ["HARNESS_HOME"])
    return (project or Path.cwd()) / ".harness"


def validate_dsn(dsn: str) -> None:
    """Reject a malformed DSN before trying to connect (exit 2, not 3)."""
    from psycopg import conninfo

    try:
        options = conninfo.conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg raises ProgrammingError with libpq's text
        raise InputError(f"malformed DSN {redact(dsn)!r}: {_first_line(str(exc))}") from None
    for key, allowed in _ENUMERATED_OPTIONS.items():  # libpq would only say so when connecting (exit 3)
        value = options.get(key)
        if value is not None and str(value) not in allowed:
            raise InputError(f"DSN {redact(dsn)!r}: {key}={value!r} is not one of {', '.join(allowed)}")


def url(dsn: str) -> str:
    """The ``postgresql://`` URL of a DSN (what DATABASE_URL expects), without any password in it."""
    from psycopg import conninfo

    parts = {k: v for k, v in conninfo.conninfo_to_dict(dsn).items() if k != "password" and v is not None}
    user = quote(str(parts.pop("user", "")), safe="")
    host = str(parts.pop("host", ""))
    port = parts.pop("port", None)
    dbname = quote(str(parts.pop("dbname", "")), safe="")
    netloc = (f"{user}@" if user else "") + (quote(host, safe="") if host.startswith("/") else host)
    if port:
        netloc += f":{port}"
    query = f"?{urlencode(parts)}" if parts else ""
    return f"postgresql://{netloc}/{dbname}{query}"


def connect(dsn: str, *, autocommit: bool = True, application_name: str = "harness") -> psycopg.Connection:
    """Open a connection or raise DatabaseError with a one-line, password-free reason."""
    import psycopg

    try:
        return psycopg.connect(
            dsn,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {redact(dsn) or 'the PG* target'}: {_first_line(str(exc))}") from None


_URL_PASSWORD = re.compile(r"(://[^:/?#@]*:)([^@/?#]*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace any password in a DSN (URL or key=value form), or in text that quotes one, by ***."""
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    return _KV_PASSWORD.sub(r"\1***", text)


def _first_line(text: str) -> str:
    return redact(text.strip().splitlines()[0] if text.strip() else "unknown error")
