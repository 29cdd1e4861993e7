"""The query layer: the catalog as a small importable API — list queries, draw parameters, run one by name.

The CLI, the Locust users of ``harness load``, the pytest plugin and an application's own tests all drive
the same ``queries/*.sql`` through it, never a copy::

    layer = QueryLayer(dsn)
    with layer.connect() as conn:
        rows = layer.execute(conn, "daily_active_users", layer.draw_params("daily_active_users", 0))

psycopg is imported inside functions only: a Locust process must let gevent patch the standard library
before psycopg chooses how to wait on sockets (see ``harness.load.green``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import paths
from harness.catalog import Catalog, Query, load_catalog
from harness.errors import InputError
from harness.safety import execute_one, read_only

if TYPE_CHECKING:
    import numpy as np
    import psycopg

    from harness.params import ParamSampler


class QueryLayer:
    """One catalog bound to one database: what to run, with which parameters, and how to run it."""

    def __init__(self, dsn: str, queries_dir: Path | None = None, seed: int = 42, only: Sequence[str] = ()) -> None:
        self.dsn = dsn
        self.seed = seed
        self.catalog: Catalog = load_catalog(queries_dir or paths.queries_dir()).select(list(only))
        if not self.catalog.queries:
            raise InputError(f"no queries in {self.catalog.directory}; add .sql files or pass --queries DIR")
        # Imported here: the parser (sqlglot) is heavy, and psycopg must wait for gevent's patch in Locust.
        from harness.check import refuse_unrunnable

        refuse_unrunnable(self.catalog)  # a query that writes is refused before anything runs
        self._sampler: ParamSampler | None = None
        self._sampler_pid = 0

    def queries(self) -> list[Query]:
        """The selected catalog entries, sorted by name."""
        return list(self.catalog.queries)

    def query(self, name: str) -> Query:
        """The query called ``name`` (InputError naming the closest names otherwise)."""
        return self.catalog.get(name)

    def timeout_ms(self) -> int:
        """The statement_timeout of a connection that runs any of the queries: measure's rule, per budget."""
        from harness.measure import MeasureOptions

        options = MeasureOptions()
        return max(options.timeout_ms(q.budget_ms) for q in self.catalog.queries)

    def connect(self, prepare: str = "auto", timeout_ms: int | None = None) -> psycopg.Connection:
        """A connection like the measuring one: autocommit, read-only, with a statement_timeout."""
        from harness.measure import timing_connection

        return timing_connection(self.dsn, prepare, timeout_ms or self.timeout_ms())

    def draw_params(self, name: str, rng_or_seed: np.random.Generator | int) -> dict[str, Any]:
        """One parameter set for ``name``: an int is a draw index (reproducible), a Generator a stream."""
        return self.sampler().draw(self.query(name), rng_or_seed)

    def execute(self, conn: psycopg.Connection, name: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run query ``name`` with bound ``params`` and fetch every row, in a read-only transaction that is
        rolled back (``safety.read_only``)."""
        with conn.cursor() as cursor, read_only(conn):
            execute_one(cursor, self.query(name).sql, params)
            return cursor.fetchall()

    def sampler(self) -> ParamSampler:
        """The parameter sampler, on a connection of its own, opened on first use in this process."""
        if self._sampler is None or self._sampler_pid != os.getpid():  # a fork must not share the socket
            from harness.params import ParamSampler

            conn = self.connect()
            self._sampler = ParamSampler(conn, data_anchor(conn), self.seed)
            self._sampler_pid = os.getpid()
        return self._sampler

    def close(self) -> None:
        """Close the sampler's connection (in this process)."""
        if self._sampler is not None and self._sampler_pid == os.getpid():
            self._sampler.conn.close()
        self._sampler = None


def data_anchor(conn: psycopg.Connection) -> dt.datetime:
    """The seeded data's anchor (exclusive upper bound of its timestamps); for unseeded data the project
    config's anchor, else now (UTC)."""
    from harness.seed import anchor_of, read_manifest  # imports psycopg: only once gevent may have patched

    return anchor_of(read_manifest(conn), conn)
