"""Bring every chosen file into the cache, many at once, checking hashes on the stream.

Downloads are I/O bound, so a thread pool over one pooled httpx client keeps `jobs`
transfers in flight. A file already in the cache costs nothing; a body whose hash is
wrong is never kept. Progress is reported through a callback: printing is the CLI's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import httpx

from .cache import Cache
from .errors import BundlerError, IntegrityError, NetworkError
from .model import LockedFile, Source
from .net import check_status, describe, stream
from .sources import redact

CHUNK = 256 * 1024
Progress = Callable[[int, bool], None]


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


def fetch_one(client: httpx.Client, cache: Cache, file: LockedFile, source: Source | None,
              progress: Progress | None = None) -> Fetched:
    if (hit := cache.get(file.sha256)) is not None:
        size = hit.stat().st_size
        if progress:
            progress(size, True)
        return Fetched(file, hit, size, True)
    if not file.url:
        raise NetworkError(f"{file.filename}: no URL known to download it from")
    label = file.filename or file.url
    for attempt in (1, 2):
        try:
            size = _download(client, cache, file, source, label, progress)
            return Fetched(file, cache.path(file.sha256), size, False)
        except IntegrityError:
            if attempt == 2:
                raise
        except httpx.HTTPError as exc:
            if attempt == 2:
                raise NetworkError(f"{label} from {redact(file.url)}: {describe(exc)}"
                                   ) from exc
    raise AssertionError("unreachable")


def _download(client: httpx.Client, cache: Cache, file: LockedFile, source: Source | None,
              label: str, progress: Progress | None) -> int:
    assert file.url is not None
    with stream(client, file.url, source) as response:
        check_status(response, source, label)
        with cache.writer(file.sha256, label) as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                if progress:
                    progress(len(chunk), False)
        return out.size


def fetch_all(client: httpx.Client, cache: Cache, items: list[tuple[LockedFile, Source | None]],
              jobs: int = 16, progress: Progress | None = None
              ) -> tuple[dict[str, Fetched], FetchSummary]:
    """Fetch each distinct file once; the first failure cancels what has not started."""
    start = time.monotonic()
    unique = {f.sha256: (f, s) for f, s in items}
    results: dict[str, Fetched] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(fetch_one, client, cache, f, s, progress): sha
                   for sha, (f, s) in sorted(unique.items())}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
        except BundlerError:
            for future in futures:
                future.cancel()
            raise
    cached = sum(1 for r in results.values() if r.from_cache)
    summary = FetchSummary(
        files=len(results), downloaded=len(results) - cached, from_cache=cached,
        bytes=sum(r.size for r in results.values()), seconds=time.monotonic() - start)
    return results, summary
