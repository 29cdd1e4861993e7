"""Nothing in the engine is tied to the reference workload: a team's own schema, catalog and database."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from conftest import run_harness

from harness.check import run_check
from harness.ddl import load_schema_ddl

SCHEMA = """CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    placed_at   timestamptz NOT NULL,
    total_cents integer NOT NULL
);
"""

QUERY = """/* harness
description = "a customer's most recent orders"
budget_ms = 200

[params]
customer = { draw = "sql", sql = "SELECT customer_id, count(*) FROM orders GROUP BY customer_id", weighted = true }

[[expect]]
indexes = ["orders_customer_idx"]
min_rows = { orders = 10000 }
*/
SELECT o.id, o.placed_at, o.total_cents
FROM orders o
WHERE o.customer_id = %(customer)s
ORDER BY o.placed_at DESC
LIMIT 20
"""

INDEX = "CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at);\n"


def _project(tmp_path: Path) -> tuple[Path, Path, Path]:
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "customer_orders.sql").write_text(QUERY)
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "mine.sql").write_text(INDEX)
    (tmp_path / "schema.sql").write_text(SCHEMA)
    return tmp_path / "queries", tmp_path / "schema.sql", tmp_path / "strategies"


def test_own_schema_is_checked_measured_and_gated(tmp_path: Path, fresh_dsn: str) -> None:
    queries, schema, strategies = _project(tmp_path)
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO orders SELECT g, g % 500, timestamptz '2026-01-01' + g * interval '1 minute', g % 9000 "
            "FROM generate_series(1, 50000) AS g"
        )
        conn.execute(INDEX)
        conn.execute("ANALYZE orders")

    checked = run_harness("check", "--queries", str(queries), "--schema", str(schema), "--strategies", str(strategies))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    reports = tmp_path / "reports"
    args = ["run", "--dsn", fresh_dsn, "--queries", str(queries), "--no-seed", "--reports-dir", str(reports)]
    passed = run_harness(*args, "--run-id", "with-index")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    run = json.loads((reports / "with-index" / "run.json").read_text())
    assert run["environment"]["tier"] == "(unseeded)"
    assert run["environment"]["row_counts"]["orders"] >= 10_000
    (query,) = run["queries"]
    assert "orders_customer_idx" in query["plan"]["indexes_used"] and query["rows_returned"] == 20

    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX orders_customer_idx")
    failed = run_harness(*args, "--run-id", "without-index")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "orders_customer_idx" in failed.stdout
    with psycopg.connect(fresh_dsn) as conn:  # --no-seed: the team's data was never touched
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 50_000
        assert conn.execute("SELECT to_regclass('harness_manifest')").fetchone()[0] is None


DUMP18 = Path(__file__).parent / "fixtures" / "schemas" / "pg_dump18_virtual.sql"


def _findings(queries: Path, schema: Path) -> list[dict[str, object]]:
    out, _ = run_check(queries, schema, None, None, "json", False)
    return json.loads(out)["findings"]


def test_a_postgresql_18_dump_with_virtual_generated_columns_is_read_whole(tmp_path: Path) -> None:
    """pg_dump 18 leaves VIRTUAL out (the default); written out, as in a hand-written schema, it reads the same."""
    written = tmp_path / "schema.sql"
    written.write_text(DUMP18.read_text().replace("(qty)::numeric)),", "(qty)::numeric)) VIRTUAL,", 1))
    assert " VIRTUAL," in written.read_text()
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "q.sql").write_text("SELECT i.id, i.total, i.label, i.half FROM shop.items i WHERE i.total > 10\n")
    for dump in (DUMP18, written):
        schema = load_schema_ddl(dump, [])
        assert schema.unread == ()
        assert list(schema.columns("items", "shop")) == ["id", "price", "qty", "total", "label", "half"]
        assert _findings(queries, dump) == []  # no false unknown_table


def test_schema_unread_names_the_files_line_and_column(tmp_path: Path) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE ok (a int);\n\nCREATE TABLE bad (\n    a int,\n    b int CHECK (b > )\n);\n")
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "q.sql").write_text("SELECT o.a FROM ok o\n")
    (unread,) = _findings(queries, schema)
    assert (unread["rule_id"], unread["line"], unread["col"]) == ("schema_unread", 5, 22)
    assert "Line" not in str(unread["message"]), unread["message"]


def test_bad_expectation_suggests_only_indexes_that_can_serve_the_query(tmp_path: Path) -> None:
    """orders_2026_note_idx is a partition's own index, attached to no index of shop.orders: a plan of a query
    on shop.orders can never report it, so it is no suggestion for that query."""
    queries = tmp_path / "queries"
    queries.mkdir()
    expect = "/* harness\n[[expect]]\nindexes = [\"{}\"]\n*/\nSELECT o.id FROM shop.orders o WHERE o.note = 'x'\n"
    (queries / "note.sql").write_text(expect.format("orders_2026_note_ix"))
    (queries / "item.sql").write_text(expect.format("orders_item_ix"))
    messages = {Path(str(f["path"])).stem: str(f["message"]) for f in _findings(queries, DUMP18)}
    assert messages["note"].startswith(f"index 'orders_2026_note_ix' is not in {DUMP18}"), messages
    assert "orders_2026_note_idx" not in messages["note"], messages
    assert messages["item"].endswith("(did you mean 'orders_item_idx'?)"), messages
