"""How much does the harness's own timing add to a query's latency? Measured against pgbench.

The same ~1 ms query with the same parameter runs through `harness.measure` (execute + fetch-all under
perf_counter_ns, psycopg, TCP to 127.0.0.1, prepared statements) and through pgbench (-M prepared, one
client, TCP to 127.0.0.1, per-transaction log), interleaved over several rounds to cancel drift. Prints
both medians and their ratio; the target is a ratio within 10%.

    python benchmarks/timing_vs_pgbench.py [--dsn DSN] [--executions 1000] [--rounds 3] [--n 20000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from harness.catalog import load_catalog
from harness.db import resolve
from harness.measure import MeasureOptions, measure_query
from harness.server import find_binaries

QUERY = """/* harness
description = "about 1 ms of server work"
[params]
n = {{ value = {n} }}
*/
SELECT sum(i) FROM generate_series(1, %(n)s) AS i
"""


def harness_samples(dsn: str, catalog_dir: Path, n: int, executions: int) -> list[float]:
    query = load_catalog(catalog_dir).get("one_ms")
    options = MeasureOptions(iterations=executions, warmup=10, prepare="auto")
    result = measure_query(dsn, query, [{"n": n}] * (executions + 10), options, budget_ms=1000)
    assert result.error is None, result.error
    return result.samples_ms


def pgbench_samples(dsn: str, n: int, executions: int) -> list[float]:
    parts = conninfo_to_dict(dsn)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "one_ms.sql"
        script.write_text(f"\\set n {n}\nSELECT sum(i) FROM generate_series(1, :n) AS i;\n")
        subprocess.run(
            [str(find_binaries().tool("pgbench")), "-n", "-M", "prepared", "-c", "1", "-t", str(executions + 10),
             "-f", str(script), "--log", "--log-prefix", f"{tmp}/log",
             "-h", str(parts.get("host", "127.0.0.1")), "-p", str(parts.get("port", 5432)),
             "-U", str(parts.get("user", "postgres")), str(parts.get("dbname", "postgres"))],
            check=True, capture_output=True, text=True, cwd=tmp,
        )  # fmt: skip
        latencies = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                latencies.append(int(line.split()[2]) / 1000)  # column 3: latency in microseconds
    return latencies[10:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="database to use (default: the embedded cluster)")
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=20000, help="generate_series size (~1 ms at 20000)")
    args = parser.parse_args()
    target = resolve(args.dsn)
    try:
        with tempfile.TemporaryDirectory() as catalog:
            (Path(catalog) / "one_ms.sql").write_text(QUERY.format(n=args.n))
            ours: list[float] = []
            theirs: list[float] = []
            for round_no in range(1, args.rounds + 1):
                ours += harness_samples(target.dsn, Path(catalog), args.n, args.executions)
                theirs += pgbench_samples(target.dsn, args.n, args.executions)
                print(f"round {round_no}: harness median {statistics.median(ours):.3f} ms, "
                      f"pgbench median {statistics.median(theirs):.3f} ms")  # fmt: skip
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        print(f"harness  n={len(ours)}  median {ours_median:.3f} ms  p95 {_p95(ours):.3f} ms")
        print(f"pgbench  n={len(theirs)}  median {theirs_median:.3f} ms  p95 {_p95(theirs):.3f} ms")
        print(f"ratio of medians (harness / pgbench): {ours_median / theirs_median:.3f}  (target: within 10%)")
    finally:
        if target.server is not None:
            target.server.release()


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[94]


if __name__ == "__main__":
    main()
