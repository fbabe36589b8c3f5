"""Finding the lock's files in project pages by their hash, without parsing whole pages.

The pages here are shaped like those of popular projects: thousands of entries, nested
metadata hashes, yanked reasons holding braces, quotes, other files' digests and
non-ASCII text, relative URLs. Whatever the byte search settles must equal what the full
parse says; whatever it cannot settle must fall back to the full parse, whose rules
(a listed name with another hash is an integrity failure) stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wheelhouse_bundler.errors import IntegrityError, NetworkError
from wheelhouse_bundler.index import (
    JSON_TYPE,
    MAX_ENTRY,
    Index,
    find_html,
    find_json,
    html_cuttable,
    parse_html,
    parse_json,
)
from wheelhouse_bundler.model import LockedFile, LockedPackage, Source
from wheelhouse_bundler.net import LazyClient

PAGE = "http://127.0.0.1:9/simple/big/"


def digest(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def entry(n: int, **extra: object) -> dict[str, object]:
    """One PEP 691 entry as a large index writes it: keys in order, metadata hashes first."""
    name = f"big-1.{n}-cp312-cp312-manylinux_2_28_x86_64.whl"
    e: dict[str, object] = {
        "core-metadata": {"sha256": digest(f"meta{n}")},
        "data-dist-info-metadata": {"sha256": digest(f"meta{n}")},
        "filename": name,
        "hashes": {"sha256": digest(n)},
        "requires-python": ">=3.9",
        "size": 1000 + n,
        "upload-time": "2026-01-01T00:00:00.000000Z",
        "url": f"https://127.0.0.1:9/packages/{n % 97:02x}/{name}",
        "yanked": False,
    }
    e.update(extra)
    return e


def big_page(n: int = 3000, separators: tuple[str, str] = (", ", ": ")) -> tuple[bytes, list]:
    files = [entry(i) for i in range(n)]
    fake = json.dumps({"filename": "x", "hashes": {"sha256": digest(6)}})
    files[5]["yanked"] = f"broken {fake} }}{{"
    files[7]["yanked"] = "use the one with sha256 " + digest(8) + " instead"
    files[9]["yanked"] = "réparé dans 1.10 — 🙂 {"
    files[9]["filename"] = "big-1.9-py3-none-any.whl"
    files[11]["url"] = "../../packages/big-1.11.tar.gz"
    files[11]["filename"] = "big-1.11.tar.gz"
    files[13]["url"] = f"https://127.0.0.1:9/packages/big-1.13.whl#sha256={digest(13)}"
    files[15]["hashes"] = {"md5": "0" * 32, "sha256": digest(15), "blake2b": "f" * 128}
    files[17]["hashes"] = {}
    doc = {"meta": {"api-version": "1.1", "_last-serial": 1}, "name": "big",
           "versions": [f"1.{i}" for i in range(n)], "files": files}
    return json.dumps(doc, separators=separators, ensure_ascii=False).encode(), files


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
def test_each_entry_found_by_hash_equals_the_full_parse(separators: tuple[str, str]) -> None:
    data, _ = big_page(separators=separators)
    full = {f.sha256: f for f in parse_json(data, PAGE) if f.sha256}
    # The special entries, and a spread over the page (every entry would take a while).
    for i in [*range(20), *range(20, 3000, 37), 2999]:
        if i == 17:
            continue  # no hash: nothing to find it by
        found = find_json(data, digest(i), PAGE)
        assert found == full[digest(i)], i
    assert find_json(data, digest(11), PAGE).url == "http://127.0.0.1:9/packages/big-1.11.tar.gz"
    assert find_json(data, digest(13), PAGE).url == "https://127.0.0.1:9/packages/big-1.13.whl"
    assert find_json(data, digest(5), PAGE).yanked
    assert find_json(data, digest(9), PAGE).filename == "big-1.9-py3-none-any.whl"


def test_a_digest_quoted_in_another_entry_does_not_pass_for_it() -> None:
    """Entry 5's reason holds an entry-like object with entry 6's digest, entry 7's
    names entry 8's: each search still lands on the entry whose own hash it is."""
    data, _ = big_page(50)
    assert find_json(data, digest(6), PAGE).filename == entry(6)["filename"]
    assert find_json(data, digest(8), PAGE).filename == entry(8)["filename"]
    assert not find_json(data, digest(8), PAGE).yanked


def test_a_digest_only_quoted_is_not_found() -> None:
    doc = {"files": [entry(1, yanked=f"see {digest('gone')}")]}
    data = json.dumps(doc).encode()
    assert find_json(data, digest("gone"), PAGE) is None
    assert find_json(data, digest("never"), PAGE) is None
    assert find_json(data, "not a digest", PAGE) is None


def test_metadata_hash_is_not_the_file_hash() -> None:
    data, _ = big_page(30)
    assert find_json(data, digest("meta3"), PAGE) is None


def test_entry_longer_than_the_window_is_left_to_the_full_parse() -> None:
    long = entry(1, yanked="x" * (MAX_ENTRY + 10))
    data = json.dumps({"files": [entry(0), long, entry(2)]}).encode()
    assert find_json(data, digest(1), PAGE) is None
    assert parse_json(data, PAGE)[1].sha256 == digest(1)
    assert find_json(data, digest(2), PAGE).filename == entry(2)["filename"]


def html_page(n: int = 3000) -> bytes:
    rows = []
    for i in range(n):
        name = f"big-1.{i}.tar.gz"
        extra = ' data-requires-python="&gt;=3.9"'
        if i % 10 == 3:
            extra += ' data-yanked="bad &quot;build&quot; &lt;3"'
        rows.append(f'    <a href="../../packages/{name}#sha256={digest(i)}"{extra}>{name}</a><br>')
    return ("<!DOCTYPE html>\n<html><head><title>Links for big</title></head><body>\n"
            + "\n".join(rows) + "\n</body></html>\n").encode()


