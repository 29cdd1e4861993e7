"""Scale tiers and the project config, each parsed once into a validated frozen dataclass.

A tier is one TOML file (``scenarios/tiers/<name>.toml``); a user adds a tier by adding a file. The project
config is ``[tool.harness]`` in a ``pyproject.toml`` or a ``harness.toml``, found as pytest and ruff find
theirs. Errors read like a compiler's (file:line: key: problem; fix).
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import ConfigError, InputError, did_you_mean

TIER_KEYS = {
    "name",
    "description",
    "anchor_date",
    "history_days",
    "users",
    "courses",
    "lessons_per_course",
    "behavior_logs",
    "enrollments_per_user",
    "bounds",
}
REQUIRED_KEYS = ("anchor_date", "users", "courses", "behavior_logs")
# Ceilings that keep a typo (users = 10**14) from exhausting memory: stress is 100k users, 10M logs.
MAX_USERS = 10_000_000
MAX_COURSES = 100_000
MAX_BEHAVIOR_LOGS = 200_000_000
MAX_HISTORY_DAYS = 36_600  # a century of activity: far past any analytics window
MAX_ENROLLMENTS_PER_USER = 1_000.0
ANCHOR_RANGE = (dt.date(1900, 1, 1), dt.date(2999, 12, 31))  # every timestamp stays a valid date
BOUNDED_TABLES = (
    "users",
    "courses",
    "lessons",
    "enrollments",
    "user_progress",
    "behavior_logs",
    "points_ledger",
)


@dataclass(frozen=True)
class Tier:
    """How much data to seed, over which period, and the row-count bounds the result must respect."""

    name: str
    path: Path
    description: str
    anchor_date: dt.date
    history_days: int
    users: int
    courses: int
    lessons_per_course: tuple[int, int]
    behavior_logs: int
    enrollments_per_user: float
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def anchor(self) -> dt.datetime:
        """Exclusive upper bound of all generated timestamps: midnight after the anchor date, UTC."""
        return dt.datetime.combine(self.anchor_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    def out_of_bounds(self, row_counts: dict[str, int]) -> list[str]:
        """Human-readable violations of the declared bounds (empty when all counts fit)."""
        problems = []
        for table, (low, high) in self.bounds.items():
            count = row_counts.get(table, 0)
            if not low <= count <= high:
                problems.append(f"{table}: {count} rows, tier {self.name} declares [{low}, {high}]")
        return problems


def tier_places() -> list[Place]:
    """Where a tier name is looked up, in order: the project config's folder, ./scenarios/tiers, the reference."""
    project = project_config()
    places = []
    if project.tiers is not None:
        places.append(Place(project.tiers, project.origin("tiers")))
    elif project.scenarios is not None:
        places.append(Place(project.scenarios / "tiers", project.origin("scenarios")))
    places.append(Place(Path.cwd() / "scenarios" / "tiers", "./scenarios/tiers"))
    places.append(Place(reference_dir() / "scenarios" / "tiers", "the packaged reference"))
    return places


def available_tiers(directory: Path | None = None) -> list[str]:
    """The tier names of ``directory``, or of every place a name is looked up."""
    folders = [directory] if directory is not None else [place.path for place in tier_places()]
    return sorted({p.stem for folder in folders for p in folder.glob("*.toml")})


