"""Nothing in the engine is tied to the reference workload: a team's own schema, catalog and database."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from conftest import run_harness

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
