"""Lock readers: each format module offers `parse(path, ...) -> Lock`.

`load` finds the lock (a file, or the first known lock in a project folder), detects its
format from the file name and hands it to the right reader. Readers never resolve: they
translate what the lock says, and refuse what they cannot translate exactly.

Malformed input (bad TOML/JSON, markers, versions) refuses the whole lock. A well-formed
package that cannot be installed as written (a git checkout, a local folder, a file
without a hash) is only a problem for the targets that need it: the reader records it as
a model.Unusable (raising `NotInstallable` from its helpers makes that one line), and
select refuses it on exactly those targets.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import string
from pathlib import Path

from ..errors import LockError, UsageError
from ..model import Lock, Source

# Folder search order: the most explicit standard first, requirements last.
LOCK_NAMES = ("pylock.toml", "uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock",
              "requirements.txt")
# --format name -> reader module (each offers `parse(path, *, default) -> Lock`).
READERS = {"poetry": "poetry", "pylock": "pylock", "uv": "uv", "pdm": "pdm",
           "pipfile": "pipfile", "requirements": "requirements"}
FORMATS = tuple(READERS)


def find_lock(path: Path) -> Path:
    """A lock file given directly, or the first known lock inside a project folder."""
    if path.is_dir():
        for name in LOCK_NAMES:
            if (path / name).is_file():
                return path / name
        named = sorted(path.glob("pylock.*.toml"))
        if len(named) == 1:
            return named[0]
        raise UsageError(f"{path}: no lock file found (looked for {', '.join(LOCK_NAMES)})")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    return path


def detect_format(path: Path) -> str:
    """The format from the file name (PEP 751 names too: pylock.<name>.toml)."""
    name = path.name
    by_name = {"poetry.lock": "poetry", "uv.lock": "uv", "pdm.lock": "pdm",
               "Pipfile.lock": "pipfile", "pylock.toml": "pylock"}
    if name in by_name:
        return by_name[name]
    if name.startswith("pylock.") and name.endswith(".toml"):
        return "pylock"
    if name.endswith(".txt"):
        return "requirements"
    raise UsageError(
        f"{path}: cannot tell the lock format from the name; pass --format "
        f"({', '.join(FORMATS)})"
    )


def load(path: Path, *, fmt: str | None = None, default: Source, allow_unhashed: bool = False
         ) -> Lock:
    """Read the lock at `path` (file or folder); `default` serves unpinned packages.

    With `allow_unhashed`, a package the lock records without a sha256 comes back with
    no files, and the pipeline takes its wheels and their hashes from the index.
    """
    lock_path = find_lock(path)
    fmt = fmt or detect_format(lock_path)
    if fmt not in READERS:
        raise UsageError(f"unknown lock format {fmt!r} (known: {', '.join(FORMATS)})")
    reader = importlib.import_module(f"{__name__}.{READERS[fmt]}")
    lock = reader.parse(lock_path, default=default, allow_unhashed=allow_unhashed)
    _check_names(lock)
    return lock


_CANONICAL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", re.ASCII)


def _check_names(lock: Lock) -> None:
    """Every package name a valid project name (PEP 508), for every format at once.

    Readers canonicalise names, which keeps anything: a name holding a terminal escape
    or a space reached index URLs (an httpx traceback) and the operator's terminal.
    """
    for package in lock.packages:
        if not _CANONICAL.fullmatch(package.name):
            raise LockError(lock.path, f"package name {package.name!r} is not a valid "
                            "project name (letters, digits, '.', '_', '-')")


def read_bytes(path: Path) -> tuple[bytes, str]:
    """A lock's bytes and their sha256: the manifest records which lock made a bundle."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    return data, hashlib.sha256(data).hexdigest()


def sha256_hex(value: object) -> str | None:
    """The lower-case digest of a `sha256:<64 characters>` hash as every lock format writes
    it, or None: another algorithm, or a cut digest, is not a hash we can check."""
    algo, _, digest = str(value).partition(":")
    if algo != "sha256" or len(digest) != 64 or digest.strip(string.hexdigits):
        return None
    return digest.lower()


class NotInstallable(Exception):
    """One package the lock states well but that cannot be installed as written.

    Raised by a reader's helpers while reading that package; the reader turns the message
    (the reason, said to the user as is) into a model.Unusable with the package's
    conditions, instead of refusing the whole lock."""


def not_an_index_wheel(what: str) -> str:
    """The reason for a package that comes from `what` (a git checkout, a local folder,
    a direct URL that is not a wheel): every reader says it, and what to do, alike."""
    return (f"comes from {what}, not a wheel on an index; build it into a wheel, publish "
            "it on an index and lock that (or bundle your own project's wheel with --dist)")


def no_sha256(what: str, relock: str) -> str:
    """The reason for a file the lock records without a sha256 (`relock`: the command
    that writes hashes again)."""
    return (f"{what} has no sha256 hash (hashes are the lock; {relock}, or pass "
            "--allow-unhashed)")
