"""Can a CI trust the compare gate? False alarms on unchanged code, planted regressions caught, and power.

Prints, on one server (the embedded cluster by default):

1. **False alarms** on unchanged code: ``--pairs-test`` pairs on the test tier and ``--pairs-benchmark`` on
   the benchmark tier, each through the two-run mode (two `harness run`, then `harness compare A B`) and
   through the interleaved A/B (`harness compare --base-queries` with an identical copy of the catalog).
   Every other pair runs with a CPU-burning process pinned to one core beside the harness, as on a shared
   CI runner. A false alarm is a pair whose compare exits 1.
2. **Detection** of planted regressions on the benchmark tier, each an A/B compare that must exit 1 naming
   the planted query, printed with the gate's evidence: an expected index dropped from the candidate's
   strategy, a predicate rewritten non-sargable, a variant about 1.5x slower in CPU only, a 0.6 s pg_sleep.
3. **Power**: the share of ``--power-runs`` A/B compares of the benchmark tier that catch one query made
   about 1.3x slower in time only (same plan, same buffers, same rows: an equivalent expression that burns
   CPU per result row, calibrated on the server first; the measured ratio is printed).
4. The wall time of one benchmark-tier `harness compare --base-ref HEAD` (the CLI, as CI runs it).

The runs and compares are the library calls behind the CLI (`harness.run.run`, `compare_runs`,
`compare_catalogs`), so thousands of measurements do not each pay a process start; section 4 is the CLI.

    python benchmarks/verdict_trust.py                      # full: 40 + 10 pairs, 10 power runs (~45 min)
    python benchmarks/verdict_trust.py --quick              # 4 + 2 pairs, 3 power runs
    python benchmarks/verdict_trust.py --pairs-test 2 --pairs-benchmark 0 --power-runs 1 \\
        --detection-tier test                               # a smoke run: minutes, no benchmark seed

Exit status: 0 when there is no false alarm, every plant is caught and power is at least 90%; else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.catalog import Query, load_query
from harness.compare import DEFAULT_AB_ROUNDS, DEFAULT_AB_WARMUP, RunComparison, compare_catalogs, compare_runs
from harness.db import connect, resolve
from harness.measure import MeasureOptions, measure_query
from harness.params import ParamSampler
from harness.report import write_reports
from harness.results import load_run
from harness.run import RunOptions, run
from harness.seed import read_manifest
from harness.workload import Workload, query_seed

REPO = Path(__file__).resolve().parent.parent
QUERIES = REPO / "queries"
STRATEGIES = REPO / "scenarios" / "strategies"
POWER_TARGET = 0.90
# The time-only plant: completion_by_level has fixed draws (anchor dates only) and three result rows, so an
# expression evaluated once per result row costs the same in every execution. ``+ 0 * length(md5(...))``
# leaves every value, the plan, the buffers and the rows unchanged; only CPU time grows with K.
SLOW_QUERY = "completion_by_level"
SLOW_ANCHOR = "/ count(*), 1) AS completion_pct"
SLOW_EXPR = "/ count(*), 1) + 0 * length(md5(repeat(c.level, {k}))) AS completion_pct"


@dataclass
class Tally:
    """One row of the summary table."""

    section: str
    tier: str
    mode: str
    runs: int = 0
    with_burner: int = 0
    hits: int = 0  # false alarms, or plants caught
    wall_s: float = 0.0
    details: list[str] = field(default_factory=list)


# -- helpers ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def cpu_burner(active: bool) -> Iterator[None]:
    """A `while True: pass` process pinned to one core for the duration (a busy neighbour on a CI runner)."""
    if not active:
        yield
        return
    core = max(os.sched_getaffinity(0))
    code = f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile True: pass"
    burner = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.2)  # let it reach the loop
        yield
    finally:
        burner.kill()
        burner.wait()


def copy_catalog(root: Path, name: str, edit: Callable[[str, str], str] | None = None) -> Path:
    """A copy of the reference catalog under ``root/name``, each file passed through ``edit(query, text)``."""
    folder = root / name
    folder.mkdir(parents=True)
    for path in sorted(QUERIES.glob("*.sql")):
        text = path.read_text()
        (folder / path.name).write_text(edit(path.stem, text) if edit else text)
    return folder


def regressed(comparison: RunComparison) -> list[str]:
    return [q.name for q in comparison.regressions]


def two_run_pair(dsn: str, tier: str, root: Path, k: int, measure: MeasureOptions) -> RunComparison:
    """`harness run` twice on unchanged code, then `harness compare A B`."""
    saved = []
    for side in ("a", "b"):
        options = RunOptions(tier=tier, measure=measure, run_id=f"{tier}-{k}-{side}")
        result = run(dsn, options)
        saved.append(load_run(write_reports(result, root / f"{tier}-{k}-{side}", html=False) / "run.json"))
    return compare_runs(saved[0], saved[1])


def ab(
    dsn: str, tier: str, base: Path, root: Path, label: str, args: argparse.Namespace, **kw: object
) -> RunComparison:
    return compare_catalogs(
        dsn,
        base_queries_dir=base,
        queries_dir=kw.pop("queries_dir", QUERIES),  # type: ignore[arg-type]
        tier=tier,
        iterations=args.iterations,
        warmup=args.warmup,
        rounds=args.rounds,
        runs_dir=root / label,
        **kw,  # type: ignore[arg-type]
    )


# -- sections -----------------------------------------------------------------------------------------


def false_alarms(dsn: str, tier: str, pairs: int, root: Path, args: argparse.Namespace) -> list[Tally]:
    measure = MeasureOptions(iterations=args.iterations)  # `harness run`'s defaults otherwise
    Workload.resolve(dsn, tier=tier).prepare()  # seed once, outside the measured pairs
    identical = copy_catalog(root, f"identical-{tier}")
    tallies = [Tally("false alarms", tier, "two-run"), Tally("false alarms", tier, "A/B --base-queries")]
    for k in range(pairs):
        burner = k % 2 == 1
        for tally, compare in zip(tallies, (
            lambda k=k: two_run_pair(dsn, tier, root, k, measure),
            lambda k=k: ab(dsn, tier, identical, root, f"ab-{tier}-{k}", args),
        ), strict=True):  # fmt: skip
            started = time.perf_counter()
            with cpu_burner(burner):
                comparison = compare()
            tally.wall_s += time.perf_counter() - started
            tally.runs += 1
            tally.with_burner += burner
            if comparison.exit_code:
                tally.hits += 1
                tally.details.append(f"pair {k}{' (burner)' if burner else ''}: " +
                                     "; ".join(q.headline() for q in comparison.regressions))  # fmt: skip
            print(f"  {tier} {tally.mode} pair {k + 1}/{pairs}{' +burner' if burner else ''}: "
                  f"exit {comparison.exit_code}", file=sys.stderr)  # fmt: skip
    return tallies


def calibrate_slowdown(dsn: str, target: float, seed: int = 42) -> tuple[int, float]:
    """The K that makes SLOW_QUERY about ``target`` times slower, and the ratio measured with it."""
    base = load_query(QUERIES / f"{SLOW_QUERY}.sql")
    with connect(dsn) as conn:
        manifest = read_manifest(conn)
        assert manifest is not None
        sets = ParamSampler(conn, manifest.anchor, seed).draw_sets(base, 20, query_seed(seed, base))

    def median_ms(k: int) -> float:
        query = base if k == 0 else load_variant(base, k)
        measured = measure_query(dsn, query, sets, MeasureOptions(iterations=15, warmup=5), base.budget_ms)
        return statistics.median(measured.samples_ms)

    t0 = median_ms(0)
    probe = 100_000
    per_unit = max((median_ms(probe) - t0) / probe, 1e-9)
    k = max(1, round((target - 1.0) * t0 / per_unit))
    ratio = median_ms(k) / median_ms(0)
    if ratio > 1.0:  # one refinement: the cost per unit of K is not quite linear
        k = max(1, round(k * (target - 1.0) / (ratio - 1.0)))
        ratio = median_ms(k) / median_ms(0)
    return k, ratio


def load_variant(base: Query, k: int) -> Query:
    """SLOW_QUERY with the CPU-only expression at strength ``k`` (a temporary file, parsed like any query)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{SLOW_QUERY}.sql"
        path.write_text(slow_edit(k)(SLOW_QUERY, base.path.read_text()))
        return load_query(path)


