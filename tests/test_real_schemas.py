"""A schema as teams have it: several schemas, a range-partitioned table, constraints added by ALTER TABLE, quoted
mixed-case names, read from the server's own ``pg_dump --schema-only`` and from the live catalog alike."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest
from conftest import run_harness

from harness.ddl import load_schema_ddl, read_ddl, split_statements
from harness.server import EmbeddedServer

SCHEMA = """
CREATE SCHEMA sales;
CREATE SCHEMA crm;
CREATE TYPE sales.order_status AS ENUM ('new', 'paid', 'shipped');
CREATE SEQUENCE crm.customer_seq;
CREATE TABLE crm."Customers" (
    id integer NOT NULL DEFAULT nextval('crm.customer_seq'),
    "FullName" text NOT NULL,
    region text NOT NULL
);
ALTER TABLE crm."Customers" ADD CONSTRAINT customers_pkey PRIMARY KEY (id);
COMMENT ON TABLE crm."Customers" IS 'people who order; it''s "quoted"';
CREATE TABLE sales.orders (
    id bigint NOT NULL,
    customer_id integer NOT NULL,
    created_at timestamptz NOT NULL,
    status sales.order_status NOT NULL DEFAULT 'new',
    total_cents integer NOT NULL,
    CONSTRAINT total_positive CHECK (total_cents >= 0)
) PARTITION BY RANGE (created_at);
CREATE TABLE sales.orders_2025 PARTITION OF sales.orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE sales.orders_2026 PARTITION OF sales.orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE sales.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id, created_at);
ALTER TABLE sales.orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES crm."Customers" (id);
CREATE INDEX orders_customer_created_idx ON sales.orders (customer_id, created_at);
CREATE VIEW sales.paid_orders AS
    SELECT id, customer_id, created_at, total_cents FROM sales.orders WHERE status = 'paid';
CREATE MATERIALIZED VIEW sales.daily_totals AS
    SELECT date_trunc('day', created_at) AS day, sum(total_cents) AS total FROM sales.orders GROUP BY 1;
CREATE FUNCTION sales.order_total(p_id bigint) RETURNS integer LANGUAGE sql STABLE AS $fn$
    SELECT total_cents FROM sales.orders WHERE id = p_id; -- a ; inside the body
$fn$;
GRANT USAGE ON SCHEMA sales TO PUBLIC;
"""

DATA = """
INSERT INTO crm."Customers" (id, "FullName", region)
    SELECT g, 'customer ' || g, (ARRAY['north', 'south'])[1 + g % 2] FROM generate_series(1, 500) g;
INSERT INTO sales.orders
    SELECT g, 1 + g % 500, timestamptz '2025-01-01' + (g * interval '8 minutes'),
           (ARRAY['new', 'paid', 'shipped']::sales.order_status[])[1 + g % 3], g % 9000
    FROM generate_series(1, 100000) g;
