"""The starter project ``harness init`` writes: two example queries and a project config.

The example queries read no table (``generate_series``, ``current_setting``), so they check offline against
any schema and run on any database, the embedded one included: ``harness init && harness check`` passes in
an empty folder, and the user replaces them with their own. The config goes into ``harness.toml``, or as
``[tool.harness]`` at the end of an existing ``pyproject.toml``. Nothing existing is overwritten without
``force``; a pyproject.toml's own ``[tool.harness]`` never is (the user edits it).
"""

from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError

CONFIG_KEYS = """\
queries = "queries"                 # the query catalog (paths are relative to this file)
# scenarios = "scenarios"           # schema.sql, tiers/, strategies/ (default: ./scenarios, else the reference)
# tiers = "tiers"                   # tier files, looked up by name before ./scenarios/tiers and the reference
# dsn_env = "PERF_DATABASE_URL"     # the variable holding the DSN (after --dsn and HARNESS_DSN)
# budget_ms = 500                   # the p95 budget of a query whose header sets none
# anchor = 2026-06-30               # or "max:orders.created_at": the same draws every day on unseeded data
"""
NEXT_STEPS = (
    "harness check                           # the starter queries, checked offline",
    "harness run --tier test                 # measured on the embedded PostgreSQL (seeds the test tier)",
    'harness run --dsn "$DATABASE_URL" --no-seed   # measured on your database, writing nothing to it',
)


@dataclass(frozen=True)
class Starter:
    """What ``harness init`` wrote, and the commands to run next."""

    written: tuple[Path, ...]
    config: Path
    next_steps: tuple[str, ...] = NEXT_STEPS


def write_starter(directory: Path, force: bool = False) -> Starter:
    """Write ``queries/`` examples and the project config into ``directory``; InputError (exit 2) naming an
    existing file, before anything is written, unless ``force``."""
    queries = directory / "queries"
    templates = importlib.resources.files("harness") / "_starter" / "queries"
    files = {queries / t.name: t.read_text(encoding="utf-8") for t in templates.iterdir() if t.name.endswith(".sql")}
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file() and not (directory / "harness.toml").exists():
        config, config_text = pyproject, _with_tool_harness(pyproject)
    else:
        config, config_text = directory / "harness.toml", "# harness project config (README: Your own project)\n"
        config_text += CONFIG_KEYS
    files[config] = config_text
    existing = [path for path in files if path.exists() and path != pyproject]
    if existing and not force:
        names = ", ".join(str(path) for path in existing)
        verb = "exists" if len(existing) == 1 else "exist"
        raise InputError(f"{names}: already {verb}; harness init overwrites nothing (pass --force to replace)")
    queries.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return Starter(written=tuple(files), config=config)


def _with_tool_harness(pyproject: Path) -> str:
    """The pyproject's text with a ``[tool.harness]`` table appended; InputError when it has one already."""
    text = pyproject.read_text(encoding="utf-8")
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{pyproject}: not valid TOML ({exc}); fix it, then run harness init again") from None
    if isinstance(tool, dict) and "harness" in tool:
        raise InputError(f"{pyproject}: already has [tool.harness]; edit it there (harness init never rewrites it)")
    return text + ("" if text.endswith("\n") or not text else "\n") + "\n[tool.harness]\n" + CONFIG_KEYS