def slow_edit(k: int) -> Callable[[str, str], str]:
    def edit(name: str, text: str) -> str:
        if name != SLOW_QUERY:
            return text
        assert SLOW_ANCHOR in text, f"{SLOW_QUERY}.sql changed: update SLOW_ANCHOR in {__file__}"
        return text.replace(SLOW_ANCHOR, SLOW_EXPR.format(k=k))

    return edit


def replace_in(query: str, old: str, new: str) -> Callable[[str, str], str]:
    def edit(name: str, text: str) -> str:
        if name != query:
            return text
        assert old in text, f"{query}.sql changed: update the plant in {__file__}"
        return text.replace(old, new)

    return edit


def detection(dsn: str, tier: str, root: Path, args: argparse.Namespace) -> tuple[Tally, int]:
    Workload.resolve(dsn, tier=tier).prepare()
    identical = copy_catalog(root, f"base-{tier}")
    k15, ratio15 = calibrate_slowdown(dsn, 1.5)
    no_index = root / "strategies-without-bl_user_occurred_idx"
    shutil.copytree(STRATEGIES, no_index)
    baseline = no_index / "baseline.sql"
    baseline.write_text("".join(line for line in baseline.read_text().splitlines(True)
                                if "bl_user_occurred_idx" not in line))  # fmt: skip
    plants: list[tuple[str, str, dict[str, object]]] = [
        ("expected index bl_user_occurred_idx dropped from the candidate's baseline strategy", "student_behavior",
         {"strategies_dir": no_index, "base_strategies_dir": STRATEGIES}),
        ("student_behavior's user_id predicate rewritten non-sargable (b.user_id + 0 = …)", "student_behavior",
         {"queries_dir": copy_catalog(root, "non-sargable", replace_in(
             "student_behavior", "WHERE b.user_id = %(user_id)s", "WHERE b.user_id + 0 = %(user_id)s"))}),
        (f"{SLOW_QUERY} about 1.5x slower in CPU only (K={k15}, calibrated ratio {ratio15:.2f})", SLOW_QUERY,
         {"queries_dir": copy_catalog(root, "slower-1.5x", slow_edit(k15))}),
        ("a 0.6 s pg_sleep in daily_active_users (an InitPlan run once per execution)", "daily_active_users",
         {"queries_dir": copy_catalog(root, "sleep", replace_in(
             "daily_active_users", "WHERE b.occurred_at >= %(start)s",
             "WHERE (SELECT 1 FROM pg_sleep(0.6)) = 1\n  AND b.occurred_at >= %(start)s"))}),
    ]  # fmt: skip
    tally = Tally("detection", tier, "A/B --base-queries")
    for i, (what, query, kw) in enumerate(plants):
        started = time.perf_counter()
        comparison = ab(dsn, tier, identical, root, f"plant-{i}", args, **kw)
        tally.wall_s += time.perf_counter() - started
        tally.runs += 1
        caught = comparison.exit_code == 1 and query in regressed(comparison)
        tally.hits += caught
        evidence = next((q.headline() for q in comparison.queries if q.name == query), "not compared")
        others = [n for n in regressed(comparison) if n != query]
        tally.details.append(f"{'CAUGHT' if caught else 'MISSED'}: {what} — {evidence}"
                             + (f" (also failed: {', '.join(others)})" if others else ""))  # fmt: skip
        print(f"  plant {i + 1}/{len(plants)}: {'caught' if caught else 'MISSED'}", file=sys.stderr)
    return tally, len(plants)


