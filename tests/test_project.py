"""A project in the user's repository: the project config, where things are looked up, `harness init`.

The config is found as pytest and ruff find theirs (nearest folder upwards, harness.toml before pyproject.toml);
lookups go option → project config → ./queries, ./scenarios → the packaged reference, and say where they looked.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest
from conftest import run_harness

from harness import db, paths
from harness.anchor import configured_anchor
from harness.catalog import load_catalog
from harness.config import load_tier, parse_project_config, project_config, reference_dir
from harness.errors import ConfigError, InputError
from harness.starter import write_starter

TIER = (reference_dir() / "scenarios" / "tiers" / "test.toml").read_text()
UNBUDGETED = "SELECT 1 AS one\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, the current folder of the test."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_a_harness_toml_is_read_with_paths_relative_to_it(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "harness.toml").write_text(
        'queries = "sql"\ntiers = "my_tiers"\ndsn_env = "PERF_DSN"\nbudget_ms = 250\nanchor = 2026-06-30\n'
    )
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project / "deep" / "er")  # found from a subfolder, as pytest finds its config
    config = project_config()
    assert config.path == project / "harness.toml"
    assert (config.queries, config.tiers, config.scenarios) == (project / "sql", project / "my_tiers", None)
    assert (config.dsn_env, config.budget_ms) == ("PERF_DSN", 250.0)
    assert config.anchor is not None and config.anchor.date == dt.date(2026, 6, 30)
    assert config.origin("budget_ms") == f"{project / 'harness.toml'}:4 budget_ms"


def test_the_nearest_config_wins_and_harness_toml_before_pyproject(project: Path) -> None:
    inner = project / "inner"
    inner.mkdir()
    (project / "harness.toml").write_text("budget_ms = 1\n")
    (inner / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.harness]: not a harness config
    assert project_config(inner).budget_ms == 1
    (inner / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.harness]\nbudget_ms = 2\n')
    assert project_config(inner).budget_ms == 2
    assert project_config(inner).origin("budget_ms") == f"{inner / 'pyproject.toml'}:5 budget_ms"
    (inner / "harness.toml").write_text("budget_ms = 3\n")
    assert project_config(inner).budget_ms == 3


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("queries = 'q'\nbudgt_ms = 5\n", 2, ["budgt_ms: unknown key", "did you mean 'budget_ms'?", "known keys"]),
        ('budget_ms = "500"\n', 1, ["budget_ms must be a number, got str '500'"]),
        ("budget_ms = 0\n", 1, ["budget_ms: must be a positive number"]),
        ("queries = 3\n", 1, ["queries must be a string, got int 3"]),
        ('dsn_env = "MY-DSN"\n', 1, ["dsn_env: 'MY-DSN' is not an environment variable name"]),
        ('anchor = "last tuesday"\n', 1, ["anchor: 'last tuesday' is not a date", '"max:table.column"']),
        ('anchor = "max:orders"\n', 1, ["anchor: 'max:orders' names no column"]),
        ("[queries]\npath = 'q'\n", 1, ["queries: must be a value, not a table"]),
    ],
)
def test_a_bad_key_is_one_line_naming_file_line_and_fix(project: Path, text: str, line: int, words: list[str]) -> None:
    path = project / "harness.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        parse_project_config(path)
    assert str(raised.value).startswith(f"{path}:{line}: ")
    for word in words:
        assert word in str(raised.value)


def test_a_bad_pyproject_key_points_into_tool_harness_and_the_cli_exits_2(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.ruff]\nbudget = 1\n\n[tool.harness]\nbudget = 1\n")
    done = run_harness("check", cwd=project)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"Error: {project / 'pyproject.toml'}:5: budget: unknown key (did you mean 'budget_ms'?); "
        "known keys: queries, scenarios, tiers, dsn_env, budget_ms, anchor"
    )


def test_queries_come_from_the_config_then_the_current_folder_then_the_package(project: Path) -> None:
    assert paths.queries_dir() == reference_dir() / "queries"
    assert paths.scenarios_dir() == reference_dir() / "scenarios"
    (project / "queries").mkdir()
    (project / "queries" / "mine.sql").write_text(UNBUDGETED)
    assert paths.queries_dir() == project / "queries"
    (project / "harness.toml").write_text('queries = "sql"\n')
    (project / "sql").mkdir()
    (project / "sql" / "configured.sql").write_text(UNBUDGETED)
    assert paths.queries_dir() == project / "sql"


def test_an_empty_catalog_says_where_it_looked_and_the_fix(project: Path) -> None:
    (project / "queries").mkdir()
    with pytest.raises(InputError) as raised:
        paths.queries_dir()
    assert str(raised.value) == (
        f"no *.sql in ./queries ({project / 'queries'}): looked in, in order: ./queries ({project / 'queries'}): "
        f"no *.sql; the packaged reference ({reference_dir() / 'queries'}): 9 *.sql; fix: add *.sql to "
        f"{project / 'queries'} (harness init writes a starter catalog), or remove the folder to use the "
        "packaged reference"
    )
    (project / "harness.toml").write_text('queries = "missing"\n')
    looked = r"in order: .*harness.toml:1 queries \(.*missing\): no such folder; \./queries .*: no \*\.sql; the"
    with pytest.raises(InputError, match=looked + r" packaged reference .*; fix: .*or correct `queries` in"):
        paths.queries_dir()


def test_tiers_are_looked_up_by_name_in_order_and_an_unknown_one_lists_every_folder(project: Path) -> None:
    assert load_tier("test").path == reference_dir() / "scenarios" / "tiers" / "test.toml"
    (project / "scenarios" / "tiers").mkdir(parents=True)
    (project / "scenarios" / "tiers" / "test.toml").write_text(TIER)
    assert load_tier("test").path == project / "scenarios" / "tiers" / "test.toml"
    (project / "harness.toml").write_text('tiers = "ci"\n')
    (project / "ci").mkdir()
    (project / "ci" / "nightly.toml").write_text(TIER.replace('name = "test"', 'name = "nightly"'))
    assert load_tier("nightly").name == "nightly"
    assert load_tier("demo").path == reference_dir() / "scenarios" / "tiers" / "demo.toml"  # still found there
    with pytest.raises(InputError) as raised:
        load_tier("nigthly")
    assert str(raised.value) == (
        f"unknown tier 'nigthly' (did you mean 'nightly'?): looked in, in order: "
        f"{project / 'harness.toml'}:1 tiers ({project / 'ci'}): nightly; "
        f"./scenarios/tiers ({project / 'scenarios' / 'tiers'}): test; "
        f"the packaged reference ({reference_dir() / 'scenarios' / 'tiers'}): benchmark, demo, dev, stress, test; "
        "fix: pass a known name, --tier FILE.toml, or add nigthly.toml to one of these folders"
    )


def test_the_config_budget_is_the_default_of_queries_without_one(project: Path) -> None:
    (project / "queries").mkdir()
    (project / "queries" / "bare.sql").write_text(UNBUDGETED)
    (project / "queries" / "own.sql").write_text("/* harness\nbudget_ms = 40\n*/\nSELECT 2 AS two\n")
    assert [q.budget_ms for q in load_catalog(project / "queries").queries] == [500.0, 40.0]
    (project / "harness.toml").write_text("budget_ms = 75\n")
    assert [q.budget_ms for q in load_catalog(project / "queries").queries] == [75.0, 40.0]


def test_dsn_env_comes_after_harness_dsn_and_before_database_url(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HARNESS_DSN", raising=False)
    monkeypatch.setenv("DATABASE_URL", "dbname=from_url")
    monkeypatch.setenv("PERF_DSN", "dbname=from_config")
    assert db.explicit_dsn() == ("dbname=from_url", "DATABASE_URL")
    (project / "harness.toml").write_text('dsn_env = "PERF_DSN"\n')
    assert db.explicit_dsn() == ("dbname=from_config", "PERF_DSN")
    monkeypatch.setenv("HARNESS_DSN", "dbname=from_harness")
    assert db.explicit_dsn() == ("dbname=from_harness", "HARNESS_DSN")
    assert db.explicit_dsn("dbname=given") == ("dbname=given", "--dsn")


def test_a_max_anchor_is_the_day_after_the_latest_value_read_read_only(project: Path, fresh_dsn: str) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (created_at timestamptz, note text)")
        conn.execute("INSERT INTO orders VALUES ('2026-03-01 10:00+00', 'a'), ('2026-03-04 23:30+00', 'b')")
        assert configured_anchor(conn) is None  # no project config: draws follow the clock
        (project / "harness.toml").write_text('anchor = "max:public.orders.created_at"\n')
        assert configured_anchor(conn) == dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
        assert configured_anchor(None) is None  # a column's max needs the database
        (project / "harness.toml").write_text('anchor = "max:orders.note"\n')
        with pytest.raises(InputError, match=r"harness.toml:1 anchor: max:orders.note: the column holds a str"):
            configured_anchor(conn)
        (project / "harness.toml").write_text('anchor = "max:orders.shipped_at"\n')
        with pytest.raises(InputError, match=r'column "shipped_at" does not exist; name an existing column'):
            configured_anchor(conn)
        assert not conn.info.transaction_status  # idle: nothing left open


def test_a_fixed_anchor_gives_unseeded_runs_the_same_draws_and_run_json_says_so(project: Path, fresh_dsn: str) -> None:
    write_starter(project)
    (project / "harness.toml").write_text('queries = "queries"\nanchor = "2026-06-30"\n')
    done = run_harness("run", "--dsn", fresh_dsn, "--no-seed", "--only", "days_in_window", "--run-id", "r1",
                       "--reports-dir", str(project / "reports"), cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads((project / "reports" / "r1" / "run.json").read_text())
    assert run["options"]["project_config"] == str(project / "harness.toml")
    assert run["options"]["anchor"] == f"2026-06-30 ({project / 'harness.toml'}:2 anchor)"
    (query,) = run["queries"]
    assert query["params_example"]["start"].startswith("2026-06-01")  # 30 days before midnight after the anchor


def test_init_writes_a_starter_that_checks_and_never_overwrites(project: Path) -> None:
    done = run_harness("init", cwd=project)
    assert done.returncode == 0, done.stderr
    written = [project / "queries" / "days_in_window.sql", project / "queries" / "settings.sql"]
    assert done.stdout.splitlines()[:3] == [f"wrote {path}" for path in [*written, project / "harness.toml"]]
    assert "harness check" in done.stdout and "harness run --tier test" in done.stdout
    assert project_config().queries == project / "queries"
    checked = run_harness("check", "--strict", cwd=project)
    assert checked.returncode == 0 and "2 queries checked" in checked.stdout, checked.stdout + checked.stderr

    (project / "queries" / "settings.sql").write_text("SELECT 'mine' AS edited\n")
    again = run_harness("init", cwd=project)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"Error: {written[0]}, {written[1]}, {project / 'harness.toml'}: already exist; harness init overwrites "
        "nothing (pass --force to replace)"
    )
    assert (project / "queries" / "settings.sql").read_text() == "SELECT 'mine' AS edited\n"
    assert run_harness("init", "--force", cwd=project).returncode == 0
    assert "current_setting" in (project / "queries" / "settings.sql").read_text()


def test_init_appends_tool_harness_to_an_existing_pyproject_once(project: Path) -> None:
    original = '[project]\nname = "shop"\n'
    (project / "pyproject.toml").write_text(original)
    starter = write_starter(project)
    assert starter.config == project / "pyproject.toml" and not (project / "harness.toml").exists()
    assert (project / "pyproject.toml").read_text().startswith(original + "\n[tool.harness]\nqueries = ")
    assert project_config().queries == project / "queries"
    with pytest.raises(InputError, match=r"pyproject.toml: already has \[tool.harness\]; edit it there"):
        write_starter(project, force=True)


def test_a_scenarios_folder_of_tiers_only_needs_no_schema_when_check_is_given_one(project: Path) -> None:
    import harness

    (project / "scenarios" / "tiers").mkdir(parents=True)
    (project / "queries").mkdir()
    (project / "queries" / "one.sql").write_text(UNBUDGETED)
    (project / "schema.sql").write_text("CREATE TABLE orders (id bigint);\n")
    assert harness.check(schema_sql=project / "schema.sql")[1] == 0
    with pytest.raises(InputError, match=r"no schema.sql in ./scenarios .*fix: add schema.sql to"):
        harness.check()
