"""Parameter sampling: turn a query's declared draws into concrete, seeded values from the live database.

Draws are deterministic: the values for (seed, query, draw index) are the same on every machine and in every
order of asking, so two index strategies are measured with exactly the same parameters. ``sql`` draws are
queried once per sampler (read-only) and cached; their rows are sorted so the database's row order does not
matter.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from harness.catalog import ParamSpec, Query
from harness.errors import InputError
from harness.safety import execute_one, read_only

if TYPE_CHECKING:
    import psycopg


class ParamSampler:
    """Draws parameter sets for catalog queries against one database, anchored at the data's anchor time."""

    def __init__(self, conn: psycopg.Connection, anchor: datetime, seed: int):
        self.conn = conn
        self.anchor = anchor if anchor.tzinfo is not None else anchor.replace(tzinfo=UTC)
        self.seed = seed
        self._pools: dict[str, tuple[list[object], np.ndarray | None]] = {}

    def draw(self, query: Query, rng_or_index: np.random.Generator | int) -> dict[str, object]:
        """One parameter set: a dict ready to bind to ``query.sql``.

        An int is a draw index: draw i of a query is the same whatever else was drawn before.
        """
        rng = rng_or_index if isinstance(rng_or_index, np.random.Generator) else self.rng(query, rng_or_index)
        return {spec.name: self._value(query, spec, rng) for spec in query.params}

    def draw_sets(self, query: Query, n: int, seed: int | None = None) -> list[dict[str, object]]:
        """``n`` parameter sets (draw indexes 0..n-1), under ``seed`` or the sampler's own."""
        return [self.draw(query, self.rng(query, i, seed)) for i in range(n)]

    def rng(self, query: Query, index: int, seed: int | None = None) -> np.random.Generator:
        """The generator for draw ``index`` of ``query``: keyed by seed, query name and index."""
        key = zlib.crc32(query.name.encode("utf-8"))
        return np.random.default_rng([self.seed if seed is None else seed, key, index])

    def _value(self, query: Query, spec: ParamSpec, rng: np.random.Generator) -> object:
        if spec.draw == "anchor":
            return self.anchor + timedelta(days=spec.offset_days)
        if spec.draw == "value":
            return spec.value
        if spec.draw == "choice":
            return spec.values[int(rng.integers(len(spec.values)))]
        if spec.draw == "int":
            return int(rng.integers(spec.min, spec.max, endpoint=True))
        values, weights = self._pool(query, spec)
        return values[int(rng.choice(len(values), p=weights))]

    def _pool(self, query: Query, spec: ParamSpec) -> tuple[list[object], np.ndarray | None]:
        """The candidate values (and normalized weights) of a sql draw, fetched once."""
        cache_key = f"{spec.weighted}:{spec.sql}"
        if cache_key not in self._pools:
            self._pools[cache_key] = self._fetch_pool(query, spec)
        return self._pools[cache_key]

    def _fetch_pool(self, query: Query, spec: ParamSpec) -> tuple[list[object], np.ndarray | None]:
        where = f"{query.path}:{spec.line}: parameter {spec.name!r}"
        params = {"anchor": self.anchor} if "%(anchor)s" in spec.sql else None
        import psycopg

        try:
            with read_only(self.conn):  # a read-only savepoint inside an open transaction
                cursor = self.conn.cursor()
                execute_one(cursor, spec.sql, params)  # one statement: the server refuses a second
                rows = cursor.fetchall()
        except (psycopg.ProgrammingError, psycopg.DataError, psycopg.errors.ReadOnlySqlTransaction) as exc:
            # several statements, a write, an unknown column or table, a permission the reader lacks
            raise InputError(f"{where}: the draw query failed: {_first_line(exc)}; fix its sql") from None
        if not rows:
            raise InputError(f"{where}: the draw query returned no rows (is the database seeded?)")
        width = 2 if spec.weighted else 1
        if len(rows[0]) < width:
            raise InputError(f"{where}: weighted = true needs a second column with the weight")
        rows = sorted((row[:width] for row in rows), key=lambda row: (row[0] is None, row[0]))
        values = [row[0] for row in rows]
        if not spec.weighted:
            return values, None
        weights = np.array([float(row[1]) for row in rows])
        if (weights < 0).any() or weights.sum() <= 0:
            raise InputError(f"{where}: weights must be non-negative with a positive sum")
        return values, weights / weights.sum()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
