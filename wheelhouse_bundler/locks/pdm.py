"""pdm.lock (lock_version 4.x, as pdm 2.11 to 2.2x write it) with its pyproject.toml.

With the `inherit_metadata` strategy (pdm's default since 2.11) every `[[package]]`
already says when it applies: `groups` lists the groups that need it and `marker` the
environments it is needed in (one marker for all of its groups, as pdm merges them).
That is what `pdm export` itself uses, so each (group, marker) pair becomes a Condition
and nothing is resolved again. A lock without that strategy records only a dependency
graph whose roots live in pyproject.toml; it is refused with the command that rewrites it.

Groups: pdm's "default" group is our "main". `pdm export`/`pdm install` select the
default group and every dev group (`[dependency-groups]`, `[tool.pdm.dev-dependencies]`),
so those are the default groups here too; `--without dev` drops one. The project's
`[project.optional-dependencies]` are groups in pdm's lock as well (`pdm lock -G yaml`);
here they are extras (`--extras yaml`), and because pdm users call them groups,
`--with yaml` selects them too. Without a pyproject.toml beside the lock, the groups
cannot be told apart: all of them are groups and only "main" is selected by default.

Targets: `[[metadata.targets]]` records the environments the lock was resolved for
(Python range, platform, implementation). They become `Lock.support` (so does the one
`requires_python` of a 4.4 lock); a target none of them covers is refused (select.plan),
because pdm never resolved for it and its markers could then select nothing, or the
wrong versions, without a word.

A dependency's extras (`gamma[speed]`) appear as a second entry of the same name and
version with an `extras` key; the two are one package here, needed when either is.

Files: `{file, hash}` (found on the index by hash) or, with `static_urls`, `{url, hash}`.
Every file needs a sha256. pdm does not record which index a file came from, so files
come from the default index (`--index-url`); the hash, not the index, decides the bytes.
`git`, `path` and `editable` packages, `url` packages without wheels and packages with a
file lacking a sha256 cannot be bundled as locked: each is recorded as model.Unusable
with its groups and marker, so select refuses it, naming it, only where it is needed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import LockError
from ..model import Condition, Lock, LockedFile, LockedPackage, Source, Support, Unusable
from ..sources import check_file_url
from . import NotInstallable, no_sha256, not_an_index_wheel, read_bytes, sha256_hex
from .tomlfile import read_toml

SUPPORTED = ("4.4", "4.5")  # major.minor of lock_version; pdm 2.11-2.2x write these
MAIN = "main"
DEFAULT = "default"  # pdm's name for the project's own dependencies
_REFUSED = {"git": "a git checkout", "path": "a local path", "editable": "an editable install"}
# pdm platform names -> (sys_platform, {arch suffix: platform_machine})
_OS = (
    ("windows", "win32", {"amd64": "AMD64", "x86": "x86", "arm64": "ARM64"}),
    ("macos", "darwin", {"arm64": "arm64", "x86_64": "x86_64"}),
    ("manylinux", "linux", {}),
    ("musllinux", "linux", {}),
    ("linux", "linux", {}),
    ("alpine", "linux", {}),
)
_LINUX_ARCHES = ("x86_64", "aarch64", "i686", "armv7l", "ppc64le", "s390x", "riscv64")


def _marker(path: Path, where: str, text: object) -> Marker | None:
    if text is None or str(text).strip() == "":
        return None
    try:
        return Marker(str(text))
    except InvalidMarker as exc:
        raise LockError(path, f"{where}: invalid marker {text!r}") from exc


def _check_version(path: Path, meta: dict[str, Any]) -> None:
    version = str(meta.get("lock_version", ""))
    if ".".join(version.split(".")[:2]) not in SUPPORTED:
        raise LockError(path, f"lock_version {version or '(none)'} is not read (this tool "
                        f"reads {', '.join(v + '.x' for v in SUPPORTED)}, as pdm 2.11 and "
                        "later write; run `pdm lock` with a current pdm)")
    strategy = meta.get("strategy", [])
    if not isinstance(strategy, list) or "inherit_metadata" not in strategy:
        raise LockError(path, "locked without the inherit_metadata strategy, so it does not "
                        "say which packages each group needs; run "
                        "`pdm lock --strategy inherit_metadata`")


def _target_marker(path: Path, target: object) -> Marker:
    """One `[[metadata.targets]]` entry as a marker a target environment must satisfy."""
    if not isinstance(target, dict):
        raise LockError(path, "[[metadata.targets]] entries must be tables")
    parts = []
    python = target.get("requires_python")
    if python:
        try:
            spec = SpecifierSet(str(python))
        except InvalidSpecifier as exc:
            raise LockError(path, f"target requires_python {python!r} is invalid") from exc
        parts += [f'python_full_version {s.operator} "{s.version}"' for s in spec]
    platform = str(target.get("platform") or "").lower()
    if platform:
        parts.append(_platform_marker(path, platform))
    implementation = str(target.get("implementation") or "").lower()
    if implementation:
        parts.append(f'implementation_name == "{implementation}"')
    return Marker(" and ".join(parts) or 'python_full_version >= "0"')


def _support(path: Path, meta: dict[str, Any]) -> Support | None:
    """The lock's targets (4.5), or the one Python range a 4.4 lock records."""
    targets = meta.get("targets", [])
    if not isinstance(targets, list):
        raise LockError(path, "[[metadata.targets]] must be an array of tables")
    if targets:
        return Support(environments=tuple(_target_marker(path, t) for t in targets))
    python = meta.get("requires_python")
    if python:
        try:
            return Support(requires_python=SpecifierSet(str(python)))
        except InvalidSpecifier as exc:
            raise LockError(path, f"requires_python {python!r} is invalid") from exc
    return None


