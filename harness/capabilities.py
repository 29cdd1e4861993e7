"""What this server can do, asked once per target: the one place where PostgreSQL majors differ.

The harness supports PostgreSQL 14–18. Everything it sends was checked against each major; what differs is
asked here, never guessed elsewhere from a version string:

- ``pg_maintain`` (a predefined role from 17) is only named in the write-power check when it exists;
- pg_stat_statements (its columns ``calls``, ``rows``, ``shared_blks_*``, ``temp_blks_*``,
  ``total_plan_time`` and ``total_exec_time`` exist in every supported major; 17 renamed only the
  ``blk_*_time`` columns, which the harness does not read) is used when it is installed in the database
  *and* preloaded, else work comes from EXPLAIN;
- pg_prewarm warms the cache when it is installed, else the tables are read.

The same for every supported major, so asked nowhere: EXPLAIN ``ANALYZE``, ``BUFFERS`` (on by default from
18, always named), ``SETTINGS``, ``VERBOSE`` (its "Query Identifier" from 14, with ``compute_query_id``'s
default ``auto`` once pg_stat_statements is loaded) and ``FORMAT JSON``; ``pg_read_all_data`` /
``pg_write_all_data`` (14); ``pg_partition_tree`` (12); ``pg_current_snapshot``, ``pg_xact_status`` and
``pg_visible_in_snapshot`` (13); the advisory lock functions. Not used at all, so no fallback is needed:
EXPLAIN ``SERIALIZE`` / ``MEMORY`` (17) and ``GENERIC_PLAN`` (16; ``plan_cache_mode`` forces generic plans),
``pg_stat_statements_info`` (14), ``pg_restore_relation_stats`` (18).

Nothing is ever created here: on a database the harness did not seed, a missing extension is a note in the
report, with the command a DBA would run (``Capabilities.notes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.db import connect
from harness.extensions import EXTENSIONS, PRELOADED

SUPPORTED_MAJORS = (14, 15, 16, 17, 18)


# A loaded module defines its settings (pg_stat_statements.max, …): that says it is preloaded, to any role
# (shared_preload_libraries itself is readable only by superusers and pg_read_all_settings).
_PROBE = """
SELECT current_setting('server_version_num')::int,
       ARRAY(SELECT DISTINCT split_part(name, '.', 1) FROM pg_settings WHERE name LIKE '%.%' ORDER BY 1),
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_maintain'),
       ARRAY(SELECT extname::text FROM pg_extension ORDER BY 1),
       ARRAY(SELECT name::text FROM pg_available_extensions ORDER BY 1)
"""


@dataclass(frozen=True)
class Capabilities:
    """One server and database, as they answered: version, predefined roles, extensions."""

    server_version_num: int
    preloaded: frozenset[str]  # modules loaded at server start (those that define settings of their own)
    has_pg_maintain: bool
    installed: frozenset[str]  # extensions created in this database
    available: frozenset[str]  # extensions the server ships (CREATE EXTENSION would work)

    @property
    def major(self) -> int:
        return self.server_version_num // 10000

    @property
    def pg_stat_statements(self) -> bool:
        """pg_stat_statements counts this database's statements (installed here and preloaded)."""
        return "pg_stat_statements" in self.installed and "pg_stat_statements" in self.preloaded

    @property
    def pg_prewarm(self) -> bool:
        return "pg_prewarm" in self.installed

    def notes(self) -> list[str]:
        """What the report should say about this server: an unsupported major, and one note per extension
        the harness would use but cannot here, with what that costs and the command a DBA would run."""
        usable = {"pg_stat_statements": self.pg_stat_statements, "pg_prewarm": self.pg_prewarm}
        notes = []
        if self.major not in SUPPORTED_MAJORS:
            notes.append(f"note: PostgreSQL {self.major} is not one of the supported majors "
                         f"({SUPPORTED_MAJORS[0]}–{SUPPORTED_MAJORS[-1]}): results may be wrong")  # fmt: skip
        for name, cost in EXTENSIONS.items():
            if usable[name]:
                continue
            steps = [] if name in self.available else [f"install contrib (Debian: postgresql-{self.major})"]
            if name in PRELOADED and name not in self.preloaded:
                steps.append(f"add {name} to shared_preload_libraries and restart")
            if name not in self.installed:
                steps.append(f"CREATE EXTENSION {name};")
            state = "preloaded" if name in self.installed else "installed in this database"
            notes.append(f"note: {name} is not {state}: {cost}; a DBA adds it with: {', then '.join(steps)}")
        return notes


_known: dict[str, Capabilities] = {}


def capabilities(dsn: str) -> Capabilities:
    """The capabilities of the database at ``dsn``, asked on first use and remembered for this process."""
    if dsn not in _known:
        with connect(dsn, application_name="harness-capabilities") as conn:
            row = conn.execute(_PROBE).fetchone()
        assert row is not None
        version, preload, maintain, installed, available = row
        _known[dsn] = Capabilities(
            server_version_num=int(version),
            preloaded=frozenset(preload),
            has_pg_maintain=bool(maintain),
            installed=frozenset(installed),
            available=frozenset(available),
        )
    return _known[dsn]


def forget(dsn: str) -> None:
    """Ask again next time: the harness itself just created extensions in this database (at seed time)."""
    _known.pop(dsn, None)
