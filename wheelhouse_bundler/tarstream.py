"""A strict, one-pass tar reader for bundles that may have been tampered with.

Why not `tarfile.open(mode="r|*")` alone: its stream mode silently takes trailing garbage
or a header cut in half for the end of the archive, applies pax global headers and GNU
sparse maps, decompresses without bounds, and copies each data block three or four times
(verify ran at about a third of hashlib's speed through it). Here tarfile parses only the
512-byte ustar header (`TarInfo.frombuf`, its public parser); the rest is ours:

* member data is read with `readinto` into one reused buffer, so hashing and writing see
  the bytes once, with no per-byte Python work;
* a pax extended header (`x`) may set only `path`, `size` and harmless metadata keys,
  each once; global headers, GNU long names and sparse files are reported as such (the
  caller refuses them);
* the archive must end with a zero block followed by nothing but a little zero padding:
  a cut header, missing end marker or trailing data is an error naming the last member;
* every decompressed byte counts against `limit` (set by the caller once it knows what
  the archive should hold), so a decompression bomb stops as soon as it overshoots.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from .errors import IntegrityError

BLOCK = tarfile.BLOCKSIZE
CHUNK = 1024 * 1024
MAX_PAX = 64 * 1024
"""A pax header names one member; ours are a few hundred bytes."""
MAX_TAIL = 64 * 1024
"""Zero padding allowed after the end-of-archive block (tar writers pad to 10 KiB)."""
_PAX_IGNORED = frozenset({"mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "comment"})
_KINDS = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "contiguous file",
    tarfile.LNKTYPE: "hard link", tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
    tarfile.DIRTYPE: "directory", tarfile.FIFOTYPE: "FIFO",
    tarfile.GNUTYPE_SPARSE: "sparse file", tarfile.XGLTYPE: "pax global header",
    tarfile.GNUTYPE_LONGNAME: "GNU long name", tarfile.GNUTYPE_LONGLINK: "GNU long link",
    tarfile.SOLARIS_XHDTYPE: "Solaris extended header",
}
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...
    def readinto(self, buffer: memoryview, /) -> int: ...
    def peek(self, n: int = 0, /) -> bytes: ...


@dataclass(frozen=True)
class Member:
    """One archive entry: its final name (pax `path` applied), kind and data size, and the
    header's mtime (a delta records it to rebuild the bundle byte for byte)."""

    name: str
    kind: str  # "file" for a plain regular file; anything else is refused by verify
    size: int
    mtime: int = 0


def decompressed(raw: Readable) -> Readable:
    """The tar bytes of `raw`, unwrapping gzip, bzip2 or xz as `r|*` would."""
    head = raw.peek(6)[:6]
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type,return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)  # type: ignore[arg-type,return-value]
    if head.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00")):
        return lzma.LZMAFile(raw)  # type: ignore[arg-type,return-value]
    return raw