def load_tier(name_or_path: str | Path, directory: Path | None = None) -> Tier:
    """Load a tier by path to a TOML file, or by name: ``<name>.toml`` in ``directory``, else in the first of
    ``tier_places()`` holding one (an unknown name says where it looked)."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        return parse_tier(candidate)
    places = [Place(directory, "given")] if directory is not None else tier_places()
    for place in places:
        if (place.path / f"{name_or_path}.toml").is_file():
            return parse_tier(place.path / f"{name_or_path}.toml")
    hint = did_you_mean(str(name_or_path), available_tiers(directory))
    looked = "; ".join(f"{place}: {_tier_names(place.path)}" for place in places)
    raise InputError(
        f"unknown tier {name_or_path!r}{hint}: looked in, in order: {looked}; "
        f"fix: pass a known name, --tier FILE.toml, or add {name_or_path}.toml to one of these folders"
    )


def _tier_names(folder: Path) -> str:
    if not folder.is_dir():
        return "no such folder"
    return ", ".join(sorted(p.stem for p in folder.glob("*.toml"))) or "no .toml files"


def parse_tier(path: Path) -> Tier:
    text, data = _read_toml(path, "tier file")
    if not text.strip():
        raise ConfigError(path, "empty tier file; see scenarios/tiers/test.toml for the keys a tier needs")
    reader = _Reader(path, text, data)
    for key in data:
        if key not in TIER_KEYS:
            reader.fail(key, f"unknown key {key!r}{did_you_mean(key, TIER_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise ConfigError(path, f"missing required key {key!r}")
    anchor = data["anchor_date"]
    if not isinstance(anchor, dt.date) or isinstance(anchor, dt.datetime):
        reader.fail("anchor_date", "anchor_date must be a TOML date, e.g. anchor_date = 2026-06-30")
    if not ANCHOR_RANGE[0] <= anchor <= ANCHOR_RANGE[1]:
        reader.fail(
            "anchor_date",
            f"anchor_date must be between {ANCHOR_RANGE[0]} and {ANCHOR_RANGE[1]}, got {anchor}",
        )
    lessons = data.get("lessons_per_course", [5, 12])
    if (
        not isinstance(lessons, list)
        or len(lessons) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in lessons)
        or not 1 <= lessons[0] <= lessons[1]
    ):
        reader.fail("lessons_per_course", "lessons_per_course must be [min, max] with 1 <= min <= max")
    bounds = {}
    raw_bounds = data.get("bounds", {})
    if not isinstance(raw_bounds, dict):
        reader.fail("bounds", "bounds must be a table of table-name = [min, max]")
    for table, pair in raw_bounds.items():
        if table not in BOUNDED_TABLES:
            reader.fail(table, f"bounds: unknown table {table!r}{did_you_mean(table, BOUNDED_TABLES)}", "bounds")
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair)
            and pair[0] <= pair[1]
        ):
            reader.fail(table, f"bounds.{table} must be [min, max] with 0 <= min <= max", "bounds")
        bounds[table] = (pair[0], pair[1])
    return Tier(
        name=reader.string("name", default=path.stem),
        path=path,
        description=reader.string("description", default=""),
        anchor_date=anchor,
        history_days=reader.integer("history_days", default=90, minimum=7, maximum=MAX_HISTORY_DAYS),
        users=reader.integer("users", minimum=1, maximum=MAX_USERS),
        courses=reader.integer("courses", minimum=1, maximum=MAX_COURSES),
        lessons_per_course=(lessons[0], lessons[1]),
        behavior_logs=reader.integer("behavior_logs", minimum=0, maximum=MAX_BEHAVIOR_LOGS),
        enrollments_per_user=reader.number(
            "enrollments_per_user", default=2.0, minimum=0.0, maximum=MAX_ENROLLMENTS_PER_USER
        ),
        bounds=bounds,
    )


# -- the project config ------------------------------------------------------------------------------

PROJECT_FILES = ("harness.toml", "pyproject.toml")  # in one folder, harness.toml wins
PROJECT_KEYS = ("queries", "scenarios", "tiers", "dsn_env", "budget_ms", "anchor")
MAX_BUDGET_MS = 3_600_000.0  # an hour: statement_timeout (budget x factor) must stay a valid integer
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def reference_dir() -> Path:
    """The packaged reference workload (queries/, scenarios/): files inside the installed package."""
    return Path(str(importlib.resources.files("harness") / "_reference"))


@dataclass(frozen=True)
class Place:
    """A folder something is looked up in, and why it is on the list (shown when nothing was found)."""

    path: Path
    origin: str  # "harness.toml:3 queries", "./queries", "the packaged reference"

    def __str__(self) -> str:
        return f"{self.origin} ({self.path})"


@dataclass(frozen=True)
class Anchor:
    """The fixed point draws count back from on data the harness did not seed: a date, or a column's max."""

    text: str  # as written in the config ("2026-06-30", "max:orders.created_at")
    date: dt.date | None = None
    column: tuple[str, ...] = ()  # (table, column) or (schema, table, column) for "max:…"


