"""Scale tiers: one TOML file per tier in ``scenarios/tiers/``, parsed once into a validated ``Tier``.

A user adds a tier by adding a file; errors read like a compiler's (file:line: key: problem; fix).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import paths
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


def tiers_dir() -> Path:
    return paths.scenarios_dir() / "tiers"


def available_tiers(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or tiers_dir()).glob("*.toml"))


def load_tier(name_or_path: str | Path, directory: Path | None = None) -> Tier:
    """Load a tier by name (``scenarios/tiers/<name>.toml``) or by path to a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        path = candidate
    else:
        path = (directory or tiers_dir()) / f"{name_or_path}.toml"
        if not path.is_file():
            known = available_tiers(directory)
            hint = did_you_mean(str(name_or_path), known)
            raise InputError(f"unknown tier {name_or_path!r}{hint}: known tiers: {', '.join(known)}")
    return parse_tier(path)


def parse_tier(path: Path) -> Tier:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(path, f"cannot read tier file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text; save the tier file as UTF-8") from None
    if not text.strip():
        raise ConfigError(path, "empty tier file; see scenarios/tiers/test.toml for the keys a tier needs")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, col = _toml_error_position(exc)
        raise ConfigError(path, f"invalid TOML: {_strip_position(str(exc))}", line, col) from None
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


class _Reader:
    """Typed access to the parsed TOML with errors that point at the key's line."""

    def __init__(self, path: Path, text: str, data: dict[str, Any]):
        self.path, self.text, self.data = path, text, data

    def line_of(self, key: str, section: str | None = None) -> int | None:
        """Line of ``key =``, looked up inside ``[section]`` when given (bounds.users is not users)."""
        start = 0
        if section is not None:
            header = re.search(rf"^\s*\[\s*{re.escape(section)}\s*\]", self.text, re.MULTILINE)
            if header is None:  # an inline table: point at `section = {...}`
                return self.line_of(section)
            start = header.end()
        match = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE).search(self.text, start)
        return self.text.count("\n", 0, match.start()) + 1 if match else None

    def fail(self, key: str, message: str, section: str | None = None) -> None:
        raise ConfigError(self.path, message, self.line_of(key, section))

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
