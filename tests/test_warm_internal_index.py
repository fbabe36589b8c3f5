"""A warm rebuild against an internal index asks it nothing, whatever its page format.

A lock made against the default index lists every platform's wheels and the sdist of
each pin; an internal index (pypiserver, a mirror) often holds only the wheels the build
box needs. The hashes it does not list have no name, and what a page did not list is
remembered too, so a rebuild of the same lock with the same cache makes no page request,
online or --offline. Both page formats are served from real sockets: pypiserver's PEP 503
HTML (root-relative links) and a PEP 691 JSON index (relative URLs, tests/faultserver.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultserver import JSON_TYPE, FaultServer
from locktext import Pin, hashed_requirements
from wheelfactory import sha256_of

from wheelhouse_bundler.cli import main

WINDOWS = "cp311-win_amd64"
LINUX = "cp311-manylinux_2_28_x86_64"
LINUX_TAG = "manylinux_2_17_x86_64.manylinux2014_x86_64"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


class Served:
    """Either index, with the one question the tests ask: what was requested since reset."""

    def __init__(self, kind: str, root: Path, pypiserver) -> None:
        self.kind = kind
        self.pypiserver = pypiserver
        self.json = FaultServer(root) if kind == "json" else None

    @property
    def url(self) -> str:
        return self.json.url if self.json is not None else self.pypiserver.url

    def add(self, wheel: Path) -> None:
        if self.json is not None:
            (self.json.root / wheel.name).write_bytes(wheel.read_bytes())
        else:
            self.pypiserver.add(wheel)

    def reset(self) -> None:
        if self.json is not None:
            self.json.seen.clear()
        else:
            self.pypiserver.reset_requests()

    def requests(self) -> list[str]:
        if self.json is not None:
            return [s.path for s in self.json.seen]
        return self.pypiserver.requests()

    def pages_were_json(self) -> bool:
        assert self.json is not None
        pages = [s for s in self.json.seen if s.path.startswith("/simple/")]
        return bool(pages) and all(s.content_type == JSON_TYPE for s in pages)


@pytest.fixture(params=["pypiserver-html", "json"])
def served(request, tmp_path: Path, index_server):
    s = Served(request.param, tmp_path / "json-index", index_server)
    if s.json is None:
        yield s
        return
    (tmp_path / "json-index").mkdir()
    with s.json:
        yield s


def lock_with_files_the_index_lacks(tmp_path: Path, served: Served, wheel_factory
                                    ) -> tuple[Path, dict[str, Path]]:
    """Four pins; the index holds each one's host wheel, not its sdist nor a win wheel."""
    held = {f"pkg{i}": wheel_factory(f"pkg{i}", "1.0") for i in range(4)}
    for wheel in held.values():
        served.add(wheel)
    elsewhere = tmp_path / "not-on-the-index"
    lacking = {"pkg0": wheel_factory(elsewhere, "pkg0", "1.0", tag="cp311-cp311-win_amd64"),
               "pkg1": wheel_factory(elsewhere, "pkg1", "1.0", tag="cp311-cp311-win_amd64")}
    pins = [Pin(name, "1.0", [wheel, *([lacking[name]] if name in lacking else [])],
                extra_files={f"{name}-1.0.tar.gz": f"{i:x}" * 64} if i < 3 else {})
            for i, (name, wheel) in enumerate(held.items())]
    lock = tmp_path / "requirements.txt"
    lock.write_text(hashed_requirements(pins))
    return lock, lacking


def test_warm_and_offline_rebuilds_ask_no_page_when_the_index_lacks_locked_files(
        served, tmp_path, wheel_factory, clean_environ, capsys) -> None:
    lock, _ = lock_with_files_the_index_lacks(tmp_path, served, wheel_factory)
    args = [lock, "--index-url", served.url, "--cache-dir", tmp_path / "cache", "--json",
            "--no-uv"]  # uv rides along by default: its page is not what this counts
    assert cli("bundle", "-o", tmp_path / "cold" / "app.tar", *args) == 0
    assert json.loads(capsys.readouterr().out)["downloaded"] == 4
    pages = [r for r in served.requests() if r.startswith("/simple/")]
    assert len(pages) == 4  # the cold build did read every page
    if served.json is not None:
        assert served.pages_were_json()

    served.reset()
    assert cli("bundle", "-o", tmp_path / "warm" / "app.tar", *args) == 0
    warm = json.loads(capsys.readouterr().out)
    assert warm["from_cache"] == 4 and warm["downloaded"] == 0
    assert served.requests() == []

    assert cli("bundle", "-o", tmp_path / "offline" / "app.tar", "--offline", *args) == 0
    capsys.readouterr()
    assert served.requests() == []
    cold = (tmp_path / "cold" / "app.tar").read_bytes()
    assert (tmp_path / "warm" / "app.tar").read_bytes() == cold
    assert (tmp_path / "offline" / "app.tar").read_bytes() == cold