def _platform_marker(path: Path, platform: str) -> str:
    for prefix, sys_platform, arches in _OS:
        if platform.startswith(prefix):
            text = f'sys_platform == "{sys_platform}"'
            known = arches or {a: a for a in _LINUX_ARCHES}
            arch = next((m for a, m in known.items() if platform.endswith("_" + a)), None)
            return text + (f' and platform_machine == "{arch}"' if arch else "")
    raise LockError(path, f"target platform {platform!r} is not one pdm writes "
                    "(windows*, macos*, linux, manylinux*, musllinux*, alpine)")


def _files(path: Path, where: str, entry: dict[str, Any], allow_unhashed: bool
           ) -> tuple[LockedFile, ...]:
    items = entry.get("files", [])
    if not isinstance(items, list):
        raise LockError(path, f"{where}: `files` must be a list")
    files = []
    for item in items:
        if not isinstance(item, dict):
            raise LockError(path, f"{where}: a file entry that is not a table")
        url = check_file_url(str(item["url"]), f"{path}: {where}: file url") \
            if item.get("url") else None
        name = str(item.get("file") or "") or (
            unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if url else "")
        digest = sha256_hex(item.get("hash", ""))
        if digest is None:
            if allow_unhashed:
                continue
            raise NotInstallable(no_sha256(f"file {name or url!r}", "re-run `pdm lock`"))
        files.append(LockedFile(sha256=digest, filename=name or None, url=url))
    return tuple(files)


def _refuse_unindexed(entry: dict[str, Any]) -> None:
    """git, path and editable packages, and direct URLs that are not wheels: not
    installable from the lock (NotInstallable)."""
    for key, what in _REFUSED.items():
        if entry.get(key):
            raise NotInstallable(not_an_index_wheel(f"{what} ({entry[key]})"))
    if entry.get("url") and not any(str(f.get("file") or f.get("url") or "").endswith(".whl")
                                    for f in entry.get("files", []) if isinstance(f, dict)):
        raise NotInstallable(not_an_index_wheel(
            f"a direct URL that is not a wheel ({entry['url']})"))


def _project_groups(lock_path: Path) -> tuple[set[str], set[str]] | None:
    """(dev groups, optional-dependency groups) of the pyproject.toml beside the lock."""
    pyproject = lock_path.with_name("pyproject.toml")
    if not pyproject.is_file():
        return None
    data, _ = read_bytes(pyproject)
    doc = read_toml(pyproject, data)
    dev = {*doc.get("dependency-groups", {}),
           *doc.get("tool", {}).get("pdm", {}).get("dev-dependencies", {})}
    optional = set(doc.get("project", {}).get("optional-dependencies", {}))
    return ({canonicalize_name(g) for g in dev}, {canonicalize_name(g) for g in optional})


