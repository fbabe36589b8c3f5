"""Offline install on the target: verify, build a fresh release, switch a symlink.

Venvs are not relocatable (scripts carry absolute shebangs), so each install creates its
venv in its final place, `<venv>.releases/<id>/`, and `<venv>` itself is a symlink that
is replaced in one rename once everything succeeded. Until that rename nothing the user
runs has changed; a failure removes the new release and leaves the old one in charge.
pip runs isolated from the machine's configuration: the bundle alone decides.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from . import targets
from .errors import InstallError, UsageError
from .manifest import requirements_path, wheel_path
from .model import Manifest, Target
from .verify import verify

Log = Callable[[str], None]
_SAME_INTERPRETER = ("python_version", "sys_platform", "implementation_name")
"""Markers a bundle target must share with the interpreter: its requirements were chosen
by evaluating the lock's markers with them."""


@dataclass(frozen=True)
class Installed:
    venv: Path
    release: Path
    target: str
    packages: int
    previous: Path | None
    seconds: float


def clean_env() -> dict[str, str]:
    """The environment for pip: none of the machine's PIP_* settings or config files."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1")
    return env


def interpreter_target(python: str | None) -> Target:
    """The interpreter as a target: its own pip's tags and its markers, from the probe.

    The probe is stdlib-only, so this works on an interpreter with nothing installed.
    """
    return targets.interpreter(python)[0]


def interpreter_tags(python: str | None) -> list[Tag]:
    """The tags the interpreter's own pip accepts, best first."""
    return list(interpreter_target(python).tags)


def choose_target(manifest: Manifest, tag_list: list[Tag], wanted: str | None,
                  environment: Mapping[str, str] | None = None) -> str:
    """The bundle target whose every wheel this interpreter accepts, best fit first.

    Best fit: the target whose wheels rank best in the interpreter's tags, compared
    worst wheel first (pure wheels shared by all targets tie, the next decides), then by
    name. With `environment` (the interpreter's markers), a target made for another
    Python version or OS is ruled out even when all its wheels are pure.
    """
    names = [t.name for t in manifest.targets]
    if wanted is not None:
        if wanted not in names:
            raise UsageError(f"target {wanted!r} is not in the bundle (it has: "
                             f"{', '.join(names)})")
        return wanted
    rank = {tag: i for i, tag in enumerate(tag_list)}
    best: tuple[tuple[int, ...], str] | None = None
    why: list[str] = []
    for target in manifest.targets:
        mismatch = [k for k in _SAME_INTERPRETER if environment is not None
                    and target.environment.get(k) != environment.get(k)]
        if mismatch:
            why.append(f"{target.name} ({mismatch[0]} {target.environment.get(mismatch[0])})")
            continue
        fits: list[int] = []
        for f in manifest.files_for(target.name):
            ranks = [rank[t] for t in parse_wheel_filename(f.filename)[3] if t in rank]
            if not ranks:
                why.append(f"{target.name} ({f.filename} does not fit)")
                break
            fits.append(min(ranks))
        else:
            key = (tuple(sorted(fits, reverse=True)), target.name)
            if best is None or key < best:
                best = key
    if best is None:
        here = f", python_version {environment.get('python_version')}" if environment else ""
        raise InstallError(f"no target in the bundle fits this interpreter (best tag "
                           f"{tag_list[0]}{here}); the bundle has: {'; '.join(why)}")
    return best[1]


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    except OSError as exc:
        raise InstallError(f"{what}: cannot run {cmd[0]}: {exc.strerror}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise InstallError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _releases_dir(venv: Path) -> Path:
    return venv.with_name(venv.name + ".releases")


def _check_replaceable(venv: Path) -> Path | None:
    """The release `venv` links to now, or None; refuse to replace anything we did not make."""
    if venv.is_symlink():
        current = Path(os.readlink(venv))
        current = current if current.is_absolute() else venv.parent / current
        if current.parent.resolve() != _releases_dir(venv).resolve():
            raise UsageError(f"{venv} is a symlink to {current}, not to a release made by "
                             "wheelhouse-bundler; refusing to replace it")
        return current
    if venv.exists():
        raise UsageError(f"{venv} exists and is not a wheelhouse-bundler release link; "
                         "move it away or choose another --venv")
    return None


def install(bundle: Path, venv: Path, *, python: str | None = None, target: str | None = None,
            log: Log = lambda _m: None) -> Installed:
    started = time.monotonic()
    venv = Path(os.path.abspath(venv))
    previous = _check_replaceable(venv)
    releases = _releases_dir(venv)
    releases.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=releases))
    release: Path | None = None
    try:
        log(f"verifying {bundle.name}")
        checked = verify(bundle, extract_to=staging)
        assert checked.root is not None
        interpreter = python or sys.executable
        me = interpreter_target(python)
        chosen = choose_target(checked.manifest, list(me.tags), target, me.environment)
        log(f"target {chosen}")
        release = _new_release(releases, checked.top)
        log(f"creating venv {release}")
        _run([interpreter, "-m", "venv", str(release)], "creating the venv", clean_env())
        py = str(venv_python(release))
        wheels = checked.root / "wheels"
        log(f"installing {len(checked.manifest.files_for(chosen))} wheels offline")
        _run([py, "-m", "pip", "install", "--isolated", "--no-index", "--no-deps",
              "--require-hashes", "--only-binary=:all:", "--no-input", "--quiet",
              "--find-links", str(wheels), "-r", str(checked.root / requirements_path(chosen))],
             "pip install", clean_env())
        _run([py, "-m", "pip", "check"], "pip check", clean_env())
        _switch(venv, release)
        log(f"{venv} -> {release}")
        return Installed(venv, release, chosen, len(checked.manifest.files_for(chosen)),
                         previous, time.monotonic() - started)
    except BaseException:
        if release is not None:
            shutil.rmtree(release, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _new_release(releases: Path, top: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        candidate = releases / (f"{top}-{stamp}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()  # venv fills an empty folder; mkdir reserves the name
            return candidate
        except FileExistsError:
            continue
    raise InstallError(f"{releases}: cannot find a free release name")


def _switch(venv: Path, release: Path) -> None:
    """Point `venv` at `release` in one atomic rename of a fresh symlink."""
    tmp = venv.with_name(f".{venv.name}.switch-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(release, tmp)
    os.replace(tmp, venv)


def wheel_paths(manifest: Manifest, target: str) -> list[str]:
    return [wheel_path(f.filename) for f in manifest.files_for(target)]
