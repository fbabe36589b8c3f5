"""Files written whole or not at all, copied in the kernel, and hashed on their way to disk.

Every file the tool writes where someone will read it (a bundle, its sidecar and
signature, a report, an exported or compiled lock, a wheel copied to `-d`, a cache entry
or note, the SBOM memo) goes through `atomic_output`: the bytes go to a temporary name in
the destination's folder and are renamed over it only once the writer has finished, so a
crash, a full disk or a refused hash never leaves a half-written file where one is read.

What differs between those writers on purpose is a parameter here, not a copy:

- `durable`: fsync before the rename, so a power cut cannot leave a renamed but empty
  bundle. Off where the bytes are checked again on use or can be made again: cache
  entries (whose sha256 is checked whenever one is packed or copied out, as pip's and
  uv's caches are not fsynced either), the cache's notes, a copy whose verified original
  is in the cache, the SBOM memo.
- `shown`: the path an error names. Never our temporary name: the user is told which of
  their files failed (or which cache), see `errors.name_user_path`.
- `private`: a temporary name made of this process's and thread's ids instead of
  mkstemp's random one, for the cache's small notes, of which a cold build writes a few
  hundred: opening it is half the cost of mkstemp. No other writer of ours uses that
  name at the same time, so it needs no exclusive create.

A wheel placed from the cache into `-d` is linked instead where it can be
(`link_atomic`, one rename as well), and copied where it cannot.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import name_user_path


@contextmanager
def atomic_output(out: Path, *, durable: bool = True, shown: Path | None = None,
                  private: bool = False) -> Iterator[BinaryIO]:
    """A file that appears at `out` (mode 0644, less the umask for a private name) only
    if the block completes.

    The yielded file's `name` is its temporary path, for a child process that writes it
    by path (pip-compile); raising inside the block discards it.
    """
    shown = out if shown is None else shown
    if private:
        tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fd = _create(tmp)
        except OSError as exc:
            name_user_path(exc, shown, tmp)
            raise
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part",
                                            dir=out.parent)
        except OSError as exc:  # it names a random name of ours
            name_user_path(exc, shown, exc.filename)
            raise
        tmp = Path(tmp_name)
    try:
        with open(tmp, "wb", opener=lambda _path, _flags: fd) as fh:
            if not private:
                os.fchmod(fd, 0o644)  # mkstemp's 0600 is for secrets; none of these is one
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        name_user_path(exc, shown, tmp)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def link_atomic(src: Path, out: Path) -> bool:
    """`out` made a second name of `src` (no byte copied), replacing what was there in
    one rename; False where that did not work, for the caller to copy instead.

    For wheels placed from the cache into a user's folder, as uv links from its cache:
    the bytes were checked on their way into the cache or just now. Someone who later
    edits the file in place edits the cache entry too, which is why every use of a cache
    entry hashes it first. Any refusal (another filesystem, no hard links, a platform's
    own error for either) means "copy": the copy then succeeds, or fails with the
    error that names the user's path."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.link")
    try:
        os.link(src, tmp)
        os.replace(tmp, out)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


def _create(tmp: Path) -> int:
    """Open `tmp` for writing, making its folder only when it is missing (one call less
    on the common path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        return os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        return os.open(tmp, flags, 0o644)


def write_atomic(out: Path, data: bytes, *, durable: bool = True, shown: Path | None = None,
                 private: bool = False) -> None:
    """`data` at `out`, whole or not at all (the options are `atomic_output`'s)."""
    with atomic_output(out, durable=durable, shown=shown, private=private) as fh:
        fh.write(data)


def copy_file(src: BinaryIO, out: BinaryIO) -> None:
    """In-kernel where the OS offers it (no bytes through Python), else in 1 MiB chunks."""
    size = os.fstat(src.fileno()).st_size
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(out.fileno(), src.fileno(), offset, size - offset)
            if sent == 0:
                break
            offset += sent
    except AttributeError:  # no os.sendfile on this platform
        pass
    except OSError as exc:  # not for these files (a filesystem that refuses it): copy
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    if offset < size:
        src.seek(offset)
        out.seek(offset)
        shutil.copyfileobj(src, out, 1024 * 1024)


def sha256_file(path: Path) -> tuple[str, int]:
    """(sha256, size) of a file, read in 1 MiB chunks (memory stays flat)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class HashingReader:
    """Reads from a file while hashing, for a reader (tarfile) that takes a file object."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.digest.update(data)
        return data


class HashingWriter:
    """Writes to a file while hashing, so the hash costs no second pass over the bytes."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def flush(self) -> None:  # gzip and tarfile flush the file object they are given
        self._fh.flush()

    def tell(self) -> int:
        return self.size

    def restart(self) -> None:
        """Forget everything written: the server could not resume, so it starts over."""
        self._fh.seek(0)
        self._fh.truncate()
        self.digest = hashlib.sha256()
        self.size = 0
