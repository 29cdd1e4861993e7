"""Query files: header parsing, defaults, positions, and precise errors for malformed metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalog import MAX_QUERY_FILE_BYTES, load_catalog, load_query, scan_placeholders
from harness.errors import ConfigError, InputError, did_you_mean

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "q") -> Path:
    path = tmp_path / f"{name}.sql"
    path.write_text(text)
    return path


def test_full_header_is_parsed_into_a_query(tmp_path: Path):
    path = write(
        tmp_path,
        """/* harness
description = "DAU"
budget_ms = 250
tags = ["engagement"]
weight = 3
prepare = "generic"

[params]
start   = { draw = "anchor", offset_days = -30 }
user_id = { draw = "sql", sql = "SELECT user_id, count(*) FROM behavior_logs GROUP BY 1", weighted = true }
n       = { value = 10 }
level   = { draw = "choice", values = ["BEGINNER", "EXPERT"] }
k       = { draw = "int", min = 1, max = 10 }

[[expect]]
indexes = ["bl_user_occurred_idx"]
strategies = ["baseline"]
min_rows = { behavior_logs = 100000 }

[lint.allow]
select_star = "fine here"
*/

SELECT *
FROM behavior_logs;
""",
    )
    query = load_query(path)
    assert (query.name, query.description, query.budget_ms, query.tags, query.weight, query.prepare) == (
        "q",
        "DAU",
        250.0,
        ("engagement",),
        3,
        "generic",
    )
    assert query.sql == "SELECT *\nFROM behavior_logs"  # the file's text; only the final ';' is dropped
    assert query.sql_start_line == 24 and query.header_line == 1
    assert query.param_names == ("start", "user_id", "n", "level", "k")
    start, user, n, level, k = query.params
    assert (start.draw, start.offset_days, start.line) == ("anchor", -30, 9)
    assert (user.draw, user.weighted, user.line) == ("sql", True, 10)
    assert (n.draw, n.value) == ("value", 10)
    assert level.values == ("BEGINNER", "EXPERT") and (k.min, k.max) == (1, 10)
    expectation = query.expectations[0]
    assert expectation.line == 15 and expectation.applies_to("baseline") and not expectation.applies_to("tuned")
    assert expectation.requires_use({"behavior_logs": 1_000_000})
    assert not expectation.requires_use({"behavior_logs": 650})
    assert dict(query.lint_allow) == {"select_star": "fine here"}
    assert query.position(query.sql.index("FROM")) == (25, 1)


def test_header_is_optional_and_defaults_apply(tmp_path: Path):
    query = load_query(write(tmp_path, "\n\nSELECT 1\n"))
    assert (query.sql, query.sql_start_line, query.budget_ms, query.weight, query.prepare) == (
        "SELECT 1",
        3,
        500.0,
        1,
        "auto",
    )
    assert query.params == () and query.expectations == () and query.header_line == 0


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ('/* harness\nbudget_ms = "fast"\n*/\nSELECT 1\n', 2, 1, "budget_ms must be a positive number"),
        ('/* harness\ndescripton = "x"\n*/\nSELECT 1\n', 2, 1, "did you mean 'description'?"),
        ("/* harness\nweight = 1.5\n*/\nSELECT 1\n", 2, 1, "weight must be an integer"),
        ('/* harness\nprepare = "generik"\n*/\nSELECT 1\n', 2, 1, "did you mean 'generic'?"),
        (
            '/* harness\n[params]\na = { draw = "anchor" }\nb = { draw = "int", min = 5, max = 1 }\n*/\nSELECT 1\n',
            4,
            1,
            "min (5) is greater than max (1)",
        ),
        (
            '/* harness\n[params]\nu = { draw = "sql", sqll = "SELECT 1" }\n*/\nSELECT 1\n',
            3,
            1,
            "unknown key 'sqll' for draw = 'sql' (did you mean 'sql'?)",
        ),
        ('/* harness\n[params]\nu = { draw = "choice" }\n*/\nSELECT 1\n', 3, 1, "needs 'values'"),
        ("/* harness\n\n[[expect]]\nindexes = []\n*/\nSELECT 1\n", 4, 1, "needs indexes"),
        (
            '/* harness\n\n[[expect]]\nindexes = ["a"]\nmin_rows = { t = -1 }\n*/\nSELECT 1\n',
            5,
            1,
            "min_rows",
        ),
        ("/* harness\nx = = 1\n*/\nSELECT 1\n", 2, 5, "invalid TOML header"),
        ('/* harness\ndescription = "x" */\nSELECT 1\n', 2, 19, "alone on its line"),
        ("/* harness description = 'x' \nSELECT 1\n", 1, 1, "alone on its line"),
    ],
)
def test_malformed_headers_name_the_line(tmp_path: Path, text: str, line: int, col: int, message: str):
    with pytest.raises(ConfigError) as error:
        load_query(write(tmp_path, text))
    assert (error.value.line, error.value.col) == (line, col)
    assert message in error.value.message


def test_file_level_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="empty file"):
        load_query(write(tmp_path, "  \n\n"))
    (tmp_path / "latin.sql").write_bytes(b"SELECT 1\n-- d\xe9j\xe0\n")
    with pytest.raises(ConfigError) as error:
        load_query(tmp_path / "latin.sql")
    assert (error.value.line, error.value.col) == (2, 5)
    with pytest.raises(ConfigError, match="letters, digits"):
        load_query(write(tmp_path, "SELECT 1\n", name="bad name"))


def test_a_nul_byte_or_a_file_over_1_mb_is_refused_at_its_position(tmp_path: Path):
    (tmp_path / "nul.sql").write_bytes(b"/* harness\n*/\nSELECT 1 AS a\x00b\n")
    with pytest.raises(ConfigError, match="NUL byte") as error:
        load_query(tmp_path / "nul.sql")
    assert (error.value.line, error.value.col) == (3, 14)
    (tmp_path / "big.sql").write_bytes(b"SELECT 1" + b" " * MAX_QUERY_FILE_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than 1 MB") as error:
        load_query(tmp_path / "big.sql")
    assert (error.value.line, error.value.col) == (1, 1)
    (tmp_path / "fits.sql").write_bytes(b"SELECT 1" + b" " * (MAX_QUERY_FILE_BYTES - 9) + b"\n")
    assert load_query(tmp_path / "fits.sql").sql == "SELECT 1"


def test_catalog_get_and_select_suggest_names(tmp_path: Path):
    write(tmp_path, "SELECT 1\n", "daily_active_users")
    write(tmp_path, "SELECT 2\n", "cohort_retention")
    catalog = load_catalog(tmp_path)
    assert catalog.names == ("cohort_retention", "daily_active_users")
    assert catalog.get("cohort_retention").sql == "SELECT 2"
    with pytest.raises(InputError, match="did you mean 'daily_active_users'"):
        catalog.get("daily_active_user")
    assert catalog.select(["daily_active_users"]).names == ("daily_active_users",)
    assert catalog.select([]) is catalog
    with pytest.raises(InputError, match="no query named"):
        catalog.select(["nope"])
    with pytest.raises(InputError, match="does not exist"):
        load_catalog(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \*\.sql"):
        load_catalog(tmp_path / "empty")


def test_placeholder_scan_follows_psycopg_rules():
    found, problems = scan_placeholders("SELECT %(a)s, '50%%', %(b)s, %s, 5 % 2")
    assert [p.name for p in found] == ["a", "b"]
    assert [offset for offset, _ in problems] == [29, 35]


def test_reference_catalog_loads_with_at_least_eight_queries():
    catalog = load_catalog(REPO / "queries")
    assert len(catalog.queries) >= 8
    assert all(q.description and q.params for q in catalog.queries)


def test_one_did_you_mean_serves_every_unknown_name() -> None:
    assert did_you_mean("Ordrs", ["users", "orders"]) == " (did you mean 'orders'?)"  # case folds
    assert did_you_mean("ordrs", {"orders": "sales.orders"}) == " (did you mean 'sales.orders'?)"  # key → value
    assert did_you_mean("zzzz", ["orders"]) == ""
