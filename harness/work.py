"""Work metrics: what a query's timed executions cost the server in buffers, temp blocks and rows.

Timings move with the machine; work does not. For fixed data and draws, the shared buffers a query touches,
the temp blocks it spills and the rows it returns are (nearly) deterministic, so a comparison gates on work
first and on timing second.

Where the numbers come from (``Work.source``):

- ``pg_stat_statements``: the delta of the extension's counters for the query's ``queryid`` around the
  timed executions. The queryid is read from ``EXPLAIN (VERBOSE)`` on the measuring connection (its "Query
  Identifier" is the one pg_stat_statements records), and the counters are read on an *admin* connection,
  summed over every role in the database: a low-privilege measuring role cannot see other roles' rows, and
  the admin cannot see the measuring role's queryid unless it reads them itself. Another session running
  the same statement at the same moment would be counted too; ``calls`` then exceeds the executions timed.
- ``explain``: without the extension (a ``--dsn`` database that lacks it: the harness never creates it
  there; see ``harness.capabilities``), one
  ``EXPLAIN (ANALYZE, BUFFERS)`` per distinct draw of the timed slice, weighted by how often the draw occurs.
  Instrumented, so its times are not comparable with pg_stat_statements'; its buffer counts are.

Planning time is only counted by pg_stat_statements when ``pg_stat_statements.track_planning`` is on (the
embedded server turns it on); otherwise ``total_plan_time`` is 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import psycopg

from harness.db import connect
from harness.errors import DatabaseError
from harness.safety import explain_one

WorkSource = Literal["pg_stat_statements", "explain"]
_COUNTERS = (
    "calls",
    "shared_blks_hit",
    "shared_blks_read",
    "temp_blks_read",
    "temp_blks_written",
    "rows",
    "total_plan_time",
    "total_exec_time",
)


@dataclass(frozen=True)
class Work:
    """Totals over ``calls`` executions of one query (times in ms); the ``*_per_call`` values are what compares."""

    source: WorkSource
    calls: int
    shared_blks_hit: int
    shared_blks_read: int
    temp_blks_read: int
    temp_blks_written: int
    rows: int
    total_plan_time: float
    total_exec_time: float

    @property
    def shared_blks(self) -> int:
        """Shared buffers touched: hit in cache plus read from the OS or disk."""
        return self.shared_blks_hit + self.shared_blks_read

    @property
    def temp_blks(self) -> int:
        return self.temp_blks_read + self.temp_blks_written

    def per_call(self, counter: str) -> float:
        """``counter`` (a field name, or ``shared_blks`` / ``temp_blks``) divided by ``calls`` (0 when no calls)."""
        value = getattr(self, counter)
        return value / self.calls if self.calls else 0.0

    @property
    def shared_blks_per_call(self) -> float:
        return self.per_call("shared_blks")

    @property
    def temp_blks_per_call(self) -> float:
        return self.per_call("temp_blks")

    @property
    def rows_per_call(self) -> float:
        return self.per_call("rows")

    @property
    def hit_ratio(self) -> float | None:
        """Share of shared buffers found in cache: 1.0 is a warm run; None when nothing was touched."""
        return self.shared_blks_hit / self.shared_blks if self.shared_blks else None

    def describe(self) -> str:
        """ "12 shared buffers/call (100% hit), 0 temp blocks/call, 18 rows/call (pg_stat_statements)"."""
        hit = f" ({self.hit_ratio:.0%} hit)" if self.hit_ratio is not None else ""
        return (f"{self.shared_blks_per_call:,.1f} shared buffers/call{hit}, {self.temp_blks_per_call:,.1f} temp "
                f"blocks/call, {self.rows_per_call:,.1f} rows/call ({self.source})")  # fmt: skip

    def __add__(self, other: Work) -> Work:
        """Two slices of the same query (interleaved rounds) add up; the source becomes the weaker one."""
        source: WorkSource = "explain" if "explain" in (self.source, other.source) else "pg_stat_statements"
        return Work(source, *(getattr(self, f) + getattr(other, f) for f in _COUNTERS))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Work:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class WorkProbe:
    """Snapshots pg_stat_statements for one statement before and after a slice of timed executions.

    ``start`` is called on the measuring connection after the warm-up (the statement has run, so its
    queryid is known); ``finish`` returns the delta, or None when pg_stat_statements is not usable here (the
    caller then falls back to :func:`explain_work`). The admin connection is opened once per probe.
    """

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.queryid: int | None = None
        self._before: dict[str, float] | None = None

    def start(self, conn: psycopg.Connection, sql: str, params: Mapping[str, Any] | None) -> None:
        self.queryid = query_identifier(conn, sql, params)
        self._before = self._counters() if self.queryid is not None else None

    def finish(self) -> Work | None:
        if self._before is None:
            return None
        after = self._counters()
        if after is None:
            return None
        delta = {k: after[k] - self._before[k] for k in _COUNTERS}
        ints = {k: round(v) for k, v in delta.items() if k not in ("total_plan_time", "total_exec_time")}
        return Work("pg_stat_statements", **ints, total_plan_time=delta["total_plan_time"],
                    total_exec_time=delta["total_exec_time"])  # fmt: skip

    def _counters(self) -> dict[str, float] | None:
        try:
            with connect(self.admin_dsn, application_name="harness-work") as admin:
                row = admin.execute(_COUNTERS_SQL, [self.queryid]).fetchone()
        except (psycopg.Error, DatabaseError):
            return None
        return dict(zip(_COUNTERS, (float(v or 0) for v in row), strict=True)) if row else None


def query_identifier(conn: psycopg.Connection, sql: str, params: Mapping[str, Any] | None) -> int | None:
    """The queryid pg_stat_statements files ``sql`` under, from EXPLAIN (VERBOSE); None when not computed."""
    try:
        plan = explain_one(conn, "VERBOSE", sql, params)
    except psycopg.Error:
        return None
    top = plan[0] if plan else {}
    value = top.get("Query Identifier") if isinstance(top, Mapping) else None
    return int(value) if value else None


def explain_work(conn: psycopg.Connection, sql: str, param_sets: Sequence[Mapping[str, Any]]) -> tuple[Work, list[Any]]:
    """Work from one EXPLAIN (ANALYZE, BUFFERS) per distinct draw, weighted by repeats; plus each draw's plan.

    Returns the Work and the EXPLAIN JSON of every draw, in ``param_sets`` order (repeats share one plan).
    """
    keys = [draw_key(p) for p in param_sets]
    plans: dict[str, Any] = {}
    for key, params in zip(keys, param_sets, strict=True):
        if key not in plans:
            plans[key] = explain_one(conn, "ANALYZE, BUFFERS", sql, params)
    totals = Counter[str]()
    for key in keys:
        top = plans[key][0]
        plan = top["Plan"]
        totals["shared_blks_hit"] += plan.get("Shared Hit Blocks", 0)
        totals["shared_blks_read"] += plan.get("Shared Read Blocks", 0)
        totals["temp_blks_read"] += plan.get("Temp Read Blocks", 0)
        totals["temp_blks_written"] += plan.get("Temp Written Blocks", 0)
        totals["rows"] += int(plan.get("Actual Rows", 0) * max(plan.get("Actual Loops", 1), 1))
    plan_ms = sum(plans[k][0].get("Planning Time", 0.0) for k in keys)
    exec_ms = sum(plans[k][0].get("Execution Time", 0.0) for k in keys)
    work = Work("explain", len(keys), totals["shared_blks_hit"], totals["shared_blks_read"],
                totals["temp_blks_read"], totals["temp_blks_written"], totals["rows"], plan_ms, exec_ms)  # fmt: skip
    return work, [plans[k] for k in keys]


def draw_key(params: Mapping[str, Any] | None) -> str:
    """A stable text key of one parameter set (equal draws, equal keys)."""
    return repr(sorted((params or {}).items()))


_COUNTERS_SQL = f"""
SELECT {", ".join(f"coalesce(sum({c}), 0)" for c in _COUNTERS)}
FROM pg_stat_statements
WHERE queryid = %s AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
