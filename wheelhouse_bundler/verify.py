"""Read a bundle once, as a stream, and refuse anything but exactly what was built.

The manifest and SHA256SUMS lead the archive, so every later member is checked against
them while it streams: its name (no absolute paths, no `..`, one top folder, no
duplicates), its type (regular files only: no links, devices or FIFOs), its size and its
hash. Nothing is written outside `extract_to`, and the caller discards that folder
unless the whole archive verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import IntegrityError, UsageError
from .manifest import (
    MANIFEST,
    SBOM,
    SUMS,
    from_json,
    own_path,
    parse_sums,
    pylock_path,
    requirements_path,
    wheel_path,
)
from .model import Manifest

CHUNK = 32 * 1024
STREAM_BUFSIZE = 2 * CHUNK
"""Member reads of 32 KiB over a tar stream reading 64 KiB at a time: every buffer stays
under glibc's 128 KiB mmap threshold, so it is reused instead of mapped and faulted in
anew. On a 1 GB bundle this is 1.7x tarfile's 10 KiB default with 1 MiB member reads."""
MAX_META = 64 * 1024 * 1024
MAX_TARGET_FILE = 16 * 1024 * 1024
BOOTSTRAP = "install.py"
"""The stdlib-only restore script every bundle carries (wheelhouse_bundler/bootstrap.py)."""


@dataclass(frozen=True)
class Verified:
    manifest: Manifest
    top: str
    sha256: str
    sidecar: str  # "ok" or "missing"
    members: int
    size: int
    root: Path | None


class _HashingReader:
    """Hashes exactly the bytes the tar reader consumes, so the sidecar check is free."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return "a symlink"
    if info.islnk():
        return "a hard link"
    if info.isdir():
        return "a directory"
    if info.isfifo():
        return "a FIFO"
    if info.ischr() or info.isblk():
        return "a device"
    return "not a regular file"


def _split(name: str, top: str | None) -> tuple[str, str]:
    """(top, relative path) of a safe member name, or an IntegrityError saying why not."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise IntegrityError(f"member {name!r}: absolute or non-POSIX path")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts) or len(parts) < 2:
        raise IntegrityError(f"member {name!r}: unsafe path (empty, '.', '..' or no folder)")
    if top is not None and parts[0] != top:
        raise IntegrityError(f"member {name!r}: outside the bundle's top folder {top!r}")
    return parts[0], posixpath.join(*parts[1:])


def _read_small(tar: tarfile.TarFile, info: tarfile.TarInfo, limit: int) -> bytes:
    if info.size > limit:
        raise IntegrityError(f"member {info.name!r}: {info.size} bytes, over the {limit} limit")
    fh = tar.extractfile(info)
    assert fh is not None
    data = fh.read()
    if len(data) != info.size:
        raise IntegrityError(f"member {info.name!r}: truncated")
    return data


Expected = dict[str, tuple[int | None, str | None]]