def _group(name: object) -> str:
    g = canonicalize_name(str(name))
    return MAIN if g == DEFAULT else g


def _conditions(path: Path, where: str, entry: dict[str, Any], extras: set[str]
                ) -> tuple[Condition, ...]:
    groups = entry.get("groups")
    if not isinstance(groups, list) or not groups:
        raise LockError(path, f"{where}: no `groups` (inherit_metadata writes them)")
    text = entry.get("marker")
    marker = _marker(path, where, text)
    out = []
    for raw in groups:
        group = _group(raw)
        out.append(Condition(group=group, marker=marker))
        if group in extras:  # an optional-dependency group: `--extras` selects it too
            both = f'"{group}" in extras' + (f" and ({text})" if marker else "")
            out.append(Condition(group=None, marker=Marker(both)))
    return tuple(out)


def parse(path: Path, *, default: Source, allow_unhashed: bool = False) -> Lock:
    data, digest = read_bytes(path)
    doc = read_toml(path, data)
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or "lock_version" not in meta:
        raise LockError(path, "not a pdm.lock (no [metadata] lock_version)")
    _check_version(path, meta)
    support = _support(path, meta)

    locked = {_group(g) for g in meta.get("groups", [DEFAULT])}
    project = _project_groups(path)
    dev, optional = project if project else (set(), set())
    extras = locked & optional
    packages: dict[tuple[NormalizedName, Version], LockedPackage] = {}
    unusable: dict[tuple[NormalizedName, Version], Unusable] = {}
    entries = doc.get("package", [])
    if not isinstance(entries, list):
        raise LockError(path, "`package` must be an array of tables")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry or "version" not in entry:
            raise LockError(path, f"package #{i + 1}: no name or version")
        name: NormalizedName = canonicalize_name(str(entry["name"]))
        try:
            version = Version(str(entry["version"]))
        except InvalidVersion as exc:
            raise LockError(path, f"package {name}: invalid version "
                            f"{entry['version']!r}") from exc
        where = f"package {name}=={version}"
        when = _conditions(path, where, entry, extras)
        locked.update(c.group for c in when if c.group)
        try:
            _refuse_unindexed(entry)
            files = _files(path, where, entry, allow_unhashed)
        except NotInstallable as exc:
            seen = unusable.get((name, version))  # `name[extra]`: needed when either is
            unusable[name, version] = Unusable(
                name, str(version), str(exc),
                when if seen is None else tuple(dict.fromkeys((*seen.when, *when))))
            continue
        if entry.get("url"):  # a direct wheel URL: the file is fetched from there
            direct = check_file_url(str(entry["url"]), f"{path}: {where}: url")
            files = tuple(f if f.url or not direct.endswith("/" + str(f.filename))
                          else LockedFile(f.sha256, f.filename, direct) for f in files)
        package = LockedPackage(
            name=name, version=version, files=files,
            when=when, requires_python=_specifier(entry.get("requires_python")),
            source=default)
        packages[name, version] = _merge(packages.get((name, version)), package)
    return Lock(path=path, format="pdm", sha256=digest,
                packages=tuple(packages[k] for k in sorted(packages)),
                default_groups=frozenset({MAIN} | (dev & locked)),
                groups=frozenset(locked | {MAIN}), extras=frozenset(extras),
                support=support, unusable=tuple(unusable[k] for k in sorted(unusable)))


def _merge(seen: LockedPackage | None, new: LockedPackage) -> LockedPackage:
    """pdm writes `name[extra]` as a second entry of the same version (its `extras`
    key): one package to install, needed whenever either entry is."""
    if seen is None:
        return new
    files = {f.sha256: f for f in (*seen.files, *new.files)}
    return replace(seen, files=tuple(files.values()),
                   when=tuple(dict.fromkeys((*seen.when, *new.when))))


def _specifier(text: object) -> SpecifierSet | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None
