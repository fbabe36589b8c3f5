"""Build small, valid, byte-for-byte reproducible wheels for tests.

Tests need real wheels that real pip installs, but must not download anything, and hash-based
checks (lock hashes, manifests, tamper detection) need the same inputs to give the same bytes
on every run. So every zip entry gets a fixed timestamp, fixed permissions and a fixed order,
and the optional payload is seeded pseudo-random data.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import random
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast, overload

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name, parse_wheel_filename

__all__ = [
    "WheelFactory",
    "build_wheel",
    "dist_name",
    "factory_for",
    "record_hash",
    "sha256_of",
    "wheel_filename",
]

_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
_FILE_ATTR = 0o100644 << 16  # regular file, rw-r--r--, in the unix high bits
_CHUNK = 1 << 20


def dist_name(name: str) -> str:
    """The name as it appears in wheel file names and as the importable top-level package."""
    return canonicalize_name(name).replace("-", "_")


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    """`<dist>-<version>-<tag>.whl`, exactly as build_wheel names it."""
    return f"{dist_name(name)}-{version}-{tag}.whl"


def record_hash(digest: bytes) -> str:
    """A RECORD hash field: `sha256=` + urlsafe base64 without padding (PEP 376/427)."""
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB payload wheels are fine."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _zinfo(arcname: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_DATE_TIME)
    info.compress_type = compress_type
    info.external_attr = _FILE_ATTR
    info.create_system = 3  # unix; the default depends on the OS building the file
    return info


def _metadata(name: str, version: str, requires: Sequence[str], requires_python: str | None
              ) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {req}" for req in requires]
    return ("\n".join(lines) + "\n").encode()


def _wheel_file(tag: str) -> bytes:
    tags = sorted(parse_tag(tag), key=str)
    purelib = all(t.abi == "none" and t.platform == "any" for t in tags)
    lines = ["Wheel-Version: 1.0", "Generator: wheelhouse-bundler tests (wheelfactory)",
             f"Root-Is-Purelib: {'true' if purelib else 'false'}"]
    lines += [f"Tag: {t}" for t in tags]
    return ("\n".join(lines) + "\n").encode()


def _write_payload(zf: zipfile.ZipFile, arcname: str, size: int, seed: str
                   ) -> tuple[str, int]:
    """Stream `size` seeded random bytes into the zip; never holds more than a chunk."""
    info = _zinfo(arcname, zipfile.ZIP_STORED)  # random bytes do not compress; save the time
    info.file_size = size  # lets zipfile pick zip64 up front for >2 GiB payloads
    rng = random.Random(seed)
    h = hashlib.sha256()
    left = size
    with zf.open(info, "w") as out:
        while left:
            n = min(left, _CHUNK)
            chunk = rng.randbytes(n)
            h.update(chunk)
            out.write(chunk)
            left -= n
    return record_hash(h.digest()), size


def build_wheel(dest: Path, name: str, version: str, tag: str = "py3-none-any", *,
                requires: Sequence[str] = (), requires_python: str | None = None,
                extra_files: Mapping[str, bytes] | None = None, payload_size: int = 0,
                with_package: bool = True) -> Path:
    """Write `<dist>-<version>-<tag>.whl` into `dest` and return its path.

    The wheel holds the package `<dist>/` (with `__version__`) and a complete dist-info
    (METADATA, WHEEL with one Tag line per expanded tag, RECORD with hashes and sizes).
    `extra_files` maps archive paths to contents and may replace any generated file except
    RECORD (e.g. `<dist>/__init__.py`, or `<dist-info>/entry_points.txt`). `payload_size`
    adds `<dist>/payload.bin` of seeded pseudo-random bytes. `with_package=False` leaves
    out `<dist>/__init__.py`, for the shapes real wheels have without a package of their
    name (data only, a `.pth` file, scripts, namespace folders). Same arguments, same bytes.
    """
    filename = wheel_filename(name, version, tag)
    parse_wheel_filename(filename)  # fail here, not in pip, on an invalid name/version/tag
    dist = dist_name(name)
    info_dir = f"{dist}-{version}.dist-info"
    record_name = f"{info_dir}/RECORD"

    package: dict[str, bytes] = (
        {f"{dist}/__init__.py": f'__version__ = "{version}"\n'.encode()} if with_package else {})
    dist_info: dict[str, bytes] = {
        f"{info_dir}/METADATA": _metadata(name, version, requires, requires_python),
        f"{info_dir}/WHEEL": _wheel_file(tag),
    }
    for arcname, data in (extra_files or {}).items():
        if arcname == record_name:
            raise ValueError("RECORD is always generated; it cannot be overridden")
        (dist_info if arcname.startswith(f"{info_dir}/") else package)[arcname] = data
    payload_name = f"{dist}/payload.bin"
    if payload_size and payload_name in package:
        raise ValueError(f"{payload_name} given both as extra file and as payload")

    dest.mkdir(parents=True, exist_ok=True)
    target = dest / filename
    partial = dest / (filename + ".part")
    records: list[tuple[str, str, str]] = []
    # Package files sorted, then dist-info files sorted, RECORD last (as wheel tools do).
    with zipfile.ZipFile(partial, "w") as zf:
        for arcname in sorted(package.keys() | ({payload_name} if payload_size else set())):
            if arcname not in package:
                digest, size = _write_payload(zf, arcname, payload_size, seed=filename)
                records.append((arcname, digest, str(size)))
                continue
            data = package[arcname]
            zf.writestr(_zinfo(arcname, zipfile.ZIP_DEFLATED), data)
            records.append((arcname, record_hash(hashlib.sha256(data).digest()), str(len(data))))
        for arcname in sorted(dist_info):
            data = dist_info[arcname]
            zf.writestr(_zinfo(arcname, zipfile.ZIP_DEFLATED), data)
            records.append((arcname, record_hash(hashlib.sha256(data).digest()), str(len(data))))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerows(records)
        writer.writerow((record_name, "", ""))
        zf.writestr(_zinfo(record_name, zipfile.ZIP_DEFLATED), buf.getvalue().encode())
    os.replace(partial, target)  # never leave a half-written .whl where an index might see it
    return target


class WheelFactory(Protocol):
    """build_wheel with a default destination (what the `wheel_factory` fixture is).

    Call it as `factory(name, version, ...)` to write into the default folder, or as
    `factory(dest, name, version, ...)` (dest a Path) to choose the folder, as build_wheel.
    """

    @overload
    def __call__(self, name: str, version: str, tag: str = "py3-none-any", *,
                 requires: Sequence[str] = (), requires_python: str | None = None,
                 extra_files: Mapping[str, bytes] | None = None, payload_size: int = 0,
                 ) -> Path: ...

    @overload
    def __call__(self, dest: os.PathLike[str], name: str, version: str,
                 tag: str = "py3-none-any", *, requires: Sequence[str] = (),
                 requires_python: str | None = None,
                 extra_files: Mapping[str, bytes] | None = None, payload_size: int = 0,
                 ) -> Path: ...


def factory_for(default_dest: Path) -> WheelFactory:
    """A build_wheel whose destination is optional: a leading Path argument overrides it."""

    def make(*args: Any, **kwargs: Any) -> Path:
        dest = kwargs.pop("dest", None)
        if dest is None and args and isinstance(args[0], os.PathLike):
            dest, args = args[0], args[1:]
        return build_wheel(Path(dest) if dest is not None else default_dest, *args, **kwargs)

    return cast("WheelFactory", make)
