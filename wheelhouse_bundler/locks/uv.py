"""uv.lock (version 1, any revision), as `uv lock` writes it.

uv records a dependency graph, not when each package applies: every `[[package]]` lists
its `dependencies` (edges with an optional marker, the extras they ask for and, where one
name was forked into several versions by `resolution-markers`, the version), its extras'
`optional-dependencies` and, for the project, its `dev-dependencies` groups. Markers
depend on the target, so the graph is kept as it is (`Lock.graph`) and select.needed
walks it per target from the project, as `uv export` does.

Groups follow `uv export`: the project's own dependencies are the group "main", and the
default groups are `tool.uv.default-groups` of the pyproject.toml beside the lock, else
"dev" (uv's default). `--with/--without/--only` then work as for poetry.

Sources: a `registry` package comes from that index only (the registry URL is its
Simple API base); `url` packages are fetched from their recorded wheel URL. The project
and workspace members (the `editable`/`virtual` project at ".", `virtual` packages, and
those listed in `[manifest] members`) are walked through and never bundled. `git`,
`path`, `directory` and other `editable` packages, direct URLs that are not wheels, a
local (non-HTTP) index and wheels without a sha256 cannot be bundled as locked: each such
package is recorded as model.Unusable, its node and edges kept, so select refuses it
(with what to do instead) only on the targets whose walk reaches it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import LockError
from ..model import Edge, Graph, Lock, LockedFile, LockedPackage, Source, Unusable
from ..sources import check_file_url, checked_index_url, strip_credentials
from . import NotInstallable, no_sha256, not_an_index_wheel, read_bytes, sha256_hex
from .tomlfile import read_toml as _toml

SUPPORTED = (1,)
MAIN = "main"
_REFUSED = {
    "git": "a git checkout",
    "path": "a local file",
    "directory": "a local folder",
    "editable": "an editable install",
}

Key = tuple[NormalizedName, Version]


def _marker(path: Path, where: str, text: object) -> Marker | None:
    if text is None:
        return None
    try:
        return Marker(str(text))
    except InvalidMarker as exc:
        raise LockError(path, f"{where}: invalid marker {text!r}") from exc


def _version(path: Path, where: str, text: object) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion as exc:
        raise LockError(path, f"{where}: invalid version {text!r}") from exc


def _edges(path: Path, where: str, items: object, versions: dict[str, list[Version]]
           ) -> tuple[Edge, ...]:
    if not isinstance(items, list):
        raise LockError(path, f"{where}: dependencies must be a list")
    edges = []
    for item in items:
        if not isinstance(item, dict) or "name" not in item:
            raise LockError(path, f"{where}: a dependency without a name")
        name = canonicalize_name(str(item["name"]))
        version = _version(path, where, item["version"]) if "version" in item else None
        known = versions.get(name)
        if not known:
            raise LockError(path, f"{where}: depends on {name}, which the lock does not hold")
        if version is None and len(known) > 1:
            raise LockError(path, f"{where}: depends on {name} without saying which of "
                            f"{', '.join(map(str, sorted(known)))}")
        if version is not None and version not in known:
            raise LockError(path, f"{where}: depends on {name}=={version}, which the lock "
                            "does not hold")
        extras = item.get("extra", [])
        edges.append(Edge(name=name, marker=_marker(path, where, item.get("marker")),
                          extras=frozenset(canonicalize_name(str(x)) for x in extras),
                          version=version))
    return tuple(edges)


def _files(path: Path, where: str, entry: dict[str, Any], allow_unhashed: bool
           ) -> tuple[LockedFile, ...]:
    """The wheels with their URLs and hashes; the sdist is never bundled (wheels only),
    but counts as 'has files' so a package with only an sdist says so in select."""
    files = []
    for wheel in entry.get("wheels", []):
        url = str(wheel.get("url") or wheel.get("path") or "")
        if "url" in wheel:
            url = check_file_url(url, f"{path}: {where}: wheel url")
        filename = url.rsplit("/", 1)[-1] or None
        digest = sha256_hex(wheel.get("hash", ""))
        if digest is None:
            if allow_unhashed:
                continue
            raise NotInstallable(no_sha256(f"wheel {filename!r}", "re-run `uv lock`"))
        files.append(LockedFile(sha256=digest, filename=filename,
                                url=url if "url" in wheel else None,
                                size=wheel.get("size")))
    sdist = entry.get("sdist")
    if isinstance(sdist, dict):
        digest = sha256_hex(sdist.get("hash", ""))
        url = str(sdist.get("url") or sdist.get("path") or "")
        if digest is not None:
            files.append(LockedFile(sha256=digest, filename=url.rsplit("/", 1)[-1],
                                    url=sdist.get("url"), size=sdist.get("size")))
    return tuple(files)


def _source(path: Path, where: str, entry: dict[str, Any], default: Source) -> Source:
    """The one index the package may come from (never called for the project and its
    members); NotInstallable when the lock holds no wheel on an HTTP index for it."""
    src = entry.get("source")
    if not isinstance(src, dict) or len(src) != 1:
        raise LockError(path, f"{where}: no `source` (uv writes one for every package)")
    kind, value = next(iter(src.items()))
    if kind == "registry":
        url = str(value)
        if not url.startswith(("http://", "https://")):
            raise NotInstallable(f"comes from the local index {url!r}; bundle from an HTTP "
                                 "index (pass it to `uv lock --index-url`)")
        url = checked_index_url(url, f"{path}: {where}: source registry")
        # The URL names the source in messages: never with the user info it may hold.
        return Source(strip_credentials(url), url)
    if kind == "url":
        if not entry.get("wheels"):
            raise NotInstallable(not_an_index_wheel(
                f"a direct URL that is not a wheel ({value})"))
        return default
    what = _REFUSED.get(kind, f"a {kind!r} source")
    raise NotInstallable(not_an_index_wheel(f"{what} ({value})"))


def _is_member(name: NormalizedName, src: object, members: set[NormalizedName]) -> bool:
    """The user's own code, walked through and never bundled: a `[manifest]` member, the
    project at "." (editable or virtual), or a virtual package (nothing to install)."""
    if name in members:
        return True
    return isinstance(src, dict) and ("virtual" in src or src.get("editable") == ".")


def _default_groups(lock_path: Path, groups: set[str]) -> frozenset[str]:
    """uv's defaults: `tool.uv.default-groups` ("all" or a list), else "dev"."""
    pyproject = lock_path.with_name("pyproject.toml")
    chosen: object = None
    if pyproject.is_file():
        data, _ = read_bytes(pyproject)
        chosen = _toml(pyproject, data).get("tool", {}).get("uv", {}).get("default-groups")
    if chosen == "all":
        return frozenset(groups | {MAIN})
    if isinstance(chosen, list):
        return frozenset({MAIN, *(canonicalize_name(str(g)) for g in chosen)} & (groups | {MAIN}))
    return frozenset({MAIN, "dev"} & (groups | {MAIN}))


