"""Does the growth forecast hold? Forecast each query's p95 at a size that is then measured, and compare.

One `harness grow` over ``--tiers`` (default test,dev,demo,benchmark, with ``--target-tier``, default stress,
as the gate): its flags and forecasts are printed first. Then the honest check, from the same measurements:

- **hold-out** (default): the fits are redone without the largest tier, the p95 of each query is forecast
  at that tier's rows, and the forecast is set beside what was measured there (ratio, inside the band?);
- ``--check-tier T``: the forecast from all of ``--tiers`` is checked against a `harness run` of tier T
  (e.g. stress: minutes to seed and measure, ~2 GB of memory).

A forecast that misses is printed as missed. A query without a forecast (one tier in its last plan regime,
or no growth) is printed with the reason.

    python benchmarks/growth_forecast.py                                   # hold out benchmark (minutes)
    python benchmarks/growth_forecast.py --tiers test,dev --target-tier demo   # a smoke run: seconds
    python benchmarks/growth_forecast.py --check-tier stress               # the full check (long)
    python benchmarks/growth_forecast.py --from reports/grow-<id>          # re-check saved measurements
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import harness
from harness.grow import GrowOptions, GrowProgress, resolve_target
from harness.growth_analysis import Flag, QueryGrowth, Target, analyse, row_counts
from harness.report.grow import forecast_text, model_text
from harness.results import RunResult


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", default="test,dev,demo,benchmark")
    parser.add_argument("--target-tier", default="stress")
    parser.add_argument("--check-tier", help="measure this tier after growing, instead of holding one out")
    parser.add_argument("--strategy")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--reports-dir", type=Path, help="write grow's reports under this folder")
    parser.add_argument("--from", dest="saved", type=Path, help="re-check a saved grow folder (no measuring)")
    parser.add_argument("--dsn")
    args = parser.parse_args()

    if args.saved:
        grown = json.loads((args.saved / "grow.json").read_text())
        runs = [RunResult.from_dict(json.loads((args.saved / t["run"]).read_text())) for t in grown["tiers"]]
        print_flags(analyse(runs, resolve_target(GrowOptions(target_tier=args.target_tier), runs)))
        print_check(runs[:-1], runs[-1])
        return 0
    started = time.perf_counter()
    result = harness.grow(tiers=args.tiers, target_tier=args.target_tier, strategy=args.strategy,
                          iterations=args.iterations, reports_dir=args.reports_dir, dsn=args.dsn,
                          progress=GrowProgress(tier_started=_say_tier))  # fmt: skip
    print(f"grow over {args.tiers} in {time.perf_counter() - started:.0f} s: {result.status}")
    print_flags(result.queries)
    if args.check_tier:
        checked = harness.run(tier=args.check_tier, strategy=args.strategy, iterations=args.iterations,
                              dsn=args.dsn, allow_few_samples=True)  # fmt: skip
        fitted, measured = result.runs, checked
    else:
        fitted, measured = result.runs[:-1], result.runs[-1]
    print_check(fitted, measured)
    return 0


def print_flags(queries: Sequence[QueryGrowth]) -> None:
    for q in queries:
        flags = ", ".join(str(f) for f in q.flags) or "none"
        print(f"  {q.name:26} flags: {flags}; forecast by {model_text(q)}: {forecast_text(q.forecast)}")
        for text in q.failures:
            print(f"      {text}")


def _say_tier(index: int, total: int, tier: str) -> None:
    print(f"tier {index + 1}/{total}: {tier} ({time.strftime('%H:%M:%S')})", flush=True)


def print_check(fitted: Sequence[RunResult], measured: RunResult) -> None:
    """Forecast p95 at ``measured``'s rows from ``fitted`` alone, beside the p95 measured there."""
    rows = row_counts(measured)
    tier = measured.environment.tier if measured.environment else measured.run_id
    growths = analyse(fitted, Target(dict(rows), f"tier {tier}"))
    flipped = {q.name for q in analyse([*fitted, measured], None) for flip in q.flips if flip.tier == tier}
    by_name = {q.name: q for q in measured.queries}
    print(f"\nforecast from {', '.join(r.environment.tier for r in fitted if r.environment)} vs measured at {tier}:")
    print(f"  {'query':26} {'forecast p95 ms [95% band]':>34} {'measured p95 ms':>16} {'ratio':>7}  verdict")
    inside = total = 0
    for growth in growths:
        q = by_name.get(growth.name)
        if q is None or q.summary is None:
            print(f"  {growth.name:26} not measured at {tier}")
            continue
        line = _check_line(growth, q.summary.p95)
        total += line is not None
        inside += bool(line and line.endswith("inside"))
        note = f"  (plan flipped at {tier}: outside the fitted regime)" if growth.name in flipped else ""
        print(f"  {growth.name:26} {line or 'no forecast: ' + _why(growth)}{note}")
    print(f"  {inside} of {total} forecasts put the measured p95 inside their band")


def _check_line(growth: QueryGrowth, p95: float) -> str | None:
    if growth.p95_at_target is None:
        return None
    value, low, high = growth.p95_at_target
    verdict = "inside" if low <= p95 <= high else "MISSED"
    return f"{value:>12,.1f} [{low:>8,.1f}, {high:>8,.1f}] {p95:>16,.1f} {p95 / value:>7.2f}  {verdict}"


def _why(growth: QueryGrowth) -> str:
    return next((text.rsplit(": ", 1)[-1] for flag, text in growth.reasons if flag is Flag.NO_FORECAST), "no fit")


if __name__ == "__main__":
    raise SystemExit(main())
