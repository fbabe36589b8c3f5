"""The floor our choice of HTTP library sets: the fewest lines that fetch the same URLs.

One httpx.Client (16 connections; proxy and CA from the environment, as ours), 16
threads, each URL streamed to a file in 1 MiB writes and hashed on the way: no lock, no
index parsing, no cache, no checks. The bench
times it as a whole command beside curl, so the distance between us and curl splits into
what httpx on Python costs on this machine (this script against curl) and what our own
work costs (our `download` against this script).

    python -m benchmarks.httpxfloor URLS.txt OUTDIR [ACCEPT]    (one URL per line)

ACCEPT, when given, is sent with every request (the live case asks for PEP 691 JSON
pages, as our client and the bench's curl do).
"""

from __future__ import annotations

import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

JOBS = 16


def main(urls: list[str], out: Path, accept: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    limits = httpx.Limits(max_connections=JOBS, max_keepalive_connections=JOBS)
    headers = {"Accept": accept} if accept else {}
    with httpx.Client(limits=limits, headers=headers) as client:  # proxy and CA from the env

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
    main(Path(sys.argv[1]).read_text().split(), Path(sys.argv[2]),
         sys.argv[3] if len(sys.argv) > 3 else None)