REFRESH MATERIALIZED VIEW sales.daily_totals;
ANALYZE;
"""

QUERIES = {
    "recent_orders.sql": """/* harness
description = "a customer's most recent orders (partitioned table, index on the parent)"
budget_ms = 500

[params]
customer = { draw = "int", min = 1, max = 500 }

[[expect]]
indexes = ["orders_customer_created_idx"]
min_rows = { "sales.orders" = 10000 }
*/
SELECT o.id, o.created_at, o.total_cents
FROM sales.orders o
WHERE o.customer_id = %(customer)s AND o.created_at >= timestamptz '2026-01-01'
ORDER BY o.created_at DESC
LIMIT 20
""",
    "customer_totals.sql": """/* harness
description = "best customers of a region (quoted mixed-case names)"
*/
SELECT c."FullName", sum(o.total_cents) AS total
FROM crm."Customers" c
JOIN sales.orders o ON o.customer_id = c.id
WHERE c.region = 'north'
GROUP BY c."FullName"
ORDER BY total DESC
LIMIT 10
""",
    "daily_paid.sql": """/* harness
description = "a materialized view and a view"
*/
SELECT d.day, d.total, (SELECT count(*) FROM sales.paid_orders p WHERE p.created_at >= d.day) AS paid_since
FROM sales.daily_totals d
ORDER BY d.day DESC
LIMIT 7
""",
    "wrong_column.sql": """/* harness
description = "FullName is case-sensitive: fullname does not exist"
*/
SELECT c.fullname
FROM crm."Customers" c
LIMIT 5
""",
    "wrong_index.sql": """/* harness
description = "expects an index nobody created"

[[expect]]
indexes = ["orders_status_idx"]
*/
SELECT count(*) FROM sales.orders_2026 WHERE status = 'paid'
""",
}


@pytest.fixture
def dumped(tmp_path: Path, fresh_dsn: str, pg_server: EmbeddedServer) -> tuple[str, Path, Path]:
    """(dsn, the schema as the server's pg_dump writes it, the catalog folder)."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(DATA)
    pg_dump = pg_server.binaries.bindir / "pg_dump"
    dump = subprocess.run([str(pg_dump), "--schema-only", fresh_dsn], capture_output=True, text=True, check=True)
    schema = tmp_path / "schema.sql"
    schema.write_text(dump.stdout)
    queries = tmp_path / "queries"
    queries.mkdir()
    for name, text in QUERIES.items():
        (queries / name).write_text(text)
    return fresh_dsn, schema, queries


def _findings(*args: str) -> tuple[int, list[tuple[str, str, int, int]], list[dict]]:
    done = run_harness("check", *args, "--format", "json")
    assert not done.stderr, done.stderr  # no sqlglot warnings, no traceback
    document = json.loads(done.stdout)
    found = [(f["rule_id"], Path(f["path"]).name, f["line"], f["col"]) for f in document["findings"]]
    return done.returncode, sorted(found), document["findings"]


def test_dump_and_live_catalog_give_the_same_findings(dumped: tuple[str, Path, Path]) -> None:
    dsn, schema, queries = dumped
    text = schema.read_text()
    assert "ON ONLY sales.orders" in text and "ATTACH PARTITION" in text and "ALTER TABLE ONLY" in text
    offline_code, offline, offline_raw = _findings("--queries", str(queries), "--schema", str(schema))
    live_code, live, live_raw = _findings("--queries", str(queries), "--dsn", dsn)
    assert offline == live
    assert offline_code == live_code == 1
    assert {(rule, path) for rule, path, _, _ in offline} == {
        ("unknown_column", "wrong_column.sql"),
        ("bad_expectation", "wrong_index.sql"),
    }
    (column_offline,) = [f["message"] for f in offline_raw if f["rule_id"] == "unknown_column"]
    (column_live,) = [f["message"] for f in live_raw if f["rule_id"] == "unknown_column"]
    assert column_offline == column_live
    assert "c.fullname does not exist" in column_offline and "FullName" in column_offline


def test_run_passes_a_partitioned_query_through_its_child_index(dumped: tuple[str, Path, Path], tmp_path: Path) -> None:
    dsn, _, queries = dumped
    reports = tmp_path / "reports"
    done = run_harness(
        "run", "--dsn", dsn, "--queries", str(queries), "--only", "recent_orders", "--no-seed",
        "--reports-dir", str(reports), "--run-id", "partitioned",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads((reports / "partitioned" / "run.json").read_text())
    assert run["environment"]["row_counts"]["sales.orders"] >= 90_000
    assert "search_path" in run["environment"]["settings"]
    (query,) = run["queries"]
    (index_check,) = [c for c in query["verdict"]["checks"] if c["name"] == "index:orders_customer_created_idx"]
    assert index_check["status"] == "pass"
    assert index_check["reason"] == (
        "plan uses orders_2026_customer_id_created_at_idx (partition of expected orders_customer_created_idx)"
    )
    assert query["plan"]["partitions"] == [{"table": "orders", "scanned": ["orders_2026"], "total": 2}]


def test_usability_check_on_a_partitioned_table(fresh_dsn: str, tmp_path: Path) -> None:
    """Tables too small for min_rows: the expected parent index is judged usable through a partition's index,
    with the competing parent index (which a partition's attached index cannot be dropped without) dropped."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("CREATE INDEX orders_created_idx ON sales.orders (created_at, customer_id)")
        conn.execute(DATA.replace("100000", "300"))
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "recent_orders.sql").write_text(QUERIES["recent_orders.sql"])
    reports = tmp_path / "reports"
    done = run_harness(
        "run", "--dsn", fresh_dsn, "--queries", str(queries), "--no-seed", "--reports-dir", str(reports),
        "--run-id", "small",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (query,) = json.loads((reports / "small" / "run.json").read_text())["queries"]
    (index_check,) = [c for c in query["verdict"]["checks"] if c["name"].startswith("index:")]
    assert index_check["status"] == "pass"
    assert index_check["reason"].startswith(
        "orders_2026_customer_id_created_at_idx (partition of expected orders_customer_created_idx) usable"
    )
    with psycopg.connect(fresh_dsn) as conn:  # the drops were rolled back
        assert conn.execute("SELECT to_regclass('sales.orders_created_idx')").fetchone()[0] is not None


def test_statement_splitter_respects_quotes_comments_and_meta_commands() -> None:
    text = (
        "\\restrict abc\n"
        "SET x = 'a;b';\n"
        "/* a ; comment /* nested ; */ */\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        "-- a ; line comment\n"
        "CREATE TABLE \"we;ird\" (a text DEFAULT E'it\\'s;');\n"
        "\\unrestrict abc\n"
    )
    statements = list(split_statements(text))
    assert [s.line for s in statements] == [2, 4, 6]
    assert statements[1].text.endswith("LANGUAGE sql") and statements[2].kind == "CREATE TABLE"


def test_unreadable_needed_statement_is_reported_once_with_its_line(tmp_path: Path) -> None:
    ddl = tmp_path / "schema.sql"
    ddl.write_text("CREATE TABLE ok (a int);\nALTER TABLE ok OWNER TO x;\n\nCREATE TABLE bad (a int CHECK (a > ));\n")
    read = read_ddl([ddl])
    assert list(read.relations) == ["public.ok"]
    assert [(u.line, u.kind) for u in read.unread] == [(4, "CREATE TABLE")]
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "q.sql").write_text("SELECT a FROM ok\n")
    done = run_harness("check", "--queries", str(queries), "--schema", str(ddl))
    assert done.returncode == 0 and not done.stderr, done.stdout + done.stderr
    assert done.stdout.count("schema_unread") == 1 and "schema.sql:4" in done.stdout


def test_live_names_resolve_through_the_databases_search_path(fresh_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET search_path = sales, public")
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "unqualified.sql").write_text(
        '/* harness\n[[expect]]\nindexes = ["orders_customer_created_idx"]\nmin_rows = { orders = 1000 }\n*/\n'
        "SELECT o.id, p.total_cents FROM orders o JOIN paid_orders p ON p.id = o.id WHERE o.customer_id = 7\n"
    )
    checked = run_harness("check", "--queries", str(queries), "--dsn", fresh_dsn)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    reports = tmp_path / "reports"
    ran = run_harness(
        "run", "--dsn", fresh_dsn, "--queries", str(queries), "--no-seed", "--reports-dir", str(reports),
        "--run-id", "path", "--iterations", "20", "--warmup", "1",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    environment = json.loads((reports / "path" / "run.json").read_text())["environment"]
    assert environment["settings"]["search_path"] == "sales, public"
    assert "orders" in environment["row_counts"] and "orders_2026" not in environment["row_counts"]


def test_schema_indexes_count_in_every_strategy(tmp_path: Path) -> None:
    dump = Path(__file__).parent / "fixtures" / "schemas" / "pg_dump_partitioned.sql"
    extra = tmp_path / "extra.sql"
    extra.write_text("CREATE INDEX orders_status_idx ON ONLY sales.orders (status);\n")
    schema = load_schema_ddl(dump, [extra])
    assert {"orders_customer_created_idx", "orders_pkey", "orders_status_idx"} <= schema.strategy_indexes["extra"]
    assert schema.resolve_written("sales.orders") == "sales.orders"
    assert schema.resolve_written('crm."Customers"') == "crm.Customers"
    assert schema.resolve_written("crm.customers") is None  # unquoted folds to lower case: another name
    assert schema.relations["sales.orders_2026"].parent == "sales.orders"
    assert schema.indexes["sales.orders_2026_customer_id_created_at_idx"].parent == "sales.orders_customer_created_idx"


@pytest.mark.parametrize("dump", ["pg_dump_partitioned.sql", "pg_dump15_partitioned.sql"])
def test_pg_dump_of_postgresql_15_and_18_read_completely(dump: str) -> None:
    schema = load_schema_ddl(Path(__file__).parent / "fixtures" / "schemas" / dump, [])
    assert schema.unread == ()
    assert {k: r.kind for k, r in schema.relations.items() if r.schema == "sales"} == {
        "sales.orders": "partitioned table",
        "sales.orders_2025": "partition",
        "sales.orders_2026": "partition",
        "sales.paid_orders": "view",
        "sales.daily_totals": "materialized view",
    }
    assert list(schema.columns("Customers", "crm")) == ["id", "FullName", "region"]
    children = {i.name for i in schema.indexes.values() if i.parent == "sales.orders_customer_created_idx"}
    assert children == {"orders_2025_customer_id_created_at_idx", "orders_2026_customer_id_created_at_idx"}


def test_hand_written_ddl_is_read_as_postgresql_would_create_it() -> None:
    schema = load_schema_ddl(Path(__file__).parent / "fixtures" / "schemas" / "hand_written.sql", [])
    assert schema.unread == () and schema.search_path == ("app", "public")
    assert {k: list(r.columns) for k, r in schema.relations.items()} == {
        "app.events": ["id", "kind", "at", "payload"],
        "app.summary": ["kind", "n"],
        "app.everything": ["id", "kind", "at"],  # a view's * is expanded when it is created
        "app.remote": ["a"],
        "Mixed.Case": ["x"],
        "app.archived_events": ["id", "kind", "at", "payload", "archived_at"],
    }
    assert schema.resolve("events") == "app.events" and schema.resolve("Case", "Mixed") == "Mixed.Case"
    assert sorted(i.name for i in schema.indexes.values()) == ["events_kind_at_idx", "events_pkey", "mixed_x"]
    assert schema.indexed_columns("events") == {"id", "kind", "at"}
