"""Which packages a target needs, and the one wheel each of them gets there.

Pure functions over the model: markers decide what a target needs, the target's tag
priority decides which file. Every gap is collected before failing, so the user sees the
whole table of (package, version, target) without a usable wheel at once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from .errors import SelectionError, UsageError
from .model import (
    Edge,
    Graph,
    Lock,
    LockedFile,
    LockedPackage,
    Pick,
    Plan,
    Support,
    Target,
    Unusable,
)


def check_group_flags(with_: Collection[str], without: Collection[str],
                      only: Collection[str]) -> None:
    """Refuse --only beside --with/--without: --only names every group to take, so the
    others would be dropped without a word (`--with dev --only main` takes no dev)."""
    if only and (with_ or without):
        given = "--with" if with_ else "--without"
        raise UsageError(f"{given} cannot be combined with --only (which names every group "
                         "to take): use one or the other")


def choose_groups(lock: Lock, *, with_: Iterable[str] = (), without: Iterable[str] = (),
                  only: Iterable[str] = ()) -> frozenset[str]:
    """Poetry's group rules: the lock's default groups, plus --with, minus --without;
    --only replaces them all. Unknown names are refused rather than silently ignored."""
    with_, without, only = set(with_), set(without), set(only)
    check_group_flags(with_, without, only)
    unknown = (with_ | without | only) - lock.groups
    if unknown and lock.groups:
        raise UsageError(f"unknown group(s) {', '.join(sorted(unknown))} in {lock.path.name} "
                         f"(known: {', '.join(sorted(lock.groups))})")
    if unknown:
        raise UsageError(f"{lock.path.name} has no dependency groups; cannot select "
                         f"{', '.join(sorted(unknown))}")
    if only:
        return frozenset(only)
    return frozenset((lock.default_groups | with_) - without)


def choose_extras(lock: Lock, extras: Iterable[str] = (), all_extras: bool = False
                  ) -> frozenset[str]:
    if all_extras:
        return lock.extras
    wanted = {canonicalize_name(e) for e in extras}
    unknown = wanted - lock.extras
    if unknown:
        known = ", ".join(sorted(lock.extras)) or "none"
        raise UsageError(f"unknown extra(s) {', '.join(sorted(unknown))} in "
                         f"{lock.path.name} (known: {known})")
    return frozenset(wanted)


def applies(package: LockedPackage | Unusable, target: Target, groups: Collection[str],
            extras: Collection[str]) -> bool:
    """True when any of the package's conditions holds on the target."""
    base = dict(target.environment)
    sets = {"extras": frozenset(extras), "dependency_groups": frozenset(groups)}
    for cond in package.when:
        if cond.group is not None and cond.group not in groups:
            continue
        if cond.marker is None:
            return True
        for extra in sorted(extras) or [""]:
            env = {**base, **sets, "extra": extra}
            if cond.marker.evaluate(env, context="lock_file"):  # type: ignore[arg-type]
                return True
    return False


def needed(lock: Lock, target: Target, groups: Collection[str],
           extras: Collection[str]) -> list[LockedPackage]:
    return needed_and_unusable(lock, target, groups, extras)[0]


def needed_and_unusable(lock: Lock, target: Target, groups: Collection[str],
                        extras: Collection[str]
                        ) -> tuple[list[LockedPackage], list[Unusable]]:
    """What the target installs, and the packages it would need that the lock cannot give."""
    if lock.graph is not None:
        reached = walk(lock.graph, target, groups, extras)
        texts = {(name, str(version)) for name, version in reached}
        return ([p for p in lock.packages if (p.name, p.version) in reached],
                [u for u in lock.unusable if (u.name, u.version) in texts])
    return ([p for p in lock.packages if applies(p, target, groups, extras)],
            [u for u in lock.unusable if applies(u, target, groups, extras)])


