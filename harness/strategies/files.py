"""Index strategy files: ``strategies/<name>.sql``, CREATE INDEX statements only, parsed into a ``Strategy``.

Reading them needs no database; applying one is ``harness.strategies.apply``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import ConfigError, InputError, did_you_mean

_CREATE_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_$]*)\s+ON\s+(?:ONLY\s+)?(?P<table>[A-Za-z_][A-Za-z0-9_.$]*)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class IndexDef:
    name: str
    table: str
    sql: str
    line: int


@dataclass(frozen=True)
class Strategy:
    name: str
    path: Path
    indexes: tuple[IndexDef, ...]

    @property
    def index_names(self) -> list[str]:
        return [index.name for index in self.indexes]


def strategies_dir() -> Path:
    return paths.scenarios_dir() / "strategies"


def available_strategies(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or strategies_dir()).glob("*.sql"))


def load_strategy(name: str, directory: Path | None = None) -> Strategy:
    """Parse ``strategies/<name>.sql``: only CREATE INDEX statements (and comments) are allowed."""
    directory = directory or strategies_dir()
    path = directory / f"{name}.sql"
    if not path.is_file():
        known = available_strategies(directory)
        hint = did_you_mean(name, known)
        raise InputError(f"unknown strategy {name!r}{hint}: known strategies: {', '.join(known)}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text; save the strategy file as UTF-8") from None
    indexes = []
    for line_no, statement in _statements(text):
        match = _CREATE_INDEX.match(statement)
        if not match:
            raise ConfigError(
                path,
                "a strategy file may only hold CREATE INDEX statements; move other SQL elsewhere",
                line_no,
            )
        indexes.append(IndexDef(match["name"], match["table"], statement, line_no))
    names = [i.name for i in indexes]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(path, f"index name defined twice: {', '.join(sorted(duplicates))}")
    return Strategy(name, path, tuple(indexes))


def _statements(text: str) -> list[tuple[int, str]]:
    """Split on semicolons, dropping ``--`` comments; each statement with its starting line."""
    statements, current, start = [], [], None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("--", 1)[0]
        if line.strip() and start is None:
            start = line_no
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = " ".join(current).strip().rstrip(";").strip()
            if statement:
                statements.append((start or line_no, statement))
            current, start = [], None
    if " ".join(current).strip():
        statements.append((start or 1, " ".join(current).strip()))
    return statements


def managed_index_names(directory: Path | None = None) -> set[str]:
    """Every index name any strategy file declares: the only names a strategy switch may drop."""
    return {name for s in available_strategies(directory) for name in load_strategy(s, directory).index_names}
