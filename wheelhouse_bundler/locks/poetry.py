"""poetry.lock, lock-version 2.0 (Poetry 1.3 to 1.8) and 2.1 (Poetry 2), with its pyproject.

Poetry 2 (2.1) records, for each package, the groups that need it and the marker under
which each group does (`markers` is a string for all groups or a table per group; a group
the table leaves out means "always"), with extras folded in as `extra == "..."`. That is
enough to decide what to install without re-resolving: each (group, marker) pair becomes
a Condition.

Poetry 1.x (2.0) records neither: only each package's own `[package.dependencies]` (with
markers, optional deps named by `[package.extras]`). What a group needs is then a walk
from the project's own dependencies in the pyproject.toml beside the lock, as
poetry-plugin-export does for these locks: the lock becomes a Graph (model.Graph) that
select.needed walks per target.

Sources come from `[package.source]`: a `legacy` source is the only index the package may
be fetched from, whatever its priority (primary, supplemental, explicit; the lock names
the one it came from); packages without one came from the default index. `url` and
`file` packages are one wheel fetched from that URL or file with the locked hash. `git`
and `directory` packages (and url/file packages that are not wheels) have no wheel to
fetch, and a file without a sha256 cannot be checked: such a package is recorded as
model.Unusable, refused with what to do instead on the targets that need it only (its
markers and groups, or the 2.0 graph walk, which keeps its node and edges).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import LockError
from ..model import (
    ALWAYS,
    Condition,
    Edge,
    Graph,
    Lock,
    LockedFile,
    LockedPackage,
    Source,
    Unusable,
)
from ..sources import check_file_url, index_source
from . import NotInstallable, no_sha256, not_an_index_wheel, read_bytes, sha256_hex
from .tomlfile import read_toml

SUPPORTED = ("2.0", "2.1")
MAIN = "main"


def _pyproject(lock_path: Path) -> dict[str, Any]:
    path = lock_path.with_name("pyproject.toml")
    if not path.is_file():
        return {}
    data, _ = read_bytes(path)
    return read_toml(path, data)


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


def _files(path: Path, name: str, entry: dict[str, Any], allow_unhashed: bool = False
           ) -> tuple[LockedFile, ...]:
    files = []
    listed = entry.get("files", [])
    if not isinstance(listed, list):
        raise LockError(path, f"package {name}: `files` must be an array")
    for f in listed:
        if not isinstance(f, dict) or not f.get("file"):
            raise LockError(path, f"package {name}: a file entry without a `file` name")
        digest = sha256_hex(f.get("hash", ""))
        if digest is None:
            if allow_unhashed:  # the index's hash stands in (pipeline.prepare)
                continue
            raise NotInstallable(no_sha256(f"file {f.get('file')!r}",
                                           "run `poetry lock` again"))
        files.append(LockedFile(sha256=digest, filename=str(f["file"])))
    return tuple(files)


_NOT_WHEELS = {"git": "a git checkout", "directory": "a local folder"}


def _source(path: Path, name: str, entry: dict[str, Any], default: Source,
            declared: dict[str, str]) -> tuple[Source, str | None]:
    """The package's index, and for `url`/`file` packages the file's own location.

    Raises NotInstallable when the package has no wheel to fetch.
    """
    src = entry.get("source")
    if not src:
        return default, None
    if not isinstance(src, dict):
        raise LockError(path, f"package {name}: `source` must be a table")
    kind = src.get("type")
    if kind == "legacy":
        ref = str(src.get("reference") or "")
        url = declared.get(ref) or str(src.get("url") or "")
        if not url:
            raise LockError(path, f"package {name}: source {ref!r} has no URL")
        where = (f"{path.with_name('pyproject.toml')}: [[tool.poetry.source]] {ref!r}"
                 if ref in declared else f"{path}: package {name}: source {ref!r}")
        return index_source(ref, url, where), None
    if kind in ("url", "file"):
        where = str(src.get("url") or "")
        if not where.endswith(".whl"):
            what = "a direct URL" if kind == "url" else "a local file"
            raise NotInstallable(not_an_index_wheel(f"{what} that is not a wheel ({where})"))
        if kind == "url":
            return default, check_file_url(where, f"{path}: package {name}: source url")
        local = Path(where) if Path(where).is_absolute() else path.parent / where
        return default, local.resolve().as_uri()
    what = _NOT_WHEELS.get(str(kind), f"a {kind!r} source")
    url = src.get("url")
    raise NotInstallable(not_an_index_wheel(f"{what} ({url})" if url else what))


def parse(path: Path, *, default: Source, allow_unhashed: bool = False) -> Lock:
    data, digest = read_bytes(path)
    doc = read_toml(path, data)
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or ("package" not in doc and "lock-version" not in meta):
        raise LockError(path, "not a poetry.lock (no [metadata] table)")
    version = str(meta.get("lock-version"))
    if version not in SUPPORTED:
        raise LockError(path, f"lock-version {version} is not read (this tool reads "
                        f"{', '.join(SUPPORTED)}, as Poetry 1.3 and later write; run "
                        "`poetry lock` with a newer Poetry)")
    project = _pyproject(path)
    poetry = project.get("tool", {}).get("poetry", {})
    declared = {str(s["name"]): str(s["url"]) for s in poetry.get("source", [])
                if isinstance(s, dict) and "name" in s and "url" in s}
    entries = doc.get("package", [])
    if not isinstance(entries, list):
        raise LockError(path, "`package` must be an array of tables")
    packages = []
    unusable = []
    groups: set[str] = {MAIN, *poetry.get("group", {}).keys()}
    for i, entry in enumerate(entries):
        try:
            name = canonicalize_name(entry["name"])
            pkg_version = Version(str(entry["version"]))
        except (KeyError, TypeError) as exc:
            raise LockError(path, f"package #{i + 1}: no name or version") from exc
        except InvalidVersion as exc:
            raise LockError(path, f"package {entry.get('name')}: invalid version") from exc
        when = _conditions(path, name, entry) if version != "2.0" else ALWAYS
        groups.update(c.group for c in when if c.group)
        try:
            source, direct_url = _source(path, name, entry, default, declared)
            files = _files(path, name, entry, allow_unhashed)
        except NotInstallable as exc:
            # str(Version): the text select matches against the 2.0 graph's nodes
            unusable.append(Unusable(name, str(pkg_version), str(exc), when))
            continue
        if direct_url:
            files = tuple(LockedFile(f.sha256, f.filename, direct_url) for f in files
                          if f.filename == direct_url.rsplit("/", 1)[-1]) or files[:1]
        packages.append(LockedPackage(
            name=name, version=pkg_version, files=files, when=when,
            requires_python=_specifier(entry.get("python-versions")), source=source))
    extras = frozenset(canonicalize_name(e) for e in doc.get("extras", {}))
    graph = None
    if version == "2.0":
        if not project:
            raise LockError(path, "lock-version 2.0 records no groups; the pyproject.toml "
                            "beside it is needed to tell what each group installs")
        graph = _graph(path, project, doc, entries)
        groups.update(graph.groups)
    return Lock(path=path, format="poetry", sha256=digest,
                packages=tuple(sorted(packages, key=lambda p: (p.name, p.version))),
                default_groups=frozenset({MAIN}), groups=frozenset(groups), extras=extras,
                graph=graph, unusable=tuple(unusable))


def _specifier(text: object) -> SpecifierSet | None:
    """Poetry writes PEP 440 here, or `*`; anything else is left to pip to judge."""
    if not isinstance(text, str) or text.strip() in ("", "*"):
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


# ---- lock-version 2.0: the dependency graph, walked from the pyproject's groups -------

Key = tuple[NormalizedName, Version]
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _constraint(text: object) -> SpecifierSet | None:
    """A Poetry version constraint as PEP 440, None when it allows anything (or cannot be
    read: then every locked version of the name is a candidate, as with no constraint).

    Poetry writes `^1.2`, `~1.2`, `1.2.*`, `>=1,<2`, `>=1 <2` and `a || b`; only the
    caret and tilde forms need translating."""
    if not isinstance(text, str) or text.strip() in ("", "*") or "||" in text:
        return None
    parts = []
    for part in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", text.strip()):
        if part.startswith("^") or (part.startswith("~") and not part.startswith("~=")):
            try:
                low = Version(part.lstrip("^~"))
            except InvalidVersion:
                return None
            rel = list(low.release) + [0] * (3 - len(low.release))
            if part.startswith("^"):
                pos = next((i for i, n in enumerate(rel) if n), len(low.release) - 1)
                pos = min(pos, len(low.release) - 1)
            else:
                pos = 0 if len(low.release) == 1 else 1
            up = [*rel[:pos], rel[pos] + 1]
            parts += [f">={low}", "<" + ".".join(map(str, up))]
        elif part and part[0].isdigit():
            parts.append(f"=={part}")
        else:
            parts.append(part)
    try:
        return SpecifierSet(",".join(parts))
    except InvalidSpecifier:
        return None


def _edge_marker(path: Path, where: str, spec: dict[str, Any]) -> Marker | None:
    """The marker under which a dependency applies, `python` and `platform` folded in.

    Edges of a package's extra carry `extra == "x"` in the lock; the walk evaluates them
    with that extra (Edge.for_extra), since the installing environment has none."""
    texts = []
    if spec.get("markers"):
        texts.append(str(spec["markers"]))
    python = _constraint(spec.get("python"))
    if python is not None:
        texts += [f'python_full_version {s.operator} "{s.version}"' for s in python]
    if spec.get("platform"):
        texts.append(f'sys_platform == "{spec["platform"]}"')
    if not texts:
        return None
    return _marker(path, where, " and ".join(f"({m})" for m in texts))


def _specs(path: Path, where: str, value: object) -> list[dict[str, Any]]:
    """A dependency's constraints: a string, a table, or an array of tables by marker."""
    if isinstance(value, str):
        return [{"version": value}]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return list(value)
    raise LockError(path, f"{where}: unreadable dependency {value!r}")


