"""The anchor draws count back from on data the harness did not seed, as the project config fixes it.

Seeded data carries its anchor (the manifest's). Other data has none, and "now" makes two runs on different
days draw different parameters, so a two-run compare can no longer pair them by draw. A project config's
``anchor`` fixes it: a date, or ``max:table.column``, the day of the column's latest value (read once per
draw, in a read-only transaction). Either way the anchor is midnight after that day (UTC), as a tier's is.
psycopg is imported inside the function: Locust processes import this module before gevent patches.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from harness.config import Anchor, project_config
from harness.errors import InputError

if TYPE_CHECKING:
    import psycopg


def configured_anchor(conn: psycopg.Connection | None) -> dt.datetime | None:
    """The project config's anchor (a column's max is read through ``conn``); None when it sets none."""
    anchor = project_config().anchor
    if anchor is None or (anchor.date is None and conn is None):
        return None
    day = anchor.date if anchor.date is not None else _latest_day(conn, anchor)  # type: ignore[arg-type]
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def unseeded_anchor_source() -> str:
    """What draws on unseeded data count back from, as run.json records it."""
    project = project_config()
    if project.anchor is None:
        return "now (unseeded data, and no anchor in a project config: draws follow the clock)"
    return f"{project.anchor.text} ({project.origin('anchor')})"


def _latest_day(conn: psycopg.Connection, anchor: Anchor) -> dt.date:
    import psycopg
    from psycopg import sql

    *table, column = anchor.column
    where = project_config().origin("anchor")
    query = sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(*table))
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        problem = str(exc).strip().splitlines()[0]
        raise InputError(f"{where}: {anchor.text}: {problem}; name an existing column, or set a date") from None
    value = row[0] if row else None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    found = "no rows" if value is None else f"a {type(value).__name__}"
    raise InputError(f"{where}: {anchor.text}: the column holds {found}, not dates; set a date instead")
