"""harness: a PostgreSQL benchmark and performance-regression harness.

Seed deterministic data at scale tiers, check the analytics SQL statically, measure every query (plan +
repeated timings) against its budget, compare index strategies and runs, and load-test the query layer.

The Python API is one call per command, taking the command's options as keyword arguments
(``harness.api``)::

    import harness
    result = harness.run(tier="test", iterations=50)
    print(result.status, [q.summary.p95 for q in result.queries if q.summary])

Names are imported on first use: ``import harness`` stays cheap for the pytest plugin (loaded in every
pytest session) and lets Locust's gevent patch come before psycopg is imported. ``harness.run``,
``harness.seed``, ``harness.grow``, … are always these functions; their modules are imported by name
(``from harness.run import RunOptions``).
"""

from __future__ import annotations

import importlib
import sys
import types
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("harness")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

_FUNCTIONS = ("init", "seed", "check", "run", "compare", "load", "grow")
_WHERE = {
    **{name: "harness.api" for name in _FUNCTIONS},
    "Workload": "harness.workload",
    "Environment": "harness.environment",
    "RunOptions": "harness.run",
    "Progress": "harness.run",
    "RunResult": "harness.results",
    "QueryResult": "harness.results",
    "SavedRun": "harness.results",
    "load_run": "harness.results",
    "GrowOptions": "harness.grow",
    "GrowProgress": "harness.grow",
    "GrowResult": "harness.growth_analysis",
    "LoadOptions": "harness.load.results",
    "LoadResult": "harness.load.results",
    "LoadProgress": "harness.load.runner",
    "RunComparison": "harness.compare",
    "StrategyComparison": "harness.compare",
    "CompareProgress": "harness.compare",
    "Manifest": "harness.seed.manifest",
    "QueryLayer": "harness.querylayer",
    "HarnessError": "harness.errors",
    "Starter": "harness.starter",
}
__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


class _Package(types.ModuleType):
    """Importing the submodule ``harness.run`` (or seed, check, compare, load) must not replace the function
    ``harness.run`` on the package, which Python's import system does by default."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
