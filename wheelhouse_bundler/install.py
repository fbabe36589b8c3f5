"""Offline install on the target: verify, build a fresh release, switch a symlink.

Venvs are not relocatable (scripts carry absolute shebangs), so each install creates its
venv in its final place, `<venv>.releases/<id>/`, and `<venv>` itself is a symlink that
is replaced in one rename once everything succeeded. Until that rename nothing the user
runs has changed; a failure removes the new release and leaves the old one in charge.
pip runs isolated from the machine's configuration: the bundle alone decides.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from packaging.tags import Tag

from . import targets, uvtool
from .errors import BundlerError, InstallError, IntegrityError, UsageError
from .model import Manifest, Target
from .options import Trust
from .parallel import in_background
from .standalone import bootstrap
from .verify import Verified, verify_signed

Log = Callable[[str], None]
Timed = Callable[[str, float], None]
"""Told each step's name and seconds as it finishes (the rehearsal's report)."""
STEPS = ("verify", "prepare", "venv", "install", "check", "smoke", "switch", "cleanup")
"""The steps a restore times, in order: verify (and extract, one pass), prepare (choose
the target, find uv), venv, install, check, smoke, switch, and cleanup (the staging)."""
T = TypeVar("T")
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


@dataclass(frozen=True)
class Installed:
    venv: Path
    release: Path
    target: str
    packages: int
    previous: Path | None
    seconds: float
    installer: str = "pip"
    pruned: tuple[Path, ...] = ()
    imported: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()  # (step, seconds) in STEPS order


@dataclass(frozen=True)
class Restore:
    """How to make the release (install's and rehearse's flags): the interpreter, the
    bundle target (None: the best fit), the installer, and the smoke checks."""

    python: str | None = None
    target: str | None = None
    installer: str = "auto"
    smoke_imports: bool = True
    smoke_command: str | None = None


clean_env = bootstrap.clean_env


def interpreter_target(python: str | None) -> Target:
    """The interpreter as a target: its own pip's tags and its markers, from the probe.

    The probe is stdlib-only, so this works on an interpreter with nothing installed.
    """
    return targets.interpreter(python)[0]


def choose_target(manifest: Manifest, tag_list: list[Tag], wanted: str | None,
                  environment: Mapping[str, str] | None = None) -> str:
    """bootstrap.choose_target (the one implementation) with this tool's types: the tags
    come from packaging, through the interpreter's probe."""
    plain = {"targets": [{"name": t.name, "environment": dict(t.environment)}
                         for t in manifest.targets],
             "files": [{"filename": f.filename, "targets": list(f.targets)}
                       for f in manifest.files]}
    triples = [(t.interpreter, t.abi, t.platform) for t in tag_list]
    return _shared(bootstrap.choose_target, plain, triples, dict(environment or {}), wanted)


def _typed(failure: bootstrap.Failure) -> BundlerError:
    """bootstrap.py is stdlib-only (it ships inside bundles); give its failures our types."""
    kind = {2: UsageError, 3: IntegrityError}.get(failure.code, InstallError)
    return kind(str(failure))


def _shared(step: Callable[..., T], *args: Any) -> T:
    """Run one of the release mechanics that bootstrap.py owns (the bundle's own installer
    and this tool must make, switch and roll back releases alike), with our error types."""
    try:
        return step(*args)
    except bootstrap.Failure as exc:
        raise _typed(exc) from None


def venv_python(venv: Path) -> Path:
    return Path(bootstrap.venv_python(str(venv)))


def _releases_dir(venv: Path) -> Path:
    return Path(bootstrap.releases_dir(str(venv)))


def _check_replaceable(venv: Path) -> Path | None:
    """The release `venv` links to now, or None; refuse to replace anything we did not make."""
    current = _shared(bootstrap.current_release, str(venv))
    return Path(current) if current is not None else None


