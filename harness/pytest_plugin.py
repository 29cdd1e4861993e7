"""pytest plugin: one pytest-benchmark test per catalog query, gated like `harness run` (``--harness-tier``).

Registered as a ``pytest11`` entry point, so it loads in every pytest session: it does nothing unless
``--harness-tier`` is given. Then ``pytest --harness-tier test`` adds ``harness-queries::test_query[<name>]``
for each query: ``benchmark.pedantic`` with a fresh parameter draw per round (warm-up rounds first), then
the harness gate — p95 within budget, expected indexes used — failing the test with the reason.
``--benchmark-json``, ``--benchmark-autosave``, ``--benchmark-compare(-fail)`` work as usual;
``harness.benchmark_import`` turns the JSON into a run.json for `harness compare`.

The fixtures ``harness_session`` and ``harness_layer`` (a ``QueryLayer`` on the seeded tier) are
available to an application's own tests too.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

# The harness modules are imported inside the hooks and fixtures: this plugin loads in every pytest session
# (a pytest11 entry point) and must cost nothing there unless --harness-tier is given.
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import psycopg

    from harness.catalog import Query
    from harness.environment import Environment
    from harness.measure import Measurement, Timer
    from harness.querylayer import QueryLayer
    from harness.work import WorkProbe

DEFAULT_ROUNDS = 30
WARMUP_ROUNDS = 5
MODULE_NODEID = "harness-queries"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: benchmark the query catalog")
    group.addoption(
        "--harness-tier",
        metavar="TIER",
        help="Benchmark every catalog query on this tier (seeded if needed); enables the plugin.",
    )
    group.addoption(
        "--harness-queries",
        metavar="DIR",
        type=Path,
        help="Query catalog directory (default: ./queries, else the reference catalog).",
    )
    group.addoption(
        "--harness-dsn",
        metavar="DSN",
        help="Database (default: HARNESS_DSN, DATABASE_URL, PG* variables, else the embedded cluster).",
    )
    group.addoption(
        "--harness-rounds",
        metavar="N",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"Timed rounds per query, each with its own parameters (default {DEFAULT_ROUNDS}).",
    )
    group.addoption("--harness-seed", metavar="SEED", type=int, default=42, help="Data and parameter seed.")
    group.addoption("--harness-only", metavar="NAMES", default="", help="Comma-separated query names (default: all).")


def pytest_configure(config: pytest.Config) -> None:
    """Validate the catalog up front: a bad query file is a usage error, not 30 failing tests."""
    if not config.getoption("harness_tier"):
        return
    if config.getoption("harness_rounds") < 2:
        raise pytest.UsageError("--harness-rounds must be at least 2 (a p95 needs 20 or more to mean something)")
    from harness import paths
    from harness.catalog import load_catalog
    from harness.errors import InputError

    directory = config.getoption("harness_queries") or paths.queries_dir()
    try:
        catalog = load_catalog(directory).select(_only(config))
    except InputError as exc:
        raise pytest.UsageError(f"harness: {exc}") from None
    config.stash[_NAMES] = list(catalog.names)


_NAMES = pytest.StashKey[list[str]]()


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, so they apply to the query tests too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("harness_tier"):
        return
    module = _QueryModule.from_parent(session, path=Path(__file__), nodeid=MODULE_NODEID)
    items.extend(item for item in module.collect() if isinstance(item, pytest.Item))


class _QueryModule(pytest.Module):
    """The query tests, collected as a test module whatever the rootdir (they live in the package)."""

    def _getobj(self) -> ModuleType:
        return _QUERY_TESTS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module is _QUERY_TESTS and "harness_query" in metafunc.fixturenames:
        names = metafunc.config.stash.get(_NAMES, [])
        metafunc.parametrize("harness_query", names, ids=names)


@dataclass
class HarnessSession:
    """The database and catalog the query benchmarks run on (one per pytest session)."""

    dsn: str
    tier: str
    seed: int
    rounds: int
    layer: QueryLayer  # connects as the measuring role (``layer.dsn``)
    environment: Environment
    reader_role: str | None = None  # planning role inside the owner's usability check


@pytest.fixture(scope="session")
def harness_session(pytestconfig: pytest.Config) -> Iterator[HarnessSession]:
    """Resolve the database (starting the embedded cluster if needed), seed the tier, load the catalog."""
    from harness import db
    from harness.errors import HarnessError
    from harness.querylayer import QueryLayer
    from harness.roles import access_for
    from harness.workload import Workload

    tier = pytestconfig.getoption("harness_tier") or "test"
    seed = pytestconfig.getoption("harness_seed")
    target = None
    held = contextlib.ExitStack()  # the shared data lock: no seed under the benchmarks
    try:
        target = db.resolve(pytestconfig.getoption("harness_dsn"))
        access = access_for(target)
        label = "embedded" if target.server else target.display
        queries, only = pytestconfig.getoption("harness_queries"), _only(pytestconfig)
        workload = Workload.resolve(
            target.dsn, tier=tier, seed=seed, queries_dir=queries, only=only, database_label=label
        )
        environment = workload.environment(workload.prepare_and_hold(held, "pytest"))
        layer = QueryLayer(access.reader_dsn, queries, seed, only)
    except HarnessError as exc:
        held.close()
        if target is not None and target.server is not None:
            target.server.release()
        pytest.exit(f"harness: {exc}", returncode=exc.exit_code)
    session = HarnessSession(
        target.dsn, tier, seed, pytestconfig.getoption("harness_rounds"), layer, environment, access.reader_role
    )
    yield session
    layer.close()
    held.close()
    if target.server is not None:
        target.server.release()


@pytest.fixture(scope="session")
def harness_layer(harness_session: HarnessSession) -> QueryLayer:
    """The query layer on the seeded tier: ``queries()``, ``draw_params()``, ``execute()``."""
    return harness_session.layer


def test_query(benchmark: Any, harness_query: str, harness_session: HarnessSession) -> None:
    """Benchmark one catalog query with per-round parameter draws, then apply the harness gate.

    The measuring and judging are `harness run`'s (``harness.run.measure_and_judge``); only the clock is
    pytest-benchmark's, so its statistics, JSON and --benchmark-compare see the same timed executions."""
    from harness.measure import MeasureOptions
    from harness.roles import Access
    from harness.run import measure_and_judge
    from harness.workload import query_seed

    s = harness_session
    env = s.environment
    query = s.layer.query(harness_query)
    param_sets = s.layer.sampler().draw_sets(query, WARMUP_ROUNDS + s.rounds, query_seed(s.seed, query))
    access = Access(s.dsn, s.layer.dsn, s.reader_role)
    options = MeasureOptions(iterations=s.rounds, warmup=WARMUP_ROUNDS, retries_on_lost_backend=0)  # one pedantic
    try:
        result = measure_and_judge(access, query, param_sets, env, options, timer=_pedantic_timer(benchmark))
    except _BenchmarkDisabled:  # --benchmark-disable: the query ran once, as a plain test
        return
    measurement, summary, verdict = result.measurement, result.summary, result.verdict
    if measurement.error or summary is None:
        pytest.fail(f"{query.name}: {measurement.error or 'no timed execution'}", pytrace=False)
    benchmark.extra_info.update(
        {
            "harness": 1,
            "query": query.name,
            "tier": s.tier,
            "seed": s.seed,
            "strategy": env.strategy,
            "budget_ms": result.budget_ms,
            "p50_ms": summary.p50,
            "p95_ms": summary.p95,
            "p95_ci_ms": [summary.p95_ci_low, summary.p95_ci_high],
            "indexes_used": list(measurement.plan.indexes_used) if measurement.plan else [],
            "verdict": verdict.status,
            "checks": [dataclasses.asdict(c) for c in verdict.checks],
            "warnings": list(verdict.warnings),
            "samples_ms": [round(ms, 4) for ms in measurement.samples_ms],
            "summary": summary.as_dict(),
            "plan": measurement.plan.as_dict() if measurement.plan else None,
            "work": measurement.work.as_dict() if measurement.work else None,  # what `harness compare` gates first
            "draws_digest": measurement.draws_digest,  # equal digests: samples pair by draw
            "environment": dataclasses.asdict(env),
        }
    )
    if verdict.status == "fail":
        pytest.fail(f"{query.name}: " + "; ".join(c.reason for c in verdict.failures), pytrace=False)


