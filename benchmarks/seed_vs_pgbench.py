"""How fast `harness seed` loads a tier, next to `pgbench -i` on the same server: rows/s and their ratio.

    python benchmarks/seed_vs_pgbench.py [--tier benchmark] [--strategy baseline] [--scale 10] [--runs 1]
                                         [--dsn DSN] [--keep]

Each run seeds the tier into a fresh database, then runs `pgbench -i -s SCALE` into another fresh database of
the same server (the embedded cluster by default, started and stopped as any harness command does; or the
server --dsn points at, which needs CREATEDB). Our time is the wall clock around `harness.seed.seed()`:
generation, COPY, foreign keys, the strategy's indexes, ANALYZE and the checksum. pgbench's is the wall clock
around `pgbench -i`: table creation, COPY, VACUUM and primary keys. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import psycopg
from psycopg import conninfo

from harness import db
from harness.seed import seed
from harness.server import find_binaries

PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history")
TARGET_SEED_S = 15.0
TARGET_RATIO = 0.5


@dataclass(frozen=True)
class Load:
    """One timed load: what was loaded, how many rows, how long it took, and the loader's own breakdown."""

    label: str
    rows: int
    seconds: float
    detail: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def with_dbname(dsn: str, dbname: str) -> str:
    return conninfo.make_conninfo(dsn, dbname=dbname)


def create_database(admin_dsn: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return with_dbname(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def time_seed(dsn: str, tier: str, strategy: str) -> Load:
    started = time.perf_counter()
    manifest = seed(dsn, tier, seed=42, strategy=strategy)
    seconds = time.perf_counter() - started
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in manifest.durations_s.items() if k != "total")
    return Load(f"harness seed --tier {tier} --strategy {strategy}", manifest.total_rows, seconds, steps)


def time_pgbench(dsn: str, scale: int, pg_bin: str | None) -> Load:
    pgbench = find_binaries(pg_bin).tool("pgbench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    started = time.perf_counter()
    done = subprocess.run(
        [str(pgbench), "-i", "-s", str(scale), "-q", dsn],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"pgbench -i failed: {db.redact(done.stderr.strip())}")
    with psycopg.connect(dsn) as conn:
        rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in PGBENCH_TABLES)  # type: ignore[index]
    steps = re.search(r"done in [\d.]+ s \((.*)\)", done.stderr)
    return Load(f"pgbench -i -s {scale}", rows, seconds, steps.group(1) if steps else "")


def describe(load: Load) -> str:
    return (
        f"{load.label}: {load.rows:,} rows in {load.seconds:.2f} s = {load.rows_per_s:,.0f} rows/s\n    ({load.detail})"
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a server to use instead of the embedded cluster (needs CREATEDB)")
    parser.add_argument("--pg-bin", help="directory of PostgreSQL binaries (for pgbench and the embedded server)")
    parser.add_argument("--tier", default="benchmark")
    parser.add_argument("--strategy", default="baseline")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale factor (10 = 1,000,000 accounts)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the two databases afterwards")
    args = parser.parse_args()

    target = db.resolve(args.dsn, pg_bin=args.pg_bin)
    try:
        with psycopg.connect(target.dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        print(f"server: PostgreSQL {version} ({target.source}: {target.display})")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        names = (f"harness_bench_seed_{os.getpid()}", f"harness_bench_pgbench_{os.getpid()}")
        ours, theirs = [], []
        for run in range(1, args.runs + 1):
            seed_dsn, pgbench_dsn = (create_database(target.dsn, name) for name in names)
            ours.append(time_seed(seed_dsn, args.tier, args.strategy))
            theirs.append(time_pgbench(pgbench_dsn, args.scale, args.pg_bin))
            print(f"\nrun {run}/{args.runs}")
            print(describe(ours[-1]))
            print(describe(theirs[-1]))
            print(f"ratio of rows/s (harness / pgbench): {ours[-1].rows_per_s / theirs[-1].rows_per_s:.2f}")
            if not args.keep:
                for name in names:
                    drop_database(target.dsn, name)
        seed_s = statistics.median(load.seconds for load in ours)
        ratio = statistics.median(a.rows_per_s / b.rows_per_s for a, b in zip(ours, theirs, strict=True))
        print(f"\nsummary (median of {args.runs} run{'s' if args.runs > 1 else ''})")
        print(f"seed time: {seed_s:.2f} s (target <= {TARGET_SEED_S:.0f} s: {verdict(seed_s <= TARGET_SEED_S)})")
        print(f"rows/s ratio: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)})")
        if args.keep:
            print(f"kept databases: {', '.join(names)}")
    finally:
        if target.server is not None:
            target.server.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