def _edges_for(path: Path, where: str, name: str, value: object, extra: str | None,
               versions: dict[NormalizedName, list[Key]], python: dict[Key, str | None],
               optional: bool | None = False) -> list[Edge]:
    """Edges for one dependency entry (`optional`: None takes optional and not alike)."""
    dep = canonicalize_name(name)
    candidates = versions.get(dep)
    edges: list[Edge] = []
    if not candidates:
        return edges  # e.g. an optional dependency whose extra was never locked
    for spec in _specs(path, where, value):
        if optional is not None and bool(spec.get("optional", False)) != optional:
            continue
        marker = _edge_marker(path, where, spec)
        extras = frozenset(canonicalize_name(str(x)) for x in spec.get("extras", []))
        allowed = _constraint(spec.get("version"))
        keys = [k for k in candidates
                if allowed is None or allowed.contains(k[1], prereleases=True)] or candidates
        for key in keys:
            m = marker
            if len(keys) > 1 and python.get(key):  # several versions: each its Python
                region = Marker(" and ".join(f'python_full_version {s.operator} "{s.version}"'
                                             for s in SpecifierSet(python[key] or "")))
                m = m & region if m is not None else region
            edges.append(Edge(name=dep, marker=m, extras=extras,
                              version=key[1] if len(candidates) > 1 else None,
                              for_extra=canonicalize_name(extra) if extra else ""))
    return edges


