"""Plain data that flows between the stages: locks, targets, picks and the manifest.

The shape follows PEP 751 (packages with markers, files named and hashed, an index per
package) but allows what other lock formats leave out: a file may lack its URL (poetry,
Pipfile) or even its name (hashed requirements list only hashes); the index fills those
in later. Markers are in the PEP 751 lock-file dialect, so `extras` and
`dependency_groups` select packages the same way for every format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, parse_wheel_filename
from packaging.version import Version


@dataclass(frozen=True)
class Source:
    """A package index, by its Simple API base URL; `name` is how the lock refers to it."""

    name: str
    url: str


@dataclass(frozen=True)
class LockedFile:
    """One distribution file the lock allows, identified by its sha256."""

    sha256: str
    filename: str | None = None
    url: str | None = None
    size: int | None = None
    yanked: bool = False
    hash_from_index: bool = False  # no hash in the lock (--allow-unhashed): the index's

    @property
    def is_wheel(self) -> bool:
        return bool(self.filename and self.filename.endswith(".whl"))

    @property
    def is_sdist(self) -> bool:
        """A source archive the build box can turn into a wheel (PEP 625 names it
        `.tar.gz`; older releases also published `.zip`)."""
        return bool(self.filename and self.filename.endswith((".tar.gz", ".zip")))

    def tags(self) -> frozenset[Tag]:
        """The wheel's compatibility tags; empty for anything that is not a wheel."""
        if not self.is_wheel:
            return frozenset()
        assert self.filename is not None
        return parse_wheel_filename(self.filename)[3]


@dataclass(frozen=True)
class Condition:
    """One way a package gets installed: a selected group (None: any) and a marker.

    Markers are evaluated with the target's environment plus `extra` (each requested
    extra in turn, as pip does for requirements) and the PEP 751 sets `extras` and
    `dependency_groups`, so every lock format's notion of "when" fits one rule.
    """

    group: str | None = None
    marker: Marker | None = None


ALWAYS = (Condition(),)


@dataclass(frozen=True)
class LockedPackage:
    """One pinned distribution; `source` is the only index it may come from."""

    name: NormalizedName
    version: Version
    files: tuple[LockedFile, ...]
    when: tuple[Condition, ...] = ALWAYS
    requires_python: SpecifierSet | None = None
    source: Source | None = None


@dataclass(frozen=True)
class Unusable:
    """A package the lock names but cannot install as written: a version it could not pin
    (Pipfile.lock's `*`), a git checkout or local path, a file without a hash.

    Readers record it instead of refusing the whole lock, because the lock may still be
    right for every target that does not need it (a Linux-made Pipfile.lock leaves its
    Windows-only packages unpinned); select refuses it, naming the reason, only on a target
    whose markers (or graph walk) reach it. `version` is the lock's own text.
    """

    name: NormalizedName
    version: str
    reason: str
    when: tuple[Condition, ...] = ALWAYS


@dataclass(frozen=True)
class Edge:
    """A dependency as a graph lock records it: taken when `marker` holds on the target.

    `extras` are the dependency's own extras the edge asks for; `version` pins which of
    several locked versions of `name` it means (uv forks one name into several versions
    by resolution markers), None when the lock holds only one.
    """

    name: NormalizedName
    marker: Marker | None = None
    extras: frozenset[str] = frozenset()
    version: Version | None = None
    for_extra: str = ""  # `extra` while evaluating `marker` (poetry: the dependent's extra)


@dataclass(frozen=True)
class Graph:
    """A lock that records who depends on whom (uv) instead of when each package applies.

    What a target installs is a walk from the roots: `groups[g]` for each selected group
    (the project's own dependencies are the group "main", as in poetry), `extras[x]` for
    each requested extra, then each reached package's `deps[(name, version)][None]` plus
    `[extra]` for the extras its edge named. Markers depend on the target, so the walk
    happens per target (select.needed). Nodes in `members` (the project and workspace
    members) are walked through but never bundled.
    """

    extras: Mapping[str, tuple[Edge, ...]]
    groups: Mapping[str, tuple[Edge, ...]]
    deps: Mapping[tuple[NormalizedName, Version], Mapping[str | None, tuple[Edge, ...]]]
    members: frozenset[tuple[NormalizedName, Version]] = frozenset()


