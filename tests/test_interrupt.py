"""Ctrl-C while a server stalls: the command stops at once and leaves nothing behind.

An operator's interrupt must not wait for a socket that does not answer (the stall here
is 60 s, the read timeout 30 s), must not finish the transfer into the cache, and must
leave no temporary file and no bundle.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultserver import FaultServer
from locktext import Pin, hashed_requirements

STALL = "stall:60"


@pytest.fixture
def world(tmp_path: Path, wheel_factory, clean_environ):
    slow = wheel_factory("slowpkg", "1.0", payload_size=300_000)
    fast = wheel_factory("fastpkg", "1.0")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(hashed_requirements([Pin("slowpkg", "1.0", [slow]),
                                         Pin("fastpkg", "1.0", [fast])]))
    with FaultServer(slow.parent) as server:
        yield server, reqs, slow


def interrupt_when(server: FaultServer, path: str, cmd: list[str]) -> tuple[int, str, float]:
    """Start `cmd`, send SIGINT once the server has been asked for `path`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(s.path == path for s in list(server.seen)):
        assert proc.poll() is None and time.monotonic() < deadline, "never asked for " + path
        time.sleep(0.05)
    time.sleep(0.2)  # the request is now waiting on the stalled server
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err, time.monotonic() - sent


def bundle_cmd(reqs: Path, server: FaultServer, tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "wheelhouse_bundler", "bundle", str(reqs), "-o",
            str(tmp_path / "out" / "app.tar"), "--index-url", server.url, "--cache-dir",
            str(tmp_path / "cache")]


def assert_nothing_left(tmp_path: Path, slow: Path) -> None:
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    cache = tmp_path / "cache"
    assert [p for p in cache.rglob(".*.part")] == []
    from wheelfactory import sha256_of
    assert not (cache / "sha256" / sha256_of(slow)[:2] / sha256_of(slow)).exists()


def test_interrupt_during_a_stalled_file(world, tmp_path) -> None:
    server, reqs, slow = world
    server.faults[slow.name] = [STALL]
    rc, err, took = interrupt_when(server, f"/files/{slow.name}",
                                   bundle_cmd(reqs, server, tmp_path))
    assert rc == 130 and err.strip() == "wheelhouse-bundler: interrupted", err
    assert took < 10, f"exit took {took:.1f} s: it waited for the stalled transfer"
    assert_nothing_left(tmp_path, slow)


def test_interrupt_during_a_stalled_index_page(world, tmp_path) -> None:
    server, reqs, slow = world
    server.faults["page:slowpkg"] = [STALL]
    rc, err, took = interrupt_when(server, "/simple/slowpkg/",
                                   bundle_cmd(reqs, server, tmp_path))
    assert rc == 130 and err.strip() == "wheelhouse-bundler: interrupted", err
    assert took < 10, f"exit took {took:.1f} s: it waited for the stalled page"
    assert_nothing_left(tmp_path, slow)
    # Files of packages whose pages had come may be in the cache by now (fetched early:
    # a request is not an output); the stalled package's own file cannot have been asked.
    assert not any(s.path == f"/files/{slow.name}" for s in server.seen)
