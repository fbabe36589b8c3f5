"""The stages strung together: lock -> plans -> located files -> cache -> bundle.

Each function here only sequences the pure stages and the I/O edges; it neither prints
nor decides policy, so the CLI and the tests drive the same path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from . import bundle, locks, manifest, ownbuild, sdistbuild, select, uvtool
from . import targets as targets_mod
from .cache import Cache, default_root
from .errors import DamagedFile, NetworkError, SelectionError, UsageError
from .export import render
from .fetch import Fetched as FetchedFile
from .fetch import FetchSummary, Progress, damaged_offline, fetch_all, fetch_one, remember
from .files import atomic_output, copy_file, link_atomic, sha256_file, write_atomic
from .index import Index, ProjectNotFound
from .model import BuiltFrom, Lock, LockedFile, LockedPackage, Pick, Plan, Source, Target
from .net import LazyClient
from .options import Build, Inputs, Network, Selection
from .parallel import in_background, run_all
from .signing import Signature, preflight, sig_path, sign_bundle
from .sources import default_source, redact

if TYPE_CHECKING:
    from .audit import Report


@dataclass(frozen=True)
class Prepared:
    lock: Lock
    plans: list[Plan]
    groups: frozenset[str]
    extras: frozenset[str]
    # What the pages asked said, per package: (source URL, {sha256: name or None}), for
    # the caller to remember (Cache.remember_pages) when it suits it.
    pages: tuple[tuple[str, dict[str, str | None]], ...] = ()


def _refuse_nothing(prepared: Prepared) -> None:
    """A UsageError naming why, when the selection holds no package for any target."""
    why = select.nothing_selected(prepared.lock, prepared.plans, prepared.groups,
                                  prepared.extras)
    if why is not None:
        raise UsageError(why)


@dataclass(frozen=True)
class Built:
    output: Path
    sha256: str
    plans: list[Plan]
    files: int
    size: int
    fetch: FetchSummary
    network_seconds: float  # lock to last byte fetched: index pages and files
    own: int = 0
    audit: Report | None = None
    built: int = 0  # wheels built here from sdists
    warnings: tuple[str, ...] = ()  # said once the bundle is written (a failure says only why)


def _locate(index: Index, packages: Iterable[LockedPackage], jobs: int, only_names: bool,
            then: Callable[[LockedPackage], None] | None = None
            ) -> dict[str, LockedPackage]:
    """Each package with its files named from its page; `then` runs in the worker as soon
    as a package's page has named them (prefetching its files while others load)."""
    def one(package: LockedPackage) -> LockedPackage:
        assert package.source is not None  # every reader sets one
        located = index.locate(package, package.source, only_names)
        if then is not None:
            then(located)
        return located

    return {p.name: p for p in run_all(one, list(packages), jobs)}


def _names_from_cache(package: LockedPackage, cache: Cache | None
                      ) -> tuple[LockedPackage, bool]:
    """File names the package's page gave before (selection needs only names), and
    whether that page was asked before: then the files still without a name are ones it
    does not list (an internal index holding only some of a lock's files)."""
    if all(f.filename for f in package.files):
        return package, True
    if cache is None or package.source is None:
        return package, False
    known = cache.page_names(package.source.url, [f.sha256 for f in package.files])
    if known is None:
        return package, False
    return replace(package, files=tuple(
        f if f.filename else replace(f, filename=known[f.sha256]) for f in package.files)), True


def _unnamed(package: LockedPackage) -> bool:
    return any(f.filename is None for f in package.files)


@dataclass
class _Taught:
    """What this run's pages said, for the caller to remember (Cache.remember_pages)."""

    pages: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)  # package names whose page was read


def _ask(index: Index, jobs: int, lock: Lock, packages: list[LockedPackage],
         taught: _Taught, then: Callable[[LockedPackage], None] | None = None) -> Lock:
    """The lock with the names `packages`' pages give their files, learning in `taught`."""
    taught.asked.update(p.name for p in packages)
    named = _locate(index, packages, jobs, only_names=True, then=then)
    taught.pages.extend((p.source.url, {f.sha256: f.filename for f in p.files})
                        for p in named.values() if p.source is not None)
    return replace(lock, packages=tuple(named.get(p.name, p) for p in lock.packages))


