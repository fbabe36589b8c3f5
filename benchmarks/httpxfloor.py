"""The floor our choice of HTTP library sets: the fewest lines that fetch the same URLs.

One httpx.Client (16 connections), 16 threads, each URL streamed to a file in 1 MiB
writes and hashed on the way: no lock, no index parsing, no cache, no checks. The bench
times it as a whole command beside curl, so the distance between us and curl splits into
what httpx on Python costs on this machine (this script against curl) and what our own
work costs (our `download` against this script).

    python -m benchmarks.httpxfloor URLS.txt OUTDIR     (one URL per line)
"""

from __future__ import annotations

import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

JOBS = 16


def main(urls: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    limits = httpx.Limits(max_connections=JOBS, max_keepalive_connections=JOBS)
    with httpx.Client(limits=limits, trust_env=False) as client:

        def fetch(item: tuple[int, str]) -> str:
            number, url = item
            digest = hashlib.sha256()
            with client.stream("GET", url) as response, open(out / str(number), "wb") as fh:
                response.raise_for_status()
                for chunk in response.iter_raw(1024 * 1024):
                    digest.update(chunk)
                    fh.write(chunk)
            return digest.hexdigest()

        with ThreadPoolExecutor(JOBS) as pool:
            list(pool.map(fetch, enumerate(urls)))


if __name__ == "__main__":
    main(Path(sys.argv[1]).read_text().split(), Path(sys.argv[2]))
