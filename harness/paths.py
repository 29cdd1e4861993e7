"""Where the query catalog and the scenarios (schema, tiers, strategies) are looked up, and saying so.

Order: an explicit option (``--queries DIR``, ``--tier FILE``: the callers pass those on), then the project
config (``[tool.harness]`` / ``harness.toml``), then ``./queries`` and ``./scenarios`` in the current folder,
then the reference workload packaged inside harness (``harness/_reference``, so an installed harness has
something to run from an empty folder). The first place that is configured or exists is used; when it holds
nothing usable, the error lists every place in order and the fix. Tiers are looked up by name in the same
order (``harness.config.tier_places``).
"""

from __future__ import annotations

from pathlib import Path

from harness.config import Place, project_config, reference_dir
from harness.errors import InputError


def queries_dir() -> Path:
    """The project config's ``queries``, else ``./queries`` if it exists, else the reference catalog."""
    return _first("queries", "*.sql", project_config().queries)


def scenarios_dir() -> Path:
    """The project config's ``scenarios``, else ``./scenarios`` if it exists, else the reference scenarios."""
    return _first("scenarios", "schema.sql", project_config().scenarios)


def reports_dir() -> Path:
    """Where run reports go: ``./reports``."""
    return Path.cwd() / "reports"


def _first(key: str, pattern: str, configured: Path | None) -> Path:
    """The first of (the config's ``key``, ./key, the packaged reference) that is set or exists; InputError
    naming every place when that one holds no ``pattern``."""
    project = project_config()
    places = [
        *([Place(configured, project.origin(key))] if configured else []),
        Place(Path.cwd() / key, f"./{key}"),
        Place(reference_dir() / key, "the packaged reference"),
    ]
    chosen = next(place for place in places if place.origin != f"./{key}" or place.path.is_dir())
    if any(chosen.path.glob(pattern)):
        return chosen.path
    looked = "; ".join(f"{place}: {_contents(place.path, pattern)}" for place in places)
    if chosen.path == configured:
        fix = f"add {pattern} to {chosen.path}, or correct `{key}` in {project.path}"
    elif chosen.origin == f"./{key}":
        starter = " (harness init writes a starter catalog)" if key == "queries" else ""
        fix = f"add {pattern} to {chosen.path}{starter}, or remove the folder to use the packaged reference"
    else:
        fix = "reinstall harness (its packaged reference workload is missing)"
    raise InputError(f"no {pattern} in {chosen}: looked in, in order: {looked}; fix: {fix}")


def _contents(folder: Path, pattern: str) -> str:
    if not folder.is_dir():
        return "no such folder"
    found = list(folder.glob(pattern))
    return f"{len(found)} {pattern}" if found else f"no {pattern}"