def _wanted_by(lock: Lock, chosen: list[Target], groups: frozenset[str],
               extras: frozenset[str]) -> dict[tuple[str, object], list[Target]]:
    """(name, version) -> the targets that install it (markers and graph only)."""
    out: dict[tuple[str, object], list[Target]] = {}
    for target in chosen:
        for package in select.needed(lock, target, groups, extras):
            out.setdefault((package.name, package.version), []).append(target)
    return out


class _Early:
    """Files fetched into the cache as soon as their package's page has named them, while
    other pages are still on the wire: a request is not an output. Only verified bytes
    enter the cache; what the plan finally picks comes out of it in the main fetch, and
    a run that ends in a refusal has written nothing but cache entries. A failure here is
    dropped: the main fetch tries again and reports it in its place."""

    def __init__(self, client: LazyClient, cache: Cache, build: select.BuildPolicy,
                 progress: Progress | None) -> None:
        self._client, self._cache, self._build = client, cache, build
        self._progress = _BytesOnly(progress)
        self._lock = threading.Lock()
        self.fetched: dict[str, FetchedFile] = {}  # downloaded here, hashed on the wire

    def __call__(self, package: LockedPackage, targets: list[Target]) -> None:
        picks: dict[str, LockedFile] = {}
        for target in targets:
            chosen = select.pick(package, target, self._build)
            if chosen is not None and chosen.url:
                picks[chosen.sha256] = chosen
        for file in picks.values():
            try:
                got = fetch_one(self._client, self._cache, file, package.source,
                                self._progress)
            except Exception:  # the main fetch meets it again and says it
                continue
            if not got.from_cache:
                with self._lock:
                    self.fetched[file.sha256] = got


