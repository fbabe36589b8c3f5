"""A content-addressed store: bytes live under their sha256 and nowhere else.

A file enters the store only after its hash is checked, via a temporary name in the
same folder and one atomic rename, so a crash or a wrong byte never leaves a cache
entry that lies. Anything already present is trusted by construction.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import IntegrityError, UsageError, name_user_path

CHUNK = 1024 * 1024


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wheelhouse-bundler"


def sha256_file(path: Path) -> str:
    """Streamed, so memory stays flat whatever the file's size."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _put(path: Path, data: bytes, shown: Path) -> None:
    """A small file, whole or not at all: written under a name private to this process
    and thread, then renamed into place (cheaper than mkstemp, which matters when a
    cold build records a few hundred of these). Errors name `shown` (the cache folder)
    rather than the private name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        name_user_path(exc, shown, tmp)
        raise


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

    def tell(self) -> int:
        return self.size

    def restart(self) -> None:
        """Forget everything written: the server could not resume, so it starts over."""
        self._fh.seek(0)
        self._fh.truncate()
        self.digest = hashlib.sha256()
        self.size = 0


class Cache:
    def __init__(self, root: Path) -> None:
        # A file where the folder should be would read as an empty cache: --offline would
        # call every wheel missing (a "network error") instead of naming the real mistake.
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root}: the cache folder is a file, not a folder")
        self.root = root
        self._partials: set[Path] = set()
        self._partials_lock = threading.Lock()

    def discard_partials(self) -> None:
        """Remove the temporary files of writes still under way (on an interrupt, whose
        blocked workers are abandoned rather than awaited)."""
        with self._partials_lock:
            for tmp in self._partials:
                tmp.unlink(missing_ok=True)
            self._partials.clear()

    def path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def get(self, sha256: str) -> Path | None:
        p = self.path(sha256)
        return p if p.is_file() else None

    def remember(self, sha256: str, filename: str, origin: str) -> None:
        """Keep the file's name and (credential-free) origin beside its bytes.

        With them a rebuild of an unchanged lock, or an `--offline` one, needs no index:
        the name is what the bundle stores and the origin is what the manifest records.
        """
        _put(self.path(sha256).with_suffix(".json"),
             json.dumps({"filename": filename, "origin": origin}, sort_keys=True).encode(),
             self.root)

    def remember_names(self, names: dict[str, str]) -> None:
        """File names an index gave for hashes a lock lists, so a rebuild need not ask."""
        for sha256, filename in names.items():
            path = self.root / "names" / sha256[:2] / sha256
            if not path.is_file():
                _put(path, filename.encode(), self.root)

    def name_of(self, sha256: str) -> str | None:
        try:
            return (self.root / "names" / sha256[:2] / sha256).read_text() or None
        except OSError:
            return None

    def known(self, sha256: str) -> tuple[str, str] | None:
        """(filename, origin) of a cached file, or None if the bytes or the facts are absent."""
        if self.get(sha256) is None:
            return None
        try:
            meta = json.loads(self.path(sha256).with_suffix(".json").read_text())
            return str(meta["filename"]), str(meta["origin"])
        except (OSError, ValueError, KeyError):
            return None

    @contextmanager
    def writer(self, sha256: str, label: str) -> Iterator[HashingWriter]:
        """Yield a writer; on exit the bytes are committed only if their hash is `sha256`."""
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=final.parent)
        tmp = Path(tmp_name)
        with self._partials_lock:
            self._partials.add(tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                out = HashingWriter(fh)
                yield out
                fh.flush()
                os.fsync(fh.fileno())
            got = out.digest.hexdigest()
            if got != sha256:
                raise IntegrityError(f"{label}: sha256 {got} does not match the lock's {sha256}")
            os.replace(tmp, final)
        except OSError as exc:  # a full disk: say which cache, not which private file
            name_user_path(exc, self.root, tmp)
            raise
        finally:
            tmp.unlink(missing_ok=True)
            with self._partials_lock:
                self._partials.discard(tmp)
