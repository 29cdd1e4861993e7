"""How much throughput does `harness load` (Locust + psycopg) leave on the table? Measured against pgbench.

The same query mix, weights, concurrency and duration run through `harness load` and through pgbench
(``-f file@weight -c N -j cores -T secs -M prepared``, per-transaction log). Prints the throughput of both,
their ratio, and the p95 of each query and of the mix. Target: harness >= 0.8x pgbench's throughput on
the analytics mix at the benchmark tier, p95s within 15%.

Both replay the same parameters: pgbench cannot draw from the catalog's SQL pools, so each query becomes
``--param-sets`` scripts, one per fixed parameter set drawn by the same sampler (values written as
literals, quoted by psycopg), each weighted like its query, and pgbench picks among them at random;
harness load runs with ``param_pool=--param-sets`` and picks among exactly those sets (bound parameters,
psycopg auto-prepares after 5 executions).

With ``--rate R`` both run an open loop at R requests/s (harness ``--rate R``, Poisson arrivals; pgbench
``--rate R``, whose per-transaction log times each transaction from its scheduled start and records the
schedule lag): p50 and p95 of the response time (from the intended start) and of the service time (response
minus lag) side by side, per query and for the mix, and their ratios. Target below saturation: p50 and p95
within 10%. At about twice capacity the response time grows with the queue while the service time does not.

    python benchmarks/load_vs_pgbench.py [--tier dev] [--users 10] [--duration 20] [--processes 1]
                                         [--rate R] [--queries DIR] [--only a,b] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from psycopg import sql as pgsql

from harness.catalog import Query, scan_placeholders
from harness.db import connect, resolve
from harness.load.histograms import decode, percentile_ms
from harness.load.results import LoadOptions
from harness.load.runner import run_load
from harness.querylayer import QueryLayer
from harness.server import find_binaries
from harness.workload import Workload

MAX_PGBENCH_SCRIPTS = 128  # pgbench's compile-time limit on -f files


def pgbench_scripts(layer: QueryLayer, directory: Path, param_sets: int) -> list[tuple[Path, int, str]]:
    """(script, weight, query): one script per (query, fixed parameter set), literals quoted by psycopg."""
    scripts = []
    with connect(layer.dsn) as conn:
        for query in (q for q in layer.queries() if q.weight > 0):
            for i in range(param_sets):
                text = _with_literals(query, layer.draw_params(query.name, i), conn)
                path = directory / f"{query.name}.{i}.sql"
                path.write_text(text + ";\n")
                scripts.append((path, query.weight, query.name))
    if len(scripts) > MAX_PGBENCH_SCRIPTS:
        raise SystemExit(f"{len(scripts)} scripts exceed pgbench's {MAX_PGBENCH_SCRIPTS}: lower --param-sets")
    return scripts


def _with_literals(query: Query, params: dict[str, object], conn) -> str:  # type: ignore[no-untyped-def]
    placeholders, _ = scan_placeholders(query.sql)
    text = query.sql
    for p in reversed(placeholders):
        literal = pgsql.Literal(params[p.name or ""]).as_string(conn)
        text = text[: p.start] + literal + text[p.end :]
    return text.replace("%%", "%")  # pgbench scripts: SQL may span lines up to its ';'


def run_pgbench(
    dsn: str, scripts: list[tuple[Path, int, str]], users: int, seconds: int, work: Path, rate: float | None = None
):
    """pgbench's tps and, per query, its transaction latencies and service times (ms) from the
    per-transaction log (under --rate a latency runs from the scheduled start; service = latency - lag)."""
    command = [
        str(find_binaries().tool("pgbench")),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(users),
        "-j",
        str(min(users, 2)),
        "-T",
        str(seconds),
        "-l",
        "--log-prefix",
        str(work / "pgbench_log"),
    ]
    if rate is not None:
        command += ["--rate", f"{rate:g}"]
    for path, weight, _ in scripts:
        command += ["-f", f"{path}@{weight}"]
    done = subprocess.run([*command, dsn], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed: {done.stderr.strip()[-500:]}")
    tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    latencies: dict[str, list[float]] = defaultdict(list)
    service: dict[str, list[float]] = defaultdict(list)
    for log in work.glob("pgbench_log*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            name, latency = scripts[int(fields[3])][2], int(fields[2]) / 1000.0
            latencies[name].append(latency)
            service[name].append(latency - (int(fields[6]) / 1000.0 if len(fields) > 6 else 0.0))
    return tps, latencies, service


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def open_loop_table(harness, latencies: dict[str, list[float]], service: dict[str, list[float]]) -> None:  # type: ignore[no-untyped-def]
    """Response and service time, p50 and p95, harness against pgbench, per query and for the mix."""
    print(f"{'query':28} {'':8} {'harness p50':>11} {'pgbench p50':>11} {'ratio':>6} {'harness p95':>11} "
          f"{'pgbench p95':>11} {'ratio':>6}")  # fmt: skip
    rows = [(q.name, q, latencies.get(q.name, []), service.get(q.name, [])) for q in harness.queries]
    everything = [ms for values in latencies.values() for ms in values]
    served = [ms for values in service.values() for ms in values]
    for name, q, theirs, their_service in [*rows, ("TOTAL", harness.total, everything, served)]:
        for kind, ours, values in (("response", "response", theirs), ("service", "service", their_service)):
            histogram = decode(q.histograms[ours])
            if not histogram.get_total_count() or not values:
                continue
            mine = [percentile_ms(histogram, p) for p in (50, 95)]
            other = [float(np.percentile(values, p)) for p in (50, 95)]
            print(f"{name:28} {kind:8} {mine[0]:11.2f} {other[0]:11.2f} {mine[0] / other[0]:6.2f} "
                  f"{mine[1]:11.2f} {other[1]:11.2f} {mine[1] / other[1]:6.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="dev")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", type=int, default=20, help="seconds per tool")
    parser.add_argument("--processes", type=int, default=1, help="Locust processes for harness load")
    parser.add_argument("--queries", type=Path)
    parser.add_argument("--only", default="")
    parser.add_argument("--param-sets", type=int, default=10, help="fixed parameter sets per query for pgbench")
    parser.add_argument("--rate", type=float, help="open loop: requests/s for both tools")
    parser.add_argument("--dsn")
    args = parser.parse_args()
    only = tuple(n for n in args.only.split(",") if n)

    target = resolve(args.dsn)
    try:
        Workload.resolve(target.dsn, tier=args.tier, queries_dir=args.queries, only=only).prepare(print)
        layer = QueryLayer(target.dsn, args.queries, 42, only)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            scripts = pgbench_scripts(layer, work, args.param_sets)
            layer.close()
            options = LoadOptions(
                users=args.users,
                duration_s=args.duration,
                processes=args.processes,
                tier=args.tier,
                queries_dir=args.queries,
                only=only,
                param_pool=args.param_sets,  # the same fixed parameter sets pgbench replays
                rate=args.rate,
                reports_dir=work / "reports",
            )
            harness = run_load(target.dsn, options)
            tps, latencies, service = run_pgbench(target.dsn, scripts, args.users, args.duration, work, args.rate)
    finally:
        if target.server is not None:
            target.server.release()

    total = harness.total
    assert total is not None and total.summary is not None
    print(
        f"tier {args.tier}, {args.users} users, {args.duration} s each"
        + (f", --rate {args.rate:g}" if args.rate is not None else "")
        + f", harness with {args.processes} "
        f"Locust process(es), pgbench -j {min(args.users, 2)} -M prepared"
    )
    print(
        f"{'query':28} {'weight':>6} {'harness req/s':>14} {'pgbench tps':>12} {'harness p95':>12} "
        f"{'pgbench p95':>12} {'p95 ratio':>9}"
    )
    seconds = args.duration
    for q in harness.queries:
        theirs = latencies.get(q.name, [])
        ours = q.summary.p95 if q.summary else float("nan")
        print(
            f"{q.name:28} {q.weight:6} {q.throughput_rps:14.1f} {len(theirs) / seconds:12.1f} "
            f"{ours:12.2f} {p95(theirs):12.2f} {ours / p95(theirs):9.2f}"
        )
    everything = [ms for values in latencies.values() for ms in values]
    print(
        f"{'TOTAL':28} {'':6} {total.throughput_rps:14.1f} {tps:12.1f} {total.summary.p95:12.2f} "
        f"{p95(everything):12.2f} {total.summary.p95 / p95(everything):9.2f}"
    )
    print(
        f"throughput ratio harness / pgbench = {total.throughput_rps / tps:.2f} (target >= 0.8); "
        f"failures: harness {total.failures}"
    )
    if args.rate is not None:
        print(f"open loop at {args.rate:g} req/s (harness: Poisson arrivals; pgbench --rate):")
        open_loop_table(harness, latencies, service)


if __name__ == "__main__":
    main()
