"""harness: a PostgreSQL benchmark and performance-regression harness.

Seed deterministic data at scale tiers, check the analytics SQL statically, measure every query (plan +
repeated timings) against its budget, compare index strategies and runs, and load-test the query layer.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harness")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
