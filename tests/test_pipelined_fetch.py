"""Files fetched while other pages are still on the wire (issue 18, decision 1).

A hash-only lock names no files: every page must come before the plan is known. A file
may be fetched into the cache as soon as its own page has named it; the rule is still
that nothing reaches the output (or -d) unless the whole plan holds, and that a refused
run prints the whole table.
"""

from __future__ import annotations

import json

from clirun import run_cli
from faultserver import FaultServer
from locktext import Pin, hashed_requirements
from venvs import clean_env
from wheelfactory import sha256_of

LINUX = "cp311-manylinux_2_28_x86_64"


def _world(tmp_path, wheel_factory, *extra: Pin):
    fast = wheel_factory("fastpkg", "1.0", payload_size=200_000)
    slow = wheel_factory("slowpkg", "1.0")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(hashed_requirements([Pin("fastpkg", "1.0", [fast]),
                                         Pin("slowpkg", "1.0", [slow]), *extra]))
    return fast, slow, reqs


def test_a_file_is_fetched_while_another_page_is_still_coming(tmp_path, wheel_factory,
                                                              clean_environ) -> None:
    fast, slow, reqs = _world(tmp_path, wheel_factory)
    with FaultServer(fast.parent) as server:
        server.faults["page:slowpkg"] = ["stall:2"]
        out = tmp_path / "app.tar"
        done = run_cli("bundle", reqs, "-o", out, "--index-url", server.url, "--cache-dir",
                       tmp_path / "cache", "-t", LINUX, "--no-uv", "--json", env=clean_env())
        assert done.returncode == 0, done.stderr
        when = {s.path: s.at for s in server.seen}
    # slowpkg's page is answered 2 s after it is asked: the fast file went out in
    # between, not after the last page.
    assert when[f"/files/{fast.name}"] < when["/simple/slowpkg/"] + 1.5
    assert when[f"/files/{slow.name}"] >= when["/simple/slowpkg/"] + 2
    doc = json.loads(done.stdout)
    assert (doc["downloaded"], doc["from_cache"]) == (2, 0)  # early is still downloaded


def test_a_refused_run_fetched_early_but_wrote_nothing(tmp_path, wheel_factory,
                                                       clean_environ) -> None:
    """A package with no wheel for the target is found only when its page comes, after
    another's file was already fetched: the table is whole, exit 2, no output, and the
    early file is a verified cache entry."""
    winonly = wheel_factory("winonly", "1.0", tag="cp311-cp311-win_amd64")
    fast, _, reqs = _world(tmp_path, wheel_factory, Pin("winonly", "1.0", [winonly]))
    cache = tmp_path / "cache"
    with FaultServer(fast.parent) as server:
        server.faults["page:winonly"] = ["stall:2"]
        dest = tmp_path / "out" / "wheels"
        done = run_cli("download", reqs, "-d", dest, "--index-url", server.url,
                       "--cache-dir", cache, "-t", LINUX, env=clean_env())
        assert done.returncode == 2
        assert "1 package(s) cannot be installed from requirements.txt" in done.stderr
        assert f"winonly==1.0 on {LINUX}: no wheel for this target" in done.stderr
        assert f"/files/{fast.name}" in [s.path for s in server.seen]
        assert not (tmp_path / "out").exists()
        entry = cache / "sha256" / sha256_of(fast)[:2] / sha256_of(fast)
        assert sha256_of(entry) == sha256_of(fast)
