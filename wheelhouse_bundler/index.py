"""Simple API project pages (PEP 691 JSON, else PEP 503 HTML) -> files by name and hash.

The index is only a place to find bytes: a file is matched by the sha256 the lock gives,
and an index that lists the lock's file name with another hash is an integrity failure,
not a choice. One page per (source, project), fetched once and shared across targets.

Pages of popular projects list thousands of files, of which a lock uses one or two, and
decoding every entry cost more CPU than fetching the page. So a page is kept as the bytes
that arrived, and the lock's hashes are found in them with a byte search; only the entry
around a match is parsed, and it counts only if its own sha256 is the one searched for.
Whatever that cannot settle (no match, an entry that does not parse or verify, an HTML
page that cannot be cut safely) falls back to parsing the whole page, once, which is also
what callers that want every file (`Index.files`) get.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
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
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
MAX_PAGE = 64 * 1024 * 1024
MAX_ENTRY = 64 * 1024
"""How far around a hash an entry of a JSON page may reach; a longer one (a yanked reason
of a novel's length) is found by the full parse instead."""
_TRIES = 32  # candidate `{` per match, scanning back from it, before giving up on it
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


def _json_file(entry: dict[str, Any], page_url: str) -> IndexFile:
    """One PEP 691 file entry. urljoin and urldefrag cost more than decoding the entry;
    an index that gives absolute URLs without fragments (the common case) needs neither."""
    url = entry["url"]
    if not url.startswith(("https://", "http://")):
        url = urljoin(page_url, url)
    if "#" in url:
        url = urldefrag(url)[0]
    return IndexFile(
        filename=entry["filename"],
        url=url,
        sha256=(entry.get("hashes") or {}).get("sha256"),
        yanked=bool(entry.get("yanked", False)),
    )


def parse_json(data: bytes, page_url: str) -> list[IndexFile]:
    """A PEP 691 project page, every file of it."""
    doc = json.loads(data)
    return [_json_file(entry, page_url) for entry in doc.get("files", [])]


_DECODER = json.JSONDecoder()


def find_json(data: bytes, sha256: str, page_url: str) -> IndexFile | None:
    """The file entry of a PEP 691 page whose sha256 is `sha256`, without decoding the
    rest of the page; None when the byte search cannot settle it.

    Each occurrence of the hex digest is tried: scanning back from it, each `{` is a
    candidate start, decoded alone with `raw_decode` until one gives an object that
    reaches past the digest and has a file name (the entry that holds it; the `hashes`
    object in between has none). A `{` inside a JSON string cannot start an object with
    a key, since its quotes would be escaped, so a yanked reason holding braces or the
    digest itself cannot pass for an entry. The entry counts only when its own
    `hashes.sha256` is the digest searched for.
    """
    if not _SHA256.fullmatch(sha256):
        return None
    needle = sha256.encode("ascii")
    at = data.find(needle)
    while at != -1:
        entry = _json_entry_around(data, at)
        if entry is None:
            return None  # not settled here: the caller parses the whole page
        if (entry.get("hashes") or {}).get("sha256") == sha256:
            try:
                return _json_file(entry, page_url)
            except (KeyError, TypeError, AttributeError):
                return None
        at = data.find(needle, at + 1)  # the digest quoted in another entry
    return None


def _json_entry_around(data: bytes, at: int) -> dict[str, Any] | None:
    """The innermost object with a "filename" that encloses byte `at`, or None."""
    start = max(0, at - MAX_ENTRY)
    end = min(len(data), at + MAX_ENTRY)
    while start < at and 0x80 <= data[start] < 0xC0:  # cut at a character's start
        start += 1
    while end < len(data) and 0x80 <= data[end] < 0xC0:
        end -= 1
    try:
        text = data[start:end].decode("utf-8")
        pos = at - start if text.isascii() else len(data[start:at].decode("utf-8"))
    except UnicodeDecodeError:
        return None
    brace = text.rfind("{", 0, pos)
    for _ in range(_TRIES):
        if brace == -1:
            return None
        try:
            obj, stop = _DECODER.raw_decode(text, brace)
        except ValueError:  # a brace inside a string, or the entry runs past the window
            obj, stop = None, 0
        if isinstance(obj, dict) and stop > pos and "filename" in obj:
            return obj
        brace = text.rfind("{", 0, brace)
    return None


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


def _html_file(label: str, attrs: dict[str, str | None], base: str) -> IndexFile:
    url, fragment = urldefrag(urljoin(base, attrs["href"] or ""))
    filename = url.rsplit("/", 1)[-1] or label
    algo, _, digest = fragment.partition("=")
    return IndexFile(
        filename=filename,
        url=url,
        sha256=digest.lower() if algo == "sha256" and digest else None,
        yanked="data-yanked" in attrs,
    )


def parse_html(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 503 project page; hashes come from `#sha256=` fragments."""
    parser = _Anchors()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    return [_html_file(label, attrs, base) for label, attrs in parser.anchors]


# Where these appear, a tag's meaning depends on more than the tag: a <base> moves every
# URL, and comments, scripts and CDATA can hold text that looks like an anchor.
_HTML_UNCUTTABLE = re.compile(rb"<(?:base|script|style|textarea|!--|!\[)", re.IGNORECASE)


def html_cuttable(data: bytes) -> bool:
    """Whether one anchor of this PEP 503 page means the same alone as in the page."""
    return _HTML_UNCUTTABLE.search(data) is None


def find_html(data: bytes, sha256: str, page_url: str) -> IndexFile | None:
    """The anchor of a PEP 503 page whose href ends in `#sha256=<sha256>`, parsed alone;
    None when it cannot be cut out safely (see html_cuttable; the caller checks that
    once per page).

    The cut runs from the `<a` before the match to the `</a>` after it. It is refused
    when anything in it would make the tag read differently in the page: another `<`
    (the `<a` found was inside an attribute value, or the tag is not lower case), or
    an odd count of either quote (a value still open where the cut starts or ends).
    """
    if not _SHA256.fullmatch(sha256):
        return None
    at = data.find(b"#sha256=" + sha256.encode("ascii"))
    if at == -1:
        return None
    start = data.rfind(b"<a", 0, at)
    close = data.find(b">", at)
    end = data.find(b"</a>", close)
    if -1 in (start, close, end) or data[start + 2:start + 3] not in (b" ", b"\t", b"\n",
                                                                       b"\r", b"\f"):
        return None
    tag, label = data[start:close + 1], data[close + 1:end]
    if (b"<" in tag[1:] or b"<" in label or tag.count(b'"') % 2 or tag.count(b"'") % 2):
        return None
    parser = _Anchors()
    parser.feed((tag + label + b"</a>").decode("utf-8", "replace"))
    if len(parser.anchors) != 1:
        return None
    found = _html_file(*parser.anchors[0], page_url)
    return found if found.sha256 == sha256 else None


@dataclass
class Page:
    """One project page as it arrived; parsed whole only when someone asks for all of it."""

    body: bytes
    is_json: bool
    url: str  # where the body came from (after redirects): relative URLs resolve here
    what: str  # how errors name it, credentials redacted
    _files: list[IndexFile] | None = None
    _by_hash: dict[str, IndexFile] = field(default_factory=dict)
    _by_name: dict[str, IndexFile] = field(default_factory=dict)
    _found: dict[str, IndexFile | None] = field(default_factory=dict)
    _cuttable: bool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def parsed(self) -> bool:
        """Whether the whole page has been parsed (the byte search could not settle)."""
        return self._files is not None

    def files(self) -> list[IndexFile]:
        with self._lock:
            if self._files is None:
                try:
                    if self.is_json:
                        files = parse_json(self.body, self.url)
                    else:
                        files = parse_html(self.body.decode("utf-8", "replace"), self.url)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise NetworkError(f"{self.what} is not a valid Simple API page"
                                       ) from exc
                self._by_hash = {f.sha256: f for f in files if f.sha256}
                self._by_name = {f.filename: f for f in files}
                self._files = files
                self.body = b""  # find() answers from the parsed files from now on
            return self._files

    def find(self, sha256: str) -> IndexFile | None:
        """The file with this hash by the byte search alone; None: not settled by it."""
        if self._files is not None:
            return self._by_hash.get(sha256)
        if sha256 not in self._found:
            if self.is_json:
                hit = find_json(self.body, sha256, self.url)
            else:
                if self._cuttable is None:
                    self._cuttable = html_cuttable(self.body)
                hit = find_html(self.body, sha256, self.url) if self._cuttable else None
            self._found[sha256] = hit
        return self._found[sha256]

    def by_hash(self, sha256: str) -> IndexFile | None:
        self.files()
        return self._by_hash.get(sha256)

    def by_name(self, filename: str) -> IndexFile | None:
        self.files()
        return self._by_name.get(filename)


class Index:
    """Project pages through one HTTP client, each fetched at most once per run."""

    def __init__(self, client: LazyClient) -> None:
        self._client = client
        self._pages: dict[tuple[str, str], Page] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.requests = 0

    def page(self, source: Source, project: str) -> Page:
        key = (source.url, canonicalize_name(project))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._pages:
                self._pages[key] = self._fetch(source, key[1])
            return self._pages[key]

    def files(self, source: Source, project: str) -> list[IndexFile]:
        """Every file the project's page lists (the whole page parsed, once per run)."""
        return self.page(source, project).files()

    def _fetch(self, source: Source, project: str) -> Page:
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
        return Page(body, kind == JSON_TYPE, page_url, f"{what} at {redact(url)}")

    def locate(self, package: LockedPackage, source: Source, only_names: bool = False
               ) -> LockedPackage:
        """Fill in names and URLs of the package's files from its source's page.

        With `only_names`, files that already have a name are left alone (used before
        selection, when only hash-only locks need the index). A file is found by its
        hash with a byte search where that settles it; otherwise the whole page is
        parsed and a file the page lists by the lock's name with another hash is an
        integrity failure.
        """
        missing = [f for f in package.files
                   if (f.filename is None) or (not only_names and f.url is None)]
        if not missing:
            return package
        page = self.page(source, package.name)
        out = []
        for f in package.files:
            if f not in missing:
                out.append(f)
                continue
            hit = page.find(f.sha256) or page.by_hash(f.sha256)
            if hit is None and f.filename:
                hit = page.by_name(f.filename)
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
