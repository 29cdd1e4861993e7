"""`harness compare`: two saved runs (``runs``, pure), strategies side by side (``strategies``) with their write
cost (``write_cost``), or two catalog versions interleaved on one server (``catalogs``, over ``interleave``
and ``gitref``). The decision for runs and catalog versions is ``harness.gate``."""

from harness.compare.catalogs import DEFAULT_AB_ROUNDS, DEFAULT_AB_WARMUP, compare_catalogs
from harness.compare.interleave import CompareProgress
from harness.compare.runs import (
    FINGERPRINT_FIELDS,
    Design,
    Mismatch,
    QueryDelta,
    RunComparison,
    compare_runs,
    fingerprint_mismatches,
    parse_max_regression,
    saved_side,
)
from harness.compare.strategies import (
    DEFAULT_ROUNDS,
    CompareOptions,
    PairVerdict,
    StrategyComparison,
    StrategyCost,
    StrategyMeasurement,
    compare_strategies,
)
from harness.compare.write_cost import DEFAULT_WRITE_ROWS, DEFAULT_WRITE_TRIALS, insert_throughput

__all__ = [
    "DEFAULT_AB_ROUNDS",
    "DEFAULT_AB_WARMUP",
    "DEFAULT_ROUNDS",
    "DEFAULT_WRITE_ROWS",
    "DEFAULT_WRITE_TRIALS",
    "FINGERPRINT_FIELDS",
    "CompareOptions",
    "CompareProgress",
    "Design",
    "Mismatch",
    "PairVerdict",
    "QueryDelta",
    "RunComparison",
    "StrategyComparison",
    "StrategyCost",
    "StrategyMeasurement",
    "compare_catalogs",
    "compare_runs",
    "compare_strategies",
    "fingerprint_mismatches",
    "insert_throughput",
    "parse_max_regression",
    "saved_side",
]