class _BytesOnly:
    """A progress that shows an early fetch's bytes; its files are counted once, when the
    main fetch takes them from the cache."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def advance(self, nbytes: int) -> None:
        if self._progress is not None:
            self._progress.advance(nbytes)

    def finished(self) -> None:
        pass


def _plan_rechecking(lock: Lock, chosen: list[Target], groups: frozenset[str],
                     extras: frozenset[str], build: select.BuildPolicy, index: Index,
                     net: Network, taught: _Taught) -> tuple[Lock, list[Plan]]:
    """select.plan; before a refusal, the pages whose unlisted files were only remembered
    are read again: a file the page lacked then may be there now."""
    try:
        return lock, select.plan(lock, chosen, groups, extras, build)
    except SelectionError:
        recalled = [p for p in lock.packages if _unnamed(p) and p.name not in taught.asked]
        if net.offline or not recalled:
            raise
    lock = _ask(index, net.jobs, lock, recalled, taught)
    return lock, select.plan(lock, chosen, groups, extras, build)


def _origins_from_cache(plans: list[Plan], cache: Cache) -> list[Plan]:
    """Picked files already in the cache need no index: their origin is remembered."""
    def fill(pick: Pick) -> Pick:
        if pick.file.url is not None or (known := cache.known(pick.file.sha256)) is None:
            return pick
        return Pick(pick.package, replace(pick.file, url=known[1]))

    return [Plan(plan.target, tuple(fill(p) for p in plan.picks)) for plan in plans]


def _hashes_from_index(lock: Lock, index: Index, net: Network) -> Lock:
    """Packages the lock pins without any hash get every wheel of their pinned version
    that their source lists with a sha256, each marked `hash_from_index` in the manifest.

    This is the one place the tool trusts an index for what to install: the user asked
    for it with --allow-unhashed, and the manifest says which files it concerns.
    """
    bare = [p for p in lock.packages if not p.files]
    if not bare:
        return lock
    if net.offline:
        raise NetworkError(f"--offline: no hash in the lock for "
                           f"{', '.join(p.name for p in bare[:5])}, and with "
                           "--allow-unhashed only the index can supply one")

    def fill(package: LockedPackage) -> LockedPackage:
        assert package.source is not None
        files = []
        for f in index.files(package.source, package.name):
            if not (f.filename.endswith(".whl") and f.sha256):
                continue
            try:
                version = parse_wheel_filename(f.filename)[1]
            except InvalidWheelFilename:
                continue
            if version == package.version:
                files.append(LockedFile(f.sha256, filename=f.filename, url=f.url,
                                        yanked=f.yanked, hash_from_index=True))
        return replace(package, files=tuple(files))

    filled = {p.name: p for p in run_all(fill, bare, net.jobs)}
    return replace(lock, packages=tuple(filled.get(p.name, p) for p in lock.packages))


def client_for(net: Network) -> LazyClient:
    return LazyClient(jobs=net.jobs, cert=net.cert, client_cert=net.client_cert,
                      timeout=net.timeout)


def cache_for(net: Network) -> Cache:
    return Cache(net.cache_dir or default_root())


def prepare(sel: Selection, net: Network, index: Index, cache: Cache | None = None,
            early: Callable[[LockedPackage, list[Target]], None] | None = None) -> Prepared:
    """Read the lock and choose each target's wheels (asking the index only for names
    that a hash-only lock leaves out and the cache does not know).

    The names the index gave are returned, for the caller to remember in the cache
    when it suits it (a download does it beside its transfers). `early` is told each
    package as soon as its page has named its files, with the targets that need it, so
    a fetch can start while other pages are still on the wire. The groups come
    validated (options.py), as the CLI makes them."""
    # Targets first: a bad spec or target file fails before any index is asked.
    chosen = targets_mod.resolve(sel.targets, sel.target_files, project=sel.lock)
    lock = locks.load(sel.lock, fmt=sel.fmt, default=default_source(net.index_url),
                      allow_unhashed=sel.allow_unhashed)
    if sel.allow_unhashed:
        lock = _hashes_from_index(lock, index, net)
    recalled = [_names_from_cache(p, cache) for p in lock.packages]
    lock = replace(lock, packages=tuple(p for p, _ in recalled))
    unnamed = [p for p, asked_before in recalled if not asked_before]
    if unnamed and net.offline:
        raise NetworkError(f"--offline: the cache does not know the files of "
                           f"{', '.join(p.name for p in unnamed[:5])}; build once online")
    taught = _Taught()
    # Groups and extras first (they need no file names): a mistyped one fails before
    # any page is asked, and the early fetch knows which targets need what.
    groups = select.choose_groups(lock, with_=sel.with_groups, without=sel.without_groups,
                                  only=sel.only_groups)
    extras = select.choose_extras(lock, sel.extras, sel.all_extras)
    if unnamed:
        then = None
        if early is not None:
            wanted = _wanted_by(lock, chosen, groups, extras)
            then = lambda p: early(p, wanted.get((p.name, p.version), []))  # noqa: E731
        lock = _ask(index, net.jobs, lock, unnamed, taught, then)
    lock, plans = _plan_rechecking(lock, chosen, groups, extras, sel.build_policy(), index,
                                   net, taught)
    return Prepared(lock, plans, groups, extras, tuple(taught.pages))


@dataclass(frozen=True)
class Fetched:
    """The build box's work up to the bytes: plans with located files, all in the cache."""

    prepared: Prepared
    plans: list[Plan]
    paths: dict[str, Path]
    sizes: dict[str, int]
    summary: FetchSummary
    network_seconds: float
    built: dict[str, BuiltFrom] = field(default_factory=dict)  # wheels made from sdists


def _check_cached(got: FetchedFile) -> None:
    """A cache entry's bytes against their sha256 before they go anywhere (the cache is
    not fsynced); DamagedFile, which fetch_all answers by fetching the file again."""
    digest = sha256_file(got.path)[0]
    if digest != got.file.sha256:
        raise DamagedFile.wrong_hash(got.file.filename or got.file.sha256, digest,
                                     got.file.sha256, "in the cache")


