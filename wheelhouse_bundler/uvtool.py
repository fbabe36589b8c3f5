"""uv as the fast installer on the target, carried inside the bundle as a tool wheel.

`bundle` puts uv's wheel for each target under `tools/` by default wherever uv publishes
one for every target (hash in SHA256SUMS, in the manifest's `tools` list and in the SBOM;
not a locked package: it installs nothing into the venv); `--no-uv` leaves it out. On the
target, `--installer auto` extracts the binary from the wheel that fits the interpreter
into the staging folder and installs with it; without a fitting wheel, or when the binary
does not start, auto falls back to pip. `--installer uv` insists (and may use a uv on PATH
when the bundle has none).

The target-side mechanics (which wheel fits, the extraction, the command lines, the clean
environment) are bootstrap.py's, shared with the bundle's own install.py; this module gives
them the tool's types, and holds the build-box side: which wheel to carry for each target.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename
from packaging.version import Version

from .errors import UsageError
from .files import write_atomic
from .model import ManifestFile, Target
from .sources import strip_credentials
from .standalone import bootstrap

INSTALLERS = bootstrap.INSTALLERS


@dataclass(frozen=True)
class Uv:
    """A uv binary that starts, and the cache folder it may use (inside the staging)."""

    binary: Path
    cache: Path


def find(root: Path, installer: str, scratch: Path, me: Target) -> Uv | None:
    """The uv binary to install with, or None for pip (bootstrap.find_uv's rules; its
    failures are bootstrap's, which the caller types as it types every release step)."""
    triples = [(t.interpreter, t.abi, t.platform) for t in me.tags]
    found = bootstrap.find_uv(str(root), installer, str(scratch), triples)
    return Uv(Path(found[0]), Path(found[1])) if found else None


# ---- build box: choosing and recording uv's wheels


UV_VERSION = "0.13.9"
"""The uv `bundle` carries unless --uv-version says otherwise: pinned, so the same lock
and tool version give the same bundle."""


class NoUv(UsageError):
    """uv has no usable wheel for some target: by default the bundle then carries no uv
    (a warning); asked for with --with-uv or --uv-version, this is the error."""


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
            raise NoUv(f"uv {version} has no wheel for target {target.name} on the index")
        _, name, url, sha = fits[0]
        if not sha:
            raise NoUv(f"the index gives no sha256 for {name}")
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


class Memo:
    """What the index said about uv's wheels for one (index, version, targets), kept in
    the cache folder: a warm or `--offline` rebuild then asks no index for uv, as it asks
    none for the locked files. Kept also when the answer was "none" (an internal index
    without uv), so that each rebuild does not ask again; --with-uv always asks."""

    def __init__(self, folder: Path, index_url: str, version: str, targets: list[Target]
                 ) -> None:
        key = json.dumps([strip_credentials(index_url), version,
                          [[t.name, [str(tag) for tag in t.tags]] for t in targets]])
        self.path = folder / f"uv-{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def read(self) -> list[ToolWheel] | str | None:
        """The wheels, or the reason there are none, or None when nothing is known."""
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("none"):
                return str(doc["none"])
            return [ToolWheel(t["filename"], t["sha256"], t["url"], t["version"],
                              tuple(t["targets"])) for t in doc["tools"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, found: list[ToolWheel] | str) -> None:
        doc = {"none": found} if isinstance(found, str) else {"tools": [
            {k: v for k, v in asdict(t).items() if k not in ("size", "path")} for t in found]}
        write_atomic(self.path, json.dumps(doc, sort_keys=True).encode(), durable=False,
                     shown=self.path.parent, private=True)