def walk(graph: Graph, target: Target, groups: Collection[str], extras: Collection[str]
         ) -> set[tuple[NormalizedName, Version]]:
    """Every (name, version) reached from the selected roots through edges whose marker
    holds on the target, as uv's own export does it. Edge markers are plain PEP 508
    markers on the installing environment, so `extra` is empty while evaluating them."""
    env = {**target.environment, "extra": ""}
    by_name: dict[str, list[Version]] = {}
    for name, version in graph.deps:
        by_name.setdefault(name, []).append(version)
    todo: list[tuple[NormalizedName, Version, str | None]] = []

    def follow(edges: Iterable[Edge]) -> None:
        for edge in edges:
            if edge.marker is not None and not edge.marker.evaluate(
                    {**env, "extra": edge.for_extra} if edge.for_extra else env):  # type: ignore[arg-type]
                continue
            versions = [edge.version] if edge.version else by_name.get(edge.name, [])
            for version in versions:
                todo.extend((edge.name, version, x) for x in (None, *sorted(edge.extras)))

    for group in sorted(groups):
        follow(graph.groups.get(group, ()))
    for extra in sorted(extras):
        follow(graph.extras.get(extra, ()))
    seen: set[tuple[NormalizedName, Version, str | None]] = set()
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        name, version, extra = item
        follow(graph.deps.get((name, version), {}).get(extra, ()))
    return {(n, v) for n, v, _ in seen} - graph.members


def ranked_wheels(package: LockedPackage, target: Target) -> list[LockedFile]:
    """The package's wheels that install on the target, best first (pip's order)."""
    rank = target.tag_rank
    scored = []
    for f in package.files:
        if not f.is_wheel:
            continue
        best = min((rank[t] for t in f.tags() if t in rank), default=None)
        if best is not None:
            build = parse_wheel_filename(f.filename or "")[2]
            scored.append((best, build, f.filename or "", f))
    # pip's order: best tag first; on a tie the highest build number; then by name, so
    # the choice never depends on the order of files in the lock.
    scored.sort(key=lambda s: s[2])
    scored.sort(key=lambda s: s[1], reverse=True)
    scored.sort(key=lambda s: s[0])
    return [s[3] for s in scored]


def _python_ok(package: LockedPackage, target: Target) -> bool:
    if package.requires_python is None:
        return True
    full = Version(target.environment["python_full_version"])
    return package.requires_python.contains(full, prereleases=True)


def check_supported(lock: Lock, support: Support, target: Target) -> None:
    """Refuse a target the lock says it was not made for (one line, naming the lock)."""
    full = Version(target.environment["python_full_version"])
    spec = support.requires_python
    if spec is not None and not spec.contains(full, prereleases=True):
        raise SelectionError(f"{lock.path}: target {target.name} has Python {full}, outside "
                             f"the lock's requires-python {spec}")
    env = dict(target.environment)
    if support.environments and not any(m.evaluate(env) for m in support.environments):
        raise SelectionError(
            f"{lock.path}: target {target.name} is outside every environment the lock "
            f"supports ({' | '.join(str(m) for m in support.environments)})")


def _one_each(lock: Lock, target: Target, packages: list[LockedPackage]) -> None:
    """Two versions of one name on one target cannot both install: the lock is ambiguous."""
    seen: dict[str, LockedPackage] = {}
    for package in packages:
        if (other := seen.setdefault(package.name, package)) is not package:
            raise SelectionError(
                f"{lock.path}: {package.name} is needed twice on {target.name} "
                f"({other.version} and {package.version}); the lock's markers overlap")


@dataclass(frozen=True)
class BuildPolicy:
    """Which sdist-only packages the build box may turn into wheels (see sdistbuild)."""

    enabled: bool = True  # --no-build turns it off
    refused: frozenset[str] = frozenset()  # --no-build-package, canonical names

    def why_not(self, name: str) -> str | None:
        if not self.enabled:
            return "--no-build"
        if canonicalize_name(name) in self.refused:
            return f"--no-build-package {name}"
        return None