def install(bundle: Path, venv: Path, how: Restore, *,
            trust: Trust | None = None, keep: int | None = None,
            log: Log = lambda _m: None, timed: Timed = lambda _s, _t: None,
            verified: Callable[[Verified], None] = lambda _v: None) -> Installed:
    """Verify and extract, build a fresh release, check it, then switch `venv` to it.

    `timed` hears each step's seconds as the step finishes, and `verified` the bundle's
    check as soon as it passed, so that a caller such as the rehearsal can report how far
    a failed restore got, and how long each step took, without verifying twice.
    """
    started = time.monotonic()
    venv = Path(os.path.abspath(venv))
    previous = _check_replaceable(venv)
    releases = _releases_dir(venv)
    made_releases = not releases.exists()  # a first install that fails leaves no trace
    releases.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=releases))
    release: Path | None = None
    clock = bootstrap.Clock(timed)
    warnings: list[str] = []
    staging_removed: Callable[[], None] | None = None
    try:
        log(f"verifying {bundle.name}")
        checked = verify_signed(bundle, extract_to=staging, trust=trust)
        assert checked.root is not None
        clock.lap("verify")
        verified(checked)
        me = interpreter_target(how.python)
        chosen = choose_target(checked.manifest, list(me.tags), how.target, me.environment)
        log(f"target {chosen}")
        tool = _shared(uvtool.find, checked.root, how.installer, staging / ".uv", me)
        clock.lap("prepare")
        release = _new_release(releases, checked.top)
        count = len(checked.manifest.files_for(chosen))
        py = _shared(bootstrap.fill_release, str(release), how.python or sys.executable,
                     str(checked.root), chosen, count,
                     (str(tool.binary), str(tool.cache)) if tool else None, log, clock)
        # Nothing reads the staging folder again (the extracted bundle, uv and its
        # cache): it is removed while the smoke check runs, not after it.
        staging_removed = in_background(lambda: bootstrap.remove_tree(str(staging)))
        imported = _smoke(py, sorted({f.name for f in checked.manifest.files_for(chosen)}),
                          how.smoke_command, how.smoke_imports, warnings.append,
                          compiled=tool is None)
        clock.lap("smoke")
        _shared(bootstrap.switch, str(venv), str(release))
        clock.lap("switch")
        log(f"{venv} -> {release}")
    except BaseException as exc:
        if release is not None:
            bootstrap.remove_tree(str(release))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            raise InstallError(f"{releases}: {exc.strerror} (disk full?) while "
                               f"{'installing' if release else 'extracting the bundle'}; "
                               f"nothing was changed, {venv} is as it was") from exc
        raise
    finally:
        if staging_removed is not None:
            staging_removed()
        bootstrap.remove_tree(str(staging))
        if made_releases and not venv.is_symlink():
            shutil.rmtree(releases, ignore_errors=True)
    clock.lap("cleanup")
    pruned = prune(venv, keep) if keep is not None else []
    for path in pruned:
        log(f"pruned {path}")
    return Installed(venv, release, chosen, count, previous, time.monotonic() - started,
                     "uv" if tool else "pip", tuple(pruned), tuple(imported), tuple(warnings),
                     tuple(clock.timings.items()))


def _smoke(python: str, distributions: list[str], command: str | None, imports: bool,
           warn: Log, compiled: bool) -> list[str]:
    return _shared(bootstrap.smoke, python, distributions, command, imports, warn, compiled)


def rollback(venv: Path, to: str | None = None) -> tuple[Path, Path]:
    """Switch `venv` back to the previous release (or `to`); returns (from, to)."""
    old, new = _shared(bootstrap.rollback, os.path.abspath(venv), to)
    return Path(old), Path(new)


def prune(venv: Path, keep: int) -> list[Path]:
    """Remove releases beyond the `keep` newest, sparing the current and previous ones."""
    return [Path(p) for p in _shared(bootstrap.prune, os.path.abspath(venv), keep)]


def _new_release(releases: Path, top: str) -> Path:
    """A reserved, empty release folder named to sort after every existing release."""
    venv = releases.with_name(releases.name[: -len(".releases")])
    return Path(_shared(bootstrap.new_release, str(venv), top))