class _BenchmarkDisabled(Exception):
    """pytest-benchmark is disabled: the query ran once and there is nothing to measure or judge."""


def _pedantic_timer(benchmark: Any) -> Timer:
    """A ``harness.measure.Timer`` whose clock is ``benchmark.pedantic``: its warm-up rounds are the warm-up
    executions, its rounds the timed ones (one execution each, a fresh draw per round from ``setup``)."""
    from harness.measure import execute_and_fetch
    from harness.safety import begin_read_only, roll_back

    def timer(
        conn: psycopg.Connection, query: Query, param_sets: Sequence[Mapping[str, Any]], warmup: int,
        result: Measurement, probe: WorkProbe | None,
    ) -> None:  # fmt: skip
        cursor = conn.cursor()
        draws = iter(enumerate(param_sets))

        def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
            index, params = next(draws)
            roll_back(conn)  # the previous round's read-only transaction; untimed: setup runs outside the clock
            if index == warmup and probe is not None:
                probe.start(conn, query.sql, params)
            begin_read_only(conn)  # each round runs in its own read-only transaction (harness.safety)
            return (cursor, query.sql, params), {}

        try:
            result.rows_returned = benchmark.pedantic(
                execute_and_fetch, setup=setup, rounds=len(param_sets) - warmup, warmup_rounds=warmup, iterations=1
            )
        finally:
            with contextlib.suppress(Exception):  # a lost connection: the measurement reports it
                roll_back(conn)
        if benchmark.disabled:
            raise _BenchmarkDisabled
        result.samples_ms = [seconds * 1000.0 for seconds in benchmark.stats.stats.data]

    return timer


# Only the test function: this plugin module's hooks and fixtures must not be collected a second time.
_QUERY_TESTS = ModuleType("harness_queries", "pytest-benchmark tests of the harness query catalog")
_QUERY_TESTS.test_query = test_query  # type: ignore[attr-defined]
_QUERY_TESTS.__file__ = __file__


def _only(config: pytest.Config) -> list[str]:
    return [name.strip() for name in config.getoption("harness_only").split(",") if name.strip()]