def parse(path: Path, *, default: Source, allow_unhashed: bool = False) -> Lock:
    data, digest = read_bytes(path)
    doc = _toml(path, data)
    version = doc.get("version")
    if version is None:
        raise LockError(path, "not a uv.lock (no top-level `version`)")
    if type(version) is not int or version not in SUPPORTED:
        raise LockError(path, f"uv.lock version {version} is not read (this tool reads "
                        f"version {', '.join(map(str, SUPPORTED))}, as uv 0.5 and later write)")
    entries = doc.get("package", [])
    if not isinstance(entries, list):
        raise LockError(path, "`package` must be an array of tables")
    members = {canonicalize_name(str(m))
               for m in doc.get("manifest", {}).get("members", [])}

    keyed: list[tuple[Key, str, dict[str, Any]]] = []
    versions: dict[str, list[Version]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry:
            raise LockError(path, f"package #{i + 1}: no name")
        name = canonicalize_name(str(entry["name"]))
        where = f"package {name}"
        # uv leaves out the version of dynamic-version workspace members.
        ver = _version(path, where, entry["version"]) if "version" in entry else Version("0")
        keyed.append(((name, ver), f"{where}=={ver}", entry))
        versions.setdefault(name, []).append(ver)

    packages: list[LockedPackage] = []
    unusable: list[Unusable] = []
    roots: list[tuple[Key, dict[str, Any]]] = []
    member_keys: set[Key] = set()
    deps: dict[Key, dict[str | None, tuple[Edge, ...]]] = {}
    for key, where, entry in keyed:
        node: dict[str | None, tuple[Edge, ...]] = {
            None: _edges(path, where, entry.get("dependencies", []), versions)}
        for extra, items in entry.get("optional-dependencies", {}).items():
            node[canonicalize_name(extra)] = _edges(path, f"{where}[{extra}]", items, versions)
        deps[key] = node
        src = entry.get("source")
        if _is_member(key[0], src, members):
            member_keys.add(key)  # the user's own code: walked through, never bundled
            if isinstance(src, dict) and "." in (src.get("editable"), src.get("virtual")):
                roots.append((key, entry))
            continue
        try:
            source = _source(path, where, entry, default)
            files = _files(path, where, entry, allow_unhashed)
        except NotInstallable as exc:
            # str(Version): the text select matches against the nodes the walk reaches
            unusable.append(Unusable(key[0], str(key[1]), str(exc)))
            continue
        packages.append(LockedPackage(name=key[0], version=key[1], files=files,
                                      requires_python=None, source=source))
    if not roots:  # a workspace without a root project: every member is a root
        roots = [(key, entry) for key, _, entry in keyed if key in member_keys]

    main: list[Edge] = []
    extras: dict[str, list[Edge]] = {}
    groups: dict[str, list[Edge]] = {}
    for key, entry in roots:
        main.append(Edge(name=key[0], version=key[1]))  # walk through the project itself
        for extra, edges in deps[key].items():
            if extra is not None:
                extras.setdefault(extra, []).extend(edges)
        for group, items in entry.get("dev-dependencies", {}).items():
            g = canonicalize_name(group)
            groups.setdefault(g, []).extend(_edges(path, f"{key[0]} group {group}", items,
                                                   versions))
    graph = Graph(extras={x: tuple(e) for x, e in extras.items()},
                  groups={MAIN: tuple(main), **{g: tuple(e) for g, e in groups.items()}},
                  deps=deps, members=frozenset(member_keys))
    return Lock(path=path, format="uv", sha256=digest,
                packages=tuple(sorted(packages, key=lambda p: (p.name, p.version))),
                default_groups=_default_groups(path, set(groups)),
                groups=frozenset({MAIN, *groups}), extras=frozenset(extras),
                requires_python=_specifier(doc.get("requires-python")), graph=graph,
                unusable=tuple(unusable))


def _specifier(text: object) -> SpecifierSet | None:
    if not isinstance(text, str):
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None
