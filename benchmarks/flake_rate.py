"""Does an unchanged database flip the gate's verdict? Runs the test-tier gate K times and counts the flips.

The data is seeded once; then the same `harness run` (library call, same options, same parameter draws) is
repeated K times on it. A *gate flip* is a run whose outcome for a query (fail, or not) differs from that
query's most common outcome: that is what would turn a CI job red for nothing. Status changes between pass
and warn are counted apart (they do not fail CI, but show verdicts near a threshold). The p95 spread is
(max - min) / median of a query's p95 over the K runs. Target: 0 gate flips in 20 runs on an idle machine.

    python benchmarks/flake_rate.py [--runs 20] [--tier test] [--dsn DSN] [--iterations 30] [--warmup 5]

Exit status: 0 without gate flips, 1 with any.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from harness.db import resolve
from harness.measure import MeasureOptions
from harness.run import RunOptions, run
from harness.workload import Workload


def gate(status: str) -> str:
    return "fail" if status == "fail" else "ok"


def flips(outcomes: list[str]) -> int:
    """Runs whose outcome differs from the most common one."""
    return len(outcomes) - Counter(outcomes).most_common(1)[0][1] if outcomes else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="how many times to run the gate (K)")
    parser.add_argument("--tier", default="test")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dsn", help="database (default: the embedded cluster)")
    parser.add_argument("--queries", type=Path, help="query catalog (default: queries/)")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    target = resolve(args.dsn)
    options = RunOptions(
        tier=args.tier,
        seed=args.seed,
        queries_dir=args.queries,
        measure=MeasureOptions(iterations=args.iterations, warmup=args.warmup),
    )
    statuses: dict[str, list[str]] = {}
    p95s: dict[str, list[float]] = {}
    exit_codes: list[int] = []
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        Workload.of(options, target.dsn).prepare()  # seed once, outside the measured runs
        for k in range(args.runs):
            result = run(target.dsn, options)
            for q in result.queries:
                statuses.setdefault(q.name, []).append(q.verdict.status)
                if q.summary is not None:
                    p95s.setdefault(q.name, []).append(q.summary.p95)
            exit_codes.append(1 if result.status == "fail" else 0)
            print(f"  run {k + 1}/{args.runs}: {result.status}", file=sys.stderr)
    finally:
        if target.server is not None:
            target.server.release()
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    print(
        f"flake rate: tier {args.tier}, {args.runs} runs of the gate, {len(statuses)} queries, "
        f"{args.iterations} timed executions each ({elapsed:.0f} s; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after)"
    )
    header = f"{'query':<28} {'pass':>4} {'warn':>4} {'fail':>4} {'gate flips':>10}  "
    print(header + f"{'p95 min … median … max (ms)':<32} spread")
    total_gate_flips = total_status_flips = 0
    for name, seen in statuses.items():
        counts = Counter(seen)
        gate_flips = flips([gate(s) for s in seen])
        total_gate_flips += gate_flips
        total_status_flips += flips(seen)
        values = p95s.get(name, [])
        if values:
            low, mid, high = min(values), statistics.median(values), max(values)
            spread = f"{(high - low) / mid:.0%}" if mid else "-"
            p95 = f"{low:.3f} … {mid:.3f} … {high:.3f}"
        else:
            p95, spread = "-", "-"
        print(
            f"{name:<28} {counts['pass']:>4} {counts['warn']:>4} {counts['fail']:>4} {gate_flips:>10}  "
            f"{p95:<32} {spread}"
        )
    run_flips = flips([str(code) for code in exit_codes])
    print(
        f"overall: {total_gate_flips} gate flips across queries, {run_flips} of {args.runs} runs with a "
        f"different exit code than the usual {Counter(exit_codes).most_common(1)[0][0]}; "
        f"{total_status_flips} status changes including pass↔warn"
    )
    return 1 if total_gate_flips or run_flips else 0


if __name__ == "__main__":
    sys.exit(main())
