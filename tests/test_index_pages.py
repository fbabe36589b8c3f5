"""Simple API page parsing: PEP 691 JSON and PEP 503 HTML give the same files."""

from __future__ import annotations

import json

from wheelhouse_bundler.index import parse_html, parse_json

PAGE = "http://127.0.0.1:9/simple/alpha/"


def test_json_page_resolves_relative_urls_and_hashes() -> None:
    doc = {"meta": {"api-version": "1.1"}, "name": "alpha", "files": [
        {"filename": "alpha-1.0-py3-none-any.whl", "url": "../../files/alpha-1.0-py3-none-any.whl",
         "hashes": {"sha256": "a" * 64}, "yanked": "broken"},
        {"filename": "alpha-1.0.tar.gz", "url": "http://127.0.0.1:9/f/alpha-1.0.tar.gz",
         "hashes": {}},
        {"filename": "alpha-0.9-py3-none-any.whl",
         "url": "https://127.0.0.1:9/f/alpha-0.9-py3-none-any.whl#sha256=" + "b" * 64,
         "hashes": {"sha256": "b" * 64}},
        {"filename": "alpha-0.8-py3-none-any.whl",
         "url": "//127.0.0.1:8/alpha-0.8-py3-none-any.whl", "hashes": {"sha256": "c" * 64}}]}
    files = parse_json(json.dumps(doc).encode(), PAGE)
    assert files[0].url == "http://127.0.0.1:9/files/alpha-1.0-py3-none-any.whl"
    assert files[0].sha256 == "a" * 64 and files[0].yanked
    assert files[1].url == "http://127.0.0.1:9/f/alpha-1.0.tar.gz"
    assert files[1].sha256 is None and not files[1].yanked
    assert files[2].url == "https://127.0.0.1:9/f/alpha-0.9-py3-none-any.whl"  # no fragment
    assert files[3].url == "http://127.0.0.1:8/alpha-0.8-py3-none-any.whl"  # page's scheme


def test_html_page_reads_fragments_base_and_yanked() -> None:
    html = f"""<!DOCTYPE html><html><head><base href="/packages/"></head><body>
    <a href="alpha-1.0-py3-none-any.whl#sha256={'B' * 64}"
       data-yanked="">alpha-1.0-py3-none-any.whl</a>
    <a href="http://127.0.0.1:9/other/alpha-1.0.tar.gz#md5=abc">alpha-1.0.tar.gz</a>
    </body></html>"""
    files = parse_html(html, PAGE)
    assert files[0].url == "http://127.0.0.1:9/packages/alpha-1.0-py3-none-any.whl"
    assert files[0].sha256 == "b" * 64 and files[0].yanked
    assert files[1].filename == "alpha-1.0.tar.gz" and files[1].sha256 is None
