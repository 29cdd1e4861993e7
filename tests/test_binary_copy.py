"""The numpy binary COPY encoder, checked against what PostgreSQL stores and returns, type by type."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import psycopg
import pytest

from harness.seed.binary_copy import HEADER, TRAILER, Column, Fixed, Text, copy_chunks

UTC = dt.UTC
COLUMNS_SQL = """
    id int8 PRIMARY KEY, i2 int2, i4 int4, i8 int8, f8 float8, b bool, ts timestamptz, t text, j jsonb
"""


def load(dsn: str, columns: list[Column], chunk_rows: int = 250_000) -> list[tuple]:
    """COPY the encoded columns into a fresh table and return PostgreSQL's rows in id order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE roundtrip ({COLUMNS_SQL})")
        with conn.cursor().copy("COPY roundtrip FROM STDIN (FORMAT binary)") as copy:
            for chunk in copy_chunks(columns, chunk_rows=chunk_rows):
                copy.write(chunk)
        return conn.execute("SELECT * FROM roundtrip ORDER BY id").fetchall()


def us(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch, as the generators produce them."""
    return round((moment - dt.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


def test_every_type_with_extremes_and_nulls_round_trips(fresh_dsn: str) -> None:
    moments = [
        dt.datetime(2000, 1, 1, tzinfo=UTC),  # PostgreSQL's epoch: encoded as 0
        dt.datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC),  # before both epochs: negative values
        dt.datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
        dt.datetime(2262, 4, 11, tzinfo=UTC),
        dt.datetime(1970, 1, 1, tzinfo=UTC),
    ]
    texts = ["", "plain", "naïve café ✓ 🚀", "tab\tnew\nline", "quote ' \" back\\slash"]
    docs = ['{"a": 1}', '{"nested": {"k": [1, 2, {"x": null}]}, "s": "é"}', "[]", '"just a string"', "3.5"]
    ids = np.arange(1, 6)
    columns: list[Column] = [
        Fixed("int8", ids),
        Fixed("int2", np.array([-32768, 32767, 0, -1, 7])),
        Fixed("int4", np.array([-(2**31), 2**31 - 1, 0, 1, -1]), nulls=np.array([0, 0, 1, 0, 0], dtype=bool)),
        Fixed("int8", np.array([-(2**63), 2**63 - 1, 0, 42, -42], dtype=np.int64)),
        Fixed("float8", np.array([math.inf, -math.inf, 1e-300, -0.5, 123456.789])),
        Fixed("bool", np.array([True, False, True, False, True]), nulls=np.array([0, 0, 0, 1, 0], dtype=bool)),
        Fixed(
            "timestamptz",
            np.array([us(m) for m in moments], dtype=np.int64).astype("datetime64[us]"),
            nulls=np.array([0, 0, 0, 0, 1], dtype=bool),
        ),
        Text(np.array([0, 1, 2, 3, -1]), texts),
        Text(np.array([0, 1, 2, -1, 3]), docs, jsonb=True),
    ]
    rows = load(fresh_dsn, columns)
    assert rows == [
        (1, -32768, -(2**31), -(2**63), math.inf, True, moments[0], "", {"a": 1}),
        (
            2,
            32767,
            2**31 - 1,
            2**63 - 1,
            -math.inf,
            False,
            moments[1],
            "plain",
            {"nested": {"k": [1, 2, {"x": None}]}, "s": "é"},
        ),
        (3, 0, None, 0, 1e-300, True, moments[2], "naïve café ✓ 🚀", []),
        (4, -1, 1, 42, -0.5, None, moments[3], "tab\tnew\nline", None),
        (5, 7, -1, -42, 123456.789, True, None, None, "just a string"),
    ]


def test_nan_survives(fresh_dsn: str) -> None:
    columns: list[Column] = [
        Fixed("int8", np.array([1])),
        *[Fixed("int2", np.array([0]), nulls=np.array([True])) for _ in range(3)],
        Fixed("float8", np.array([math.nan])),
        Fixed("bool", np.array([True])),
        Fixed("timestamptz", np.array([0], dtype="datetime64[us]")),
        Text(np.array([-1]), ["x"]),
        Text(np.array([-1]), ["{}"], jsonb=True),
    ]
    (row,) = load(fresh_dsn, columns)
    assert row[:4] == (1, None, None, None)
    assert math.isnan(row[4])
    assert row[6] == dt.datetime(1970, 1, 1, tzinfo=UTC)


def many_distinct_columns(n: int, rng: np.random.Generator) -> tuple[list[Column], list[str | None], list]:
    """Columns whose text and jsonb tables exceed 1024 distinct values (the ragged gather-scatter path)."""
    choices = [f"user{i}-{'é' * (i % 5)}@example.com" for i in range(3000)] + [""]
    codes = rng.integers(-1, len(choices), n)  # -1 = NULL
    doc_choices = [json.dumps({"id": i, "tags": ["x"] * (i % 3)}) for i in range(1500)]
    doc_codes = rng.integers(-1, len(doc_choices), n)
    columns: list[Column] = [
        Fixed("int8", np.arange(1, n + 1)),
        Fixed("int2", rng.integers(-100, 100, n)),
        Fixed("int4", rng.integers(-1000, 1000, n), nulls=rng.random(n) < 0.3),
        Fixed("int8", rng.integers(-(2**40), 2**40, n)),
        Fixed("float8", rng.normal(0, 1e6, n), nulls=rng.random(n) < 0.1),
        Fixed("bool", rng.random(n) < 0.5),
        Fixed("timestamptz", rng.integers(-(10**15), 10**16, n).astype("datetime64[us]")),
        Text(codes, choices),
        Text(doc_codes, doc_choices, jsonb=True),
    ]
    texts = [None if c < 0 else choices[c] for c in codes]
    docs = [None if c < 0 else json.loads(doc_choices[c]) for c in doc_codes]
    return columns, texts, docs


def expected_rows(columns: list[Column], texts: list, docs: list) -> list[tuple]:
    fixed = []
    for col in columns[:7]:
        assert isinstance(col, Fixed)
        if col.pgtype == "timestamptz":
            values = [
                dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=int(v))
                for v in col.values.astype(np.int64)
            ]
        elif col.pgtype == "bool":
            values = [bool(v) for v in col.values]
        elif col.pgtype == "float8":
            values = [float(v) for v in col.values]
        else:
            values = [int(v) for v in col.values]
        nulls = col.nulls if col.nulls is not None else np.zeros(len(values), dtype=bool)
        fixed.append([None if null else v for v, null in zip(values, nulls, strict=True)])
    return [(*row, t, d) for *row, t, d in zip(*fixed, texts, docs, strict=True)]


@pytest.mark.parametrize("chunk_rows", [250_000, 333])
def test_many_distinct_values_and_chunking_round_trip(fresh_dsn: str, chunk_rows: int) -> None:
    columns, texts, docs = many_distinct_columns(2000, np.random.default_rng(7))
    rows = load(fresh_dsn, columns, chunk_rows=chunk_rows)
    assert len(set(filter(None, texts))) > 1024  # really on the many-distinct path
    assert rows == expected_rows(columns, texts, docs)


def test_all_null_and_all_empty_text_columns(fresh_dsn: str) -> None:
    n = 1500
    many = [f"v{i}" for i in range(1100)]
    columns: list[Column] = [
        Fixed("int8", np.arange(1, n + 1)),
        Fixed("int2", np.zeros(n, dtype=np.int64), nulls=np.ones(n, dtype=bool)),
        Fixed("int4", np.zeros(n, dtype=np.int64)),
        Fixed("int8", np.zeros(n, dtype=np.int64)),
        Fixed("float8", np.zeros(n)),
        Fixed("bool", np.zeros(n, dtype=bool)),
        Fixed("timestamptz", np.zeros(n, dtype="datetime64[us]")),
        Text(np.full(n, -1), many),  # > 1024 choices, every row NULL
        Text(np.zeros(n, dtype=np.int64), ["{}"], jsonb=True),
    ]
    rows = load(fresh_dsn, columns)
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert rows == [(i, None, 0, 0, 0.0, False, epoch, None, {}) for i in range(1, n + 1)]

    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE empties (id int8 PRIMARY KEY, t text)")
        empty_choices = [""] * 2000  # many-distinct path where every value is the empty string
        with conn.cursor().copy("COPY empties FROM STDIN (FORMAT binary)") as copy:
            for chunk in copy_chunks([Fixed("int8", np.arange(1, 11)), Text(np.arange(10) * 100, empty_choices)]):
                copy.write(chunk)
        assert conn.execute("SELECT count(*), count(*) FILTER (WHERE t = '') FROM empties").fetchone() == (
            10,
            10,
        )


def test_empty_table_is_header_and_trailer_only(fresh_dsn: str) -> None:
    columns: list[Column] = [
        Fixed("int8", np.array([], dtype=np.int64)),
        Text(np.array([], dtype=np.int64), []),
    ]
    chunks = list(copy_chunks(columns))
    assert chunks == [HEADER, TRAILER]
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nothing (id int8 PRIMARY KEY, t text)")
        with conn.cursor().copy("COPY nothing FROM STDIN (FORMAT binary)") as copy:
            for chunk in chunks:
                copy.write(chunk)
        assert conn.execute("SELECT count(*) FROM nothing").fetchone() == (0,)


def test_stream_matches_postgresqls_own_binary_copy(fresh_dsn: str) -> None:
    """Byte for byte, what we encode is what PostgreSQL emits for the same rows (not jsonb: it normalises)."""
    columns, _, _ = many_distinct_columns(700, np.random.default_rng(11))
    columns = columns[:8]
    ours = b"".join(copy_chunks(columns, chunk_rows=256))
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE roundtrip ({COLUMNS_SQL})")
        conn.execute("ALTER TABLE roundtrip DROP COLUMN j")
        with conn.cursor().copy("COPY roundtrip FROM STDIN (FORMAT binary)") as copy:
            copy.write(ours)
        with conn.cursor().copy("COPY (SELECT * FROM roundtrip ORDER BY id) TO STDOUT (FORMAT binary)") as copy:
            theirs = b"".join(bytes(chunk) for chunk in copy)
    assert theirs == ours
