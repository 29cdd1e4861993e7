"""Write cost of an index strategy: insert throughput into one of the seeded tables, every trial rolled back."""

from __future__ import annotations

import time

import psycopg

from harness.db import connect
from harness.errors import InputError

DEFAULT_WRITE_ROWS = 20_000
DEFAULT_WRITE_TRIALS = 3


def insert_throughput(dsn: str, table: str, rows: int, trials: int = DEFAULT_WRITE_TRIALS) -> list[float]:
    """Rows per second of inserting ``rows`` copies of existing rows into ``table``, each trial rolled back.

    The batch copies the table's own rows (so values, foreign keys and payload sizes are realistic) with
    the primary key moved past the current maximum and every timestamp column moved past the data's last
    one, the way new events arrive. One untimed trial warms the caches first.
    """
    with connect(dsn, autocommit=False) as conn:
        sql = _copy_rows_sql(conn, table, rows)
        conn.rollback()
        speeds = []
        for trial in range(trials + 1):
            try:
                started = time.perf_counter()
                conn.execute(sql)
                elapsed = time.perf_counter() - started
            except psycopg.Error as exc:
                raise InputError(
                    f"cannot measure write cost on {table}: copying its rows failed "
                    f"({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); pick another write table"
                ) from None
            finally:
                conn.rollback()
            if trial:
                speeds.append(rows / elapsed if elapsed > 0 else float("inf"))
    return speeds


def _copy_rows_sql(conn: psycopg.Connection, table: str, rows: int) -> str:
    """The INSERT ... SELECT of one batch; offsets are computed here so the timed statement only inserts."""
    columns = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "       coalesce(a.attnum = ANY (i.indkey) AND cardinality(i.indkey::int2[]) = 1, false) "
        "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "  AND a.attgenerated = '' ORDER BY a.attnum",
        [table],
    ).fetchall()
    if not columns:
        raise InputError(f"write-cost table {table!r} does not exist in this database")
    source = quote_ident(table)
    count_row = conn.execute(f"SELECT count(*) FROM {source}").fetchone()
    count = int(count_row[0]) if count_row else 0
    if count == 0:
        raise InputError(f"write-cost table {table!r} is empty: there are no rows to copy")
    shifted = []
    for name, type_name, is_key in columns:
        col = quote_ident(name)
        if is_key and type_name in ("bigint", "integer", "smallint"):
            row = conn.execute(f"SELECT max({col}) - min({col}) + 1 FROM {source}").fetchone()
            shifted.append(f"{col} + k * {int(row[0]) if row else 1}")
        elif type_name.startswith("timestamp"):
            row = conn.execute(f"SELECT extract(epoch FROM max({col}) - min({col})) FROM {source}").fetchone()
            seconds = float(row[0]) + 1.0 if row and row[0] is not None else 86_400.0
            shifted.append(f"{col} + k * interval '{seconds:.0f} seconds'")
        else:
            shifted.append(col)
    names = ", ".join(quote_ident(c[0]) for c in columns)
    return (
        f"INSERT INTO {source} ({names}) SELECT {', '.join(shifted)} "
        f"FROM generate_series(1, {-(-rows // count)}) AS k, {source} LIMIT {int(rows)}"
    )


def quote_ident(name: str) -> str:
    """Quote an identifier (possibly schema-qualified) for SQL text."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
