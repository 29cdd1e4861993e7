"""How much does the harness's own timing add to a query's latency? Measured against pgbench.

Two queries on pgbench's own schema (``pgbench -i``, in a scratch database ``harness_timing`` of the
chosen server): a point lookup on ``pgbench_accounts`` (~0.05 ms: the harness's overhead shows most there)
and a ~1 ms aggregate. Each runs through `harness.measure` (execute + fetch-all under perf_counter_ns,
psycopg, TCP to 127.0.0.1, prepared, each execution in its own read-only transaction whose BEGIN and
ROLLBACK are outside the clock) and through pgbench (-M prepared, one client, TCP, per-transaction log), in
alternating blocks to cancel drift. Prints the medians, their ratio (targets: point lookup ≤ 1.3x, 1 ms
query within 10%), and the wall-clock cost per execution of the read-only transaction around it.

    python benchmarks/timing_vs_pgbench.py [--dsn DSN] [--executions 2000] [--blocks 6]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from harness.catalog import load_catalog
from harness.db import resolve
from harness.measure import MeasureOptions, measure_query
from harness.server import find_binaries

SCRATCH = "harness_timing"
QUERIES = {  # name: (harness query file, pgbench script)
    "point_lookup": (
        '/* harness\n[params]\naid = { draw = "int", min = 1, max = 100000 }\n*/\n'
        "SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s\n",
        "\\set aid random(1, 100000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n",
    ),
    "one_ms": (
        "/* harness\n[params]\nn = { value = 20000 }\n*/\nSELECT sum(i) FROM generate_series(1, %(n)s) AS i\n",
        "\\set n 20000\nSELECT sum(i) FROM generate_series(1, :n) AS i;\n",
    ),
}
WARMUP = 10


def scratch_database(dsn: str) -> str:
    """The DSN of a scratch database holding pgbench's tables (created once with ``pgbench -i -s 1``)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [SCRATCH]).fetchone():
            conn.execute(f"CREATE DATABASE {SCRATCH}")
    scratch = make_conninfo(dsn, dbname=SCRATCH)
    with psycopg.connect(scratch) as conn:
        ready = conn.execute("SELECT to_regclass('pgbench_accounts') IS NOT NULL").fetchone()
    if not (ready and ready[0]):
        subprocess.run([str(find_binaries().tool("pgbench")), "-i", "-s", "1", "-q", *_pgbench_target(scratch)],
                       check=True, capture_output=True)  # fmt: skip
    return scratch


def harness_block(dsn: str, catalog_dir: Path, name: str, executions: int) -> tuple[list[float], float]:
    """The timed samples (ms) and the wall-clock ms per execution of the whole timed loop."""
    query = load_catalog(catalog_dir).get(name)
    if name == "point_lookup":
        draws = [{"aid": 1 + (i * 7919) % 100_000} for i in range(executions + WARMUP)]
    else:
        draws = [{"n": 20000}] * (executions + WARMUP)
    options = MeasureOptions(iterations=executions, warmup=WARMUP, prepare="auto")
    started = time.perf_counter()
    result = measure_query(dsn, query, draws, options, budget_ms=1000)
    wall = time.perf_counter() - started
    assert result.error is None, result.error
    return result.samples_ms, wall * 1000 / (executions + WARMUP)


def pgbench_block(dsn: str, script_text: str, executions: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.sql"
        script.write_text(script_text)
        subprocess.run(
            [str(find_binaries().tool("pgbench")), "-n", "-M", "prepared", "-c", "1", "-t", str(executions + WARMUP),
             "-f", str(script), "--log", "--log-prefix", f"{tmp}/log", *_pgbench_target(dsn)],
            check=True, capture_output=True, text=True, cwd=tmp,
        )  # fmt: skip
        latencies = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                latencies.append(int(line.split()[2]) / 1000)  # column 3: latency in microseconds
    return latencies[WARMUP:]


def read_only_cost_ms(dsn: str, executions: int) -> float:
    """Wall ms per execution of BEGIN READ ONLY + ROLLBACK on an idle connection: what each execution's
    transaction adds to a run's duration (outside the timer)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(executions):
            conn.execute("BEGIN READ ONLY", prepare=False)
            conn.execute("ROLLBACK", prepare=False)
        return (time.perf_counter() - started) * 1000 / executions


def _pgbench_target(dsn: str) -> list[str]:
    parts = conninfo_to_dict(dsn)
    return ["-h", str(parts.get("host", "127.0.0.1")), "-p", str(parts.get("port", 5432)),
            "-U", str(parts.get("user", "postgres")), str(parts.get("dbname", "postgres"))]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="server to use (default: the embedded cluster)")
    parser.add_argument("--executions", type=int, default=2000, help="timed executions per block")
    parser.add_argument("--blocks", type=int, default=6, help="alternating blocks per side and query")
    args = parser.parse_args()
    target = resolve(args.dsn)
    try:
        dsn = scratch_database(target.dsn)
        with tempfile.TemporaryDirectory() as catalog:
            for name, (query_file, _) in QUERIES.items():
                (Path(catalog) / f"{name}.sql").write_text(query_file)
            for name, (_, script) in QUERIES.items():
                ours: list[float] = []
                walls: list[float] = []
                theirs: list[float] = []
                for _ in range(args.blocks):
                    samples, wall = harness_block(dsn, Path(catalog), name, args.executions)
                    ours += samples
                    walls.append(wall)
                    theirs += pgbench_block(dsn, script, args.executions)
                ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
                print(f"{name}: harness median {ours_median:.4f} ms (n={len(ours)}), "
                      f"pgbench median {theirs_median:.4f} ms (n={len(theirs)}), "
                      f"ratio {ours_median / theirs_median:.2f}; harness wall per execution "
                      f"{statistics.median(walls):.4f} ms")  # fmt: skip
        cost = read_only_cost_ms(dsn, args.executions)
        print(f"read-only transaction (BEGIN READ ONLY + ROLLBACK, outside the timer): {cost:.4f} ms per execution")
    finally:
        if target.server is not None:
            target.server.release()


if __name__ == "__main__":
    main()
