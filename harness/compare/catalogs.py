"""`harness compare --base-ref REF` / `--base-queries DIR`: two versions of the catalog, interleaved in one job.

The pull-request gate. Both sides run on the same server, the same seeded data and the same parameter draws,
in rounds: within a round each query's base and candidate slices run back to back, each side first in
exactly half the rounds (which ones is seeded), so whatever the machine does meanwhile (a neighbour's build,
CPU frequency, a checkpoint) lands on both, and neither side always gets the warmer moment. The rounds are
the gate's independent units (``gate.shared_rounds``). Samples stay in draw order, so a query whose two
sides declare the same parameters pairs sample i with sample i. When the sides' index definitions differ,
each side's indexes are built before its slices of the round (the sides then alternate per round, not per
query). The verdict is the two-run mode's (``compare_runs``) on the two sides, which are also written as
run.json files for re-comparison.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness import paths
from harness.cache import CacheState, warm_cache
from harness.capabilities import capabilities
from harness.catalog import Catalog, Query, load_catalog
from harness.check import refuse_unrunnable
from harness.compare.changes import query_change
from harness.compare.gitref import extract_ref, repository_root
from harness.compare.interleave import (
    Accumulated,
    Arm,
    Block,
    CompareProgress,
    ParamSets,
    balanced,
    checkpoint,
    measure_rounds,
)
from harness.compare.runs import Design, RunComparison, compare_runs
from harness.config import load_tier
from harness.db import connect
from harness.environment import NO_STRATEGY, Environment
from harness.errors import ConfigError, DatabaseError, InputError
from harness.gate import (
    DEFAULT_ALPHA,
    DEFAULT_FLOOR_MS,
    DEFAULT_MAX_REGRESSION,
    DEFAULT_MAX_WORK_REGRESSION,
    LOOKS_RULE,
    MANN_WHITNEY,
    MIN_ROUNDS,
    ROUNDS_T,
    WILCOXON,
    GateOptions,
    Side,
    decide,
    sequential_looks,
    settled,
)
from harness.locks import exclusively
from harness.measure import Measurement, draws_digest
from harness.report import write_reports
from harness.results import QueryResult, RunResult, load_run
from harness.roles import Access, measuring_warning
from harness.seed import Manifest, read_manifest, switch_strategy
from harness.stats import summarize
from harness.strategies import Strategy, load_strategy
from harness.strategies import strategies_dir as default_strategies_dir
from harness.verdicts import judge
from harness.workload import Workload, now_iso

# More, shorter rounds than a strategy comparison: no index rebuild between them (unless the sides' indexes
# differ), and the finer the alternation, the more of the machine's noise both sides share.
DEFAULT_AB_ROUNDS = 10
DEFAULT_AB_WARMUP = 2  # per round: each slice opens a fresh connection (catalog caches), data is prewarmed
SIDES = ("base", "cand")
_AS_FOUND = Strategy(NO_STRATEGY, Path(), ())  # --no-seed on data the harness did not seed: no index is touched


@dataclass(frozen=True)
class _Side:
    """One catalog version: its queries, the index strategy it is measured under, where they came from."""

    name: str
    label: str
    catalog: Catalog
    strategy: Strategy
    commit: str | None = None
    path_prefix: str | None = None  # "REF:" for files read from a git ref (their folder is temporary)

    @property
    def index_key(self) -> tuple[str, ...]:
        return tuple(" ".join(index.sql.split()) for index in self.strategy.indexes)


def compare_catalogs(
    dsn: str,
    *,
    base_ref: str | None = None,
    base_queries_dir: Path | None = None,
    base_strategies_dir: Path | None = None,
    queries_dir: Path | None = None,
    strategies_dir: Path | None = None,
    tier: str = "benchmark",
    seed: int = 42,
    strategy: str | None = None,
    only: Sequence[str] = (),
    iterations: int = 30,
    warmup: int = DEFAULT_AB_WARMUP,
    rounds: int = DEFAULT_AB_ROUNDS,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    max_work_regression: float = DEFAULT_MAX_WORK_REGRESSION,
    alpha: float = DEFAULT_ALPHA,
    floor_ms: float = DEFAULT_FLOOR_MS,
    force: bool = False,
    seed_if_needed: bool = True,
    runs_dir: Path | None = None,
    progress: CompareProgress | None = None,
    database_label: str = "",
    access: Access | None = None,
    sequential: bool = True,
    max_time_s: float | None = None,
    measure_all: bool = False,
) -> RunComparison:
    """Measure the base catalog (a git ref's, or ``base_queries_dir``) against the candidate (``queries_dir``,
    default the working tree's) in interleaved rounds on one server; gate as `compare BASE CAND` does.

    ``base_ref`` reads ``queries/`` and ``scenarios/strategies/`` (the candidate folders' paths inside the
    repository) from that commit; ``base_strategies_dir`` overrides the base's strategy files (default: the
    ref's, or the candidate's with ``base_queries_dir``). ``runs_dir`` receives base/run.json and
    cand/run.json (a temporary folder when None). A query on one side only is listed, not measured.

    ``sequential``: a query stops being measured once more rounds cannot change its verdict (a work
    regression after the first round; a timing verdict at the interim look, ``gate.sequential_looks``), with
    p-values that account for the looks. ``max_time_s`` ends measuring with the verdicts so far, marked so.
    Only the queries a change can affect are measured (``harness.compare.changes``) unless ``measure_all``;
    when none can, the comparison says so without touching the database.
    """
    progress = progress or CompareProgress()
    if (base_ref is None) == (base_queries_dir is None):
        raise InputError("give exactly one base: --base-ref REF or --base-queries DIR")
    if rounds < 1 or iterations < rounds:
        raise InputError(f"need 1 <= --rounds <= --iterations (got rounds={rounds}, iterations={iterations})")
    gate = GateOptions(max_regression, max_work_regression, alpha, floor_ms, interleaved=True,
                       looks=sequential_looks(rounds) if sequential else ())  # fmt: skip
    if max_time_s is not None and max_time_s <= 0:
        raise InputError(f"--max-time {max_time_s:g}: give a positive number of seconds")
    cand_queries = queries_dir or paths.queries_dir()
    cand_strategies = strategies_dir or default_strategies_dir()
    if seed_if_needed:
        load_tier(tier)
    started = time.perf_counter()
    with _base_folders(base_ref, base_queries_dir, base_strategies_dir, cand_queries, cand_strategies) as base_at:
        queries_at, strategies_at, label, commit, prefix = base_at
        cand_catalog = _catalog("cand", cand_queries, only, None)  # bad files are exit 2 before any connection
        base_catalog = _catalog("base", queries_at, only, prefix)
        seeded = None
        if strategy is None:
            with connect(dsn) as conn:
                seeded = read_manifest(conn)
        if strategy is None and seeded is None and not seed_if_needed:  # the user's data, indexes as they are
            cand = _Side("cand", f"working tree {cand_queries}", cand_catalog, _AS_FOUND)
            base = _Side("base", label, base_catalog, _AS_FOUND, commit, prefix)
        else:
            name = strategy or (seeded.strategy if seeded else "baseline")
            cand = _side("cand", f"working tree {cand_queries}", cand_catalog, cand_strategies, name)
            base = _side("base", label, base_catalog, strategies_at, name, commit, prefix)
        common = [q.name for q in cand.catalog.queries if q.name in base.catalog.names]
        if not common:
            raise InputError(f"no query is in both catalogs ({base.catalog.directory} and {cand.catalog.directory}): "
                             "nothing to compare")  # fmt: skip
        found = [query_change(base.catalog.get(n), cand.catalog.get(n), base.strategy, cand.strategy) for n in common]
        unchanged = () if measure_all else tuple((c.name, c.reason) for c in found if not c.changed)
        measured = [n for n in common if n not in dict(unchanged)]
        if not measured:
            return _nothing_changed(base, cand, unchanged, gate, started)
        workload = Workload.resolve(
            dsn,
            tier=tier,
            seed=seed,
            strategy=None if cand.strategy is _AS_FOUND else cand.strategy.name,
            queries_dir=cand_queries,
            only=only,
            force=force,
            seed_if_needed=seed_if_needed,
            database_label=database_label,
        )
        access = access or Access.owner_only(dsn)
        # Exclusive: the sides may switch indexes mid-comparison, and nothing else may seed meanwhile.
        with exclusively(dsn, "compare (A/B)"):
            manifest = workload.prepare(progress.message)
            warning = measuring_warning(access)
            if warning:
                progress.message(f"warning: {warning}")
            comparison = _measure(workload, access, base, cand, manifest, measured, iterations, warmup, rounds,
                                  progress, runs_dir, gate, max_time_s)  # fmt: skip
    wall_s = round(time.perf_counter() - started, 1)
    return replace(comparison, design=replace(comparison.design, wall_s=wall_s), unchanged=unchanged)


def _nothing_changed(
    base: _Side, cand: _Side, unchanged: tuple[tuple[str, str], ...], gate: GateOptions, started: float
) -> RunComparison:
    """The comparison of two catalogs whose every common query is unchanged: nothing measured, exit 0."""
    return RunComparison(
        base_path=base.label,
        cand_path=cand.label,
        base_run_id="",
        cand_run_id="",
        base_strategy=base.strategy.name,
        cand_strategy=cand.strategy.name,
        max_regression=gate.max_regression,
        gate=gate,
        mismatches=(),
        queries=(),
        only_in_base=tuple(n for n in base.catalog.names if n not in cand.catalog.names),
        only_in_cand=tuple(n for n in cand.catalog.names if n not in base.catalog.names),
        warnings=(f"no query can have changed: nothing measured (in {time.perf_counter() - started:.1f} s)",),
        kind="catalogs",
        unchanged=unchanged,
    )


@contextlib.contextmanager
def _base_folders(
    ref: str | None,
    queries_dir: Path | None,
    strategies_override: Path | None,
    cand_queries: Path,
    cand_strategies: Path,
) -> Iterator[tuple[Path, Path, str, str | None, str | None]]:
    """(base queries folder, base strategies folder, label, commit, path prefix) for the chosen base."""
    if queries_dir is not None:
        if not queries_dir.is_dir():
            raise InputError(f"--base-queries {queries_dir}: no such folder; pass the base catalog's folder")
        yield queries_dir, strategies_override or cand_strategies, str(queries_dir), None, None
        return
    assert ref is not None
    repo = repository_root(cand_queries.resolve())
    wanted = {"queries": _inside(cand_queries, repo), "strategies": _inside(cand_strategies, repo)}
    if wanted["queries"] is None:
        raise InputError(f"{cand_queries} is not inside the git repository {repo}: pass --base-queries DIR")
    with extract_ref(repo, ref, [p for p in wanted.values() if p is not None]) as extracted:
        queries_at = extracted.path(wanted["queries"])
        if not queries_at.is_dir():
            raise InputError(f"--base-ref {ref}: {wanted['queries']}/ does not exist at that commit; "
                             "compare against a ref that has the catalog, or use --base-queries DIR")  # fmt: skip
        strategies_at = strategies_override or (
            extracted.path(wanted["strategies"])
            if wanted["strategies"] is not None and extracted.path(wanted["strategies"]).is_dir()
            else cand_strategies
        )
        label = f"git ref {ref} (commit {extracted.commit[:12]})"
        yield queries_at, strategies_at, label, extracted.commit, f"{ref}:{wanted['queries'].as_posix()}"


def _inside(path: Path, repo: Path) -> Path | None:
    try:
        return path.resolve().relative_to(repo)
    except ValueError:
        return None


def _catalog(name: str, queries_dir: Path, only: Sequence[str], prefix: str | None) -> Catalog:
    """One side's catalog, validated (exit 2 naming file:line; a file read from a git ref is named
    REF:path, not by its temporary copy). ``only`` names unknown to the candidate are an error."""
    try:
        catalog = load_catalog(queries_dir)
        refuse_unrunnable(catalog)
    except ConfigError as exc:
        if prefix is None:
            raise
        where = f"{prefix}/{Path(exc.path).name}"
        raise ConfigError(where, f"{exc.message} (in the base catalog)", exc.line, exc.col) from None
    if only and name == "cand":  # a name in neither catalog is an error; one only the base lacks is "added"
        return catalog.select(list(only))
    if only:
        return Catalog(catalog.directory, tuple(q for q in catalog.queries if q.name in only))
    return catalog


def _side(
    name: str,
    label: str,
    catalog: Catalog,
    strategies_at: Path,
    strategy: str,
    commit: str | None = None,
    prefix: str | None = None,
) -> _Side:
    """One side: its catalog and the strategy of that name in its own strategy folder."""
    try:
        chosen = load_strategy(strategy, strategies_at)
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    return _Side(name, label, catalog, chosen, commit, prefix)


def _measure(
    workload: Workload,
    access: Access,
    base: _Side,
    cand: _Side,
    manifest: Manifest | None,
    names: Sequence[str],
    iterations: int,
    warmup: int,
    rounds: int,
    progress: CompareProgress,
    runs_dir: Path | None,
    gate: GateOptions,
    max_time_s: float | None = None,
) -> RunComparison:
    """Measure ``names`` (queries in both catalogs) on both sides in interleaved rounds, and judge them."""
    dsn = workload.dsn
    queries = {side.name: {q.name: q for q in side.catalog.queries if q.name in names} for side in (base, cand)}
    environment = workload.environment(manifest)
    notes = tuple(capabilities(dsn).notes())  # e.g. no pg_stat_statements: work from EXPLAIN instead
    for note in notes:
        progress.message(note)
    draws = {
        side: workload.draws(manifest, warmup + iterations, access.reader_dsn, tuple(qs.values()))
        for side, qs in queries.items()
    }
    paired = tuple(n for n in names if draws["base"][n] == draws["cand"][n])
    arms = {side.name: Arm(side.name, tuple(queries[side.name].values()), draws[side.name]) for side in (base, cand)}
    same_indexes = base.index_key == cand.index_key
    builder = _IndexBuilder(dsn, {base.name: base, cand.name: cand}, manifest is not None)

    def schedule(r: int) -> list[Block]:
        if same_indexes:  # the sides alternate per query: base and candidate slices back to back
            return [
                (arms[side], queries[side][n])
                for n in names
                for side in balanced(SIDES, r, rounds, workload.seed, zlib.crc32(n.encode()))
            ]
        return [(arms[side], queries[side][n]) for side in balanced(SIDES, r, rounds, workload.seed) for n in names]

    if manifest is None:  # indexes are left as they are: warm the cache once
        builder.cache = warm_cache(dsn)
    acc = {(n, side): Accumulated() for n in names for side in SIDES}
    stopping = _EarlyStop(names, acc, draws, queries, warmup, gate, max_time_s)
    try:
        measure_rounds(
            access,
            schedule,
            acc,
            iterations=iterations,
            warmup=warmup,
            rounds=rounds,
            row_counts=environment.row_counts,
            enter=builder.enter,
            measured=progress.measured,
            round_done=stopping.after_round,
            active=stopping.active,
        )
    except BaseException:
        with contextlib.suppress(DatabaseError):  # the server is gone: report why it failed, not the restore
            builder.finish(cand.name)
        raise
    builder.finish(cand.name)
    folder_holder = contextlib.ExitStack()
    with folder_holder:
        folder = runs_dir or Path(folder_holder.enter_context(tempfile.TemporaryDirectory(prefix="harness-ab-")))
        saved = {}
        for side in (base, cand):
            env = replace(environment, git_commit=side.commit or environment.git_commit)
            result = _run_result(
                side, queries[side.name], acc, draws[side.name], env, workload, folder.name, iterations, warmup, rounds
            )
            result.cache = builder.cache.as_dict() if builder.cache else None
            saved[side.name] = load_run(write_reports(result, folder / side.name, html=False) / "run.json")
        comparison = compare_runs(saved["base"], saved["cand"], gate=gate)
    design = Design(
        base=base.label,
        candidate=cand.label,
        rounds=rounds,
        iterations=iterations,
        warmup=warmup,
        order=(
            f"per round and query, base and candidate back to back, each first in half the rounds (seed "
            f"{workload.seed})"
            if same_indexes
            else f"per round, each side's indexes built then all its queries, each side first in half the rounds "
            f"(seed {workload.seed})"
        ),
        indexes=(
            "the database's own indexes, untouched (--no-seed)"
            if cand.strategy is _AS_FOUND
            else f"strategy {cand.strategy.name}: the same {len(cand.index_key)} index definitions on both sides"
            if same_indexes
            else f"strategy {cand.strategy.name} differs: {_index_change(base.strategy, cand.strategy)}; "
            "rebuilt before each side's slices"
        ),
        paired=paired,
        unpaired=tuple(n for n in names if n not in paired),
        test=f"work first (> {gate.max_work_regression:.0%} more buffers per call fails); timing: {ROUNDS_T} (the "
        f"rounds are the independent units; {WILCOXON} below {MIN_ROUNDS} rounds), or {MANN_WHITNEY} for unpaired "
        f"queries, Holm-corrected over {len(names)} queries"
        + (f"; sequential: {LOOKS_RULE} after rounds {', '.join(map(str, gate.looks))}" if gate.looks else ""),
        family_alpha=gate.alpha,
        looks=gate.looks,
        stopped=tuple(stopping.stopped.items()),
    )
    return replace(
        comparison,
        kind="catalogs",
        design=design,
        warnings=comparison.warnings + notes,
        only_in_base=tuple(n for n in base.catalog.names if n not in cand.catalog.names),
        only_in_cand=tuple(n for n in cand.catalog.names if n not in base.catalog.names),
        base_path=str(folder / "base" / "run.json") if runs_dir else base.label,
        cand_path=str(folder / "cand" / "run.json") if runs_dir else cand.label,
    )


class _EarlyStop:
    """Which queries are still measured: a sequential comparison stops the settled ones (``gate.settled``),
    after the first round for work and at each interim look for timing, and a time cap stops them all."""

    def __init__(
        self,
        names: Sequence[str],
        acc: Mapping[tuple[str, str], Accumulated],
        draws: Mapping[str, Mapping[str, ParamSets]],
        queries: Mapping[str, Mapping[str, Query]],
        warmup: int,
        gate: GateOptions,
        max_time_s: float | None,
    ) -> None:
        self.names, self.acc, self.draws, self.queries, self.warmup = names, acc, draws, queries, warmup
        self.gate, self.deadline = gate, (time.monotonic() + max_time_s) if max_time_s else None
        self.rounds_done = 0
        self.stopped: dict[str, str] = {}

    def active(self, name: str) -> bool:
        return name not in self.stopped

    def after_round(self) -> None:
        self.rounds_done += 1
        running = [n for n in self.names if n not in self.stopped]
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stopped.update(dict.fromkeys(running, f"cut short by --max-time after {self.rounds_done} rounds"))
            return
        if not self.gate.looks or not (self.rounds_done == 1 or self.rounds_done in self.gate.looks[:-1]):
            return
        sides = {n: (self._side("base", n), self._side("cand", n)) for n in running}
        for decision in decide(sides, self.gate):
            if settled(decision, self.gate, len(self.names)):
                self.stopped[decision.name] = f"settled after {self.rounds_done} rounds"

    def _side(self, side: str, name: str) -> Side:
        a = self.acc[name, side]
        timed = self.draws[side][name][self.warmup :]
        return Side(tuple(a.samples), a.work, a.plan, tuple(a.draw_plans), draws_digest(timed[: len(a.samples)]),
                    self.queries[side][name].budget_ms, a.error, tuple(a.slices))  # fmt: skip


class _IndexBuilder:
    """Builds a side's indexes when they differ from the ones in place; puts the candidate's back at the end."""

    def __init__(self, dsn: str, sides: Mapping[str, _Side], managed: bool) -> None:
        self.dsn, self.sides, self.managed = dsn, sides, managed
        self.current: tuple[str, ...] | None = None  # unknown until the first build: the database may be stale
        self.cache: CacheState | None = None

    def enter(self, arm: Arm) -> None:
        side = self.sides[arm.name]
        if not self.managed or side.index_key == self.current:
            return
        switch_strategy(self.dsn, side.strategy.name, directory=side.strategy.path.parent)
        self.current = side.index_key
        with connect(self.dsn) as conn:
            checkpoint(conn)
        self.cache = warm_cache(self.dsn)  # each side's slices start from the same stated cache state

    def finish(self, name: str) -> None:
        if self.managed and self.current is not None and self.current != self.sides[name].index_key:
            switch_strategy(self.dsn, self.sides[name].strategy.name, directory=self.sides[name].strategy.path.parent)


def _index_change(base: Strategy, cand: Strategy) -> str:
    before = {i.name: " ".join(i.sql.split()) for i in base.indexes}
    after = {i.name: " ".join(i.sql.split()) for i in cand.indexes}
    parts = [f"+{n}" for n in after if n not in before] + [f"-{n}" for n in before if n not in after]
    parts += [f"~{n}" for n in after if n in before and before[n] != after[n]]
    return ", ".join(parts) or "same names, different order"


def _run_result(
    side: _Side,
    queries: Mapping[str, Query],
    acc: Mapping[tuple[str, str], Accumulated],
    draws: Mapping[str, ParamSets],
    environment: Environment,
    workload: Workload,
    compare_id: str,
    iterations: int,
    warmup: int,
    rounds: int,
) -> RunResult:
    """One side as a `harness run` result (judged against its budgets), so `compare base cand` can re-read it."""
    result = RunResult(
        run_id=f"{compare_id}-{side.name}",
        started_at=now_iso(),
        environment=replace(environment, strategy=side.strategy.name),
        options={
            "mode": f"interleaved A/B, {side.name} side",
            "catalog": side.label,
            "tier": workload.tier_name,
            "seed": workload.seed,
            "strategy": side.strategy.name,
            "iterations": iterations,
            "warmup": warmup,
            "rounds": rounds,
        },
        complete=True,
    )
    for name, query in queries.items():
        a = acc[name, side.name]
        measurement = _measurement(query, a, draws[name][warmup:])
        summary = summarize(measurement.samples_ms) if measurement.samples_ms else None
        verdict = judge(query, measurement, summary, query.budget_ms, side.strategy.name,
                        environment.row_counts, allow_few_samples=True)  # fmt: skip
        path = f"{side.path_prefix}/{query.path.name}" if side.path_prefix else str(query.path)
        result.queries.append(
            QueryResult(name, query.description, query.budget_ms, path, measurement, summary, verdict)
        )
    result.finished_at = now_iso()
    return result


def _measurement(query: Query, acc: Accumulated, timed_sets: ParamSets) -> Measurement:
    """The rounds' slices as one measurement: samples, work and plan shapes in draw order."""
    first = acc.first
    if first is None:
        return Measurement(query.name, query.prepare, 0, error=acc.error or "not measured")
    return replace(
        first,
        samples_ms=list(acc.samples),
        error=acc.error,
        timed_out=acc.timed_out,
        work=acc.work,
        draw_plans=list(acc.draw_plans),
        slices=list(acc.slices),
        plan_shapes=dict(acc.plan_shapes),
        draws_digest=draws_digest(timed_sets[: len(acc.samples)]),
    )
