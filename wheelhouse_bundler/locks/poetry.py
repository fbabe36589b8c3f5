"""poetry.lock (lock-version 2.1, written by Poetry 2) with its pyproject.toml.

Poetry 2 records, for each package, the groups that need it and the marker under which
each group does (`markers` is a string for all groups or a table per group), with
extras folded in as `extra == "..."`. That is enough to decide what to install without
re-resolving, which is what we want: each (group, marker) pair becomes a Condition.
Sources come from `[package.source]` (the only index a package may be fetched from);
packages without one came from the default index.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import LockError
from ..model import Condition, Lock, LockedFile, LockedPackage, Source
from . import read_bytes

SUPPORTED = ("2.1",)
_LINE = re.compile(r"at line (\d+)")


def _toml(path: Path, data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LockError(path, "not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        match = _LINE.search(str(exc))
        line = int(match[1]) if match else None
        if line is None and "end of document" in str(exc):
            line = data.count(b"\n") + 1
        raise LockError(path, f"invalid TOML: {exc}", line) from exc


def _pyproject(lock_path: Path) -> dict[str, Any]:
    path = lock_path.with_name("pyproject.toml")
    if not path.is_file():
        return {}
    data, _ = read_bytes(path)
    return _toml(path, data)


def _marker(path: Path, where: str, text: str) -> Marker:
    try:
        return Marker(text)
    except InvalidMarker as exc:
        raise LockError(path, f"{where}: invalid marker {text!r}") from exc


def _conditions(path: Path, name: str, entry: dict[str, Any]) -> tuple[Condition, ...]:
    groups = entry.get("groups")
    if not isinstance(groups, list) or not groups:
        raise LockError(path, f"package {name}: no `groups` (a lock-version 2.1 key)")
    markers = entry.get("markers")
    out = []
    for group in groups:
        text = markers.get(group) if isinstance(markers, dict) else markers
        marker = _marker(path, f"package {name}", text) if text else None
        out.append(Condition(group=str(group), marker=marker))
    return tuple(out)


def _files(path: Path, name: str, entry: dict[str, Any]) -> tuple[LockedFile, ...]:
    files = []
    for f in entry.get("files", []):
        algo, _, digest = str(f.get("hash", "")).partition(":")
        if algo != "sha256" or len(digest) != 64:
            raise LockError(path, f"package {name}: file {f.get('file')!r} has no sha256 hash")
        files.append(LockedFile(sha256=digest.lower(), filename=str(f["file"])))
    return tuple(files)


def _source(path: Path, name: str, entry: dict[str, Any], default: Source,
            declared: dict[str, str]) -> tuple[Source, str | None]:
    """The package's index, and for `url` packages the file's direct URL."""
    src = entry.get("source")
    if not src:
        return default, None
    kind = src.get("type")
    if kind == "legacy":
        ref = str(src.get("reference") or "")
        url = declared.get(ref) or str(src.get("url") or "")
        if not url:
            raise LockError(path, f"package {name}: source {ref!r} has no URL")
        return Source(ref, url if url.endswith("/") else url + "/"), None
    if kind == "url":
        return default, str(src.get("url"))
    raise LockError(path, f"package {name}: a {kind} package is not a wheel on an index; "
                    "build it into a wheel and lock that, or add it with --dist")


def parse(path: Path, *, default: Source) -> Lock:
    data, digest = read_bytes(path)
    doc = _toml(path, data)
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or ("package" not in doc and "lock-version" not in meta):
        raise LockError(path, "not a poetry.lock (no [metadata] table)")
    version = str(meta.get("lock-version"))
    if version not in SUPPORTED:
        raise LockError(path, f"lock-version {version} is not read (this tool reads "
                        f"{', '.join(SUPPORTED)}; run `poetry lock` with Poetry 2)")
    project = _pyproject(path)
    poetry = project.get("tool", {}).get("poetry", {})
    declared = {str(s["name"]): str(s["url"]) for s in poetry.get("source", [])
                if "name" in s and "url" in s}
    packages = []
    groups: set[str] = {"main", *poetry.get("group", {}).keys()}
    for i, entry in enumerate(doc.get("package", [])):
        try:
            name = canonicalize_name(entry["name"])
            pkg_version = Version(str(entry["version"]))
        except (KeyError, TypeError) as exc:
            raise LockError(path, f"package #{i + 1}: no name or version") from exc
        except InvalidVersion as exc:
            raise LockError(path, f"package {entry.get('name')}: invalid version") from exc
        source, direct_url = _source(path, name, entry, default, declared)
        files = _files(path, name, entry)
        if direct_url:
            files = tuple(LockedFile(f.sha256, f.filename, direct_url) for f in files)
        when = _conditions(path, name, entry)
        groups.update(c.group for c in when if c.group)
        packages.append(LockedPackage(
            name=name, version=pkg_version, files=files, when=when,
            requires_python=_specifier(entry.get("python-versions")), source=source))
    extras = frozenset(canonicalize_name(e) for e in doc.get("extras", {}))
    return Lock(path=path, format="poetry", sha256=digest,
                packages=tuple(sorted(packages, key=lambda p: p.name)),
                default_groups=frozenset({"main"}), groups=frozenset(groups), extras=extras)


def _specifier(text: object) -> SpecifierSet | None:
    """Poetry writes PEP 440 here, or `*`; anything else is left to pip to judge."""
    if not isinstance(text, str) or text.strip() in ("", "*"):
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None
