"""The tarball: written deterministically, atomically, with a sha256 sidecar.

Same members in, same bytes out: a fixed member order, fixed mtime (SOURCE_DATE_EPOCH
when set), root ownership with no names, normalised modes, PAX format, and a gzip header
with neither time nor name. The tar goes to a temporary name beside the output and is
renamed only once complete, so a failure never leaves a partial bundle in place.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import DamagedFile, UsageError
from .files import HashingReader, HashingWriter, atomic_output

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Member:
    """A file to put in the bundle: bytes in memory or a path on disk.

    `sha256`, for a file on disk, is what its bytes must hash to: they are hashed as they
    are packed (the one read they get), so a damaged cache entry never reaches a bundle.
    """

    path: str
    data: bytes | None = None
    source: Path | None = None
    sha256: str | None = None

    def size(self) -> int:
        return len(self.data) if self.data is not None else self.source.stat().st_size  # type: ignore[union-attr]

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self.data is not None:
            import io

            yield io.BytesIO(self.data)
        else:
            assert self.source is not None
            with open(self.source, "rb") as fh:
                yield fh


@dataclass(frozen=True)
class Framing:
    """Everything besides the members that decides a bundle's bytes: the top folder, the
    one mtime, and whether it is gzipped. A build takes them from the output name and
    SOURCE_DATE_EPOCH; a merge (delta.py) takes them from the delta, so the bundle it
    rebuilds is byte for byte the one that was built, whatever the output is called."""

    top: str
    mtime: int
    gzip: bool

    @classmethod
    def for_output(cls, out: Path) -> Framing:
        return cls(top_folder(out), source_date_epoch(), is_gzip(out))


def top_folder(out: Path) -> str:
    """The bundle's single top folder, named after the output file."""
    name = out.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or "bundle"
    return name


def is_gzip(out: Path) -> bool:
    return out.name.endswith((".tar.gz", ".tgz"))


def source_date_epoch() -> int:
    try:
        return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        return 0


def sidecar_path(bundle: Path) -> Path:
    """`<bundle>.sha256`: the tarball's digest beside it, as `sha256sum -c` reads it."""
    return bundle.with_name(bundle.name + ".sha256")


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names: the same path, a symlink to it, or a hard link."""
    try:
        return os.path.samefile(a, b)  # st_dev and st_ino, after following links
    except OSError:  # one of them does not exist (yet): then they are not one file
        return False


def refuse_overwriting(outputs: Iterable[Path], inputs: Iterable[tuple[str, Path | None]]
                       ) -> None:
    """Refuse (exit 2) before anything is written when an output is one of the inputs.

    `export poetry.lock -o poetry.lock` replaced the lock with requirements text; through
    a symlink or a hard link the names differ and the file is still the same one.
    `inputs` are (role, path) pairs, the role named in the message; None is skipped.
    """
    given = [(role, path) for role, path in inputs if path is not None]
    for out in outputs:
        for role, path in given:
            if _same_file(out, path):
                shown = "" if str(out) == str(path) else f" ({path})"
                raise UsageError(f"{out}: that is the {role}{shown}, which writing there "
                                 "would destroy; choose another output")


def check_writable(out: Path, option: str) -> None:
    """Refuse (exit 2) an output that `files.atomic_output` could not write, before the work.

    A report written after a ten-minute drill must not be what fails: this makes and
    removes a temporary file in the nearest folder that exists on the way to `out`.
    """
    if out.is_dir():
        raise UsageError(f"{option} {out}: is a folder; give a file name")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {out}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise UsageError(f"{option} {out}: cannot write in {folder}: "
                         f"{exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def write(out: Path, members: list[Member], framing: Framing | None = None) -> str:
    """Write the bundle and its `.sha256` sidecar; returns the tarball's sha256.

    A member whose bytes do not hash to its `sha256` stops the write (DamagedFile) and
    leaves nothing at `out`. The sidecar is written before the tar is renamed into place:
    should it fail (its path a folder, the disk full), no bundle appears at `out` either.
    `framing` defaults to the one `out`'s name and SOURCE_DATE_EPOCH give.
    """
    framing = framing or Framing.for_output(out)
    _check_portable_names(out, members)
    sidecar = sidecar_path(out)
    sidecar_written = False
    try:
        with atomic_output(out) as raw:
            digest = write_tar(raw, members, framing)
            with atomic_output(sidecar) as fh:
                fh.write(f"{digest}  {out.name}\n".encode())
            sidecar_written = True
    except BaseException:
        if sidecar_written:  # the tar's own rename failed after the sidecar appeared
            sidecar.unlink(missing_ok=True)
        raise
    return digest


def write_tar(raw: BinaryIO, members: list[Member], framing: Framing) -> str:
    """The deterministic tar (gzipped when `framing.gzip`) into `raw`; its sha256.

    The one writer of bundle bytes: `write` for builds and deltas, delta.merge for the
    rebuild, which must come out identical.
    """
    hashing = HashingWriter(raw)
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0) \
        if framing.gzip else None
    # "w", not the stream mode "w|": the bytes are the same, but the stream mode copies
    # each member through a 10 kB buffer, and here 1 MiB reads go straight to the writer
    # (what pays for hashing each member on its way in).
    with tarfile.open(fileobj=gz or hashing, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.copybufsize = CHUNK
        for member in members:
            info = tarfile.TarInfo(f"{framing.top}/{member.path}")
            info.size = member.size()
            info.mtime = framing.mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with member.open() as fh:
                if member.sha256 is None:
                    tar.addfile(info, fh)
                    continue
                reader = HashingReader(fh)
                tar.addfile(info, reader)
            if (got := reader.digest.hexdigest()) != member.sha256:
                name = member.path.rsplit("/", 1)[-1]
                raise DamagedFile.wrong_hash(name, got, member.sha256)
    if gz is not None:
        gz.close()
    return hashing.digest.hexdigest()


def _check_portable_names(out: Path, members: list[Member]) -> None:
    """Refuse what verify would refuse: two paths that are one file on a case-insensitive
    (or normalising) file system, e.g. target names `Bastion` and `bastion`."""
    seen: dict[str, str] = {}
    for member in members:
        key = unicodedata.normalize("NFC", member.path).casefold()
        if key in seen:
            raise UsageError(f"{out}: {seen[key]!r} and {member.path!r} would be one file on "
                             "a case-insensitive file system; rename one")
        seen[key] = member.path

