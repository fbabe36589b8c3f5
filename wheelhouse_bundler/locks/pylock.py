"""pylock.toml (PEP 751, lock-version 1.x), as `pip lock` and other lockers write it.

packaging.pylock validates the document (names, versions, markers, which source keys may
go together); we then translate it into our Lock rather than carry the Pylock through
the pipeline. The reason: everything after the reader (selection per target with tag
ranking, the missing-wheel table, index look-ups, the manifest, export) works on Lock for
every format, and a pylock maps onto it without loss for what we bundle. Each package's
`marker` becomes its one Condition: our selection evaluates it in the PEP 751 lock-file
dialect with the chosen `extras` and `dependency_groups`, as Pylock.select does. The top
level `requires-python` and `environments` become Lock.support, so a target outside
them is refused by select instead of bundled.

A package's `sdist` is kept beside its wheels, for the targets no wheel serves: the build
box builds it (sdistbuild) unless told not to. A package with an `archive`, `vcs` or
`directory` source, or a wheel or sdist whose hashes hold no sha256 (hashes are the
point) is recorded as model.Unusable with its marker:
select refuses it, with what to do instead, only on the targets that need it. A wheel
without any `hashes` breaks PEP 751 and refuses the whole lock. A wheel given by `path`
only is fetched by its sha256 from the package's index.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packaging.pylock import Package, Pylock, PylockValidationError
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..errors import LockError, warn
from ..model import Condition, Lock, LockedFile, LockedPackage, Source, Support, Unusable
from ..sources import check_file_url, checked_index_url, strip_credentials
from . import not_an_index_wheel, read_bytes
from .tomlfile import read_toml

READ = "1.0"  # the lock-version we read; other 1.x minors are read with a warning
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEADER = re.compile(rb"^[ \t]*\[\[[ \t]*packages[ \t]*\]\]", re.M)
_CONTEXT = re.compile(r"^packages\[(\d+)\]")


def _package_lines(data: bytes) -> list[int]:
    """The line of each `[[packages]]` header, so errors about package i can name it."""
    return [data.count(b"\n", 0, m.start()) + 1 for m in _HEADER.finditer(data)]


class _Where:
    """Names a package in errors: by name and version, at its line where it has one."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.lines = _package_lines(data)

    def line(self, index: int) -> int | None:
        return self.lines[index] if index < len(self.lines) else None

    def fail(self, index: int, label: str, message: str) -> LockError:
        return LockError(self.path, f"{label}: {message}", self.line(index))


