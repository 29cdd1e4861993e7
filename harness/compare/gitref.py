"""Read files of another git commit without touching the working tree: `git archive` into a temporary folder.

`harness compare --base-ref REF` measures the base ref's query catalog and index strategies beside the
working tree's; the base files are extracted read-only (nothing is checked out, the index and HEAD are
never changed) and the folder is removed when the comparison ends.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError

GIT_TIMEOUT_S = 60


@dataclass(frozen=True)
class ExtractedRef:
    """A ref's files under ``root`` (its paths relative to the repository top level, as in the commit)."""

    ref: str
    commit: str
    repo: Path
    root: Path

    def path(self, relative: Path) -> Path:
        return self.root / relative


def repository_root(inside: Path) -> Path:
    """The top level of the git working tree holding ``inside``; InputError when it is not in one."""
    done = _git(inside, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise InputError(
            f"{inside} is not inside a git repository: --base-ref needs one; "
            "pass the base catalog with --base-queries DIR instead"
        )
    return Path(done.stdout.decode().strip())


def resolve_commit(repo: Path, ref: str) -> str:
    """The commit ``ref`` names in ``repo``; InputError with the fix when git does not know it."""
    if not ref or ref.startswith("-"):
        raise InputError(f"--base-ref {ref!r}: give a branch, tag or commit, e.g. --base-ref origin/main")
    done = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if done.returncode != 0:
        raise InputError(
            f"--base-ref {ref!r}: unknown git ref in {repo}; check the name, and in a shallow CI clone fetch it "
            "first (actions/checkout with fetch-depth: 0, or git fetch origin <branch>)"
        )
    return done.stdout.decode().strip()


@contextlib.contextmanager
def extract_ref(repo: Path, ref: str, paths: Sequence[Path]) -> Iterator[ExtractedRef]:
    """Extract ``paths`` (relative to ``repo``) as of ``ref`` into a temporary folder, removed afterwards.

    A path the ref does not hold is simply absent from the folder (the caller decides what that means).
    """
    commit = resolve_commit(repo, ref)
    present = [p for p in paths if _exists_in(repo, commit, p)]
    with tempfile.TemporaryDirectory(prefix="harness-base-") as tmp:
        root = Path(tmp)
        if present:
            done = _git(repo, "archive", "--format=tar", commit, "--", *(p.as_posix() for p in present))
            if done.returncode != 0:
                raise InputError(f"git archive {ref} failed: {done.stderr.decode().strip().splitlines()[-1]}")
            with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
                archive.extractall(root, filter="data")  # refuses absolute paths, links out of the folder
        yield ExtractedRef(ref, commit, repo, root)


def _exists_in(repo: Path, commit: str, path: Path) -> bool:
    return _git(repo, "cat-file", "-e", f"{commit}:{path.as_posix()}").returncode == 0


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise InputError("--base-ref needs git on PATH; install git, or pass --base-queries DIR") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s in {cwd}") from None