@dataclass(frozen=True)
class ProjectConfig:
    """The project's ``[tool.harness]`` / ``harness.toml``, paths made absolute (relative to the file)."""

    path: Path | None = None  # None: no project config was found
    queries: Path | None = None
    scenarios: Path | None = None
    tiers: Path | None = None
    dsn_env: str | None = None
    budget_ms: float | None = None
    anchor: Anchor | None = None
    lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def origin(self, key: str) -> str:
        """Where ``key`` was set, as an error names it: ``/repo/harness.toml:3 queries``."""
        line = self.lines.get(key)
        return f"{self.path}{f':{line}' if line else ''} {key}"


_PROJECT_CACHE: dict[tuple[Path, bytes], ProjectConfig] = {}


def project_config(start: Path | None = None) -> ProjectConfig:
    """The config of the project holding ``start`` (default: the current folder); empty when none."""
    path = find_project_config(start or Path.cwd())
    if path is None:
        return ProjectConfig()
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, f"cannot read project config: {exc.strerror}") from None
    key = (path, content)
    if key not in _PROJECT_CACHE:  # parsed once per content: a command reads it from several places
        _PROJECT_CACHE[key] = parse_project_config(path)
    return _PROJECT_CACHE[key]


def find_project_config(start: Path) -> Path | None:
    """The nearest ``harness.toml``, or ``pyproject.toml`` with a ``[tool.harness]`` table, from ``start``
    upwards: the first found wins, as pytest and ruff find theirs."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "harness.toml").is_file():
            return folder / "harness.toml"
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _has_tool_harness(pyproject):
            return pyproject
    return None


def _has_tool_harness(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # not ours to judge: a broken pyproject without our table is someone else's problem
    return isinstance(data.get("tool"), dict) and "harness" in data["tool"]


def parse_project_config(path: Path) -> ProjectConfig:
    """Parse and validate one project config file; ConfigError (exit 2) at the key's line otherwise."""
    text, data = _read_toml(path, "project config")
    section = None
    if path.name == "pyproject.toml":
        section = "tool.harness"
        data = data.get("tool", {}).get("harness", {})
        if not isinstance(data, dict):
            _Reader(path, text, {}).fail("harness", "harness: [tool.harness] must be a table of keys")
    reader = _Reader(path, text, data, section)
    for key, value in data.items():
        if key not in PROJECT_KEYS:
            reader.fail(
                key, f"{key}: unknown key{did_you_mean(key, PROJECT_KEYS)}; known keys: {', '.join(PROJECT_KEYS)}"
            )
        if isinstance(value, dict):
            reader.fail(key, f"{key}: must be a value, not a table")
    folder = path.parent

    def folder_of(key: str) -> Path | None:
        return folder / reader.string(key, default="") if key in data else None

    dsn_env = reader.string("dsn_env", default="") if "dsn_env" in data else None
    if dsn_env is not None and not _ENV_NAME.fullmatch(dsn_env):
        reader.fail("dsn_env", f'dsn_env: {dsn_env!r} is not an environment variable name (e.g. "PERF_DSN")')
    budget = None
    if "budget_ms" in data:
        budget = reader.number("budget_ms", default=0.0, minimum=0.0, maximum=MAX_BUDGET_MS)
        if budget <= 0:
            reader.fail("budget_ms", "budget_ms: must be a positive number of milliseconds")
    return ProjectConfig(
        path=path,
        queries=folder_of("queries"),
        scenarios=folder_of("scenarios"),
        tiers=folder_of("tiers"),
        dsn_env=dsn_env,
        budget_ms=budget,
        anchor=_anchor(reader, data["anchor"]) if "anchor" in data else None,
        lines=MappingProxyType({key: line for key in data if (line := reader.line_of(key, section)) is not None}),
    )