def power(dsn: str, tier: str, runs: int, root: Path, args: argparse.Namespace) -> Tally:
    Workload.resolve(dsn, tier=tier).prepare()
    identical = copy_catalog(root, f"power-base-{tier}")
    k, ratio = calibrate_slowdown(dsn, 1.3)
    slower = copy_catalog(root, "slower-1.3x", slow_edit(k))
    tally = Tally("power (1.3x, time only)", tier, "A/B --base-queries")
    ratios, same_work = [], 0
    for i in range(runs):
        started = time.perf_counter()
        comparison = ab(dsn, tier, identical, root, f"power-{i}", args, queries_dir=slower)
        tally.wall_s += time.perf_counter() - started
        tally.runs += 1
        q = next(q for q in comparison.queries if q.name == SLOW_QUERY)
        tally.hits += q.regressed
        if q.decision.timing:
            ratios.append(q.decision.timing.ratio)
        same_work += q.decision.work.status == "pass" and not q.decision.work.plan_changes
        others = [n for n in regressed(comparison) if n != SLOW_QUERY]
        if others:
            tally.details.append(f"run {i}: other queries failed too (false alarms): {', '.join(others)}")
        print(f"  power run {i + 1}/{runs}: {'caught' if q.regressed else 'missed'}", file=sys.stderr)
    if ratios:
        tally.details.insert(0, f"K={k}; calibrated ratio {ratio:.2f}; measured per-draw median ratio "
                                f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}); "
                                f"same plan and work in {same_work} of {runs} compares")  # fmt: skip
    return tally