def _expected_members(manifest: Manifest, raw: bytes = b"{}") -> Expected:
    """Every path the manifest accounts for, with size and sha256 where it records them:
    wheels, target files, the bootstrap `install.py`, and tool wheels (uv) listed under
    the manifest's `tools` key (`raw` is the manifest's JSON text)."""
    expected: Expected = {wheel_path(f.filename): (f.size, f.sha256) for f in manifest.files}
    for t in manifest.targets:
        expected[requirements_path(t.name)] = (None, None)
        expected[pylock_path(t.name)] = (None, None)
        if any(f.own for f in manifest.files_for(t.name)):
            expected[own_path(t.name)] = (None, None)
    expected[BOOTSTRAP] = (None, None)
    expected[SBOM] = (None, None)
    try:
        tools = json.loads(raw).get("tools", [])
        for tool in tools:
            expected[str(tool["path"])] = (int(tool["size"]), str(tool["sha256"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{MANIFEST}: malformed tools list ({exc})") from exc
    return expected


def _open_output(root: Path, rel: str) -> BinaryIO:
    dest = root.joinpath(*rel.split("/"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o644)
    return os.fdopen(fd, "wb")


def verify(path: Path, extract_to: Path | None = None) -> Verified:
    """Check the whole bundle; with `extract_to`, its files land there as they verify."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below, streamed once
    except OSError as exc:
        raise UsageError(f"{path}: cannot open: {exc.strerror}") from exc
    with raw:
        reader = _HashingReader(raw)
        try:
            result = _walk(path, reader, extract_to)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, EOFError) \
                    and exc.errno is not None:
                raise
            raise IntegrityError(f"{path}: truncated or corrupt archive ({exc})") from exc
        reader.drain()
    digest = reader.digest.hexdigest()
    sidecar = path.with_name(path.name + ".sha256")
    status = "missing"
    if sidecar.is_file():
        want = sidecar.read_text(errors="replace").split()[:1]
        if want != [digest]:
            raise IntegrityError(f"{path}: sha256 {digest} does not match {sidecar.name} "
                                 f"({want[0] if want else 'empty'})")
        status = "ok"
    manifest, top, members, size = result
    root = extract_to / top if extract_to else None
    return Verified(manifest, top, digest, status, members, size, root)


def _walk(path: Path, reader: _HashingReader, extract_to: Path | None
          ) -> tuple[Manifest, str, int, int]:
    top: str | None = None
    manifest: Manifest | None = None
    sums: dict[str, str] = {}
    expected: Expected = {}
    meta_digest = ""
    seen: set[str] = set()
    total = 0
    with tarfile.open(fileobj=reader, mode="r|*",  # type: ignore[call-overload]
                      bufsize=STREAM_BUFSIZE) as tar:
        for index, info in enumerate(tar):
            top, rel = _split(info.name, top)
            if rel in seen:
                raise IntegrityError(f"member {info.name!r}: appears twice")
            seen.add(rel)
            if not info.isreg():
                raise IntegrityError(f"member {info.name!r}: {_kind(info)}, not allowed")
            if index == 0:
                if rel != MANIFEST:
                    raise IntegrityError(f"{path}: first member must be {MANIFEST}, "
                                         f"found {info.name!r}")
                data = _read_small(tar, info, MAX_META)
                manifest = from_json(data)
                expected = _expected_members(manifest, data)
                meta_digest = hashlib.sha256(data).hexdigest()
                _save(extract_to, top, rel, data)
                continue
            if index == 1:
                if rel != SUMS:
                    raise IntegrityError(f"{path}: second member must be {SUMS}, "
                                         f"found {info.name!r}")
                data = _read_small(tar, info, MAX_META)
                sums = parse_sums(data)
                _check_sums_cover(sums, expected, meta_digest)
                _save(extract_to, top, rel, data)
                continue
            total += _check_member(tar, info, rel, sums, expected, extract_to, top)
    if manifest is None or not sums:
        raise IntegrityError(f"{path}: no {MANIFEST} and {SUMS} at the start; not a bundle")
    missing = sorted(set(expected) - seen)
    if missing:
        raise IntegrityError(f"{path}: missing member(s): {', '.join(missing[:5])}"
                             + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    assert top is not None
    return manifest, top, len(seen), total


def _check_sums_cover(sums: dict[str, str], expected: Expected, meta_digest: str) -> None:
    if sums.get(MANIFEST) != meta_digest:
        raise IntegrityError(f"{MANIFEST}: sha256 {meta_digest} does not match {SUMS}")
    extra = sorted(set(sums) - set(expected) - {MANIFEST})
    if extra:
        raise IntegrityError(f"{SUMS} lists {extra[0]!r}, which the manifest does not")
    unlisted = sorted(set(expected) - set(sums))
    if unlisted:
        raise IntegrityError(f"{SUMS} does not list {unlisted[0]!r}")
    for rel, (_, sha) in sorted(expected.items()):
        if sha is not None and sums[rel] != sha:
            raise IntegrityError(f"{rel}: {SUMS} says sha256 {sums[rel]}, "
                                 f"the manifest says {sha}")


def _check_member(tar: tarfile.TarFile, info: tarfile.TarInfo, rel: str, sums: dict[str, str],
                  expected: Expected, extract_to: Path | None, top: str) -> int:
    if rel not in expected:
        raise IntegrityError(f"member {info.name!r}: not in the manifest")
    want_size = expected[rel][0]
    if want_size is not None and info.size != want_size:
        raise IntegrityError(f"member {info.name!r}: {info.size} bytes, manifest says "
                             f"{want_size}")
    if want_size is None and info.size > MAX_TARGET_FILE:
        raise IntegrityError(f"member {info.name!r}: {info.size} bytes, over the "
                             f"{MAX_TARGET_FILE} limit")
    fh = tar.extractfile(info)
    assert fh is not None
    digest = hashlib.sha256()
    out = _open_output(extract_to / top, rel) if extract_to else None
    size = 0
    try:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if out:
                out.write(chunk)
    finally:
        if out:
            out.close()
    if size != info.size:
        raise IntegrityError(f"member {info.name!r}: truncated ({size} of {info.size} bytes)")
    if digest.hexdigest() != sums[rel]:
        raise IntegrityError(f"member {info.name!r}: sha256 {digest.hexdigest()} does not "
                             f"match {SUMS} ({sums[rel]})")
    return size


def _save(extract_to: Path | None, top: str, rel: str, data: bytes) -> None:
    if extract_to is not None:
        with _open_output(extract_to / top, rel) as out:
            out.write(data)