class TarStream:
    """Iterate members of a tar stream once; read each member's data with `copy`."""

    def __init__(self, source: Readable, limit: int | None = None) -> None:
        self._src = source
        self._buf = memoryview(bytearray(CHUNK))
        self.limit = limit  # most decompressed bytes to read; None: no bound yet
        self.consumed = 0
        self.last: str | None = None  # the member being or last read, for messages
        self._pending = 0  # data + padding of the current member not yet read

    def _where(self) -> str:
        return f"member {self.last!r}" if self.last else "archive start"

    def _fill(self, view: memoryview) -> int:
        """Read into `view` until full or EOF; the only place bytes are pulled in."""
        want = len(view)
        if self.limit is not None and self.consumed + want > self.limit:
            raise IntegrityError(f"{self._where()}: the archive runs past {self.limit} bytes, "
                                 "more than the manifest accounts for; stopped reading "
                                 "(decompression bomb?)")
        got = 0
        try:
            while got < want:
                n = self._src.readinto(view[got:])
                if not n:
                    break
                got += n
        except _DECOMPRESSION_ERRORS as exc:
            raise IntegrityError(f"{self._where()}: truncated or corrupt compressed data "
                                 f"({exc or type(exc).__name__})") from exc
        except OSError as exc:
            if exc.errno is not None:  # a real read error of the disk: not the bundle's fault
                raise
            raise IntegrityError(f"{self._where()}: corrupt compressed data ({exc})") from exc
        self.consumed += got
        return got

    def _read(self, n: int) -> bytes:
        data = bytearray(n)
        return bytes(data[: self._fill(memoryview(data))])

    def _header(self) -> tarfile.TarInfo | None:
        """The next ustar header, or None at a proper end of archive."""
        block = self._read(BLOCK)
        after = f"after member {self.last!r}" if self.last else "at the start"
        if not block and self.last is None:
            raise IntegrityError("not a tar archive (empty)")
        if not block:
            raise IntegrityError(f"archive truncated {after}: no end-of-archive marker")
        if len(block) < BLOCK:
            raise IntegrityError(f"archive truncated {after}: cut inside a header")
        if block.count(0) == BLOCK:
            self._check_tail()
            return None
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            if self.last is None:
                raise IntegrityError("not a tar archive (no valid header at the start)"
                                     ) from None
            raise IntegrityError(f"{after}: data that is not a tar header (corruption or "
                                 "trailing garbage)") from None
        name_field = block[:100]
        if b"\0" in name_field and name_field.split(b"\0", 1)[1].strip(b"\0"):
            raise IntegrityError(f"member {info.name!r}: name field hides bytes after a NUL")
        if info.size < 0:
            raise IntegrityError(f"member {info.name!r}: negative size")
        return info

    def _check_tail(self) -> None:
        """After the first zero block: only zero padding, and not much of it."""
        tail = 0
        while chunk := self._read(BLOCK * 16):
            if chunk.count(0) != len(chunk):
                raise IntegrityError(f"after the end-of-archive marker (after member "
                                     f"{self.last!r}): trailing data")
            tail += len(chunk)
            if tail > MAX_TAIL:
                raise IntegrityError(f"after the end-of-archive marker (after member "
                                     f"{self.last!r}): over {MAX_TAIL} bytes of padding")

    def _pax(self, info: tarfile.TarInfo) -> dict[str, str]:
        if info.size > MAX_PAX:
            raise IntegrityError(f"pax header after member {self.last!r}: {info.size} bytes, "
                                 f"over the {MAX_PAX} limit")
        data = self._read(info.size + (-info.size % BLOCK))[: info.size]
        if len(data) < info.size:
            raise IntegrityError(f"archive truncated inside a pax header after member "
                                 f"{self.last!r}")
        return parse_pax(data, self.last)

    def __iter__(self) -> Iterator[Member]:
        while True:
            if self._pending:
                self._skip()
            info = self._header()
            if info is None:
                return
            overrides: dict[str, str] = {}
            if info.type == tarfile.XHDTYPE:
                overrides = self._pax(info)
                info = self._header()
                if info is None or info.type == tarfile.XHDTYPE:
                    raise IntegrityError(f"pax header after member {self.last!r} is not "
                                         "followed by a member")
            name = overrides.get("path", info.name)
            size = int(overrides["size"]) if "size" in overrides else info.size
            kind = _KINDS.get(info.type, f"entry of type {info.type!r}")
            if kind == "file" and info.sparse is not None:
                kind = "sparse file"
            self.last = name
            self._pending = size + (-size % BLOCK)
            yield Member(name, kind, size, int(info.mtime))

    def copy(self, member: Member, sink: Callable[[memoryview], object]) -> int:
        """Pass the member's data to `sink` chunk by chunk; returns the bytes read."""
        left = member.size
        while left:
            n = self._fill(self._buf[: min(left, CHUNK)])
            if n:
                sink(self._buf[:n])
            left -= n
            if left and not n:
                raise IntegrityError(f"member {member.name!r}: truncated "
                                     f"({member.size - left} of {member.size} bytes)")
        pad = -member.size % BLOCK
        if pad:
            padding = self._read(pad)
            if len(padding) < pad:
                raise IntegrityError(f"member {member.name!r}: truncated (in its padding)")
            if padding.count(0) != pad:
                raise IntegrityError(f"member {member.name!r}: non-zero padding after its data")
        self._pending = 0
        return member.size

    def read_small(self, member: Member) -> bytes:
        out = bytearray()
        self.copy(member, out.extend)
        return bytes(out)

    def _skip(self) -> None:
        while self._pending:
            n = self._fill(self._buf[: min(self._pending, CHUNK)])
            if not n:
                raise IntegrityError(f"member {self.last!r}: truncated")
            self._pending -= n


def parse_pax(data: bytes, after: str | None) -> dict[str, str]:
    """Records `LEN key=value\\n`; only keys we can honour or safely ignore, each once."""
    where = f"pax header after member {after!r}" if after else "pax header at the start"
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 20)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise IntegrityError(f"{where}: malformed record")
        end = pos + int(digits)
        record = data[space + 1:end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise IntegrityError(f"{where}: malformed record")
        raw_key, _, raw_value = record[:-1].partition(b"=")
        try:
            key, value = raw_key.decode("ascii"), raw_value.decode("utf-8")
        except UnicodeDecodeError:
            raise IntegrityError(f"{where}: a key or value is not UTF-8") from None
        if key in out:
            raise IntegrityError(f"{where}: key {key!r} appears twice")
        if key not in ("path", "size") and key not in _PAX_IGNORED:
            raise IntegrityError(f"{where}: key {key!r} is not allowed in a bundle")
        if key == "size" and not value.isdigit():
            raise IntegrityError(f"{where}: size {value!r} is not a number")
        out[key] = value
        pos = end
    return out
