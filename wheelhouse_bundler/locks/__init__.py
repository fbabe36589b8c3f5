"""Lock readers: each format module offers `parse(path, ...) -> Lock`.

`load` finds the lock (a file, or the first known lock in a project folder), detects its
format from the file name and hands it to the right reader. Readers never resolve: they
translate what the lock says, and refuse what they cannot translate exactly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import UsageError
from ..model import Lock, Source

# Folder search order: the most explicit standard first, requirements last.
LOCK_NAMES = ("pylock.toml", "uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock",
              "requirements.txt")
FORMATS = ("poetry", "requirements", "uv")


def find_lock(path: Path) -> Path:
    """A lock file given directly, or the first known lock inside a project folder."""
    if path.is_dir():
        for name in LOCK_NAMES:
            if (path / name).is_file():
                return path / name
        raise UsageError(f"{path}: no lock file found (looked for {', '.join(LOCK_NAMES)})")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    return path


def detect_format(path: Path) -> str:
    name = path.name
    if name == "poetry.lock":
        return "poetry"
    if name == "uv.lock":
        return "uv"
    if name.endswith(".txt"):
        return "requirements"
    raise UsageError(
        f"{path}: cannot tell the lock format from the name; pass --format "
        f"({', '.join(FORMATS)})"
    )


def load(path: Path, *, fmt: str | None = None, default: Source) -> Lock:
    """Read the lock at `path` (file or folder); `default` serves unpinned packages."""
    lock_path = find_lock(path)
    fmt = fmt or detect_format(lock_path)
    if fmt == "poetry":
        from . import poetry

        return poetry.parse(lock_path, default=default)
    if fmt == "requirements":
        from . import requirements

        return requirements.parse(lock_path, default=default)
    if fmt == "uv":
        from . import uv

        return uv.parse(lock_path, default=default)
    raise UsageError(f"unknown lock format {fmt!r} (known: {', '.join(FORMATS)})")


def read_bytes(path: Path) -> tuple[bytes, str]:
    """A lock's bytes and their sha256: the manifest records which lock made a bundle."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    return data, hashlib.sha256(data).hexdigest()
