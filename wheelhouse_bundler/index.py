"""Simple API project pages (PEP 691 JSON, else PEP 503 HTML) -> files by name and hash.

The index is only a place to find bytes: a file is matched by the sha256 the lock gives,
and an index that lists the lock's file name with another hash is an integrity failure,
not a choice. One page per (source, project), fetched once and shared across targets.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin

from packaging.utils import canonicalize_name

from .errors import IntegrityError, NetworkError
from .model import LockedPackage, Source
from .net import LazyClient, check_status, stream
from .sources import redact, split_credentials

if TYPE_CHECKING:
    import httpx

ACCEPT = ("application/vnd.pypi.simple.v1+json, "
          "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01")
MAX_PAGE = 64 * 1024 * 1024


class ProjectNotFound(NetworkError):
    """The index has no page for the project (404): an answer, not a failure to get one:
    a failure for a download, "nothing there yet" for publish, "no uv here" for the
    default uv wheel."""


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    yanked: bool = False


def parse_json(data: bytes, page_url: str) -> list[IndexFile]:
    """A PEP 691 project page.

    Pages of popular projects list thousands of files (one lists 15,000), and urljoin
    and urldefrag cost more than the rest of the parse together; an index that gives
    absolute URLs without fragments (the common case) needs neither.
    """
    doc = json.loads(data)
    files = []
    for entry in doc.get("files", []):
        url = entry["url"]
        if not url.startswith(("https://", "http://")):
            url = urljoin(page_url, url)
        if "#" in url:
            url = urldefrag(url)[0]
        files.append(IndexFile(
            filename=entry["filename"],
            url=url,
            sha256=(entry.get("hashes") or {}).get("sha256"),
            yanked=bool(entry.get("yanked", False)),
        ))
    return files


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.base: str | None = None
        self.anchors: list[tuple[str, dict[str, str | None]]] = []
        self._href: str | None = None
        self._attrs: dict[str, str | None] = {}
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        elif tag == "a" and a.get("href"):
            self._href, self._attrs, self._text = a["href"], a, []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.anchors.append(("".join(self._text).strip(), self._attrs))
            self._href = None


def parse_html(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 503 project page; hashes come from `#sha256=` fragments."""
    parser = _Anchors()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for label, attrs in parser.anchors:
        url, fragment = urldefrag(urljoin(base, attrs["href"] or ""))
        filename = url.rsplit("/", 1)[-1] or label
        algo, _, digest = fragment.partition("=")
        files.append(IndexFile(
            filename=filename,
            url=url,
            sha256=digest.lower() if algo == "sha256" and digest else None,
            yanked="data-yanked" in attrs,
        ))
    return files


class Index:
    """Project pages through one HTTP client, each fetched at most once per run."""

    def __init__(self, client: LazyClient) -> None:
        self._client = client
        self._pages: dict[tuple[str, str], list[IndexFile]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.requests = 0

    def files(self, source: Source, project: str) -> list[IndexFile]:
        key = (source.url, canonicalize_name(project))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._pages:
                self._pages[key] = self._fetch(source, key[1])
            return self._pages[key]

    def _fetch(self, source: Source, project: str) -> list[IndexFile]:
        base, _ = split_credentials(source.url)
        url = urljoin(base, f"{project}/")
        self.requests += 1
        what = f"index page for {project}"
        try:
            with stream(self._client, url, source, {"Accept": ACCEPT}) as response:
                if response.status_code == 404:
                    raise ProjectNotFound(f"{project} is not on source {source.name!r} "
                                       f"({redact(source.url)})")
                check_status(response, source, what)
                body = b"".join(_limited(response))
                kind = response.headers.get("content-type", "").split(";")[0].strip()
                page_url = str(response.url)
        except _http_errors() as exc:
            raise NetworkError(f"{what} at {redact(url)}: {type(exc).__name__}") from exc
        try:
            if kind == "application/vnd.pypi.simple.v1+json":
                return parse_json(body, page_url)
            return parse_html(body.decode("utf-8", "replace"), page_url)
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkError(f"{what} at {redact(url)} is not a valid Simple API page"
                               ) from exc

    def locate(self, package: LockedPackage, source: Source, only_names: bool = False
               ) -> LockedPackage:
        """Fill in names and URLs of the package's files from its source's page.

        With `only_names`, files that already have a name are left alone (used before
        selection, when only hash-only locks need the index).
        """
        missing = [f for f in package.files
                   if (f.filename is None) or (not only_names and f.url is None)]
        if not missing:
            return package
        listed = self.files(source, package.name)
        by_hash = {f.sha256: f for f in listed if f.sha256}
        by_name = {f.filename: f for f in listed}
        out = []
        for f in package.files:
            if f not in missing:
                out.append(f)
                continue
            hit = by_hash.get(f.sha256)
            if hit is None and f.filename:
                hit = by_name.get(f.filename)
                if hit is not None and hit.sha256 and hit.sha256 != f.sha256:
                    raise IntegrityError(
                        f"{f.filename}: source {source.name!r} lists sha256 {hit.sha256}, "
                        f"the lock says {f.sha256}")
            if hit is None:
                if f.filename is None and only_names:
                    # A hash with no file on the index: keep it; selection reports gaps.
                    out.append(f)
                    continue
                label = f.filename or f"the file with sha256 {f.sha256}"
                raise NetworkError(f"{package.name}=={package.version}: {label} is not on "
                                   f"source {source.name!r} ({redact(source.url)})")
            out.append(replace(f, filename=f.filename or hit.filename, url=hit.url,
                               yanked=f.yanked or hit.yanked))
        return replace(package, files=tuple(out))


def _http_errors() -> type[Exception]:
    import httpx

    return httpx.HTTPError


def _limited(response: httpx.Response):
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > MAX_PAGE:
            raise NetworkError(f"{redact(str(response.url))}: page larger than {MAX_PAGE} bytes")
        yield chunk
