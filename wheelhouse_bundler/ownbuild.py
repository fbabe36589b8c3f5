"""The locked project's own wheels: built with `build`, or taken from a dist folder.

A lock lists the dependencies, not the project itself; a bastion needs both. When the
project is a package (a `[build-system]` and not poetry's `package-mode = false`), the
build box runs `python -m build --wheel` on it, or takes wheels already built (`--dist`),
and the bundle carries them like any other wheel: hashed, listed per target, installed
last with `--no-deps` once the locked dependencies are in place.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from .errors import UsageError
from .files import sha256_file
from .locks import find_lock
from .model import Manifest, ManifestFile, Plan

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class OwnWheel:
    """One of the project's own wheels, hashed, ready to be bundled."""

    path: Path
    filename: str
    sha256: str
    size: int
    name: str
    version: str
    origin: str  # "build" or "dist": how it came to be, no machine paths


def project_dir(lock: Path) -> Path:
    """The project folder: the one given, or the one holding the lock file."""
    return lock if lock.is_dir() else lock.parent


def read_pyproject(folder: Path) -> dict[str, Any]:
    path = folder / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc


def project_info(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(name, version) from `[project]`, else `[tool.poetry]`; None when unnamed."""
    poetry = doc.get("tool", {}).get("poetry", {})
    for table in (doc.get("project", {}), poetry):
        if isinstance(table, dict) and table.get("name"):
            return str(table["name"]), str(table.get("version") or "0")
    return None


def is_package(doc: dict[str, Any]) -> bool:
    """A project that builds a wheel of its own: it declares a build backend and is not
    poetry's dependencies-only `package-mode = false`."""
    poetry = doc.get("tool", {}).get("poetry", {})
    if isinstance(poetry, dict) and poetry.get("package-mode") is False:
        return False
    return "build-system" in doc and ("project" in doc or bool(poetry))


def release_name(lock: Path, lock_sha256: str) -> str:
    """`<project>-<version>-<lock sha256 prefix>.tar`: one name per release, never reused
    for a different lock (project and version from pyproject, else the folder and 0)."""
    info = project_info(read_pyproject(project_dir(lock)))
    name, version = info or (project_dir(lock).resolve().name or "bundle", "0")
    return f"{_SAFE.sub('_', name)}-{_SAFE.sub('_', version)}-{lock_sha256[:12]}.tar"


def lock_sha256(lock: Path) -> str:
    """The sha256 of the lock file that `lock` (file or folder) names."""
    path = find_lock(lock)
    try:
        return sha256_file(path)[0]
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc


def build_wheel(project: Path, outdir: Path, *, isolation: bool = True) -> list[Path]:
    """Run `python -m build --wheel` on the project; its wheels in `outdir`.

    Isolation installs the build backend into a fresh environment, which needs an index;
    `isolation=False` uses the backend already installed beside this tool instead.
    """
    cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(project)]
    if not isolation:
        cmd.insert(4, "--no-isolation")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise UsageError(f"building {project}: cannot run {sys.executable}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise UsageError(f"building the project's wheel in {project} failed "
                         f"(exit {proc.returncode}): {' | '.join(tail)}")
    wheels = sorted(outdir.glob("*.whl"))
    if not wheels:
        raise UsageError(f"building {project} made no wheel in {outdir}")
    return wheels


def from_dist(dist: Path) -> list[Path]:
    """The wheels in a folder made by `poetry build`, `uv build`, `python -m build`."""
    if not dist.is_dir():
        raise UsageError(f"--dist {dist}: not a folder")
    wheels = sorted(dist.glob("*.whl"))
    if not wheels:
        raise UsageError(f"--dist {dist}: no .whl files in it")
    return wheels


def describe(path: Path, origin: str) -> OwnWheel:
    """Hash and name one wheel file."""
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise UsageError(f"{path}: not a wheel file name ({exc})") from exc
    digest, size = sha256_file(path)
    return OwnWheel(path, path.name, digest, size, str(name), str(version), origin)


def collect(lock: Path, workdir: Path, *, dist: Path | None = None, enabled: bool = True,
            isolation: bool = True) -> list[OwnWheel]:
    """The own wheels for this build: from `dist` when given, else built when the project
    is a package; none when disabled or when the project is only a dependency set."""
    if not enabled:
        return []
    if dist is not None:
        return [describe(p, "dist") for p in from_dist(dist)]
    folder = project_dir(lock)
    if not is_package(read_pyproject(folder)):
        return []
    return [describe(p, "build") for p in build_wheel(folder, workdir, isolation=isolation)]


def attach(manifest: Manifest, own: list[OwnWheel], plans: list[Plan]) -> Manifest:
    """The manifest with the own wheels added, each serving the targets its tags fit
    (a pure wheel fits every target, a platform wheel only its own)."""
    if not own:
        return manifest
    locked = {canonicalize_name(f.name) for f in manifest.files}
    added: list[ManifestFile] = []
    for wheel in own:
        if canonicalize_name(wheel.name) in locked:
            raise UsageError(f"own wheel {wheel.filename}: {wheel.name} is also pinned by the "
                             "lock; bundle it from one place only (--no-own)")
        tags = parse_wheel_filename(wheel.filename)[3]
        serves = tuple(sorted(p.target.name for p in plans if tags & set(p.target.tags)))
        if not serves:
            raise UsageError(f"own wheel {wheel.filename} fits none of the targets "
                             f"({', '.join(p.target.name for p in plans)})")
        added.append(ManifestFile(filename=wheel.filename, sha256=wheel.sha256, size=wheel.size,
                                  name=wheel.name, version=wheel.version,
                                  origin=f"own:{wheel.origin}", targets=serves, own=True))
    seen = {f.filename for f in manifest.files}
    clash = [f.filename for f in added if f.filename in seen]
    if clash or len({f.filename for f in added}) != len(added):
        raise UsageError(f"own wheel {(clash or [added[0].filename])[0]} appears twice")
    files = sorted((*manifest.files, *added), key=lambda f: (f.filename, f.sha256))
    return replace(manifest, files=tuple(files))
