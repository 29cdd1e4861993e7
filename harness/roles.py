"""The measuring role: who runs the user's SQL, so a query that tries to write meets a permission error.

On the embedded cluster the harness connects as ``harness_reader``, a LOGIN role that owns nothing and can
only read (member of ``pg_read_all_data``: SELECT on every table and USAGE on every schema, so no grant
goes stale when a seed creates new tables; no TEMP, no CREATE, no MAINTAIN, not superuser). It connects as
that role itself: a superuser session that merely ``SET ROLE`` could switch back with ``set_config``.

With ``--dsn`` the harness does not create roles on someone else's server: ``--read-role ROLE`` makes the
measuring connections ``SET ROLE`` (libpq ``options=-c role=ROLE``), and ``write_powers`` says, once, when
the measuring role could write anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import InputError
from harness.server import READER

if TYPE_CHECKING:
    import psycopg

    from harness.db import Target


@dataclass(frozen=True)
class Access:
    """Two ways into one database: the owner's (seeding, indexes, statistics) and the measuring role's."""

    admin_dsn: str
    reader_dsn: str
    reader_role: str | None = None  # SET LOCAL ROLE inside the owner's rolled-back transactions; None: same
    private_cluster: bool = False  # the harness's own cluster: nothing else writes there (harness.witness)

    @staticmethod
    def owner_only(dsn: str) -> Access:
        """Measure as the DSN's own user (a library call that names no role)."""
        return Access(dsn, dsn)


def access_for(target: Target, read_role: str | None = None) -> Access:
    """The embedded cluster measures as ``harness_reader``; an explicit DSN as ``read_role`` if given."""
    from psycopg import conninfo

    if target.server is not None:
        if read_role:
            raise InputError("--read-role is for --dsn: the embedded cluster always measures as harness_reader")
        return Access(target.dsn, conninfo.make_conninfo(target.dsn, user=READER), READER, private_cluster=True)
    if not read_role:
        return Access.owner_only(target.dsn)
    options = conninfo.conninfo_to_dict(target.dsn).get("options") or ""
    reader = conninfo.make_conninfo(target.dsn, options=f"{options} -c role={_option_value(read_role)}".strip())
    return Access(target.dsn, reader, read_role)


def _option_value(role: str) -> str:
    """A role name as a libpq ``options`` value (spaces and backslashes escaped with a backslash)."""
    return role.replace("\\", "\\\\").replace(" ", "\\ ")


# {maintain}: pg_maintain (VACUUM, ANALYZE, REINDEX … on every table) exists from PostgreSQL 17 on.
WRITE_POWERS = """
SELECT concat_ws('; ',
  CASE WHEN r.rolsuper THEN 'is a superuser' END,
  CASE WHEN r.rolbypassrls THEN 'bypasses row security' END,
  CASE WHEN pg_has_role(current_user, 'pg_write_all_data', 'USAGE') THEN 'has pg_write_all_data' END,
  {maintain}
  (SELECT 'can write to ' || string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid::regclass::text)
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg_toast%'
     AND (has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
          OR pg_has_role(current_user, c.relowner, 'USAGE'))))
FROM pg_roles r WHERE r.rolname = current_user
"""


def write_powers(conn: psycopg.Connection, has_pg_maintain: bool) -> str:
    """What the connection's current role could write ('' when nothing): the ``--dsn`` caveat, measured."""
    maintain = "CASE WHEN pg_has_role(current_user, 'pg_maintain', 'USAGE') THEN 'has pg_maintain' END,"
    row = conn.execute(WRITE_POWERS.format(maintain=maintain if has_pg_maintain else "")).fetchone()
    return row[0] if row and row[0] else ""


def measuring_warning(access: Access) -> str | None:
    """One line to print and to put in the report when the measuring role could write, else None."""
    from harness.capabilities import capabilities
    from harness.db import connect

    if access.reader_role:
        _refuse_unusable_role(access)
    has_pg_maintain = capabilities(access.admin_dsn).has_pg_maintain
    with connect(access.reader_dsn, application_name="harness-role-check") as conn:
        powers = write_powers(conn, has_pg_maintain)
    if not powers:
        return None
    return (
        f"the measuring role {_current(access)} can write ({_shorten(powers)}): queries are still sent one "
        "statement at a time and refused unless parsed, but only a read-only role makes writes impossible; "
        "pass --read-role ROLE (a role with only SELECT)"
    )


def _refuse_unusable_role(access: Access) -> None:
    """InputError (exit 2) when the read role does not exist or the DSN's user may not SET ROLE to it."""
    from harness.db import connect

    with connect(access.admin_dsn, application_name="harness-role-check") as conn:
        row = conn.execute(
            "SELECT pg_has_role(session_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s", [access.reader_role]
        ).fetchone()
        user = conn.execute("SELECT session_user").fetchone()
    role = access.reader_role
    if row is None:
        raise InputError(
            f"--read-role {role!r}: no such role; create it with only SELECT on the tables "
            f"(CREATE ROLE {role} NOLOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role})"
        )
    if not row[0]:
        who = user[0] if user else "the DSN's user"
        raise InputError(f"--read-role {role!r}: {who} is not a member of it; GRANT {role} TO {who}")


def _current(access: Access) -> str:
    from psycopg import conninfo

    return repr(access.reader_role or conninfo.conninfo_to_dict(access.admin_dsn).get("user") or "(default)")


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