def fetch(sel: Selection, net: Network, progress: Progress | None = None,
          then: Callable[[FetchedFile], None] | None = None) -> Fetched:
    """Lock to plans, and every picked file in the cache with its hash checked.

    `then` is called with each file as soon as it is in the cache (from a worker thread).
    """
    started = time.monotonic()
    cache = cache_for(net)
    with client_for(net) as client:
        index = Index(client)
        early = _Early(client, cache, sel.build_policy(), progress)
        try:
            prepared = prepare(sel, net, index, cache, early)
        except BaseException:
            cache.discard_partials()  # an interrupt while early transfers were under way
            raise
        finally:
            remember(cache, list(early.fetched.values()))
        if net.offline:
            missing = sorted({p.file.filename or p.file.sha256 for plan in prepared.plans
                              for p in plan.picks if cache.get(p.file.sha256) is None})
            if missing:
                raise NetworkError(f"--offline: {len(missing)} file(s) not in the cache: "
                                   f"{', '.join(missing[:5])}"
                                   + (" ..." if len(missing) > 5 else ""))
        prepared = replace(prepared, plans=_origins_from_cache(prepared.plans, cache))
        packages = {pick.file.sha256: pick.package
                    for plan in prepared.plans for pick in plan.picks}

        def locate(file: LockedFile) -> LockedFile:
            if net.offline:  # a cached file whose note (name, origin) was lost
                raise NetworkError(f"--offline: the cache does not know where "
                                   f"{file.filename or file.sha256} came from; build once "
                                   "online")
            package = packages[file.sha256]
            assert package.source is not None
            located = index.locate(package, package.source)
            return next(f for f in located.files if f.sha256 == file.sha256)

        def checked(got: FetchedFile) -> None:
            """An sdist from the cache is hashed before it is built (its bytes reach the
            bundle through the build); a damaged one is fetched again by fetch_all."""
            if got.from_cache and not got.file.is_wheel:
                _check_cached(got)
            if then is not None:
                # Fetched early in this run, its bytes were hashed on the wire.
                then(replace(got, from_cache=False) if got.file.sha256 in early.fetched
                     else got)

        items: list[tuple[LockedFile, Source | None]] = [
            (pick.file, pick.package.source) for plan in prepared.plans for pick in plan.picks]
        names_written = in_background(lambda: cache.remember_pages(prepared.pages))
        try:
            fetched, summary = fetch_all(client, cache, items, net.jobs, progress, locate,
                                         checked, offline=net.offline)
        finally:
            names_written()
    # The early fetch's downloads were downloads of this run, not cache hits.
    moved = sum(1 for sha, got in fetched.items() if got.from_cache and sha in early.fetched)
    summary = replace(summary, downloaded=summary.downloaded + moved,
                      from_cache=summary.from_cache - moved)
    plans = [Plan(plan.target, tuple(Pick(p.package, fetched[p.file.sha256].file)
                                     for p in plan.picks)) for plan in prepared.plans]
    paths = {sha: f.path for sha, f in fetched.items()}
    sizes = {sha: f.size for sha, f in fetched.items()}
    seconds = time.monotonic() - started
    built = sdistbuild.build_all(prepared.lock, plans, paths, sdistbuild.Context(
        cache, sdistbuild.Builders(sel.build_pythons), offline=net.offline, cert=net.cert,
        client_cert=net.client_cert, jobs=net.jobs))
    return Fetched(prepared, built.plans, {**paths, **built.paths}, {**sizes, **built.sizes},
                   summary, seconds, built.built)


def build(sel: Selection, net: Network, what: Build, output: Path,
          progress: Progress | None = None) -> Built:
    """The whole build-box side: lock to a verified-by-construction bundle at `output`.

    Every file's bytes are hashed as they are packed. A cache entry found damaged there
    (a crash since it was written: the cache is not fsynced) has left nothing at
    `output`; it is evicted and the build runs once more, which fetches it again.
    """
    try:
        return _build(sel, net, what, output, progress)
    except DamagedFile as exc:
        cache_for(net).evict(exc.sha256)
        if net.offline:
            raise damaged_offline(exc) from None
    return _build(sel, net, what, output, progress)