NO_BUILD = BuildPolicy(enabled=False)


def sdist_of(package: LockedPackage) -> LockedFile | None:
    """The sdist the lock pins for a package (hashed like every locked file), if any."""
    return next((f for f in sorted(package.files, key=lambda f: f.filename or "")
                 if f.is_sdist), None)


def pick(package: LockedPackage, target: Target, build: BuildPolicy) -> LockedFile | None:
    """The file a target installs a package from: its best wheel there, else the sdist
    the build box may build (sdistbuild replaces it with the wheel), else None."""
    wheels = ranked_wheels(package, target)
    if wheels:
        return wheels[0]
    sdist = sdist_of(package)
    return sdist if sdist is not None and build.why_not(package.name) is None else None


def plan(lock: Lock, targets: list[Target], groups: Collection[str],
         extras: Collection[str], build: BuildPolicy = NO_BUILD) -> list[Plan]:
    """One plan per target, or a SelectionError listing every package that cannot be met.

    A package with no wheel for a target but an sdist in the lock gets the sdist as its
    pick when `build` allows it: sdistbuild replaces it with the wheel built from it, or
    refuses the target with this same table once the build shows what the wheel fits.
    """
    plans: list[Plan] = []
    gaps: list[str] = []
    no_wheel = False  # a gap of the kind the closing hint speaks to
    for target in targets:
        if lock.support is not None:
            check_supported(lock, lock.support, target)
        picks: list[Pick] = []
        packages, unusable = needed_and_unusable(lock, target, groups, extras)
        gaps += [f"  {' '.join(filter(None, (u.name, u.version)))} on {target.name}: "
                 f"{u.reason}" for u in unusable]
        _one_each(lock, target, packages)
        for package in packages:
            if not _python_ok(package, target):
                gaps.append(f"  {package.name}=={package.version} on {target.name}: needs "
                            f"Python {package.requires_python}")
                continue
            chosen = pick(package, target, build)
            if chosen is not None:
                picks.append(Pick(package, chosen))
                continue
            off = build.why_not(package.name) if sdist_of(package) is not None else None
            gaps.append(f"  {package.name}=={package.version} on {target.name}: no wheel "
                        f"for this target; {describe_files(package.files)}"
                        + (f" (not built: {off})" if off else ""))
            no_wheel = True
        plans.append(Plan(target, tuple(sorted(picks, key=lambda p: p.package.name))))
    if gaps:
        raise refusal(lock, gaps, no_wheel)
    return plans


def refusal(lock: Lock, gaps: list[str], hint: bool) -> SelectionError:
    """The one table of packages a lock cannot give its targets (`gaps`: one line each)."""
    return SelectionError(
        f"{len(gaps)} package(s) cannot be installed from {lock.path.name} on the "
        "targets that need them:\n" + "\n".join([*gaps, *([_WHAT_TO_DO] if hint else [])]))


_WHAT_TO_DO = (
    "  (a target takes only wheels built for its Python and platform: bundle for a target "
    "the wheels above cover (`target-info` on the machine gives its exact tags), or pin a "
    "version that publishes a wheel for it; an sdist is built here only into a wheel its "
    "tags let a target use)")

_LEGACY_GLIBC = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_FAMILIES = ("manylinux", "musllinux", "macOS", "windows", "other")


def _platform(tag: str) -> tuple[str, tuple[int, ...], str]:
    """(family, minimum version, architecture) of one platform tag, for summaries."""
    for legacy, version in _LEGACY_GLIBC.items():
        if tag.startswith(legacy + "_"):
            return "manylinux", version, tag[len(legacy) + 1:]
    for prefix, label in (("manylinux_", "manylinux"), ("musllinux_", "musllinux"),
                          ("macosx_", "macOS")):
        if tag.startswith(prefix):
            major, minor, arch = [*tag[len(prefix):].split("_", 2), "", ""][:3]
            if major.isdigit() and minor.isdigit():
                return label, (int(major), int(minor)), arch
    if tag.startswith("win"):
        return "windows", (), tag
    return "other", (), tag


