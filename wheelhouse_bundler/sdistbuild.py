"""Wheels for packages that publish only an sdist, built on the build box.

The target has no compiler and no index, so it never builds anything. The build box turns
each pinned sdist into a wheel with PEP 517, in a fresh environment whose backend and
build dependencies come from the package's own source (with its credentials), with
`SOURCE_DATE_EPOCH` set so that backends honouring it give the same bytes every time.
The result is used by its tags like any wheel: a pure wheel serves every target, a
platform wheel only the targets whose tags take it. On Linux auditwheel first gives a
platform wheel its honest manylinux tag from the symbols it uses, so a wheel built
against this box's glibc is refused for a target with an older one instead of crashing
there (a `linux_<arch>` wheel is never used). Whatever cannot be built for a target is
refused with select's table, saying which interpreter or platform would be needed.

Built wheels are recorded (model.BuiltFrom) and cached by what decides their bytes: the
sdist's sha256, the building interpreter and platform, SOURCE_DATE_EPOCH and this
recipe's version. The build dependencies are resolved when a build runs and recorded
with it; a new release of a backend does not by itself cause a rebuild.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from . import pep517build
from . import targets as targets_mod
from .bundle import source_date_epoch
from .cache import Cache
from .errors import NetworkError, UsageError, note
from .files import sha256_file, write_atomic
from .manifest import built_json, parse_built
from .model import BuiltFrom, Lock, LockedFile, LockedPackage, Pick, Plan, Target
from .parallel import run_all
from .select import refusal, sdist_of

RECIPE = 1  # bump when a change here or in pep517build changes what a build makes


@dataclass(frozen=True)
class Builder:
    """An interpreter on the build box, with the tags it would install (the probe's)."""

    python: str
    target: Target

    @property
    def label(self) -> str:
        env = self.target.environment
        return f"{env['implementation_name']}-{env['implementation_version']}"

    @property
    def platform(self) -> str:
        """The most specific platform tag this interpreter takes, for the record."""
        plats = [t.platform for t in self.target.tags if t.platform != "any"]
        honest = [p for p in plats if not p.startswith("linux_")]
        return (honest or plats or ["any"])[0]

    def same_python(self, target: Target) -> bool:
        a, b = self.target.environment, target.environment
        return (a["implementation_name"], a["python_version"]) == (
            b["implementation_name"], b["python_version"])


class Builders:
    """The interpreters builds may use, found lazily and probed once each: every
    `--build-python`, this tool's own, `pythonX.Y` on PATH, then pyenv's versions."""

    def __init__(self, given: Sequence[Path] = ()) -> None:
        self._given = [str(p) for p in given]
        self._probed: dict[str, Builder | None] = {}

    def _probe(self, python: str | None) -> Builder | None:
        key = python or sys.executable
        if key not in self._probed:
            try:
                target = targets_mod.interpreter(python)[0]
            except UsageError:
                if python in self._given:
                    raise
                target = None
            self._probed[key] = Builder(key, target) if target is not None else None
        return self._probed[key]

    def default(self) -> Builder:
        """The first --build-python, else this tool's own interpreter."""
        found = self._probe(self._given[0]) if self._given else None
        return found or self._probe(None)  # type: ignore[return-value]

    def matching(self, target: Target) -> Builder | None:
        """An interpreter with the target's implementation and Python version."""
        for python in (*self._given, None):
            found = self._probe(python)
            if found is not None and found.same_python(target):
                return found
        version = target.environment["python_version"]
        if target.environment["implementation_name"] != "cpython":
            return None
        for python in _candidates(version):
            found = self._probe(python)
            if found is not None and found.same_python(target):
                return found
        return None


def _candidates(version: str) -> Iterator[str]:
    """`pythonX.Y` on PATH, then pyenv's newest X.Y.* (pyenv root from PYENV_ROOT)."""
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield on_path
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    try:
        found = sorted(root.glob(f"{version}.*/bin/python{version}"),
                       key=lambda p: _patch(p.parent.parent.name), reverse=True)
    except OSError:
        return
    yield from (str(p) for p in found if p.is_file())


def _patch(name: str) -> tuple[int, ...]:
    parts = name.split(".")
    return tuple(int(p) if p.isdigit() else -1 for p in parts)


@dataclass(frozen=True)
class BuiltWheel:
    filename: str
    sha256: str
    size: int
    path: Path
    record: BuiltFrom

    @property
    def tags(self) -> frozenset[Tag]:
        return parse_wheel_filename(self.filename)[3]

    @property
    def pure(self) -> bool:
        return all(t.platform == "any" and t.abi == "none" for t in self.tags)

    def fits(self, target: Target) -> bool:
        """Whether the target takes the wheel. A built wheel with compiled code never
        keeps a plain `linux_<arch>` tag (auditwheel gives it its manylinux tag, the
        glibc it needs); one that keeps it has no compiled code (pep517build), so it
        fits every Linux of that architecture with its interpreter and ABI."""
        rank = target.tag_rank
        for tag in self.tags:
            if not tag.platform.startswith("linux_"):
                if tag in rank:
                    return True
                continue
            arch = tag.platform[len("linux_"):]
            if any(t.interpreter == tag.interpreter and t.abi == tag.abi
                   and _linux_of(t.platform, arch) for t in target.tags):
                return True
        return False


def _linux_of(platform: str, arch: str) -> bool:
    """A platform tag of a Linux machine with this architecture."""
    return platform == f"linux_{arch}" or (
        platform.startswith(("manylinux", "musllinux")) and platform.endswith(f"_{arch}"))


@dataclass(frozen=True)
class Outcome:
    """What the builds gave: the plans with built wheels in place of the sdists."""

    plans: list[Plan]
    built: dict[str, BuiltFrom]  # wheel sha256 -> how it was made
    paths: dict[str, Path]  # wheel sha256 -> the wheel in the cache
    sizes: dict[str, int]


@dataclass(frozen=True)
class Context:
    """What a build needs besides the sdist: where to keep things and how to reach the
    package's source for its build dependencies."""

    cache: Cache
    builders: Builders
    offline: bool = False
    cert: str | None = None
    client_cert: str | None = None
    jobs: int = 4


def needed(plans: list[Plan]) -> dict[LockedPackage, list[Target]]:
    """Each package whose pick is its sdist, with the targets that need it built."""
    out: dict[LockedPackage, list[Target]] = {}
    for plan in plans:
        for pick in plan.picks:
            if not pick.file.is_wheel:
                out.setdefault(pick.package, []).append(plan.target)
    return out


def build_all(lock: Lock, plans: list[Plan], paths: Mapping[str, Path], ctx: Context,
              ) -> Outcome:
    """Build every sdist the plans pick and put the wheels in their place, or refuse
    (select's table) every target a built wheel cannot serve honestly."""
    wanted = needed(plans)
    if not wanted:
        return Outcome(plans, {}, {}, {})

    def one(item: tuple[LockedPackage, list[Target]]
            ) -> tuple[dict[str, BuiltWheel], list[str]]:
        package, targets = item
        sdist = sdist_of(package)
        assert sdist is not None and sdist.sha256 in paths  # select picked it; fetch got it
        return serve(package, sdist, targets, ctx.builders,
                     lambda b: _cached_build(package, sdist, paths[sdist.sha256], b, ctx))

    items = sorted(wanted.items(), key=lambda kv: kv[0].name)
    results = run_all(one, items, max(1, min(ctx.jobs, os.cpu_count() or 1)))
    gaps = [line for _, lines in results for line in lines]
    if gaps:
        raise refusal(lock, gaps, hint=False)
    served = {(pkg.name, t): w for (pkg, _), (by, _) in zip(items, results, strict=True)
              for t, w in by.items()}
    new_plans = []
    for plan in plans:
        picks = []
        for pick in plan.picks:
            wheel = served.get((pick.package.name, plan.target.name))
            if wheel is not None and not pick.file.is_wheel:
                pick = Pick(pick.package, LockedFile(
                    wheel.sha256, filename=wheel.filename, url=pick.file.url, size=wheel.size,
                    yanked=pick.file.yanked))
            picks.append(pick)
        new_plans.append(Plan(plan.target, tuple(picks)))
    wheels = {w.sha256: w for w in served.values()}
    return Outcome(new_plans, {s: w.record for s, w in wheels.items()},
                   {s: w.path for s, w in wheels.items()},
                   {s: w.size for s, w in wheels.items()})


def serve(package: LockedPackage, sdist: LockedFile, targets: list[Target],
          builders: Builders, make: Callable[[Builder], BuiltWheel]
          ) -> tuple[dict[str, BuiltWheel], list[str]]:
    """Which built wheel serves each target, and a refusal line for each it cannot.

    The first build learns whether the wheel is pure (then it serves every target it
    fits); a platform wheel needs one build per Python version, each with a matching
    interpreter of this box, and serves only targets whose tags take it.
    """
    served: dict[str, BuiltWheel] = {}
    built: list[BuiltWheel] = []
    tried: set[str] = set()
    remaining = list(targets)
    while remaining:
        choice = next((b for t in remaining if (b := builders.matching(t)) is not None
                       and b.python not in tried), None)
        if choice is None and not built:
            choice = builders.default()
        if choice is None:
            break
        tried.add(choice.python)
        wheel = make(choice)
        built.append(wheel)
        served.update({t.name: wheel for t in remaining if wheel.fits(t)})
        remaining = [t for t in remaining if t.name not in served]
        if wheel.pure:
            break
    return served, [_why_not(package, sdist, t, built, builders) for t in remaining]


def _why_not(package: LockedPackage, sdist: LockedFile, target: Target,
             built: list[BuiltWheel], builders: Builders) -> str:
    head = (f"  {package.name}=={package.version} on {target.name}: no wheel for this "
            f"target, only the sdist {sdist.filename}")
    tags = ", ".join(sorted({str(t) for w in built for t in w.tags}))
    if any(w.pure for w in built):
        return f"{head}; the wheel built from it ({tags}) does not fit this target"
    host = builders.default().target
    host_platforms = {t.platform for t in host.tags}
    same_platform = any(t.platform in host_platforms and t.platform != "any"
                        for t in target.tags)
    version = target.environment["python_version"]
    impl = target.environment["implementation_name"]
    if same_platform and builders.matching(target) is None:
        need = (f"this build box has no {impl} {version} to build it with "
                "(--build-python PATH)")
    elif same_platform:
        need = "this build box cannot build one it fits"
    else:
        need = (f"it needs a build box on the target's platform with {impl} {version}, "
                "or a wheel published for it")
    return f"{head}, whose build here gives a platform wheel ({tags}): {need}"


# ---- one build ----------------------------------------------------------------------

def cache_key(sdist: LockedFile, builder: Builder) -> str:
    return hashlib.sha256(json.dumps(
        [RECIPE, sdist.sha256, builder.label, builder.platform, sorted(
            str(t) for t in builder.target.tags[:3]), source_date_epoch()]
    ).encode()).hexdigest()


def _record_path(cache: Cache, key: str) -> Path:
    return cache.root / "built" / key[:2] / f"{key}.json"


def _cached_build(package: LockedPackage, sdist: LockedFile, sdist_path: Path,
                  builder: Builder, ctx: Context) -> BuiltWheel:
    """The wheel this builder makes of the sdist, from the cache when it made it before."""
    key = cache_key(sdist, builder)
    record = _record_path(ctx.cache, key)
    found = _load(record, ctx.cache)
    if found is not None:
        return found
    if ctx.offline:
        raise NetworkError(f"--offline: {sdist.filename} must be built with {builder.label}, "
                           "and its build dependencies come from the index; build once online")
    work = ctx.cache.root / "build" / key[:16]
    with _exclusive(work):
        found = _load(record, ctx.cache)  # another run built it while this one waited
        if found is not None:
            return found
        note(f"building {package.name}=={package.version} from {sdist.filename} with "
             f"{builder.label}")
        wheel, built_from = pep517build.build(
            package, sdist, sdist_path, builder, work / "tree",
            pep517build.Access(package.source, ctx.cert, ctx.client_cert))
        digest, size = sha256_file(wheel)
        with ctx.cache.writer(digest, wheel.name) as out, open(wheel, "rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)  # type: ignore[misc]
        shutil.rmtree(work / "tree", ignore_errors=True)
    doc = {"filename": wheel.name, "sha256": digest, "size": size,
           "built_from": built_json(built_from)}
    write_atomic(record, json.dumps(doc, sort_keys=True).encode(), durable=False,
                 shown=ctx.cache.root, private=True)
    return BuiltWheel(wheel.name, digest, size, ctx.cache.path(digest), built_from)


def _load(record: Path, cache: Cache) -> BuiltWheel | None:
    try:
        doc = json.loads(record.read_text())
        built_from = parse_built(doc["built_from"])
        path = cache.get(doc["sha256"])
        # Hashed whole, not only sized: the cache is not fsynced, and a damaged entry is
        # simply built again (built wheels are small beside the build they save).
        if path is None or sha256_file(path) != (doc["sha256"], doc["size"]):
            return None
        return BuiltWheel(str(doc["filename"]), str(doc["sha256"]), int(doc["size"]), path,
                          built_from)
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _exclusive(work: Path) -> Iterator[None]:
    """One build at a time in a work folder (its path is fixed, so that paths a
    compiler writes into a binary are the same on every rebuild)."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / ".lock", "w") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no second run is expected on one cache
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