def _build(sel: Selection, net: Network, what: Build, output: Path,
           progress: Progress | None = None) -> Built:
    if what.audit:  # imported only when asked: the advisory matcher is not small
        from . import audit as audit_mod

        assert what.osv_db is not None  # Build.validate
        db = audit_mod.load(what.osv_db)
    else:
        db = None
    got = fetch(sel, net, progress)
    man = manifest.build(got.prepared.lock, got.plans, got.sizes, got.prepared.groups,
                         got.prepared.extras, got.built)
    with tempfile.TemporaryDirectory(prefix="wheelhouse-own-") as tmp:
        own = ownbuild.collect(sel.lock, Path(tmp), dist=what.dist, enabled=what.own,
                               isolation=what.build_isolation)
        man = ownbuild.attach(man, own, got.plans)
        # The project's own wheel alone is a bundle worth making; nothing at all is not.
        if not man.files:
            _refuse_nothing(got.prepared)
        report = None
        if db is not None:
            report = audit_mod.audit(db, audit_mod.pins_of_manifest(man), what.ignore_vulns)
            audit_mod.refuse_if_open(report)
            man = replace(man, accepted_vulns=audit_mod.accepted_vulns(report))
        project = ownbuild.project_info(ownbuild.read_pyproject(ownbuild.project_dir(sel.lock)))
        tools, no_uv = fetch_uv(net, what, got.plans)
        man = replace(man, tools=uvtool.recorded(tools))
        paths = {**got.paths, **{w.sha256: w.path for w in own},
                 **{t.sha256: t.path for t in tools if t.path is not None}}
        members = bundle_members(man, got.plans, paths, project,
                                 memo=(net.cache_dir or default_root()) / "sbom")
        digest = bundle.write(output, members)
    return Built(output, digest, got.plans, len(man.files), sum(f.size for f in man.files),
                 got.summary, got.network_seconds, len(own), report, len(got.built),
                 (no_uv,) if no_uv else ())


def inputs_of(sel: Selection, net: Network, what: Build | None = None) -> Inputs:
    """Every file a run reads, by role: no output of the run may be one of them."""
    return (sel.inputs() + (what.inputs() if what is not None else []) + net.inputs()
            + [("target file", f) for f in sel.target_files])


def build_signed(sel: Selection, net: Network, what: Build, output: Path,
                 progress: Progress | None = None) -> tuple[Built, Signature | None]:
    """`build`, then `<output>.sig` when `what.sign_key` is set.

    The key is tried first on a few bytes, so a bad or passphrase-protected key fails
    before any download; should signing still fail, the new bundle and its sidecar are
    removed. Without a key, an older tarball's .sig is removed: it cannot match this one.
    """
    bundle.refuse_overwriting((output, bundle.sidecar_path(output), sig_path(output)),
                              inputs_of(sel, net, what))
    if what.sign_key is not None:
        preflight(what.sign_key)
    built = build(sel, net, what, output, progress)
    if what.sign_key is None:
        sig_path(output).unlink(missing_ok=True)
        return built, None
    return built, sign_bundle(output, what.sign_key)


def default_output(lock: Path, folder: Path) -> Path:
    """`<folder>/<project>-<version>-<lock sha256 prefix>.tar`, for `bundle` without -o."""
    return folder / ownbuild.release_name(lock, ownbuild.lock_sha256(lock))