@dataclass(frozen=True)
class Support:
    """Where a lock says it may be installed (PEP 751 `requires-python`, `environments`).

    A reader sets it when the lock makes that promise; select refuses a target outside it
    instead of bundling a set the locker never resolved for that target.
    """

    requires_python: SpecifierSet | None = None
    environments: tuple[Marker, ...] = ()


@dataclass(frozen=True)
class Lock:
    """A parsed lock: what to install, never how to resolve it again."""

    path: Path
    format: str
    sha256: str
    packages: tuple[LockedPackage, ...]
    default_groups: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    extras: frozenset[str] = frozenset()
    requires_python: SpecifierSet | None = None
    graph: Graph | None = None  # set by graph locks (uv): select walks it per target
    support: Support | None = None  # set by locks that say where they apply (pylock)
    unusable: tuple[Unusable, ...] = ()  # refused only on the targets that need them


@dataclass(frozen=True)
class Target:
    """A Python x platform to install on: tags in pip's priority order plus markers."""

    name: str
    tags: tuple[Tag, ...]
    environment: Mapping[str, str]

    @cached_property
    def tag_rank(self) -> dict[Tag, int]:
        """Each supported tag's priority (0 is best), built once: choosing among every
        package's wheels looks a tag up hundreds of times per target."""
        return {tag: i for i, tag in enumerate(self.tags)}


@dataclass(frozen=True)
class Pick:
    """The one file chosen for a package on a target."""

    package: LockedPackage
    file: LockedFile


@dataclass(frozen=True)
class Plan:
    """Everything one target installs, in a stable order (by package name)."""

    target: Target
    picks: tuple[Pick, ...]


@dataclass(frozen=True)
class BuiltFrom:
    """How a wheel the bundle carries was made on the build box from its sdist.

    Recorded whole, because a built wheel is the one file in a bundle whose bytes no
    index vouches for: whoever reads the manifest sees what went into it (the sdist the
    lock pinned, the backend, each build dependency by version and hash) and where.
    """

    sdist: str  # file name of the sdist
    sdist_sha256: str
    backend: str  # the PEP 517 backend object, e.g. setuptools.build_meta
    backend_version: str  # `name==version` of the distribution providing it
    build_deps: tuple[str, ...]  # `name==version sha256:<hex>`, sorted
    python: str  # the building interpreter, e.g. cpython-3.11.7
    platform: str  # the builder's platform tag, e.g. manylinux_2_36_x86_64


@dataclass(frozen=True)
class ManifestFile:
    """A file in the bundle as the manifest records it."""

    filename: str
    sha256: str
    size: int
    name: str
    version: str
    origin: str
    targets: tuple[str, ...]
    yanked: bool = False
    hash_from_index: bool = False  # the lock had no hash; the index's was trusted
    own: bool = False  # the locked project's own wheel, installed last with --no-deps
    built_from: BuiltFrom | None = None  # built here from the lock's sdist


@dataclass(frozen=True)
class ManifestTarget:
    """A target as the bundle records it; its wheels are the files that list its name."""

    name: str
    environment: Mapping[str, str]


@dataclass(frozen=True)
class AcceptedVuln:
    """An advisory that matched a bundled version and was accepted with --ignore-vuln."""

    id: str
    package: str
    version: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """The bundle's table of contents: every wheel in it is named here by hash."""

    format_version: int
    tool_version: str
    lock_name: str
    lock_format: str
    lock_sha256: str
    groups: tuple[str, ...]
    extras: tuple[str, ...]
    targets: tuple[ManifestTarget, ...]
    files: tuple[ManifestFile, ...]
    accepted_vulns: tuple[AcceptedVuln, ...] = ()
    tools: tuple[ManifestFile, ...] = ()  # installers (uv) under tools/: in no venv

    def files_for(self, target: str) -> list[ManifestFile]:
        return [f for f in self.files if target in f.targets]
