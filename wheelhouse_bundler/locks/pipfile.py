"""Pipfile.lock (pipfile-spec 6), as `pipenv lock` writes it.

A JSON object: `_meta` (the Pipfile's hash, the spec version, the `sources`), then one
object per category, each mapping a package name to its pin. `default` ([packages]) is
the group "main" and `develop` ([dev-packages]) the group "dev", so `--with dev` adds
what `pipenv requirements --dev` adds and `--only dev` is `--dev-only`; any other key is
a custom category (pipenv's `--categories`) and keeps its name as a group. A package in
several categories is one package with one condition per category.

pipenv records the hashes of every file of the release but not their names: files are
known by hash until the index names them, as for hashed requirements. A package with an
`index` is fetched from that source of `_meta.sources` alone (no fallback: that would be
dependency confusion); one without comes from the first source, pipenv's primary index
(as the `-i` line of `pipenv requirements` says), or from the default index when the
lock lists no sources, like a requirements file's own --index-url. Source URLs may hold
`${VAR}` as in the Pipfile, expanded from the environment. git, path, file and editable
entries are not wheels on an index, so reading them is refused with what to do instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, NoReturn

from packaging.markers import InvalidMarker, Marker
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import LockError
from ..model import Condition, Lock, LockedFile, LockedPackage, Source, Unusable
from ..sources import index_source
from . import NotInstallable, not_an_index_wheel, read_bytes, sha256_hex

SUPPORTED = (6,)
# Pipfile.lock category -> our group name (poetry's names, so --with/--only read the same).
GROUPS = {"default": "main", "develop": "dev"}
_REFUSED = {"git": "a git checkout", "path": "a local path", "file": "a direct file URL",
            "editable": "an editable install"}
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _json(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LockError(path, "not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise LockError(path, f"invalid JSON: {exc.msg} (column {exc.colno})",
                        exc.lineno) from exc


def _line_of(text: str, category: str, name: str) -> int | None:
    """Where a package's entry starts, for error messages: JSON parsers forget lines."""
    section = re.search(rf'"{re.escape(category)}"\s*:\s*\{{', text)
    if section is None:
        return None
    entry = re.compile(rf'"{re.escape(name)}"\s*:\s*\{{').search(text, section.end())
    return text.count("\n", 0, entry.start()) + 1 if entry else None


def _key_line(text: str, key: str) -> int | None:
    found = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def _expand(path: Path, name: str, url: str) -> str:
    """`${VAR}` in a source URL, as pipenv expands it (credentials stay out of the lock)."""
    def one(match: re.Match[str]) -> str:
        var = match[1] or match[2]
        if var not in os.environ:
            raise LockError(path, f"source {name!r}: its URL uses ${{{var}}}, which is not set")
        return os.environ[var]

    return _VAR.sub(one, url)


def _sources(path: Path, meta: dict[str, Any]) -> dict[str, Source]:
    items = meta.get("sources", [])
    if not isinstance(items, list):
        raise LockError(path, "_meta.sources must be a list")
    sources = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("name") or not item.get("url"):
            raise LockError(path, f"_meta.sources #{i + 1}: needs a name and a url")
        name = str(item["name"])
        url = _expand(path, name, str(item["url"]))
        sources[name] = index_source(name, url, f"{path}: _meta.sources {name!r}")
    return sources


class _Entry:
    """One package entry of one category, with where it is for error messages."""

    def __init__(self, path: Path, text: str, category: str, name: str, entry: object):
        self.path, self.category, self.raw = path, category, name
        self.line = _line_of(text, category, name)
        if not isinstance(entry, dict):
            self.fail("must be an object")
        self.entry: dict[str, Any] = entry  # type: ignore[assignment]

    def fail(self, message: str) -> NoReturn:
        raise LockError(self.path, f"{self.category} package {self.raw}: {message}", self.line)

    def unusable(self, message: str) -> NoReturn:
        """The entry is well formed but cannot be installed: refused per target (select)."""
        raise NotInstallable(f"{message} ({self.path.name}, {self.category}"
                             + (f", line {self.line})" if self.line else ")"))


def _refuse_non_index(e: _Entry) -> None:
    for key, what in _REFUSED.items():
        if key in e.entry and (key != "editable" or e.entry[key]):
            detail = "" if key == "editable" else f" ({e.entry[key]})"
            e.unusable(not_an_index_wheel(f"{what}{detail}"))