def download(sel: Selection, net: Network, dest: Path, progress: Progress | None = None
             ) -> Fetched:
    """The picked wheels placed in `dest` (no bundle), each whole or not at all: linked
    to the cache entry on its filesystem, copied elsewhere.

    Each wheel is placed as soon as it is in the cache, while others are still on
    the wire. `dest` (and any missing parent) is made only when the first wheel is ready
    to go in, so a lock that cannot be read or a selection that picks nothing leaves no
    folder behind. Should the run fail, the wheels it had placed and the folders it made
    are removed again: `dest` holds what it held before, and never a part of a lock's
    wheels presented as done.
    """
    bundle.refuse_overwriting([dest], inputs_of(sel, net))
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest}: not a folder (--dest is the folder for the wheels)")
    made: list[Path] = []  # folders this run created, deepest last
    placed: list[Path] = []
    making = threading.Lock()

    def place(got: FetchedFile) -> None:
        assert got.file.filename is not None  # located before the download
        if not got.file.is_wheel:  # an sdist: its built wheel is placed once it is made
            return
        with making:
            if not dest.is_dir():
                made.extend(p for p in reversed([dest, *dest.parents]) if not p.exists())
                dest.mkdir(parents=True, exist_ok=True)
        target = dest / got.file.filename
        existed = target.is_file()
        if existed and target.stat().st_size == got.size:
            return
        # A file from the cache is hashed before it goes out (just downloaded, it was
        # hashed on the wire); a damaged one leaves nothing here, and fetch_all fetches
        # it again. Then it is linked (same filesystem) or copied, not fsynced file by
        # file: the verified original stays in the cache, and a copy cut short by a
        # crash has the wrong size, so the next run rewrites it.
        if got.from_cache:
            _check_cached(got)
        if not link_atomic(got.path, target):
            with atomic_output(target, durable=False) as out, open(got.path, "rb") as src:
                copy_file(src, out)
        if not existed:  # a file that was there stays, now with the verified bytes
            placed.append(target)

    try:
        got = fetch(sel, net, progress, then=place)
        _refuse_nothing(got.prepared)
        for sha in got.built:
            wheel = next(p.file for plan in got.plans for p in plan.picks
                         if p.file.sha256 == sha)
            place(FetchedFile(wheel, got.paths[sha], got.sizes[sha], True))
        return got
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):  # only if empty: it may hold other files now
                folder.rmdir()
        raise


def fetch_uv(net: Network, what: Build, plans: list[Plan]
             ) -> tuple[list[uvtool.ToolWheel], str | None]:
    """uv's wheel for each target (`what.uv_version`, else the pinned one) from the default
    index, hash-checked while streaming into the cache like every other file.

    Carried by default: where uv has no wheel for some target (or `--offline` finds none
    remembered), the bundle carries none and returns the warning to give, unless uv was
    asked for by name (--with-uv, --uv-version), which makes it an error. `--no-uv`: none."""
    if what.with_uv is False:
        return [], None
    version = what.uv_version or uvtool.UV_VERSION
    source = default_source(net.index_url)
    memo = uvtool.Memo((net.cache_dir or default_root()) / "tools", source.url, version,
                       [p.target for p in plans])
    cache = cache_for(net)
    try:
        known = memo.read()
        if known is None or (isinstance(known, str) and what.uv_insisted):
            if net.offline:
                raise uvtool.NoUv(f"--offline, and this cache has never seen uv {version}'s "
                                  "wheels for these targets")
            try:
                known = _uv_from_index(net, source, version, plans)
            except NetworkError as exc:  # not an answer: say so, remember nothing
                raise uvtool.NoUv(f"the index did not answer for uv ({exc})") from exc
            memo.write(known)
        if isinstance(known, str):
            raise uvtool.NoUv(known)
        if net.offline and any(cache.get(t.sha256) is None for t in known):
            raise uvtool.NoUv(f"--offline, and uv {version}'s wheels are not in the cache")
        with client_for(net) as client:
            fetched, _ = fetch_all(client, cache, [
                (LockedFile(t.sha256, filename=t.filename, url=t.url), source)
                for t in known], net.jobs)
    except uvtool.NoUv as exc:
        if what.uv_insisted:
            raise UsageError(f"{'--with-uv' if what.with_uv else '--uv-version'}: {exc}"
                             ) from None
        return [], (f"the bundle carries no uv, so install will use pip: {exc} "
                    "(--no-uv says so quietly)")
    return [replace(t, size=fetched[t.sha256].size, path=fetched[t.sha256].path)
            for t in known], None


def _uv_from_index(net: Network, source: Source, version: str, plans: list[Plan]
                   ) -> list[uvtool.ToolWheel] | str:
    """uv's wheels for the plans' targets as the index lists them, or why there are none."""
    with client_for(net) as client:
        try:
            listed = [(f.filename, f.url, f.sha256) for f in Index(client).files(source, "uv")]
        except ProjectNotFound:
            return f"uv is not on the index {redact(source.url)}"
    try:
        return uvtool.pick(listed, version, [p.target for p in plans])
    except uvtool.NoUv as exc:
        return str(exc)