def test_each_anchor_found_by_hash_equals_the_full_parse() -> None:
    data = html_page()
    assert html_cuttable(data)
    full = {f.sha256: f for f in parse_html(data.decode(), PAGE)}
    for i in [*range(20), *range(20, 3000, 41), 2999]:
        assert find_html(data, digest(i), PAGE) == full[digest(i)], i
    assert find_html(data, digest(3), PAGE).yanked
    assert find_html(data, digest(3), PAGE).url == "http://127.0.0.1:9/packages/big-1.3.tar.gz"
    assert find_html(data, digest("none"), PAGE) is None


def test_html_that_cannot_be_cut_safely() -> None:
    assert not html_cuttable(b'<html><head><base href="/x/"></head><a href="a">a</a>')
    assert not html_cuttable(b'<!-- <a href="a#sha256=00">a</a> -->')
    # An attribute value holding "<a " and ">": the cut would start inside the tag.
    h = digest(1)
    for tag in (f"""<a data-yanked='no> <a "' href="f.whl#sha256={h}">f.whl</a>""",
                f"""<a data-yanked='no> <a ' href="f.whl#sha256={h}">f.whl</a>"""):
        assert find_html(tag.encode(), h, PAGE) is None
        assert parse_html(tag, PAGE)[0].yanked  # what the full parse says
    # A tag in capitals, a digest in capitals: not settled by the search, parsed whole.
    assert find_html(f'<A HREF="f.whl#sha256={h}">f.whl</A>'.encode(), h, PAGE) is None
    assert find_html(f'<a href="f.whl#sha256={h.upper()}">f</a>'.encode(), h, PAGE) is None


# A real server on 127.0.0.1 serving given page bytes, for Index end to end.

class PageServer:
    def __init__(self, pages: dict[str, tuple[str, bytes]]) -> None:
        self.pages = pages
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits.append(self.path)
                kind, body = server.pages.get(self.path, ("text/plain", b"no"))
                self.send_response(200 if self.path in server.pages else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def source(self) -> Source:
        return Source("test", f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/")

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[PageServer]:
    served = PageServer({})
    yield served
    served.stop()


def package(*files: LockedFile) -> LockedPackage:
    return LockedPackage(name="big", version="1.0", files=tuple(files))


def locate(server: PageServer, *files: LockedFile, only_names: bool = False
           ) -> tuple[LockedPackage, Index]:
    with LazyClient(jobs=2) as client:
        index = Index(client)
        return index.locate(package(*files), server.source, only_names), index


def test_locate_uses_the_byte_search_and_files_still_parses_everything(server: PageServer) -> None:
    data, _ = big_page()
    server.pages["/simple/big/"] = (JSON_TYPE, data)
    with LazyClient(jobs=2) as client:
        index = Index(client)
        got = index.locate(package(LockedFile(digest(11)), LockedFile(digest(5))),
                           server.source)
        page = index.page(server.source, "big")
        assert not page.parsed  # the fast path settled both
        base = server.source.url.rsplit("/simple/", 1)[0]
        assert got.files[0].url == f"{base}/packages/big-1.11.tar.gz"
        assert got.files[0].filename == "big-1.11.tar.gz"
        assert got.files[1].yanked
        assert len(index.files(server.source, "Big")) == 3000  # the same page, parsed now
        assert page.parsed and index.requests == 1


def test_lock_name_listed_with_another_hash_is_an_integrity_error(server: PageServer) -> None:
    data, files = big_page()
    server.pages["/simple/big/"] = (JSON_TYPE, data)
    lock_says = LockedFile(digest("tampered"), filename=str(files[42]["filename"]))
    with pytest.raises(IntegrityError, match="lists sha256 " + digest(42)):
        locate(server, lock_says)


def test_lock_name_listed_with_another_hash_in_html(server: PageServer) -> None:
    server.pages["/simple/big/"] = ("text/html", html_page(100))
    with pytest.raises(IntegrityError, match="lists sha256 " + digest(42)):
        locate(server, LockedFile(digest("tampered"), filename="big-1.42.tar.gz"))


def test_digest_only_in_a_reason_is_not_on_the_index(server: PageServer) -> None:
    server.pages["/simple/big/"] = (JSON_TYPE, json.dumps({"files": [
        entry(1, yanked=f"superseded by {digest('gone')}")]}).encode())
    with pytest.raises(NetworkError, match="is not on source"):
        locate(server, LockedFile(digest("gone")))
    kept, _ = locate(server, LockedFile(digest("gone")), only_names=True)
    assert kept.files == (LockedFile(digest("gone")),)  # selection reports the gap


def test_html_page_with_base_falls_back_to_the_full_parse(server: PageServer) -> None:
    h = digest(1)
    server.pages["/simple/big/"] = ("text/html", (
        '<html><head><base href="/elsewhere/"></head><body>'
        f'<a href="big-1.1.tar.gz#sha256={h}">big-1.1.tar.gz</a></body></html>').encode())
    got, _ = locate(server, LockedFile(h))
    assert got.files[0].url.endswith("/elsewhere/big-1.1.tar.gz")


def test_a_broken_page_is_reported_when_the_search_cannot_settle(server: PageServer) -> None:
    data, _ = big_page(20)
    server.pages["/simple/big/"] = (JSON_TYPE, data[:-300])  # cut short
    got, _ = locate(server, LockedFile(digest(2)))  # found before the cut: fine
    assert got.files[0].filename == entry(2)["filename"]
    with pytest.raises(NetworkError, match="not a valid Simple API page"):
        locate(server, LockedFile(digest("absent")))
