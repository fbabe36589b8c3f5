"""A content-addressed store: bytes live under their sha256 and nowhere else.

A file enters the store only after its hash is checked, via a temporary name in the
same folder and one atomic rename, so a crash or a wrong byte never leaves a cache
entry that lies. Anything already present is trusted by construction.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IntegrityError, UsageError
from .files import HashingWriter, atomic_output, write_atomic

CHUNK = 1024 * 1024


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wheelhouse-bundler"


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
        self._note(self.path(sha256).with_suffix(".json"),
                   json.dumps({"filename": filename, "origin": origin}, sort_keys=True).encode())

    def remember_names(self, names: dict[str, str]) -> None:
        """File names an index gave for hashes a lock lists, so a rebuild need not ask."""
        for sha256, filename in names.items():
            path = self.root / "names" / sha256[:2] / sha256
            if not path.is_file():
                self._note(path, filename.encode())

    def _note(self, path: Path, data: bytes) -> None:
        """A small note beside the bytes, not fsynced (a lost one is asked for again) and
        under a private temporary name (see `files`); errors name the cache folder."""
        write_atomic(path, data, durable=False, shown=self.root, private=True)

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
        with atomic_output(self.path(sha256), shown=self.root) as fh:
            tmp = Path(fh.name)
            with self._partials_lock:
                self._partials.add(tmp)
            try:
                out = HashingWriter(fh)
                yield out
                got = out.digest.hexdigest()
                if got != sha256:
                    raise IntegrityError(f"{label}: sha256 {got} does not match the lock's "
                                         f"{sha256}")
            finally:
                with self._partials_lock:
                    self._partials.discard(tmp)
