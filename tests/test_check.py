"""harness check — the corpus gives exactly its declared findings; the reference catalog is clean."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from harness.catalog import load_catalog
from harness.check import check_catalog, run_check
from harness.check.escapes import BadEscape, decode_escapes
from harness.ddl import load_schema_ddl
from harness.lint import RULE_IDS
from harness.schema import load_schema_live

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "scenarios" / "schema.sql"
STRATEGIES = REPO / "scenarios" / "strategies"
CORPUS = REPO / "tests" / "fixtures" / "check"
EXPECT = re.compile(rb"^-- expect: (\w+) (\d+):(\d+)\s*$", re.M)


def expected_findings() -> Counter[tuple[str, str, int, int]]:
    """Every `-- expect: RULE line:col` of the corpus (in the .sql file, or its .expect sidecar)."""
    expected: Counter[tuple[str, str, int, int]] = Counter()
    for path in CORPUS.glob("*.sql"):
        sidecar = path.with_suffix(".expect")
        data = sidecar.read_bytes() if sidecar.exists() else path.read_bytes()
        for rule, line, col in EXPECT.findall(data):
            expected[(path.name, rule.decode(), int(line), int(col))] += 1
    return expected


def check(queries: Path, fmt: str = "json", strict: bool = False, dsn: str | None = None) -> tuple[str, int]:
    return run_check(queries, SCHEMA, STRATEGIES, dsn, fmt, strict)


def test_corpus_gives_exactly_the_declared_findings():
    out, code = check(CORPUS)
    found = Counter((Path(f["path"]).name, f["rule_id"], f["line"], f["col"]) for f in json.loads(out)["findings"])
    assert found == expected_findings()
    assert code == 2  # the corpus includes malformed headers


def test_corpus_covers_every_rule_and_has_clean_files():
    rules = {rule for _, rule, _, _ in expected_findings()}
    assert set(RULE_IDS) <= rules
    assert {
        "parse_error",
        "unknown_table",
        "unknown_column",
        "ambiguous_column",
        "not_read_only",
        "multiple_statements",
        "undeclared_param",
        "unused_param",
        "bad_placeholder",
        "bad_expectation",
        "config_error",
    } <= rules
    files_with_expectations = {name for name, _, _, _ in expected_findings()}
    clean = [p.name for p in CORPUS.glob("*.sql") if p.name not in files_with_expectations]
    assert len(clean) >= 3  # clean_*.sql and the silenced lint_allowed.sql must produce nothing


def test_reference_catalog_is_clean_even_when_strict():
    out, code = check(REPO / "queries", fmt="text", strict=True)
    assert code == 0, out
    assert out.strip().endswith("0 errors, 0 warnings")


def test_exit_codes(tmp_path: Path):
    (tmp_path / "ok.sql").write_text("SELECT c.id FROM courses c\n")
    assert check(tmp_path)[1] == 0
    (tmp_path / "star.sql").write_text("SELECT * FROM courses\n")
    assert check(tmp_path)[1] == 0  # a warning passes ...
    assert check(tmp_path, strict=True)[1] == 1  # ... unless strict
    (tmp_path / "bad.sql").write_text("SELECT c.nope FROM courses c\n")
    assert check(tmp_path)[1] == 1
    (tmp_path / "broken.sql").write_text("/* harness\nbudget_ms = 0\n*/\nSELECT 1\n")
    assert check(tmp_path)[1] == 2


def test_text_json_and_github_formats(tmp_path: Path):
    (tmp_path / "q.sql").write_text("SELECT c.id,\n       c.nope\nFROM courses c\n")
    text, _ = check(tmp_path, fmt="text")
    assert re.match(
        r"^.*q\.sql:2:8: error unknown_column column c\.nope does not exist \(fix: .+\)$",
        text.splitlines()[0],
    )
    document = json.loads(check(tmp_path, fmt="json")[0])
    assert document["schema_version"] == 1
    assert document["summary"] == {
        "queries": 1,
        "errors": 1,
        "warnings": 0,
        "files_with_findings": 1,
        "mode": "ddl",
        "exit_code": 1,
    }
    assert set(document["findings"][0]) == {"rule_id", "severity", "path", "line", "col", "message", "fix"}
    github, _ = check(tmp_path, fmt="github")
    assert re.match(
        r"^::error file=.*q\.sql,line=2,col=8,title=unknown_column::column c\.nope does not exist"
        r" \(fix: .+\)$",
        github.strip(),
    )


def test_github_annotations_escape_newlines_and_percent(tmp_path: Path):
    (tmp_path / "q.sql").write_text("/* harness\n[params]\nx = { value = 1 }\n*/\nSELECT %(x)s, 'a%' AS p\n")
    github, _ = check(tmp_path, fmt="github")
    assert "lone '%25'" in github and "\n" not in github.strip()


def test_expression_index_makes_the_expression_sargable(tmp_path: Path):
    strategy = tmp_path / "strategies"
    strategy.mkdir()
    (strategy / "custom.sql").write_text("CREATE INDEX users_lower_email ON users (lower(email));\n")
    schema = load_schema_ddl(SCHEMA, [strategy / "custom.sql"])
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "q.sql").write_text(
        "SELECT u.id FROM users u WHERE lower(u.email) = 'a@b.c' AND upper(u.email) = 'A@B.C' LIMIT 1\n"
    )
    findings = check_catalog(load_catalog(queries), schema)
    assert [(f.rule_id, f.line, f.col) for f in findings] == [("non_sargable", 1, 61)]


def test_schema_from_ddl_knows_columns_keys_and_strategy_indexes():
    schema = load_schema_ddl(SCHEMA, sorted(STRATEGIES.glob("*.sql")))
    assert schema.columns("behavior_logs")["occurred_at"] == "timestamptz"
    assert {"id", "user_id", "occurred_at"} <= schema.indexed_columns("behavior_logs")  # PK + indexes
    assert "bl_user_occurred_idx" in schema.strategy_indexes["baseline"]
    assert "users_pkey" in schema.strategy_indexes["none"]
    assert schema.is_large("courses")  # the DDL knows no sizes: every table counts as large


@pytest.fixture
def schema_dsn(fresh_dsn: str) -> str:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
        conn.execute((STRATEGIES / "baseline.sql").read_text())
    return fresh_dsn


def test_live_schema_matches_the_ddl(schema_dsn: str):
    with psycopg.connect(schema_dsn) as conn:
        live = load_schema_live(conn)
    ddl = load_schema_ddl(SCHEMA, [STRATEGIES / "baseline.sql"])
    # the live schema also has the views of the extensions the database holds (queries may read them)
    assert set(live.tables) - {"pg_stat_statements", "pg_stat_statements_info"} == set(ddl.tables)
    assert set(live.columns("users")) == set(ddl.columns("users"))
    assert live.indexed_columns("behavior_logs") == ddl.indexed_columns("behavior_logs")
    assert live.is_large("users")  # never analyzed: size unknown, assumed large


def test_live_mode_prepares_every_query_without_running_it(schema_dsn: str, tmp_path: Path):
    (tmp_path / "typed.sql").write_text(
        '/* harness\n[params]\nsince = { draw = "anchor" }\n*/\n'
        "SELECT u.id\nFROM users u\nWHERE u.signup_at > %(since)s\n  AND u.persona > 5\n"
    )
    out, code = check(tmp_path, dsn=schema_dsn)
    findings = json.loads(out)["findings"]
    assert code == 1
    assert [(f["rule_id"], f["line"], f["col"]) for f in findings] == [("prepare_error", 8, 17)]
    assert "operator does not exist: text > integer" in findings[0]["message"]
    out, code = check(REPO / "queries", dsn=schema_dsn, strict=True)
    assert code == 0, out
    with psycopg.connect(schema_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_escapes_are_decoded_where_postgresql_decodes_them(tmp_path: Path):
    """A -- comment ends at a carriage return too (PostgreSQL's lexer), so the escaped call after it is code."""
    (tmp_path / "q.sql").write_text("SELECT 1 AS a -- a comment\r, U&\"set\\005Fconfig\"('a', 'b', false) AS b\n")
    findings = json.loads(check(tmp_path)[0])["findings"]
    assert [(f["rule_id"], f["line"], f["col"]) for f in findings] == [("not_read_only", 1, 30)]
    assert findings[0]["message"] == "set_config() changes state"


UNICODE_LITERALS = [
    r"U&'caf\00e9'",
    r"u&'\+01F600 \D83D\DE00'",
    r"U&'it''s \0027 \\'",
    r"U&'d!0061t!+000061 \0041' UESCAPE '!'",
    r"U&'a#0022' /* a comment */ UESCAPE '#'",
    r'U&"my\0020col"',
    r'U&"a""b\0022"',
    r'U&"set!005Fconfig" UESCAPE' + " '!'",
]
UNDECODABLE = [r"U&'\zzzz'", r"U&'\D83D'", r"U&'\DE00x'", r"U&'\+110000'", r"U&'\0000'", r"U&'x' UESCAPE '+'"]


def test_escapes_decode_to_what_postgresql_reads(fresh_dsn: str):
    """Each literal decoded offline is the value (or column name) the server makes of the original; what the
    decoder refuses, the server refuses too."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        for literal in UNICODE_LITERALS:
            sql = f"SELECT {literal}" if literal[2] == "'" else f"SELECT 1 AS {literal}"  # a string, or a name
            decoded = decode_escapes(sql)
            assert not isinstance(decoded, BadEscape), (literal, decoded)
            server, offline = (conn.execute(text) for text in (sql, decoded[0]))
            assert (server.description[0].name, server.fetchone()) == (
                offline.description[0].name,
                offline.fetchone(),
            ), literal
        for literal in UNDECODABLE:
            assert isinstance(decode_escapes(f"SELECT {literal}"), BadEscape), literal
            with pytest.raises(psycopg.errors.SyntaxError):
                conn.execute(f"SELECT {literal}")