def bundle_members(man: manifest.Manifest, plans: list[Plan], paths: dict[str, Path],
                   project: tuple[str, str] | None = None, memo: Path | None = None
                   ) -> list[bundle.Member]:
    """The members `manifest.layout` declares, in its order, each with its bytes: the
    files made here from the plans and the manifest, the wheels and tool wheels from
    `paths` (sha256 -> file on disk)."""
    meta = manifest.to_json(man)
    plan_of = {p.target.name: p for p in plans}

    def own(part: manifest.Part) -> bytes:
        data = manifest.own_for(part.target, man)
        assert data is not None  # the layout has own.txt only for targets with own wheels
        return data

    make: dict[str, Callable[[manifest.Part], bytes]] = {
        "requirements": lambda part: manifest.requirements_for(plan_of[part.target], man),
        "pylock": lambda part: manifest.pylock_for(plan_of[part.target]),
        "own": own,
        "bootstrap": lambda _: bootstrap_source(),
        "sbom": lambda _: sbom_for(man, paths, project, memo),
    }
    parts = manifest.layout(man)
    made = {part.path: make[part.kind](part) for part in parts if part.kind in make}
    hashes = {manifest.MANIFEST: hashlib.sha256(meta).hexdigest()}
    hashes.update({path: hashlib.sha256(data).hexdigest() for path, data in made.items()})
    hashes.update({part.path: part.sha256 for part in parts if part.sha256 is not None})
    members = []
    for part in parts:
        if part.kind == "manifest":
            members.append(bundle.Member(part.path, data=meta))
        elif part.kind == "sums":
            members.append(bundle.Member(part.path, data=manifest.render_sums(hashes)))
        elif part.path in made:
            members.append(bundle.Member(part.path, data=made[part.path]))
        else:
            assert part.sha256 is not None
            members.append(bundle.Member(part.path, source=paths[part.sha256],
                                         sha256=part.sha256))
    return members


def sbom_for(man: manifest.Manifest, paths: dict[str, Path], project: tuple[str, str] | None,
             memo: Path | None) -> bytes:
    """The SBOM, from a memo when this exact manifest was described before.

    The SBOM is a pure function of the manifest, the project, SOURCE_DATE_EPOCH and the
    code that writes it; reading every wheel's METADATA and serialising through
    cyclonedx costs more than the rest of a warm rebuild, so a rebuild of an unchanged
    lock takes the bytes it wrote last time. The memo lives in the cache, which is
    trusted the same way the wheels in it are.
    """
    code = resources.files(__package__).joinpath("sbom.py").read_bytes()
    key = hashlib.sha256(json.dumps([
        hashlib.sha256(code).hexdigest(), manifest.to_json(man).decode(), project,
        os.environ.get("SOURCE_DATE_EPOCH", "").strip()]).encode()).hexdigest()
    path = memo / f"{key}.cdx.json" if memo is not None else None
    if path is not None and path.is_file():
        return path.read_bytes()
    from . import sbom  # cyclonedx is imported only when an SBOM is really written

    data = sbom.build(man, paths, project)
    if path is not None:
        # Only a memo: not fsynced, and the bundle being written is what must not fail.
        with contextlib.suppress(OSError):
            write_atomic(path, data, durable=False, private=True)
    return data


def bootstrap_source() -> bytes:
    """The text of bootstrap.py, shipped as `install.py` so a bastion needs only python3."""
    return resources.files("wheelhouse_bundler.standalone").joinpath("bootstrap.py").read_bytes()


def export(sel: Selection, net: Network) -> dict[str, str]:
    """Requirements text per target name, every usable wheel's hash on each line."""
    cache = cache_for(net)
    with client_for(net) as client:
        prepared = prepare(sel, net, Index(client), cache)
    cache.remember_pages(prepared.pages)
    _refuse_nothing(prepared)
    out = {}
    for plan in prepared.plans:
        # An sdist-only package exports its sdist's hash: pip on a connected machine builds
        # it there (a bundle carries the wheel built here instead).
        entries = [(p.package, select.ranked_wheels(p.package, plan.target) or [p.file])
                   for p in plan.picks]
        header = (f"Exported by wheelhouse-bundler from {prepared.lock.path.name} for "
                  f"{plan.target.name}")
        out[plan.target.name] = render(entries, header=header)
    return out
