"""Bring every chosen file into the cache, many at once, checking hashes on the stream.

Downloads are I/O bound, so a thread pool over one pooled httpx client keeps `jobs`
transfers in flight. A file already in the cache costs a stat (its size is checked; its
hash is checked by whoever reads its bytes, see `then`); a body whose hash is wrong is
never kept. A transfer that breaks mid-file resumes with a Range request where
the server allows it (the hash state carries on, so no byte is read twice). Progress is
reported through a callback object: printing is the CLI's job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from .cache import CHUNK, Cache
from .errors import DamagedFile, IntegrityError, NetworkError, UsageError
from .files import HashingWriter
from .model import LockedFile, Source
from .net import LazyClient, check_status, describe, stream
from .parallel import run_all
from .sources import redact, strip_credentials

if TYPE_CHECKING:
    import httpx

RESUMES = 4


@dataclass(frozen=True)
class Fetched:
    file: LockedFile
    path: Path
    size: int
    from_cache: bool


@dataclass(frozen=True)
class FetchSummary:
    files: int
    downloaded: int
    from_cache: int
    bytes: int
    seconds: float


class Progress(Protocol):
    def advance(self, nbytes: int) -> None: ...
    def finished(self) -> None: ...  # one more file is in the cache


class _Silent:
    def advance(self, nbytes: int) -> None:
        pass

    def finished(self) -> None:
        pass


Locate = Callable[[LockedFile], LockedFile]


class Stopped(Exception):
    """Another transfer failed, or the user interrupted: this one gives up between chunks."""


def fetch_one(client: LazyClient, cache: Cache, file: LockedFile, source: Source | None,
              progress: Progress, locate: Locate | None = None,
              stop: threading.Event | None = None, offline: bool = False) -> Fetched:
    try:
        hit = cache.lookup(file.sha256, file.size, file.filename or file.sha256)
    except DamagedFile as exc:  # evicted: fetch it again, unless we may not
        if offline:
            raise damaged_offline(exc) from None
        hit = None
    if hit is not None:
        if not file.url and locate is not None:
            file = locate(file)  # its note is lost: the origin the manifest records
        fetched = Fetched(file, hit, hit.stat().st_size, True)
        progress.finished()
        return fetched
    if not file.url and locate is not None:
        file = locate(file)  # in the worker, so index pages overlap other transfers
    if not file.url:
        raise NetworkError(f"{file.filename}: no URL known to download it from")
    label = file.filename or file.url
    if file.url.startswith("file:"):  # a lock's local wheel (poetry `file` packages)
        size = _copy_local(cache, file, label, progress)
    else:
        size = _download_retrying(client, cache, file, source, label, progress, stop)
    fetched = Fetched(file, cache.path(file.sha256), size, False)
    progress.finished()
    return fetched


def _download_retrying(client: LazyClient, cache: Cache, file: LockedFile,
                       source: Source | None, label: str, progress: Progress,
                       stop: threading.Event | None) -> int:
    for attempt in (1, 2):  # a wrong body is retried once: it may be a broken proxy
        try:
            return _download(client, cache, file, source, label, progress, stop)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _copy_local(cache: Cache, file: LockedFile, label: str, progress: Progress) -> int:
    """A wheel on this disk enters the cache like a download: hash-checked on the way."""
    from urllib.request import url2pathname  # a heavy import, for poetry `file` wheels only

    assert file.url is not None
    path = Path(url2pathname(urlsplit(file.url).path))
    if not path.is_file():
        raise UsageError(f"{label}: the lock's local file {path} does not exist")
    with open(path, "rb") as src, cache.writer(file.sha256, label) as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            progress.advance(len(chunk))
        return out.size


def _download(client: LazyClient, cache: Cache, file: LockedFile, source: Source | None,
              label: str, progress: Progress, stop: threading.Event | None) -> int:
    assert file.url is not None
    with cache.writer(file.sha256, label) as out:
        breaks = 0
        while True:
            try:
                _transfer(client, file, source, label, out, progress, stop)
                return out.size
            except _transport_errors() as exc:
                breaks += 1
                if breaks > RESUMES:
                    raise NetworkError(f"{label} from {redact(file.url)}: {describe(exc)} "
                                       f"(broke {breaks} times)") from exc
                time.sleep(min(0.2 * breaks, 1.0))


def _transfer(client: LazyClient, file: LockedFile, source: Source | None, label: str,
              out: HashingWriter, progress: Progress, stop: threading.Event | None) -> None:
    """One GET, resuming after `out.size` bytes when there are any."""
    assert file.url is not None
    # Identity encoding and raw reads: the hash is of the file's bytes as stored, and
    # every byte received before a break counts towards the resume offset.
    headers = {"Accept-Encoding": "identity"}
    if out.size:
        headers["Range"] = f"bytes={out.size}-"
    with stream(client, file.url, source, headers) as response:
        if out.size and not _resumes_at(response, out.size):
            out.restart()  # the server sent the whole file (or nothing usable): start over
            if response.status_code == 416:
                raise _range_refused()
        check_status(response, source, label)
        # Written and hashed in pieces of about 1 MiB, not per 16 kB read: each write and
        # hash update hands the GIL among sixteen threads, and fewer of them cut the run's
        # system CPU. What is held back is written when the connection breaks, so every
        # byte received still counts towards the resume offset.
        pending = bytearray()
        try:
            for chunk in response.iter_raw():
                if stop is not None and stop.is_set():
                    raise Stopped(label)
                pending += chunk
                if file.size is not None and out.size + len(pending) > file.size:
                    raise IntegrityError(f"{label}: more than the lock's {file.size} bytes")
                if len(pending) >= CHUNK:
                    _flush(out, pending, progress)
        finally:
            _flush(out, pending, progress)


def _flush(out: HashingWriter, pending: bytearray, progress: Progress) -> None:
    if pending:
        out.write(pending)
        progress.advance(len(pending))
        pending.clear()


def _transport_errors() -> type[Exception]:
    import httpx

    return httpx.TransportError


def _range_refused() -> Exception:
    import httpx

    return httpx.RemoteProtocolError("range not satisfiable")


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    if response.status_code != 206:
        return False
    content_range = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")


def damaged_offline(exc: DamagedFile) -> DamagedFile:
    """The error for a damaged cache entry that --offline cannot fetch again (exit 3)."""
    return DamagedFile(f"--offline: {exc}; it was removed from the cache: run once online "
                       "to fetch it again", exc.sha256)


def remember(cache: Cache, files: list[Fetched]) -> None:
    for got in files:
        f = got.file
        if f.filename and f.url:
            cache.remember(f.sha256, f.filename, strip_credentials(f.url), got.size)


def fetch_all(client: LazyClient, cache: Cache, items: list[tuple[LockedFile, Source | None]],
              jobs: int = 16, progress: Progress | None = None, locate: Locate | None = None,
              then: Callable[[Fetched], None] | None = None, offline: bool = False
              ) -> tuple[dict[str, Fetched], FetchSummary]:
    """Fetch each distinct file once; the first failure cancels what has not started.

    `locate` gives a file without a URL its URL (from its index page) just before the
    download, inside the same worker; `then` runs in the worker once the file is in the
    cache (a failure there fails the fetch like a failed transfer). Should `then` find a
    cached file's bytes damaged (DamagedFile), the entry is evicted and fetched again
    once, and `then` runs on the new copy; `offline`, the damage is the error instead.
    """
    start = time.monotonic()
    report = progress or _Silent()
    # Largest first where the lock gives sizes: a big file started last would finish
    # alone, long after the rest (ties and unknown sizes in hash order, deterministic).
    unique = sorted({f.sha256: (f, s) for f, s in items}.items(),
                    key=lambda item: (-(item[1][0].size or 0), item[0]))
    stop = threading.Event()

    downloaded: list[Fetched] = []

    def one(item: tuple[str, tuple[LockedFile, Source | None]]) -> Fetched:
        file, source = item[1]
        got = fetch_one(client, cache, file, source, report, locate, stop, offline)
        if not got.from_cache:
            downloaded.append(got)
        if then is not None:
            try:
                then(got)
            except DamagedFile as exc:
                if not got.from_cache or exc.sha256 != file.sha256:
                    raise
                cache.evict(file.sha256)
                if offline:
                    raise damaged_offline(exc) from None
                got = fetch_one(client, cache, got.file, source, report, locate, stop)
                downloaded.append(got)
                then(got)
        return got

    try:
        fetched = run_all(one, unique, jobs, stop)
    except BaseException:
        cache.discard_partials()  # those of transfers still blocked in a socket
        raise
    finally:
        # Names and origins of what arrived, for rebuilds that skip the index. Written
        # here, not by each worker: small Python-heavy writes among sixteen transfers
        # cost them GIL hand-offs, and here, one after another, they are cheap.
        remember(cache, downloaded)
    results = {sha: got for (sha, _), got in zip(unique, fetched, strict=True)}
    cached = sum(1 for r in results.values() if r.from_cache)
    summary = FetchSummary(
        files=len(results), downloaded=len(results) - cached, from_cache=cached,
        bytes=sum(r.size for r in results.values()), seconds=time.monotonic() - start)
    return results, summary