def _check_version(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Refuse what we do not read; a newer 1.x minor is read as 1.0 with a warning."""
    raw = doc.get("lock-version")
    if raw is None:
        raise LockError(path, "not a PEP 751 lock (no top-level `lock-version`)")
    try:
        version = Version(str(raw))
    except InvalidVersion:
        version = None
    if not isinstance(raw, str) or version is None or version.major != 1:
        raise LockError(path, f"lock-version {raw!r} is not read (this tool reads "
                        f"lock-version {READ}, and later 1.x with a warning)")
    if version > Version(READ):
        warn(f"{path}: lock-version {raw} is newer than {READ}; reading it as {READ}")
        doc = {**doc, "lock-version": READ}  # packaging would warn a second time
    return doc


def _check_hashes(where: _Where, doc: dict[str, Any]) -> None:
    """A wheel without any `hashes` table breaks PEP 751: refused before anything else
    is judged, with the same words as a wheel whose hashes hold no sha256 (_refusal),
    not packaging's "missing key". (An sdist is never bundled, so its hashes are not
    ours to judge.)"""
    entries = doc.get("packages")
    if not isinstance(entries, list):
        return  # packaging names the problem
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        label = f"package {entry.get('name', f'#{i + 1}')}"
        if "version" in entry:
            label += f"=={entry['version']}"
        wheels = entry.get("wheels")
        for wheel in wheels if isinstance(wheels, list) else []:
            if isinstance(wheel, dict) and not wheel.get("hashes"):
                raise where.fail(i, label, _unhashed(wheel.get("name") or wheel.get("url")
                                                     or wheel.get("path") or "a wheel"))


def _unhashed(wheel: object) -> str:
    return f"{wheel} has no sha256 hash (hashes are the point: lock again with hashes)"


def _validated(where: _Where, doc: dict[str, Any]) -> Pylock:
    try:
        return Pylock.from_dict(doc)
    except PylockValidationError as exc:
        match = _CONTEXT.match(exc.context or "")
        line = where.line(int(match[1])) if match else None
        raise LockError(where.path, f"not a valid PEP 751 lock: {exc}", line) from exc


def _refusal(package: Package) -> str | None:
    """Why a package cannot be bundled, or None when it has wheels we can check."""
    if package.vcs is not None:
        what = f"a {package.vcs.type} checkout ({package.vcs.url or package.vcs.path})"
    elif package.directory is not None:
        what = f"a local folder ({package.directory.path})"
    elif package.archive is not None:
        what = f"an archive ({package.archive.url or package.archive.path})"
    elif not package.wheels and package.sdist is None:
        return "no wheel and no sdist: nothing to install"
    else:
        for wheel in package.wheels or ():
            if not _HEX64.fullmatch(wheel.hashes.get("sha256", "")):
                return _unhashed(wheel.filename)
        if (package.sdist is not None and not package.wheels
                and not _HEX64.fullmatch(package.sdist.hashes.get("sha256", ""))):
            return _unhashed(package.sdist.filename)
        return None
    return not_an_index_wheel(what)


def _files(path: Path, package: Package) -> tuple[LockedFile, ...]:
    sdist = package.sdist
    sdists = ([sdist] if sdist is not None
              and _HEX64.fullmatch(sdist.hashes.get("sha256", "")) else [])
    return tuple(
        LockedFile(sha256=f.hashes["sha256"].lower(), filename=f.filename,
                   url=check_file_url(f.url, f"{path}: package {package.name}: {kind} url")
                   if f.path is None and f.url is not None else None,
                   size=f.size)
        for kind, files in (("wheel", package.wheels or ()), ("sdist", sdists))
        for f in files)


def _version(where: _Where, index: int, package: Package) -> Version:
    """The package's version, else the one its wheels' names carry (PEP 751 allows
    leaving it out)."""
    if package.version is not None:
        return package.version
    try:
        return parse_wheel_filename((package.wheels or ())[0].filename)[1]
    except (IndexError, InvalidWheelFilename) as exc:
        raise where.fail(index, f"package {package.name}", "no version") from exc


def _source(path: Path, package: Package, default: Source) -> Source:
    """`index` is the Simple API the files came from: the only place to look them up."""
    if not package.index:
        return default
    url = checked_index_url(package.index, f"{path}: package {package.name}: index")
    # The URL names the source in messages: never with the user info it may hold.
    return Source(strip_credentials(url), url)


def parse(path: Path, *, default: Source, allow_unhashed: bool = False) -> Lock:
    """`allow_unhashed` changes nothing here: PEP 751 makes hashes mandatory, so a wheel
    without a sha256 is a lock written wrong, not one written without hashes."""
    data, digest = read_bytes(path)
    where = _Where(path, data)
    doc = _check_version(path, read_toml(path, data))
    _check_hashes(where, doc)
    pylock = _validated(where, doc)
    packages: list[LockedPackage] = []
    unusable: list[Unusable] = []
    for i, package in enumerate(pylock.packages):
        when = (Condition(group=None, marker=package.marker),)
        if (why := _refusal(package)) is not None:
            line = where.line(i)
            unusable.append(Unusable(
                package.name, str(package.version or ""),
                f"{why} ({path.name}" + (f", line {line})" if line else ")"), when))
            continue
        version = _version(where, i, package)
        packages.append(LockedPackage(
            name=package.name, version=version, files=_files(path, package),
            when=when, requires_python=package.requires_python,
            source=_source(path, package, default)))
    groups = {canonicalize_name(g) for g in pylock.dependency_groups or ()}
    defaults = {canonicalize_name(g) for g in pylock.default_groups or ()}
    support = None
    if pylock.requires_python is not None or pylock.environments:
        support = Support(requires_python=pylock.requires_python,
                          environments=tuple(pylock.environments or ()))
    return Lock(path=path, format="pylock", sha256=digest,
                packages=tuple(sorted(packages, key=lambda p: (p.name, p.version))),
                default_groups=frozenset(defaults), groups=frozenset(groups | defaults),
                extras=frozenset(pylock.extras or ()),
                requires_python=pylock.requires_python, support=support,
                unusable=tuple(unusable))