def _anchor(reader: _Reader, value: object) -> Anchor:
    """A TOML date, a "YYYY-MM-DD" string, or "max:table.column"."""
    fix = 'write anchor = 2026-06-30 (a date) or anchor = "max:table.column" (the latest value of a column)'
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        date = value
    elif isinstance(value, str) and value.startswith("max:"):
        parts = tuple(value.removeprefix("max:").split("."))
        if len(parts) not in (2, 3) or not all(_IDENTIFIER.fullmatch(part) for part in parts):
            reader.fail("anchor", f"anchor: {value!r} names no column as table.column or schema.table.column; {fix}")
        return Anchor(value, column=parts)
    elif isinstance(value, str):
        try:
            date = dt.date.fromisoformat(value)
        except ValueError:
            reader.fail("anchor", f"anchor: {value!r} is not a date; {fix}")
    else:
        reader.fail("anchor", f"anchor: got {_describe(value)}; {fix}")
    if not ANCHOR_RANGE[0] <= date <= ANCHOR_RANGE[1]:
        reader.fail("anchor", f"anchor: must be between {ANCHOR_RANGE[0]} and {ANCHOR_RANGE[1]}, got {date}")
    return Anchor(str(value), date=date)


def _read_toml(path: Path, what: str) -> tuple[str, dict[str, Any]]:
    """(text, parsed TOML) of a UTF-8 file; ConfigError at the TOML error's line otherwise."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(path, f"cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, f"not UTF-8 text; save the {what} as UTF-8") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, col = _toml_error_position(exc)
        raise ConfigError(path, f"invalid TOML: {_strip_position(str(exc))}", line, col) from None


class _Reader:
    """Typed access to the parsed TOML with errors that point at the key's line (in ``section``, when the
    keys are a table's, as ``[tool.harness]``'s are)."""

    def __init__(self, path: Path, text: str, data: dict[str, Any], section: str | None = None):
        self.path, self.text, self.data, self.section = path, text, data, section

    def line_of(self, key: str, section: str | None = None) -> int | None:
        """Line of ``key =``, looked up inside ``[section]`` when given (bounds.users is not users)."""
        start = 0
        if section is not None:
            header = re.search(rf"^\s*\[\s*{re.escape(section)}\s*\]", self.text, re.MULTILINE)
            if header is None:  # an inline table: point at `section = {...}`
                return self.line_of(section)
            start = header.end()
        match = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE).search(self.text, start)
        if match is None:  # a table: its [header]
            dotted = re.escape(f"{section}.{key}" if section else key)
            match = re.compile(rf"^\s*\[\s*{dotted}\s*\]", re.MULTILINE).search(self.text)
        return self.text.count("\n", 0, match.start()) + 1 if match else None

    def fail(self, key: str, message: str, section: str | None = None) -> None:
        raise ConfigError(self.path, message, self.line_of(key, section or self.section))

    def integer(
        self, key: str, *, default: int | None = None, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"{key} must be an integer, got {_describe(value)}")
        if minimum is not None and value < minimum:
            self.fail(key, f"{key} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(key, f"{key} must be <= {maximum:_} (the generators hold a tier in memory), got {value:_}")
        return int(value)

    def number(self, key: str, *, default: float, minimum: float, maximum: float = math.inf) -> float:
        value = self.data.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(key, f"{key} must be a number, got {_describe(value)}")
        if not minimum <= value < math.inf:  # also refuses nan
            self.fail(key, f"{key} must be a finite number >= {minimum}, got {value}")
        if value > maximum:
            self.fail(key, f"{key} must be <= {maximum:g}, got {value:g}")
        return float(value)

    def string(self, key: str, *, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            self.fail(key, f"{key} must be a string, got {_describe(value)}")
        return str(value)


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def _toml_error_position(exc: tomllib.TOMLDecodeError) -> tuple[int | None, int | None]:
    match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def _strip_position(message: str) -> str:
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