def test_a_second_export_asks_no_page(served, tmp_path, wheel_factory, clean_environ,
                                     capsys) -> None:
    """`export` reads the same pages (for names only) and remembers them the same way,
    in the default cache (which clean_environ puts under tmp_path)."""
    lock, _ = lock_with_files_the_index_lacks(tmp_path, served, wheel_factory)
    assert cli("export", lock, "-o", tmp_path / "out.txt", "--index-url", served.url) == 0
    assert len(served.requests()) == 4
    served.reset()
    assert cli("export", lock, "-o", tmp_path / "again.txt", "--index-url", served.url) == 0
    assert served.requests() == []
    assert (tmp_path / "again.txt").read_text() == (tmp_path / "out.txt").read_text()
    capsys.readouterr()


def test_a_file_the_index_lacked_is_looked_for_again_before_a_target_is_refused(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    """What a page did not list is remembered, but a refusal never rests on that memory
    alone: when a target cannot be served, the pages of the packages it lacks are read
    again, and a wheel mirrored since is found."""
    linux = wheel_factory("native", "1.0", tag=f"cp311-cp311-{LINUX_TAG}")
    windows = wheel_factory(tmp_path / "later", "native", "1.0", tag="cp311-cp311-win_amd64")
    index_server.add(linux)
    lock = tmp_path / "requirements.txt"
    lock.write_text(hashed_requirements([Pin("native", "1.0", [linux, windows])]))
    args = [lock, "--index-url", index_server.url, "--cache-dir", tmp_path / "cache",
            "--no-uv"]
    assert cli("bundle", "-o", tmp_path / "linux.tar", "-t", LINUX, *args) == 0

    index_server.reset_requests()
    assert cli("bundle", "-o", tmp_path / "win.tar", "-t", WINDOWS, *args) == 2
    assert "native==1.0 on cp311-win_amd64: no wheel" in capsys.readouterr().err
    assert index_server.requests() == ["/simple/native/"]  # asked again, still absent
    assert not (tmp_path / "win.tar").exists()

    index_server.add(windows)  # the admin mirrors it
    index_server.reset_requests()
    assert cli("bundle", "-o", tmp_path / "win.tar", "-t", WINDOWS, *args) == 0
    assert index_server.requests() == ["/simple/native/", f"/packages/{windows.name}"]
    index_server.reset_requests()
    assert cli("bundle", "-o", tmp_path / "again" / "win.tar", "-t", WINDOWS, *args) == 0
    assert index_server.requests() == []  # and from now on it is known
    assert sha256_of(tmp_path / "again" / "win.tar") == sha256_of(tmp_path / "win.tar")
    capsys.readouterr()


def test_a_page_note_cut_short_is_asked_again(served, tmp_path, wheel_factory, clean_environ,
                                              capsys) -> None:
    """The notes are not fsynced either: one a crash cut short means asking the page."""
    lock, _ = lock_with_files_the_index_lacks(tmp_path, served, wheel_factory)
    args = [lock, "--index-url", served.url, "--cache-dir", tmp_path / "cache", "-q",
            "--no-uv"]
    assert cli("bundle", "-o", tmp_path / "cold" / "app.tar", *args) == 0
    notes = sorted((tmp_path / "cache" / "pages").glob("*/*"))
    assert len(notes) == 4
    notes[0].write_bytes(notes[0].read_bytes()[:10])
    served.reset()
    assert cli("bundle", "-o", tmp_path / "warm" / "app.tar", *args) == 0
    assert len([r for r in served.requests() if r.startswith("/simple/")]) == 1
    assert (tmp_path / "warm" / "app.tar").read_bytes() == \
        (tmp_path / "cold" / "app.tar").read_bytes()
    capsys.readouterr()
