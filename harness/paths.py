"""Default locations of the scenarios (schema, tiers, strategies) and the query catalog.

A project's own ``./scenarios`` and ``./queries`` win; otherwise the reference workload that ships
beside the package (a source checkout or an editable install) is used.
"""

from __future__ import annotations

from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _first_existing(name: str, marker: str) -> Path:
    local = Path.cwd() / name
    if (local / marker).exists():
        return local
    return _SOURCE_ROOT / name


def scenarios_dir() -> Path:
    """``./scenarios`` if it holds a schema.sql, else the reference scenarios."""
    return _first_existing("scenarios", "schema.sql")


def queries_dir() -> Path:
    """``./queries`` if it exists, else the reference catalog."""
    return _first_existing("queries", ".")


def reports_dir() -> Path:
    """Where run reports go: ``./reports``."""
    return Path.cwd() / "reports"
