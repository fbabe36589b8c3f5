"""sbom.cdx.json: a CycloneDX 1.6 description of every wheel in the bundle.

Release approvers want to know what is inside without unpacking anything: one component
per wheel (purl with the file name as a qualifier, sha256, licence, the targets it
serves) and the dependency graph between bundled wheels. Licences and dependencies come
from each wheel's METADATA, read through the zip's central directory so only that one
member is decompressed, however large the wheel.

The document must not change the bundle's bytes from one build to the next: the serial
number is a UUID5 of what the bundle holds, bom-refs are the purls, and the timestamp
appears only when SOURCE_DATE_EPOCH asks for one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from . import __version__
from .errors import DamagedFile, IntegrityError
from .files import sha256_file
from .manifest import SBOM, SUMS, parse_sums
from .model import Manifest, ManifestFile

__all__ = ["SBOM", "build", "purl", "read_metadata", "serial_number"]

try:  # the factory's current home; older releases keep it under cyclonedx.factory
    from cyclonedx.contrib.license.factories import LicenseFactory
except ImportError:  # pragma: no cover - depends on the installed library
    from cyclonedx.factory.license import LicenseFactory  # type: ignore[no-redef]

PROPERTY_TARGET = "wheelhouse-bundler:target"
PROPERTY_OWN = "wheelhouse-bundler:own"
PROPERTY_YANKED = "wheelhouse-bundler:yanked"
PROPERTY_BUILT = "wheelhouse-bundler:built-from"  # the sdist a wheel was built from here
PROPERTY_BACKEND = "wheelhouse-bundler:build-backend"
PROPERTY_BUILD_DEP = "wheelhouse-bundler:build-dependency"
PROPERTY_BUILDER = "wheelhouse-bundler:builder"
PROPERTY_TOOL = "wheelhouse-bundler:tool"
"""On a tool's wheel (uv under tools/): carried to install with, installed into nothing."""
MAX_METADATA = 16 * 1024 * 1024
_LICENSE_TEXT_LIMIT = 100
"""A `License:` field longer than this (or spanning lines) is the licence's full text,
not its name; classifiers then name it better."""
_SERIAL_NAMESPACE = uuid.UUID("6f1c3e0a-4b0e-5d6c-9a51-7e0b2f4c8d10")


@dataclass(frozen=True)
class WheelMeta:
    """What the SBOM takes from a wheel's METADATA."""

    license_expression: str | None
    license: str | None
    classifiers: tuple[str, ...]
    requires: tuple[str, ...]

    def licence(self) -> str | None:
        """License-Expression, else a short License field, else the licence classifiers."""
        if self.license_expression and self.license_expression.strip():
            return self.license_expression.strip()
        text = (self.license or "").strip()
        if text and "\n" not in text and len(text) <= _LICENSE_TEXT_LIMIT \
                and text.upper() not in ("UNKNOWN", "NONE"):
            return text
        names = [c.split("::")[-1].strip() for c in self.classifiers
                 if c.startswith("License ::") and c.count("::") >= 2]
        return " OR ".join(names) if names else None


