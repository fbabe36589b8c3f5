"""Offline install on the target: verify, build a fresh release, switch a symlink.

Venvs are not relocatable (scripts carry absolute shebangs), so each install creates its
venv in its final place, `<venv>.releases/<id>/`, and `<venv>` itself is a symlink that
is replaced in one rename once everything succeeded. Until that rename nothing the user
runs has changed; a failure removes the new release and leaves the old one in charge.
pip runs isolated from the machine's configuration: the bundle alone decides.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, parse_tag, sys_tags
from packaging.utils import parse_wheel_filename

from .errors import InstallError, UsageError
from .manifest import requirements_path, wheel_path
from .model import Manifest
from .verify import verify

Log = Callable[[str], None]
_TAGS_PROBE = ("import json\n"
               "try:\n from packaging import tags\n"
               "except ImportError:\n from pip._vendor.packaging import tags\n"
               "print(json.dumps([str(t) for t in tags.sys_tags()]))\n")


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


def interpreter_tags(python: str | None) -> list[Tag]:
    """The tags the interpreter's own pip accepts, best first."""
    if python is None or Path(python).resolve() == Path(sys.executable).resolve():
        return list(sys_tags())
    proc = _run([python, "-c", _TAGS_PROBE], "asking the interpreter for its tags")
    return [t for s in json.loads(proc.stdout) for t in parse_tag(s)]


def choose_target(manifest: Manifest, tag_list: list[Tag], wanted: str | None) -> str:
    """The bundle target whose every wheel this interpreter accepts, best fit first."""
    names = [t.name for t in manifest.targets]
    if wanted is not None:
        if wanted not in names:
            raise UsageError(f"target {wanted!r} is not in the bundle (it has: "
                             f"{', '.join(names)})")
        return wanted
    rank = {tag: i for i, tag in enumerate(tag_list)}
    best: tuple[int, str] | None = None
    for name in names:
        worst = 0
        for f in manifest.files_for(name):
            ranks = [rank[t] for t in parse_wheel_filename(f.filename)[3] if t in rank]
            if not ranks:
                break
            worst = max(worst, min(ranks))
        else:
            if best is None or (worst, name) < best:
                best = (worst, name)
    if best is None:
        raise InstallError(f"no target in the bundle fits this interpreter (best tag "
                           f"{tag_list[0]}); the bundle has: {', '.join(names)}")
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
        chosen = choose_target(checked.manifest, interpreter_tags(python), target)
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
