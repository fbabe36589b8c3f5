"""Hashed, pinned requirements for one target, as `pip install --require-hashes` reads them.

Markers are already evaluated for the target, so the lines carry none: the file says
exactly what that target installs, and nothing about any other.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import LockedFile, LockedPackage


def render(entries: Iterable[tuple[LockedPackage, Iterable[LockedFile]]], *,
           header: str = "") -> str:
    """`name==version` with one `--hash` per allowed file, sorted by name and hash."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    for package, files in sorted(entries, key=lambda e: e[0].name):
        hashes = sorted({f.sha256 for f in files})
        line = f"{package.name}=={package.version}"
        if hashes:
            line += " \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes)
        out.append(line)
    return "\n".join(out) + "\n"
