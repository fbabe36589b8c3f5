"""A content-addressed store: bytes live under their sha256 and nowhere else.

A file enters the store only after its hash is checked, via a temporary name in the
same folder and one atomic rename, so a wrong byte from the network never becomes an
entry. Entries are not fsynced (pip's and uv's caches are not either: a sync per file
costs more than the transfer on many disks), so after a crash an entry may be short or
wrong. Nothing here trusts an entry for that reason: `lookup` checks its size, and
whoever reads an entry's bytes into a bundle or a `-d` folder hashes them on the way
(bundle.write, pipeline.download) and evicts a bad one (`evict`) to fetch it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import DamagedFile, IntegrityError, UsageError
from .files import HashingWriter, atomic_output, write_atomic
from .sources import strip_credentials

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
        """The entry's path if there is one (its bytes unchecked: see `lookup`)."""
        p = self.path(sha256)
        return p if p.is_file() else None

    def lookup(self, sha256: str, size: int | None, label: str) -> Path | None:
        """The entry, if its size is `size` (else the size its note recorded).

        A stat, not a read: a short entry (a crash before the kernel wrote it out) is the
        common damage, and its hash is checked anyway where its bytes are used. An entry
        of the wrong size is evicted and DamagedFile raised, for the caller to fetch it
        again (or, offline, to name it).
        """
        path = self.path(sha256)
        try:
            have = path.stat().st_size
        except OSError:
            return None
        if size is None:
            size = self.size_of(sha256)
        if size is not None and have != size:
            self.evict(sha256)
            raise DamagedFile(f"{label}: the copy in the cache is {have} bytes, not {size}",
                              sha256)
        return path

    def evict(self, sha256: str) -> None:
        """Remove an entry's bytes; its note stays (its facts are about the hash)."""
        self.path(sha256).unlink(missing_ok=True)

    def remember(self, sha256: str, filename: str, origin: str, size: int) -> None:
        """Keep the file's name, (credential-free) origin and size beside its bytes.

        With them a rebuild of an unchanged lock, or an `--offline` one, needs no index:
        the name is what the bundle stores, the origin is what the manifest records, and
        the size lets `lookup` spot a short entry without reading it.
        """
        self._note(self.path(sha256).with_suffix(".json"),
                   json.dumps({"filename": filename, "origin": origin, "size": size},
                              sort_keys=True).encode())

    def remember_pages(self, pages: Iterable[tuple[str, Mapping[str, str | None]]]) -> None:
        """What index pages said about one package's locked files each, so a rebuild of
        the same lock need not ask them again: (source URL, {sha256: file name, or None
        for a hash the page did not list}).

        The unlisted hashes matter as much as the names. A lock made against the default
        index lists every platform's wheels and the sdist, while an internal index
        (pypiserver, a mirror) often holds only some: remembering only names would leave
        those hashes nameless, and every rebuild (or an --offline one) would have to ask.
        """
        for source_url, names in pages:
            self._note(self._page_path(source_url, names),
                       json.dumps(dict(names), sort_keys=True).encode())

    def page_names(self, source_url: str, hashes: Iterable[str]
                   ) -> dict[str, str | None] | None:
        """What `source_url`'s page said about exactly these hashes (a package's locked
        files), or None if it was not asked (or the lock's hashes have changed since)."""
        wanted = frozenset(hashes)
        try:
            names = json.loads(self._page_path(source_url, wanted).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(names, dict) or names.keys() != wanted or not all(
                n is None or isinstance(n, str) for n in names.values()):
            return None  # a note cut short or mangled: ask again
        return names

    def _page_path(self, source_url: str, hashes: Iterable[str]) -> Path:
        key = hashlib.sha256("\n".join([strip_credentials(source_url), *sorted(hashes)])
                             .encode()).hexdigest()
        return self.root / "pages" / key[:2] / key

    def _note(self, path: Path, data: bytes) -> None:
        """A small note beside the bytes, not fsynced (a lost one is asked for again) and
        under a private temporary name (see `files`); errors name the cache folder."""
        write_atomic(path, data, durable=False, shown=self.root, private=True)

    def known(self, sha256: str) -> tuple[str, str] | None:
        """(filename, origin) of a cached file, or None if the bytes or the facts are absent."""
        if self.get(sha256) is None:
            return None
        meta = self._meta(sha256)
        if "filename" not in meta or "origin" not in meta:
            return None
        return str(meta["filename"]), str(meta["origin"])

    def size_of(self, sha256: str) -> int | None:
        """The size recorded when the entry was written, if its note says (older notes,
        and entries from a lock's local files, have none)."""
        size = self._meta(sha256).get("size")
        return size if isinstance(size, int) else None

    def _meta(self, sha256: str) -> dict:
        """The note `remember` wrote beside an entry; empty when it is missing or mangled."""
        try:
            meta = json.loads(self.path(sha256).with_suffix(".json").read_text())
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    @contextmanager
    def writer(self, sha256: str, label: str) -> Iterator[HashingWriter]:
        """Yield a writer; on exit the bytes are committed only if their hash is `sha256`."""
        with atomic_output(self.path(sha256), durable=False, shown=self.root) as fh:
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