def _graph(path: Path, project: dict[str, Any], doc: dict[str, Any],
           entries: list[dict[str, Any]]) -> Graph:
    """The lock's dependencies as a Graph rooted in the pyproject's groups and extras."""
    versions: dict[NormalizedName, list[Key]] = {}
    python: dict[Key, str | None] = {}
    for entry in entries:
        key = (canonicalize_name(entry["name"]), Version(str(entry["version"])))
        versions.setdefault(key[0], []).append(key)
        python[key] = str(_specifier(entry.get("python-versions")) or "") or None
    deps: dict[Key, dict[str | None, tuple[Edge, ...]]] = {}
    for entry in entries:
        key = (canonicalize_name(entry["name"]), Version(str(entry["version"])))
        where = f"package {key[0]}"
        requires = entry.get("dependencies", {})
        if not isinstance(requires, dict):
            raise LockError(path, f"{where}: `dependencies` must be a table")
        node: dict[str | None, list[Edge]] = {None: []}
        for dep, value in requires.items():
            node[None] += _edges_for(path, where, dep, value, None, versions, python)
        for extra, reqs in (entry.get("extras") or {}).items():
            x = canonicalize_name(extra)
            names = {canonicalize_name(m[1]) for r in reqs if (m := _REQ_NAME.match(str(r)))}
            node[x] = [e for dep, value in requires.items() if canonicalize_name(dep) in names
                       for e in _edges_for(path, f"{where}[{extra}]", dep, value, x,
                                           versions, python, optional=True)]
        deps[key] = {k: tuple(v) for k, v in node.items()}

    poetry = project.get("tool", {}).get("poetry", {})
    pep621 = project.get("project", {})
    main: list[Edge] = []
    optional_roots: dict[NormalizedName, list[Edge]] = {}
    for dep, value in poetry.get("dependencies", {}).items():
        if canonicalize_name(dep) == "python":
            continue
        main += _edges_for(path, "pyproject.toml", dep, value, None, versions, python)
        optional_roots.setdefault(canonicalize_name(dep), []).extend(
            _edges_for(path, "pyproject.toml", dep, value, None, versions, python,
                       optional=True))
    main += _pep508_edges(path, pep621.get("dependencies", []), versions, python)
    extras: dict[str, list[Edge]] = {}
    for extra, members in (doc.get("extras") or {}).items():
        x = canonicalize_name(extra)
        for member in members:
            dep = canonicalize_name(str(member))
            extras.setdefault(x, []).extend(
                optional_roots.get(dep) or [Edge(name=dep)] if dep in versions else [])
    for extra, reqs in (pep621.get("optional-dependencies") or {}).items():
        extras.setdefault(canonicalize_name(extra), []).extend(
            _pep508_edges(path, reqs, versions, python))
    groups: dict[str, list[Edge]] = {MAIN: main}
    legacy_dev = poetry.get("dev-dependencies", {})
    group_tables = {"dev": {"dependencies": legacy_dev}} if legacy_dev else {}
    group_tables.update(poetry.get("group", {}))
    for group, table in group_tables.items():
        edges = groups.setdefault(str(group), [])
        for dep, value in (table.get("dependencies") or {}).items():
            edges += _edges_for(path, f"pyproject.toml group {group}", dep, value, None,
                                versions, python, optional=None)
    return Graph(extras={x: tuple(e) for x, e in extras.items()},
                 groups={g: tuple(e) for g, e in groups.items()}, deps=deps)


def _pep508_edges(path: Path, reqs: object, versions: dict[NormalizedName, list[Key]],
                  python: dict[Key, str | None]) -> list[Edge]:
    """Edges for PEP 508 strings ([project] dependencies of a Poetry 2 style pyproject)."""
    edges: list[Edge] = []
    for text in reqs if isinstance(reqs, list) else []:
        try:
            req = Requirement(str(text))
        except InvalidRequirement as exc:
            raise LockError(path.with_name("pyproject.toml"),
                            f"invalid requirement {text!r}") from exc
        spec: dict[str, Any] = {"version": str(req.specifier) or "*",
                                "extras": sorted(req.extras)}
        if req.marker is not None:
            spec["markers"] = str(req.marker)
        edges += _edges_for(path, "pyproject.toml", req.name, spec, None, versions, python)
    return edges
