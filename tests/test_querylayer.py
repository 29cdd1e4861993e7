"""The query layer: list, draw, execute by name, on a real database; connections are read-only and bounded."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from harness.errors import InputError
from harness.querylayer import QueryLayer

ADD_ONE = """/* harness
description = "n + 1"
budget_ms = 100
weight = 2
[params]
n = { draw = "int", min = 1, max = 1000000 }
pick = { draw = "sql", sql = "SELECT g FROM generate_series(1, 50) g" }
*/
SELECT %(n)s::int + 1 AS next, %(pick)s::int AS picked
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    (tmp_path / "add_one.sql").write_text(ADD_ONE)
    (tmp_path / "constant.sql").write_text("SELECT 42\n")
    return tmp_path


def test_lists_draws_and_executes_by_name(fresh_dsn: str, catalog: Path) -> None:
    layer = QueryLayer(fresh_dsn, catalog, seed=7)
    assert [q.name for q in layer.queries()] == ["add_one", "constant"]
    assert layer.query("add_one").weight == 2
    params = layer.draw_params("add_one", 3)
    assert params == layer.draw_params("add_one", 3)  # a draw index is reproducible
    assert 1 <= params["n"] <= 1_000_000 and 1 <= params["pick"] <= 50
    with layer.connect() as conn:
        assert layer.execute(conn, "add_one", params) == [(params["n"] + 1, params["pick"])]
        assert layer.execute(conn, "constant", {}) == [(42,)]
    layer.close()


def test_draws_depend_on_the_seed(fresh_dsn: str, catalog: Path) -> None:
    import numpy as np

    first = QueryLayer(fresh_dsn, catalog, seed=1)
    second = QueryLayer(fresh_dsn, catalog, seed=2)
    draws_1 = [first.draw_params("add_one", i)["n"] for i in range(5)]
    draws_2 = [second.draw_params("add_one", i)["n"] for i in range(5)]
    assert draws_1 != draws_2
    rng = np.random.default_rng(0)
    stream = [first.draw_params("add_one", rng)["n"] for _ in range(5)]
    assert len(set(stream)) > 1  # a Generator is a stream: each request gets new parameters
    first.close()
    second.close()


def test_connections_are_read_only_with_a_statement_timeout(fresh_dsn: str, catalog: Path) -> None:
    layer = QueryLayer(fresh_dsn, catalog)
    with layer.connect() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2s",)  # max(100 ms x 4, 2 s)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE should_not_exist (id int)")


def test_unknown_names_and_empty_selections_are_input_errors(fresh_dsn: str, catalog: Path) -> None:
    layer = QueryLayer(fresh_dsn, catalog)
    with pytest.raises(InputError, match="did you mean 'add_one'"):
        layer.query("add_on")
    with pytest.raises(InputError, match="no query named"):
        QueryLayer(fresh_dsn, catalog, only=["missing"])


def test_a_query_that_writes_is_refused_before_anything_runs(tmp_path: Path, fresh_dsn: str) -> None:
    (tmp_path / "purge.sql").write_text("DELETE FROM users\n")
    with pytest.raises(InputError, match=r"purge\.sql"):
        QueryLayer(fresh_dsn, tmp_path)
