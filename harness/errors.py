"""The harness's exceptions, one class per kind of failure, each mapped to one exit code.

    HarnessError                  base; never raised directly
    ├── InputError        (2)     bad config, bad arguments, bad SQL or query metadata
    │   └── ConfigError   (2)     a scenario/tier/query file is malformed (carries file:line)
    ├── EnvironmentFailure (3)    the database or the machine failed us
    │   ├── ServerError   (3)     the embedded PostgreSQL could not be created/started/stopped
    │   ├── DatabaseError (3)     unreachable, crashed, or lost connection mid-work
    │   └── DataChanged   (3)     the measured data changed under a run (its report is marked invalid)
    ├── UnsafeOperation   (2)     refusing to touch a database the harness does not own (use --force)
    └── Interrupted       (130)   SIGINT (143 for SIGTERM)

The CLI turns these into ``Error: …`` and the exit code; only ``--debug`` shows a traceback.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable, Mapping

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """Base class of every error the harness reports to a user."""

    exit_code = EXIT_BAD_INPUT


class InputError(HarnessError):
    """Raised when arguments, names or SQL given by the user are wrong."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """Raised when a tier, strategy or query file cannot be parsed or validated."""

    def __init__(self, path: object, message: str, line: int | None = None, col: int | None = None):
        self.path = str(path)
        self.line = line
        self.col = col
        self.message = message
        where = self.path
        if line is not None:
            where += f":{line}"
            if col is not None:
                where += f":{col}"
        super().__init__(f"{where}: {message}")


class UnsafeOperation(HarnessError):
    """Raised instead of modifying a database the harness did not create (override with --force)."""

    exit_code = EXIT_BAD_INPUT


class EnvironmentFailure(HarnessError):
    """Raised when the database or the machine fails, as opposed to the user's input."""

    exit_code = EXIT_ENVIRONMENT


class ServerError(EnvironmentFailure):
    """Raised when the embedded PostgreSQL cannot be created, started or stopped."""


class DatabaseError(EnvironmentFailure):
    """Raised when the database is unreachable or the connection is lost mid-work."""


class DataChanged(EnvironmentFailure):
    """Raised at the end of a run whose data was written, re-seeded or truncated while it measured."""


class Interrupted(HarnessError):
    """Raised when SIGINT or SIGTERM asks the harness to stop (130, or 143 for SIGTERM)."""

    def __init__(self, message: str = "interrupted", exit_code: int = EXIT_INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code


def os_error_fix(exc: OSError, place: str = "HARNESS_HOME / --reports-dir") -> str:
    """The one-line fix for an operating-system failure: a full disk, a read-only or missing folder."""
    if exc.errno == errno.ENOSPC:
        return f"free some disk space, or point {place} at a roomier disk"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make it writable, or point {place} at a writable folder"
    return f"check the path, or point {place} at a writable folder"


def did_you_mean(word: str, choices: Iterable[str] | Mapping[str, str]) -> str:
    """`` (did you mean 'orders'?)`` for the choice closest to ``word`` (case-insensitive), or ``""``.

    A mapping suggests its value for the closest key: a bare table name can suggest its qualified name.
    """
    names = choices if isinstance(choices, Mapping) else {choice: choice for choice in choices}
    folded = {key.lower(): value for key, value in names.items()}
    close = difflib.get_close_matches(word.lower(), sorted(folded), n=1)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""