def _platforms(tags: set[str]) -> str:
    """`manylinux_2_17+ x86_64/aarch64, macOS 11.0+ arm64, win_amd64` for a set of tags."""
    if "any" in tags:
        return "any platform"
    lowest: dict[tuple[str, str], tuple[int, ...]] = {}
    for tag in tags:
        family, version, arch = _platform(tag)
        key = (family, arch)
        lowest[key] = min(lowest.get(key, version), version)
    parts = []
    for family in _FAMILIES:
        by_version: dict[tuple[int, ...], list[str]] = {}
        for (fam, arch), version in sorted(lowest.items()):
            if fam == family:
                by_version.setdefault(version, []).append(arch)
        for version, arches in sorted(by_version.items()):
            if family in ("windows", "other"):
                parts.append("/".join(arches))
            elif family == "macOS":
                parts.append(f"macOS {version[0]}.{version[1]}+ {'/'.join(arches)}")
            else:
                parts.append(f"{family}_{version[0]}_{version[1]}+ {'/'.join(arches)}")
    return ", ".join(parts)


def describe_files(files: Iterable[LockedFile]) -> str:
    """What a release does publish, short enough to read: which interpreters have wheels
    on which platforms, and whether there is an sdist (a release may list 40 files)."""
    platforms: dict[str, set[str]] = {}
    sdists: list[str] = []
    unnamed = 0
    for f in files:
        if f.is_wheel:
            interpreter, abi, plat = (f.filename or "")[:-4].split("-")[-3:]
            label = (interpreter if abi == "none" else f"{interpreter}-abi3" if abi == "abi3"
                     else interpreter if abi == interpreter else f"{interpreter}-{abi}")
            platforms.setdefault(label, set()).update(plat.split("."))
        elif f.filename:
            sdists.append(f.filename)
        else:
            unnamed += 1
    grouped: dict[str, list[str]] = {}
    for label in sorted(platforms, key=_interpreter_order):
        grouped.setdefault(_platforms(platforms[label]), []).append(label)
    said = [f"{', '.join(labels)} on {where}" for where, labels in grouped.items()]
    if not said:
        text = ("no wheel at all, only the sdist " + ", ".join(sorted(sdists)) if sdists
                else "the lock lists no files for it")
    else:
        text = "wheels: " + "; ".join(said)
        if sdists:
            text += "; also an sdist"
    if unnamed:
        text += f" ({unnamed} file(s) the index did not name)"
    return text


def _interpreter_order(label: str) -> tuple[bool, int, str]:
    """CPython and pure first, then other implementations; cp39 before cp310."""
    digits = "".join(c for c in label.split("-")[0].split(".")[0] if c.isdigit())
    return (not label.startswith(("cp", "py")), int(digits) if digits else 0, label)


def nothing_selected(lock: Lock, plans: list[Plan], groups: Collection[str],
                     extras: Collection[str]) -> str | None:
    """Why the selection is empty (no package for any target), or None when it is not.

    An empty bundle, export or download folder is never what the user meant: it is a
    `--without main`, an empty requirements file or a marker that excludes every target,
    and a run that "succeeds" with nothing would hide that until the air gap.
    """
    if any(plan.picks for plan in plans):
        return None
    if not lock.packages:
        return f"{lock.path.name} pins no packages: nothing to take across"
    chosen = ", ".join(sorted(groups)) or "none"
    known = f" of {', '.join(sorted(lock.groups))}" if lock.groups else ""
    return (f"no package of {lock.path.name} is selected for "
            f"{', '.join(plan.target.name for plan in plans)} (groups: {chosen}{known}; "
            f"extras: {', '.join(sorted(extras)) or 'none'}): nothing to take across")
