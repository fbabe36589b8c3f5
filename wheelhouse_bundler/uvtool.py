"""uv as the fast installer on the target, carried inside the bundle as a tool wheel.

`bundle --with-uv` puts uv's wheel for each target under `tools/` (hash in SHA256SUMS
and in the manifest's `tools` list, not a locked package: it installs nothing into the
venv). On the target, `--installer auto` extracts the binary from the wheel that fits the
interpreter's platform into the staging folder and installs with it; without a fitting
wheel, or when the binary does not start, auto falls back to pip. `--installer uv`
insists (and may use a uv on PATH when the bundle has none).

uv runs with `--no-config`, `--offline`, `--no-index` and every UV_* variable removed,
with its cache inside the staging folder: as with pip, the bundle alone decides.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename
from packaging.version import Version

from .errors import InstallError, UsageError
from .manifest import TOOLS
from .model import ManifestFile, Target
from .sources import strip_credentials

INSTALLERS = ("auto", "pip", "uv")


@dataclass(frozen=True)
class Uv:
    """A uv binary that starts, and the cache folder it may use (inside the staging)."""

    binary: Path
    cache: Path


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env.update(UV_CACHE_DIR=str(cache), UV_NO_PROGRESS="1")
    return env


def _fitting_wheel(root: Path, me: Target) -> Path | None:
    folder = root / TOOLS
    if not folder.is_dir():
        return None
    rank = {tag: i for i, tag in enumerate(me.tags)}
    best: tuple[int, Path] | None = None
    for wheel in sorted(folder.glob("uv-*.whl")):
        ranks = [rank[t] for t in parse_wheel_filename(wheel.name)[3] if t in rank]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), wheel)
    return best[1] if best else None


def extract_binary(wheel: Path, dest: Path) -> Path:
    """Copy `uv-*.data/scripts/uv` (uv.exe on Windows) out of the wheel into `dest`."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist()
                 if n.split("/")[0].endswith(".data") and n.split("/")[1:] in
                 (["scripts", "uv"], ["scripts", "uv.exe"])]
        if not names:
            raise InstallError(f"{wheel.name}: no uv binary inside (uv-*.data/scripts/uv)")
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / names[0].rsplit("/", 1)[1]
        with zf.open(names[0]) as src, open(out, "wb") as fh:
            shutil.copyfileobj(src, fh, 1024 * 1024)
    out.chmod(out.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return out


def _starts(binary: Path, cache: Path) -> bool:
    try:
        proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                              env=_env(cache), check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def find(root: Path, installer: str, scratch: Path, me: Target) -> Uv | None:
    """The uv binary to install with, or None for pip (see the module doc for the rules)."""
    if installer not in INSTALLERS:
        raise UsageError(f"--installer {installer!r}: choose one of {', '.join(INSTALLERS)}")
    if installer == "pip":
        return None
    wheel = _fitting_wheel(root, me)
    if wheel is not None:
        binary = extract_binary(wheel, scratch)
        if _starts(binary, scratch / "cache"):
            return Uv(binary, scratch / "cache")
        if installer == "uv":
            raise InstallError(f"--installer uv: the uv from {wheel.name} does not start here")
        return None
    if installer == "uv":
        on_path = shutil.which("uv")
        if on_path and _starts(Path(on_path), scratch / "cache"):
            return Uv(Path(on_path), scratch / "cache")
        # Nothing was tried, let alone failed: the option asks for what is not here.
        raise UsageError("--installer uv: the bundle carries no uv for this platform "
                         "(build it with --with-uv) and there is none on PATH")
    return None


def _run(cmd: list[str], what: str, cache: Path) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(cache),
                              check=False)
    except OSError as exc:
        raise InstallError(f"{what}: cannot run {cmd[0]}: {exc.strerror}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise InstallError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def install(uv: Uv, python: str, wheels: Path, requirements: Path) -> None:
    """`uv pip install` offline from the bundle's wheels, hashes required, no resolution.

    Bytecode is not compiled here (uv's default, unlike pip): on a 2-core machine that
    compilation is most of pip's time, and the first import compiles what is used."""
    _run([str(uv.binary), "pip", "install", "--no-config", "--offline", "--no-index",
          "--require-hashes", "--no-deps", "--no-build", "--quiet", "--python", python,
          "--find-links", str(wheels), "-r", str(requirements)], "uv pip install", uv.cache)


def check(uv: Uv, python: str) -> None:
    _run([str(uv.binary), "pip", "check", "--no-config", "--offline", "--quiet",
          "--python", python], "uv pip check", uv.cache)


# ---- build box: choosing and recording uv's wheels


UV_VERSION = "0.13.9"
"""The uv `bundle --with-uv` carries unless --uv-version says otherwise: pinned, so the
same lock and tool version give the same bundle."""


@dataclass(frozen=True)
class ToolWheel:
    """A tool's wheel in the bundle: recorded by hash and size, installed into nothing."""

    filename: str
    sha256: str
    url: str
    version: str
    targets: tuple[str, ...]
    size: int = 0
    path: Path | None = None


def pick(listed: list[tuple[str, str, str | None]], version: str, targets: list[Target]
         ) -> list[ToolWheel]:
    """uv's best wheel of `version` for each target from an index listing of
    (filename, url, sha256); one entry per distinct wheel, naming the targets it serves."""
    wanted = Version(version)
    wheels = [(name, url, sha) for name, url, sha in listed if name.endswith(".whl")
              and parse_wheel_filename(name)[1] == wanted]
    chosen: dict[str, ToolWheel] = {}
    for target in targets:
        rank = {tag: i for i, tag in enumerate(target.tags)}
        fits = sorted((min(rank[t] for t in parse_wheel_filename(n)[3] if t in rank), n, u, s)
                      for n, u, s in wheels if any(t in rank for t in parse_wheel_filename(n)[3]))
        if not fits:
            raise UsageError(f"--with-uv: uv {version} has no wheel for target {target.name} "
                             "on the index")
        _, name, url, sha = fits[0]
        if not sha:
            raise UsageError(f"--with-uv: the index gives no sha256 for {name}")
        old = chosen.get(sha)
        chosen[sha] = ToolWheel(name, sha, url, version,
                                tuple(sorted({*(old.targets if old else ()), target.name})))
    return sorted(chosen.values(), key=lambda t: t.filename)


def recorded(tools: list[ToolWheel]) -> tuple[ManifestFile, ...]:
    """The manifest's `tools` entries: each wheel by hash and size, its origin without
    credentials (verify checks the member against them, like any wheel's)."""
    return tuple(ManifestFile(filename=t.filename, sha256=t.sha256, size=t.size, name="uv",
                              version=t.version, origin=strip_credentials(t.url),
                              targets=t.targets) for t in tools)