def base_ref_wall_time(dsn: str, tier: str, args: argparse.Namespace) -> Tally:
    """`harness compare --base-ref HEAD` as CI runs it (a process, the CLI, reports written)."""
    tally = Tally("base-ref compare (CLI)", tier, "A/B --base-ref HEAD")
    with tempfile.TemporaryDirectory() as reports:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "harness", "compare", "--base-ref", "HEAD", "--tier", tier, "--dsn", dsn,
             "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--rounds", str(args.rounds),
             "--reports-dir", reports],
            cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        tally.wall_s = time.perf_counter() - started
    tally.runs = 1
    tally.hits = int(done.returncode == 1)
    last = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or ["(no output)"])[-1]
    tally.details.append(f"exit {done.returncode}: {last}")
    return tally


# -- output -------------------------------------------------------------------------------------------


def print_summary(tallies: list[Tally]) -> None:
    print(f"\n{'section':<26} {'tier':<10} {'mode':<22} {'runs':>5} {'burner':>6} {'hits':>5} {'wall s':>8} "
          f"{'s/run':>6}")  # fmt: skip
    for t in tallies:
        per = t.wall_s / t.runs if t.runs else 0.0
        print(f"{t.section:<26} {t.tier:<10} {t.mode:<22} {t.runs:>5} {t.with_burner:>6} {t.hits:>5} "
              f"{t.wall_s:>8.1f} {per:>6.1f}")  # fmt: skip
    for t in tallies:
        for line in t.details:
            print(f"  {t.section} / {t.tier} / {t.mode}: {line}")
    print("hits = false alarms (exit 1 on unchanged code) in 'false alarms'; plants or slowdowns caught otherwise")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs-test", type=int, default=40, help="unchanged pairs on the test tier, per mode")
    parser.add_argument("--pairs-benchmark", type=int, default=10, help="unchanged pairs on the benchmark tier")
    parser.add_argument("--power-runs", type=int, default=10, help="A/B compares with a 1.3x time-only slowdown")
    parser.add_argument("--quick", action="store_true", help="4 / 2 pairs and 3 power runs")
    parser.add_argument("--detection-tier", default="benchmark", help="tier of detection, power, base-ref")
    parser.add_argument("--no-base-ref", action="store_true", help="skip the --base-ref wall-time run")
    parser.add_argument("--dsn", help="database (default: the embedded cluster)")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=DEFAULT_AB_WARMUP, help="A/B warm-up runs per round")
    parser.add_argument("--rounds", type=int, default=DEFAULT_AB_ROUNDS, help="A/B rounds")
    args = parser.parse_args()
    if args.quick:
        args.pairs_test, args.pairs_benchmark, args.power_runs = 4, 2, 3

    target = resolve(args.dsn)
    started = time.perf_counter()
    load_before = os.getloadavg()
    tallies: list[Tally] = []
    plants = 0
    try:
        with tempfile.TemporaryDirectory(prefix="verdict-trust-") as tmp:
            root = Path(tmp)
            if args.pairs_test:
                tallies += false_alarms(target.dsn, "test", args.pairs_test, root, args)
            if args.pairs_benchmark:
                tallies += false_alarms(target.dsn, "benchmark", args.pairs_benchmark, root, args)
            detected, plants = detection(target.dsn, args.detection_tier, root, args)
            tallies.append(detected)
            if args.power_runs:
                tallies.append(power(target.dsn, args.detection_tier, args.power_runs, root, args))
            if not args.no_base_ref:
                tallies.append(base_ref_wall_time(target.dsn, args.detection_tier, args))
    finally:
        if target.server is not None:
            target.server.release()
    print(f"verdict trust: {time.perf_counter() - started:.0f} s; load average {load_before[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {args.iterations} timed runs per query and side; A/B: {args.rounds} "
          f"rounds, {args.warmup} warm-up runs per round")  # fmt: skip
    print_summary(tallies)
    alarms = sum(t.hits for t in tallies if t.section == "false alarms")
    caught = next((t.hits for t in tallies if t.section == "detection"), 0)
    power_tally = next((t for t in tallies if t.section.startswith("power")), None)
    share = power_tally.hits / power_tally.runs if power_tally and power_tally.runs else None
    print(f"overall: {alarms} false alarms in {sum(t.runs for t in tallies if t.section == 'false alarms')} "
          f"compares; {caught} of {plants} plants caught; power "
          f"{'-' if share is None else f'{share:.0%}'} (target {POWER_TARGET:.0%})")  # fmt: skip
    ok = alarms == 0 and caught == plants and (share is None or share >= POWER_TARGET)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
