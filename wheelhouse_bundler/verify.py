"""Read a bundle once, as a stream, and refuse anything but exactly what was built.

The manifest and SHA256SUMS lead the archive, so every later member is checked against
them while it streams: its name (no absolute paths, no `..`, one top folder, no
duplicates, not even ones differing only in case), its type (regular files only: no
links, devices or FIFOs), its size and its hash, before any of its data is read. The
tar itself is read by `tarstream` (strict framing, bounded decompression). Nothing is
written outside `extract_to`, and the caller discards that folder unless the whole
archive verified.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import queue
import tarfile
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from . import signing
from .bundle import sidecar_path
from .errors import IntegrityError, UsageError
from .manifest import MANIFEST, SUMS, from_json, layout, parse_sums
from .model import Manifest
from .tarstream import MAX_TAIL, Member, TarStream, decompressed

CHUNK = 1024 * 1024
AHEAD = 8  # chunks read ahead of the tar walk: 8 MiB at most in flight
MAX_META = 64 * 1024 * 1024
MAX_TARGET_FILE = 16 * 1024 * 1024
PER_MEMBER = 8 * 1024
"""Header, pax header and padding allowance per member when bounding the bytes read."""
T = TypeVar("T")


@dataclass(frozen=True)
class Verified:
    manifest: Manifest
    top: str
    sha256: str
    sidecar: str  # "ok" or "missing"
    members: int
    size: int
    root: Path | None
    signature: signing.Signature | None = None  # set by verify_signed
    order: tuple[str, ...] = ()  # member paths below the top folder, as the tar holds them
    mtime: int | None = None  # the one mtime every member has (None: they differ)


class _HashingReader:
    """Reads the bundle ahead on a second thread that also hashes it for the sidecar.

    hashlib releases the GIL while it hashes, so the archive's hash (this thread) and the
    members' hashes (the tar walk) run on two cores: verify then streams near the speed of
    one hash instead of half of it. The read-ahead is bounded (AHEAD chunks), so memory
    stays flat, and every byte of the file is read exactly once.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=AHEAD)
        self._chunk = memoryview(b"")
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="verify-read", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._fh.read(CHUNK)
                self.digest.update(data)
                self.size += len(data)
                self._put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the reading thread, raised there
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _next(self) -> bool:
        """Make the next chunk current; False at the end of the file."""
        if self._done:
            return False
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
            return False
        self._chunk = memoryview(item)
        return True

    def readinto(self, buffer: memoryview) -> int:
        if not self._chunk and not self._next():
            return 0
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def read(self, n: int = -1) -> bytes:
        if not self._chunk and not self._next():
            return b""
        n = len(self._chunk) if n < 0 else min(n, len(self._chunk))
        data = bytes(self._chunk[:n])
        self._chunk = self._chunk[n:]
        return data

    def peek(self, n: int = 0) -> bytes:
        if not self._chunk:
            self._next()
        return bytes(self._chunk[: max(n, 1)])

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole file."""
        while self._next():
            self._chunk = memoryview(b"")
        self._thread.join()

    def close(self) -> None:
        """Stop the read-ahead (after a refusal, the rest of the file is never read)."""
        self._stop.set()
        self._thread.join()


def _article(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def unsafe_path(name: str) -> str | None:
    """Why a member path cannot be written as-is on every platform, or None if it can."""
    if name.startswith("/") or "\\" in name or ":" in name:
        return "absolute or non-POSIX path (leading '/', backslash or drive colon)"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "control character (NUL, newline, ...) in the name"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not UTF-8"
    if any(p in ("", ".", "..") for p in name.split("/")):
        return "unsafe path (empty, '.' or '..' component)"
    return None


def _split(name: str, top: str | None) -> tuple[str, str]:
    """(top, relative path) of a safe member name, or an IntegrityError saying why not."""
    why = unsafe_path(name)
    if why is not None:
        raise IntegrityError(f"member {name!r}: {why}")
    parts = name.split("/")
    if len(parts) < 2:
        raise IntegrityError(f"member {name!r}: not inside the bundle's top folder")
    if top is not None and parts[0] != top:
        raise IntegrityError(f"member {name!r}: outside the bundle's top folder {top!r}")
    return parts[0], posixpath.join(*parts[1:])


def _check_unique(name: str, rel: str, seen: set[str], folded: dict[str, str]) -> None:
    """Refuse a second member with the same path, or one that only differs in case or
    Unicode normalisation: on macOS or Windows file systems those are the same file, so
    extraction would let the later member replace the earlier, already verified one."""
    if rel in seen:
        raise IntegrityError(f"member {name!r}: appears twice")
    key = unicodedata.normalize("NFC", rel).casefold()
    if key in folded:
        raise IntegrityError(f"member {name!r}: same name as {folded[key]!r} on a "
                             "case-insensitive file system")
    seen.add(rel)
    folded[key] = rel


def read_small(stream: TarStream, member: Member, limit: int) -> bytes:
    if member.size > limit:
        raise IntegrityError(f"member {member.name!r}: {member.size} bytes, over the "
                             f"{limit} limit")
    return stream.read_small(member)


Expected = dict[str, tuple[int | None, str | None]]


def _expected_members(manifest: Manifest) -> Expected:
    """Every path the manifest accounts for but itself and SHA256SUMS (manifest.layout),
    with size and sha256 where it records them (wheels and tool wheels)."""
    expected: Expected = {p.path: (p.size, p.sha256) for p in layout(manifest)
                          if p.kind not in ("manifest", "sums")}
    for rel in expected:  # install opens these paths: they must be as safe as members
        why = unsafe_path(rel)
        if why is not None:
            raise IntegrityError(f"{MANIFEST}: path {rel!r}: {why}")
    return expected


def _open_output(root: Path, rel: str) -> BinaryIO:
    dest = root.joinpath(*rel.split("/"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o644)
    return os.fdopen(fd, "wb")


def read_archive(path: Path, walk: Callable[[Path, TarStream], T]) -> tuple[T, str, str]:
    """Stream the tar at `path` once through `walk`: (its result, the file's sha256, the
    sidecar's status). The one way an archive from elsewhere is opened: bundles here,
    deltas in delta.py. The whole file is hashed, read to its end, and checked against its
    `.sha256` sidecar; a broken archive is an IntegrityError naming `path`.
    """
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below, streamed once
    except OSError as exc:
        raise UsageError(f"{path}: cannot open: {exc.strerror}") from exc
    with raw:
        reader = _HashingReader(raw)
        try:
            # Until the walk knows what the archive holds, a little metadata at most.
            result = walk(path, TarStream(decompressed(reader), limit=MAX_META + PER_MEMBER))
            reader.drain()
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, EOFError) \
                    and exc.errno is not None:
                raise
            raise IntegrityError(f"{path}: truncated or corrupt archive ({exc})") from exc
        finally:
            reader.close()
    digest = reader.digest.hexdigest()
    return result, digest, check_sidecar(path, digest)


def verify(path: Path, extract_to: Path | None = None) -> Verified:
    """Check the whole bundle; with `extract_to`, its files land there as they verify."""
    walked, digest, status = read_archive(
        path, lambda p, stream: _walk(p, stream, extract_to))
    manifest, top, order, mtimes, size = walked
    root = extract_to / top if extract_to else None
    return Verified(manifest, top, digest, status, len(order), size, root,
                    order=tuple(order), mtime=mtimes.pop() if len(mtimes) == 1 else None)


def check_entry(member: Member, top: str | None, seen: set[str], folded: dict[str, str]
                ) -> tuple[str, str]:
    """(top, relative path) of a member that is a regular file with a safe name inside
    the one top folder, seen once: the checks every member of a bundle or delta passes
    before a byte of its data is read."""
    if member.kind != "file":
        raise IntegrityError(f"member {member.name!r}: {_article(member.kind)}, "
                             "not allowed (regular files only)")
    top, rel = _split(member.name, top)
    _check_unique(member.name, rel, seen, folded)
    return top, rel


def _walk(path: Path, stream: TarStream, extract_to: Path | None
          ) -> tuple[Manifest, str, list[str], set[int], int]:
    top: str | None = None
    manifest: Manifest | None = None
    sums: dict[str, str] = {}
    expected: Expected = {}
    meta_digest = ""
    seen: set[str] = set()
    folded: dict[str, str] = {}
    order: list[str] = []
    mtimes: set[int] = set()
    total = 0
    for index, member in enumerate(stream):
        # Type and name first: a refused member's data is never read.
        top, rel = check_entry(member, top, seen, folded)
        order.append(rel)
        mtimes.add(member.mtime)
        if index == 0:
            if rel != MANIFEST:
                raise IntegrityError(f"{path}: first member must be {MANIFEST}, "
                                     f"found {member.name!r}")
            data = read_small(stream, member, MAX_META)
            manifest = from_json(data)
            expected = _expected_members(manifest)
            stream.limit = budget(stream.consumed, expected)
            meta_digest = hashlib.sha256(data).hexdigest()
            save_member(extract_to, top, rel, data)
            continue
        if index == 1:
            if rel != SUMS:
                raise IntegrityError(f"{path}: second member must be {SUMS}, "
                                     f"found {member.name!r}")
            data = read_small(stream, member, MAX_META)
            sums = parse_sums(data)
            _check_sums_cover(sums, expected, meta_digest)
            save_member(extract_to, top, rel, data)
            continue
        total += check_member(stream, member, rel, sums, expected, extract_to, top)
    if manifest is None or not sums:
        raise IntegrityError(f"{path}: no {MANIFEST} and {SUMS} at the start; not a bundle")
    missing = sorted(set(expected) - seen)
    if missing:
        raise IntegrityError(f"{path}: missing member(s): {', '.join(missing[:5])}"
                             + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    assert top is not None
    return manifest, top, order, mtimes, total


def budget(consumed: int, expected: Expected) -> int:
    """The most tar bytes a bundle with this manifest can take: its members' sizes (the
    target files at their cap), SHA256SUMS, headers and the end padding. Reading stops
    beyond it, however well the rest compresses."""
    data = sum(size if size is not None else MAX_TARGET_FILE for size, _ in expected.values())
    return consumed + MAX_META + data + PER_MEMBER * (len(expected) + 1) + MAX_TAIL


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


def check_member(stream: TarStream, member: Member, rel: str, sums: dict[str, str],
                 expected: Expected, extract_to: Path | None, top: str,
                 listing: tuple[str, str] = ("manifest", SUMS)) -> int:
    """Stream one member (into `extract_to` when given), refusing it unless `expected`
    lists it with this size and `sums` with this sha256. `listing` names the two
    lists in messages: a bundle's manifest and SHA256SUMS, a delta's delta.json."""
    if rel not in expected:
        raise IntegrityError(f"member {member.name!r}: not in the {listing[0]}")
    want_size = expected[rel][0]
    if want_size is not None and member.size != want_size:
        raise IntegrityError(f"member {member.name!r}: {member.size} bytes, {listing[0]} says "
                             f"{want_size}")
    if want_size is None and member.size > MAX_TARGET_FILE:
        raise IntegrityError(f"member {member.name!r}: {member.size} bytes, over the "
                             f"{MAX_TARGET_FILE} limit")
    digest = hashlib.sha256()
    out = _open_output(extract_to / top, rel) if extract_to else None
    try:
        if out is None:
            size = stream.copy(member, digest.update)
        else:
            def sink(chunk: memoryview) -> None:
                digest.update(chunk)
                out.write(chunk)

            size = stream.copy(member, sink)
    finally:
        if out:
            out.close()
    if digest.hexdigest() != sums[rel]:
        raise IntegrityError(f"member {member.name!r}: sha256 {digest.hexdigest()} does not "
                             f"match {listing[1]} ({sums[rel]})")
    return size


def save_member(extract_to: Path | None, top: str, rel: str, data: bytes) -> None:
    if extract_to is not None:
        with _open_output(extract_to / top, rel) as out:
            out.write(data)


MAX_SIDECAR = 4096  # one line: a digest, two spaces, a file name


def check_sidecar(path: Path, digest: str) -> str:
    """`ok` when `<bundle>.sha256` holds this digest for this bundle's name; `missing`
    when there is none. Anything else there is refused (exit 3): a sidecar that names
    another file vouches for nothing here, and a folder in its place is not an absent
    sidecar but something in the way of one."""
    sidecar = sidecar_path(path)
    if not sidecar.exists() and not sidecar.is_symlink():
        return "missing"
    if not sidecar.is_file():
        raise IntegrityError(f"{sidecar}: not a file; the sidecar must be the bundle's "
                             "`sha256sum` line")
    with open(sidecar, "rb") as fh:
        text = fh.read(MAX_SIDECAR).decode("utf-8", "replace")
    fields = text.strip().split(None, 1)
    want = fields[0] if fields else "empty"
    if want != digest:
        raise IntegrityError(f"{path}: sha256 {digest} does not match {sidecar.name} "
                             f"({want[:64]})")
    named = fields[1].splitlines()[0].strip() if len(fields) > 1 else ""
    named = named.removeprefix("*").removeprefix("./")  # sha256sum's binary mark
    if named != path.name:
        raise IntegrityError(f"{sidecar}: names {named[:100] or 'no file'!r}, not this "
                             f"bundle {path.name!r}")
    return "ok"


def verify_signed(path: Path, extract_to: Path | None = None,
                  trust: signing.Trust | None = None) -> Verified:
    """The signature first (ssh-keygen reads the file), then the streaming content check.

    Checking the signature before a single member is read means a bundle from an unknown
    signer never gets as far as the extraction folder. The file must be the same one
    (device, inode, size, mtime) after both passes, so a swap in between is caught.
    """
    before = _stamp(path)
    signature = signing.check(path, trust or signing.Trust())
    result = verify(path, extract_to)
    if signature is not None and _stamp(path) != before:
        raise IntegrityError(f"{path}: changed while it was being verified")
    return dataclasses.replace(result, signature=signature)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