def read_metadata(wheel: Path) -> WheelMeta:
    """The METADATA headers of a wheel, decompressing only that member."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            member = next((i for i in zf.infolist()
                           if i.filename.count("/") == 1
                           and i.filename.endswith(".dist-info/METADATA")), None)
            if member is None:
                raise IntegrityError(f"{wheel.name}: no .dist-info/METADATA in the wheel")
            if member.file_size > MAX_METADATA:
                raise IntegrityError(f"{wheel.name}: METADATA is {member.file_size} bytes, "
                                     f"over the {MAX_METADATA} limit")
            with zf.open(member) as fh:
                raw = fh.read(MAX_METADATA)
    except (zipfile.BadZipFile, zlib.error, OSError) as exc:  # zlib: a broken deflate stream
        raise IntegrityError(f"{wheel.name}: not a readable wheel ({exc})") from exc
    # packaging's parser gives plain strings for every field; the email module hands back
    # Header objects for non-ASCII values, which crashed every bundle holding such a wheel.
    # A field it cannot take as it is (a single-use field given twice) lands in `unparsed`,
    # where the first value is still the best we have.
    fields, unparsed = parse_email(raw)

    def first(key: str) -> str | None:
        value = fields.get(key)
        if isinstance(value, str):
            return value
        spare = unparsed.get(key) or []
        return spare[0] if spare and isinstance(spare[0], str) else None

    return WheelMeta(
        license_expression=first("license_expression"),
        license=first("license"),
        classifiers=tuple(fields.get("classifiers") or ()),
        requires=tuple(fields.get("requires_dist") or ()))


def _checked_metadata(f: ManifestFile, path: Path) -> WheelMeta:
    """read_metadata; a wheel that cannot be read is hashed to tell a damaged cache entry
    (which the build fetches again) from a broken wheel that the lock does pin."""
    try:
        return read_metadata(path)
    except IntegrityError:
        got = sha256_file(path)[0]
        if got != f.sha256:
            raise DamagedFile.wrong_hash(f.filename, got, f.sha256) from None
        raise


def purl(f: ManifestFile) -> PackageURL:
    return PackageURL(type="pypi", name=str(canonicalize_name(f.name)), version=f.version,
                      qualifiers={"file_name": f.filename})


def _needs(requirement: str, environments: list[Mapping[str, str]]) -> str | None:
    """The required project's name when the requirement applies on any of the
    environments (no extra requested), else None."""
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return None
    if req.marker is not None:
        try:
            if not any(req.marker.evaluate({**env, "extra": ""}) for env in environments):
                return None
        except (InvalidMarker, UndefinedEnvironmentName):
            return None
    return canonicalize_name(req.name)


def _edges(manifest: Manifest, metas: Mapping[str, WheelMeta]) -> dict[str, list[ManifestFile]]:
    """For each wheel (by sha256), the bundled wheels it requires on a target both serve."""
    envs = {t.name: dict(t.environment) for t in manifest.targets}
    by_name: dict[str, list[ManifestFile]] = {}
    for f in manifest.files:
        by_name.setdefault(canonicalize_name(f.name), []).append(f)
    edges: dict[str, list[ManifestFile]] = {}
    for f in manifest.files:
        out: dict[str, ManifestFile] = {}
        for text in metas[f.sha256].requires:
            for g in by_name.get(_needs(text, [envs[t] for t in f.targets if t in envs]) or "",
                                 []):
                shared = [envs[t] for t in set(f.targets) & set(g.targets) if t in envs]
                if g.sha256 != f.sha256 and shared and _needs(text, shared):
                    out[g.sha256] = g
        edges[f.sha256] = sorted(out.values(), key=lambda g: g.filename)
    return edges


def _component(f: ManifestFile, meta: WheelMeta, tool: bool = False) -> Component:
    properties = [Property(name=PROPERTY_TARGET, value=t) for t in f.targets]
    if tool:
        properties.append(Property(name=PROPERTY_TOOL, value="true"))
    if f.own:
        properties.append(Property(name=PROPERTY_OWN, value="true"))
    if f.yanked:
        properties.append(Property(name=PROPERTY_YANKED, value="true"))
    pedigree = None
    if (b := f.built_from) is not None:
        # A wheel no index vouches for: its ancestor is the sdist the lock pinned, and the
        # properties say how and where it was built.
        properties += [Property(name=PROPERTY_BUILT, value=f"{b.sdist} sha256:{b.sdist_sha256}"),
                       Property(name=PROPERTY_BACKEND, value=f"{b.backend} ({b.backend_version})"),
                       Property(name=PROPERTY_BUILDER, value=f"{b.python} {b.platform}"),
                       *(Property(name=PROPERTY_BUILD_DEP, value=d) for d in b.build_deps)]
        sdist_purl = PackageURL("pypi", str(canonicalize_name(f.name)), f.version,
                                qualifiers={"file_name": b.sdist})
        pedigree = Pedigree(
            ancestors=[Component(
                type=ComponentType.LIBRARY, name=str(canonicalize_name(f.name)),
                version=f.version, bom_ref=f"{sdist_purl.to_string()}#for-{f.sha256[:16]}",
                purl=sdist_purl,
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=b.sdist_sha256)])],
            notes=f"built on the build box with {b.backend}")
    licence = meta.licence()
    p = purl(f)
    return Component(
        type=ComponentType.LIBRARY, name=str(canonicalize_name(f.name)), version=f.version,
        bom_ref=p.to_string(), purl=p,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f.sha256)],
        licenses=[LicenseFactory().make_from_string(licence)] if licence else None,
        properties=properties, pedigree=pedigree)


def serial_number(manifest: Manifest) -> uuid.UUID:
    """Stable for the same lock, targets and files; different when any of them differ."""
    tools = sorted(t.sha256 for t in manifest.tools)  # none: the key of older bundles
    key = "\n".join([manifest.lock_sha256, *sorted(t.name for t in manifest.targets),
                     *sorted(f.sha256 for f in manifest.files),
                     *(["tools", *tools] if tools else [])])
    return uuid.uuid5(_SERIAL_NAMESPACE, key)


def build(manifest: Manifest, paths: Mapping[str, Path],
          project: tuple[str, str] | None = None) -> bytes:
    """The SBOM as bytes: sorted JSON, no wall-clock time unless SOURCE_DATE_EPOCH is set.

    `paths` maps each wheel's sha256 to its bytes on disk; `project` (name, version) names
    the locked project as the BOM's subject, which depends on the own wheels when there
    are any, else on the wheels nothing else in the bundle requires.
    """
    metas = {f.sha256: _checked_metadata(f, paths[f.sha256]) for f in manifest.files}
    components = {f.sha256: _component(f, metas[f.sha256]) for f in manifest.files}
    bom = Bom(serial_number=serial_number(manifest))
    bom.metadata.tools.components.add(Component(
        type=ComponentType.APPLICATION, name="wheelhouse-bundler", version=__version__))
    for component in components.values():
        bom.components.add(component)
    for t in manifest.tools:  # in the bundle like any wheel; nothing depends on them
        bom.components.add(_component(t, read_metadata(paths[t.sha256]), tool=True))
    edges = _edges(manifest, metas)
    for sha, needed in edges.items():
        bom.register_dependency(components[sha], [components[g.sha256] for g in needed])
    if project is not None:
        root = Component(type=ComponentType.APPLICATION, name=project[0], version=project[1],
                         bom_ref=f"project:{project[0]}@{project[1]}")
        bom.metadata.component = root
        own = [components[f.sha256] for f in manifest.files if f.own]
        required = {g.sha256 for needed in edges.values() for g in needed}
        tops = own or [c for sha, c in components.items() if sha not in required]
        bom.register_dependency(root, tops)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        bom.metadata.timestamp = datetime.fromtimestamp(int(epoch), tz=UTC)
    doc = json.loads(JsonV1Dot6(bom).output_as_string())
    if not epoch.isdigit():
        doc.get("metadata", {}).pop("timestamp", None)
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def from_bundle(bundle: Path) -> bytes:
    """The SBOM member of a bundle, checked against its SHA256SUMS; the stream stops as
    soon as both are read (they come before the wheels)."""
    sums: dict[str, str] | None = None
    data: bytes | None = None
    try:
        with tarfile.open(bundle, mode="r|*") as tar:
            for info in tar:
                rel = info.name.partition("/")[2]
                if rel not in (SUMS, SBOM) or not info.isreg():
                    continue
                if info.size > MAX_METADATA:
                    raise IntegrityError(f"{bundle}: {info.name} is {info.size} bytes, over "
                                         f"the {MAX_METADATA} limit")
                fh = tar.extractfile(info)
                assert fh is not None
                if rel == SUMS:
                    sums = parse_sums(fh.read())
                else:
                    data = fh.read()
                if sums is not None and data is not None:
                    break
    except (tarfile.TarError, EOFError) as exc:
        raise IntegrityError(f"{bundle}: truncated or corrupt archive ({exc})") from exc
    if data is None or sums is None or SBOM not in sums:
        raise IntegrityError(f"{bundle}: no {SBOM} (bundled by an older wheelhouse-bundler?)")
    if hashlib.sha256(data).hexdigest() != sums[SBOM]:
        raise IntegrityError(f"{bundle}: {SBOM} does not match its sha256 in {SUMS}")
    return data