def _version(e: _Entry) -> Version:
    text = str(e.entry.get("version", ""))
    pinned = text.removeprefix("===") if text.startswith("===") else text.removeprefix("==")
    if pinned == text or not pinned or "*" in pinned:
        e.unusable(f"version {text!r} is not one pinned version (pipenv writes ==X; `*` "
                   "means pipenv could not lock it, as for a package whose markers exclude "
                   "the machine that ran `pipenv lock`)")
    try:
        return Version(pinned)
    except InvalidVersion:
        e.fail(f"invalid version {text!r}")


def _files(e: _Entry, allow_unhashed: bool) -> tuple[LockedFile, ...]:
    hashes = e.entry.get("hashes", [])
    if not isinstance(hashes, list):
        e.fail("`hashes` must be a list")
    digests = [d for d in map(sha256_hex, hashes) if d is not None]
    if not digests and not allow_unhashed:
        e.unusable("has no sha256 hashes (hashes are the lock; re-run `pipenv lock`, or "
                   "pass --allow-unhashed)")
    return tuple(LockedFile(sha256=d) for d in dict.fromkeys(digests))


def _marker(e: _Entry) -> Marker | None:
    text = e.entry.get("markers")
    if not text:
        return None
    try:
        return Marker(str(text))
    except InvalidMarker:
        e.fail(f"invalid markers {text!r}")


def _source(e: _Entry, sources: dict[str, Source], primary: Source) -> Source:
    index = e.entry.get("index")
    if index is None:
        return primary
    if str(index) not in sources:
        e.fail(f"index {index!r} is not one of the lock's sources "
               f"({', '.join(sources) or 'none in _meta.sources'})")
    return sources[str(index)]


def _merge(old: LockedPackage, new: LockedPackage, e: _Entry) -> LockedPackage:
    """The same package in two categories: one package installed under either."""
    if old.version != new.version:
        e.fail(f"is locked at {new.version} here and at {old.version} in another "
               "category; one environment installs one version")
    if old.source != new.source:
        e.fail("comes from another index than in another category")
    files = tuple({f.sha256: f for f in (*old.files, *new.files)}.values())
    return LockedPackage(old.name, old.version, files, old.when + new.when, None, old.source)


def parse(path: Path, *, default: Source, allow_unhashed: bool = False) -> Lock:
    data, digest = read_bytes(path)
    doc = _json(path, data)
    text = data.decode("utf-8")
    if not isinstance(doc, dict) or not isinstance(doc.get("_meta"), dict):
        raise LockError(path, "not a Pipfile.lock (no `_meta` object)")
    meta = doc["_meta"]
    spec = meta.get("pipfile-spec")
    if type(spec) is not int or spec not in SUPPORTED:
        raise LockError(path, f"pipfile-spec {spec} is not read (this tool reads pipfile-spec "
                        f"{', '.join(map(str, SUPPORTED))}, as pipenv 2018 and later write)")
    sources = _sources(path, meta)
    primary = next(iter(sources.values()), default)

    packages: dict[NormalizedName, LockedPackage] = {}
    unusable: list[Unusable] = []
    groups = {"main", "dev"}
    for category, section in doc.items():
        if category == "_meta":
            continue
        if not isinstance(section, dict):
            raise LockError(path, f"category {category!r} must be an object of packages",
                            _key_line(text, category))
        group = GROUPS.get(category, category)
        groups.add(group)
        for raw, entry in section.items():
            e = _Entry(path, text, category, raw, entry)
            when = (Condition(group=group, marker=_marker(e)),)
            try:
                _refuse_non_index(e)
                package = LockedPackage(
                    name=canonicalize_name(raw), version=_version(e),
                    files=_files(e, allow_unhashed), when=when,
                    source=_source(e, sources, primary))
            except NotInstallable as exc:
                unusable.append(Unusable(canonicalize_name(raw),
                                         str(e.entry.get("version", "")), str(exc), when))
                continue
            old = packages.get(package.name)
            packages[package.name] = package if old is None else _merge(old, package, e)
    return Lock(path=path, format="pipfile", sha256=digest,
                packages=tuple(sorted(packages.values(), key=lambda p: p.name)),
                default_groups=frozenset({"main"}), groups=frozenset(groups),
                unusable=tuple(unusable))
