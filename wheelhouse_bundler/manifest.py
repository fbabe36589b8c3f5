"""The bundle's own description: manifest.json, SHA256SUMS and per-target install files.

Everything here is a pure function of the plans and the fetched files, rendered with
sorted keys and no clock, so the same inputs always give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import tomli_w
from packaging.version import Version

from . import __version__
from .errors import IntegrityError
from .export import render
from .model import (
    AcceptedVuln,
    BuiltFrom,
    Lock,
    Manifest,
    ManifestFile,
    ManifestTarget,
    Plan,
)
from .sources import strip_credentials

# The layout's names are declared once, in bootstrap.py: it ships inside every bundle as
# install.py, stdlib-only, and checks an extracted bundle with them (see `layout`).
# WHEELS and TOOLS are here for the rest of the tool (install, uvtool).
from .standalone.bootstrap import (
    MANIFEST,
    SBOM,  # CycloneDX 1.6 JSON, written by sbom.py
    SUMS,
    own_path,
    pylock_path,
    requirements_path,
    tool_path,
    wheel_path,
)
from .standalone.bootstrap import SELF as BOOTSTRAP  # the stdlib-only restore script
from .standalone.bootstrap import TOOLS as TOOLS
from .standalone.bootstrap import WHEELS as WHEELS

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Part:
    """One member of a bundle as the layout declares it, by path below the top folder.

    `kind` says what goes there (manifest, sums, bootstrap, sbom, requirements, pylock,
    own, wheel, tool); `target` names the target of a per-target file ("" for the rest);
    `size` and `sha256` are set where the manifest records them (wheels and tools), and
    SHA256SUMS covers the rest.
    """

    path: str
    kind: str
    target: str = ""
    size: int | None = None
    sha256: str | None = None


def layout(manifest: Manifest) -> list[Part]:
    """Every member of a bundle with this manifest, in the order the tar holds them.

    The one statement of the layout: the writer (pipeline.bundle_members) makes exactly
    these members and verify accepts exactly these. The manifest and SHA256SUMS come first,
    so each later member is checked as it streams; then the small files by path; then the
    wheels and the tool wheels, in the manifest's order. The names come from bootstrap.py,
    which ships inside the bundle and checks an extracted one with them.
    """
    small = [Part(BOOTSTRAP, "bootstrap"), Part(SBOM, "sbom")]
    for t in manifest.targets:
        small += [Part(requirements_path(t.name), "requirements", t.name),
                  Part(pylock_path(t.name), "pylock", t.name)]
        if any(f.own for f in manifest.files_for(t.name)):
            small.append(Part(own_path(t.name), "own", t.name))
    return [Part(MANIFEST, "manifest"), Part(SUMS, "sums"),
            *sorted(small, key=lambda p: p.path),
            *(Part(wheel_path(f.filename), "wheel", size=f.size, sha256=f.sha256)
              for f in manifest.files),
            *(Part(tool_path(t.filename), "tool", size=t.size, sha256=t.sha256)
              for t in manifest.tools)]


def build(lock: Lock, plans: list[Plan], sizes: Mapping[str, int], groups: Iterable[str],
          extras: Iterable[str], built: Mapping[str, BuiltFrom] | None = None) -> Manifest:
    """One entry per distinct file, naming every target it serves; `built` (by the
    wheel's sha256) says which of them the build box made from an sdist."""
    built = built or {}
    entries: dict[str, dict] = {}
    for plan in plans:
        for pick in plan.picks:
            f = pick.file
            assert f.filename is not None and f.url is not None
            entry = entries.setdefault(f.sha256, {
                "filename": f.filename, "sha256": f.sha256, "size": sizes[f.sha256],
                "name": str(pick.package.name), "version": str(pick.package.version),
                "origin": strip_credentials(f.url), "targets": set(), "yanked": f.yanked,
                "hash_from_index": f.hash_from_index, "built_from": built.get(f.sha256),
            })
            entry["targets"].add(plan.target.name)
    files = tuple(
        ManifestFile(**{**e, "targets": tuple(sorted(e["targets"]))})
        for e in sorted(entries.values(), key=lambda e: (e["filename"], e["sha256"])))
    return Manifest(
        format_version=FORMAT_VERSION, tool_version=__version__, lock_name=lock.path.name,
        lock_format=lock.format, lock_sha256=lock.sha256, groups=tuple(sorted(groups)),
        extras=tuple(sorted(extras)),
        targets=tuple(ManifestTarget(p.target.name, dict(sorted(p.target.environment.items())))
                      for p in sorted(plans, key=lambda p: p.target.name)),
        files=files)


def to_json(manifest: Manifest) -> bytes:
    doc = {
        "format_version": manifest.format_version,
        "tool": {"name": "wheelhouse-bundler", "version": manifest.tool_version},
        "lock": {"name": manifest.lock_name, "format": manifest.lock_format,
                 "sha256": manifest.lock_sha256},
        "groups": list(manifest.groups),
        "extras": list(manifest.extras),
        "targets": [{"name": t.name, "requirements": requirements_path(t.name),
                     "pylock": pylock_path(t.name), "environment": dict(t.environment)}
                    for t in manifest.targets],
        "files": [{"filename": f.filename, "path": wheel_path(f.filename), "sha256": f.sha256,
                   "size": f.size, "name": f.name, "version": f.version, "origin": f.origin,
                   "targets": list(f.targets), "yanked": f.yanked,
                   **({"own": True} if f.own else {}),
                   **({"hash_from_index": True} if f.hash_from_index else {}),
                   **({"built_from": built_json(f.built_from)} if f.built_from else {})}
                  for f in manifest.files],
    }
    if manifest.accepted_vulns:  # optional keys: bundles without them read as before
        doc["accepted_vulns"] = [{"id": v.id, "package": v.package, "version": v.version,
                                  "aliases": list(v.aliases)} for v in manifest.accepted_vulns]
    if manifest.tools:
        doc["tools"] = [{"filename": t.filename, "path": tool_path(t.filename),
                         "sha256": t.sha256, "size": t.size, "name": t.name,
                         "version": t.version, "origin": t.origin, "targets": list(t.targets)}
                        for t in manifest.tools]
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def from_json(data: bytes) -> Manifest:
    """Read a manifest, refusing formats this version does not know."""
    try:
        doc = json.loads(data)
        version = doc.get("format_version")
        if version != FORMAT_VERSION:
            raise IntegrityError(f"{MANIFEST}: unknown format version {version!r} "
                                 f"(this tool reads {FORMAT_VERSION})")
        return Manifest(
            format_version=version,
            tool_version=str(doc["tool"]["version"]),
            lock_name=str(doc["lock"]["name"]), lock_format=str(doc["lock"]["format"]),
            lock_sha256=str(doc["lock"]["sha256"]),
            groups=tuple(doc.get("groups", ())), extras=tuple(doc.get("extras", ())),
            targets=tuple(ManifestTarget(str(t["name"]), dict(t["environment"]))
                          for t in doc["targets"]),
            files=tuple(_file(f) for f in doc["files"]),
            accepted_vulns=tuple(AcceptedVuln(str(v["id"]), str(v["package"]),
                                              str(v["version"]), tuple(v.get("aliases", ())))
                                 for v in doc.get("accepted_vulns", ())),
            tools=tuple(_file(t) for t in doc.get("tools", ())))
    except IntegrityError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{MANIFEST}: malformed ({type(exc).__name__}: {exc})") from exc


def _file(f: dict) -> ManifestFile:
    """A `files` or `tools` entry (its `path` is the layout's, from the file name)."""
    built = f.get("built_from")
    return ManifestFile(
        filename=str(f["filename"]), sha256=str(f["sha256"]), size=int(f["size"]),
        name=str(f["name"]), version=str(f["version"]), origin=str(f["origin"]),
        targets=tuple(f["targets"]), yanked=bool(f.get("yanked", False)),
        own=bool(f.get("own", False)), hash_from_index=bool(f.get("hash_from_index", False)),
        built_from=None if built is None else parse_built(built))


def parse_built(built: dict) -> BuiltFrom:
    """A `built_from` object as built_json writes it (the manifest's, the build cache's)."""
    return BuiltFrom(
        sdist=str(built["sdist"]["filename"]), sdist_sha256=str(built["sdist"]["sha256"]),
        backend=str(built["backend"]["object"]),
        backend_version=str(built["backend"]["distribution"]),
        build_deps=tuple(str(d) for d in built["build_dependencies"]),
        python=str(built["builder"]["python"]), platform=str(built["builder"]["platform"]))


def built_json(b: BuiltFrom | None) -> dict | None:
    """The manifest's `built_from` object (None for a wheel an index served)."""
    if b is None:
        return None
    return {"sdist": {"filename": b.sdist, "sha256": b.sdist_sha256},
            "backend": {"object": b.backend, "distribution": b.backend_version},
            "build_dependencies": list(b.build_deps),
            "builder": {"python": b.python, "platform": b.platform}}


def render_sums(hashes: Mapping[str, str]) -> bytes:
    """`sha256sum -c` format, paths relative to the bundle's top folder."""
    return "".join(f"{hashes[p]}  {p}\n" for p in sorted(hashes)).encode()


def parse_sums(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
            digest, sep, path = line.partition("  ")
            if not sep or len(digest) != 64 or path in out:
                raise ValueError(f"line {number}")
            out[path] = digest
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{SUMS}: malformed ({exc})") from exc
    return out


def requirements_for(plan: Plan, manifest: Manifest) -> bytes:
    header = (f"Installs {manifest.lock_name} on {plan.target.name}, offline:\n"
              f"  pip install --no-index --no-deps --require-hashes --find-links ../../wheels "
              f"-r requirements.txt")
    return render(((p.package, [p.file]) for p in plan.picks), header=header).encode()


def pylock_for(plan: Plan) -> bytes:
    """PEP 751 for this target alone, pointing at the bundle's wheels by relative path."""
    # Here, not at the top: only packing needs it, and verify/install start faster without.
    from packaging.pylock import Package, PackageWheel, Pylock

    lock = Pylock(
        lock_version=Version("1.0"),
        created_by="wheelhouse-bundler",
        packages=[
            Package(name=p.package.name, version=p.package.version, wheels=[
                PackageWheel(name=p.file.filename, path=f"../../{wheel_path(p.file.filename)}",
                             hashes={"sha256": p.file.sha256})])
            for p in plan.picks if p.file.filename
        ],
    )
    return tomli_w.dumps(lock.to_dict()).encode()


def own_for(target: str, manifest: Manifest) -> bytes | None:
    """Hashed pins of the own wheels serving `target` (None when there are none): pip
    installs them with --no-deps after the locked dependencies are in place."""
    own = [f for f in manifest.files_for(target) if f.own]
    if not own:
        return None
    lines = [f"# The project's own wheels for {target}, installed after requirements.txt:",
             "#   pip install --no-index --no-deps --require-hashes --find-links ../../wheels "
             "-r own.txt"]
    lines += [f"{f.name}=={f.version} --hash=sha256:{f.sha256}" for f in own]
    return ("\n".join(lines) + "\n").encode()
