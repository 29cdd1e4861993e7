"""The writes the harness may do before measuring, each named by the caller: extensions and statistics.

A run commits nothing while it measures, and on a database the harness did not seed it writes nothing at
all unless a flag names the step: ``--create-extensions`` (pg_stat_statements and pg_prewarm, where the
server ships them) and ``--analyze`` (fresh planner statistics for every table). The seed and the embedded
cluster's creation create the extensions themselves (``harness.extensions``): those databases are ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.capabilities import forget
from harness.db import connect
from harness.extensions import create_extensions


@dataclass(frozen=True)
class Maintenance:
    """The maintenance steps a user asked for, done once before measuring (never while)."""

    create_extensions: bool = False  # --create-extensions
    analyze: bool = False  # --analyze

    def run(self, dsn: str) -> list[str]:
        """Do the steps asked for on ``dsn``; what was done, one line each, for the report."""
        done: list[str] = []
        if not (self.create_extensions or self.analyze):
            return done
        with connect(dsn, application_name="harness-maintenance") as conn:
            if self.create_extensions:
                created = create_extensions(conn)
                forget(dsn)
                done.append(f"--create-extensions: created {', '.join(created) or 'nothing (all present)'}")
            if self.analyze:
                conn.execute("ANALYZE")
                done.append("--analyze: ANALYZE of every table the connecting role may analyze")
        return done
