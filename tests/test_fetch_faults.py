"""The downloader against real sockets that misbehave: resume, retry, refuse, time out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultserver import JSON_TYPE, FaultServer
from locktext import Pin, hashed_requirements, poetry_lock, pyproject
from wheelfactory import sha256_of

from wheelhouse_bundler.cli import main


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def setup(tmp_path: Path, wheel_factory, clean_environ):
    big = wheel_factory("bigpkg", "1.0", payload_size=3 * 1024 * 1024)
    small = wheel_factory("smallpkg", "2.0")
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock([Pin("bigpkg", "1.0", [big]),
                                                   Pin("smallpkg", "2.0", [small])]))
    with FaultServer(big.parent) as server:
        yield server, root, big, small


def bundle(root: Path, server: FaultServer, tmp_path: Path, *extra: object) -> int:
    """`bundle` of the locked files alone (--no-uv: no request for uv's page)."""
    return cli("bundle", root, "-o", tmp_path / "app.tar", "--index-url", server.url,
               "--cache-dir", tmp_path / "cache", "-q", "--no-uv", *extra)


def test_json_api_is_used_when_offered(setup, tmp_path) -> None:
    server, root, _, _ = setup
    assert bundle(root, server, tmp_path) == 0
    pages = [s for s in server.seen if s.path.startswith("/simple/")]
    assert len(pages) == 2 and all(s.content_type == JSON_TYPE for s in pages)


def test_connection_dropped_mid_file_resumes_with_range(setup, tmp_path) -> None:
    server, root, big, _ = setup
    server.faults[big.name] = ["drop:1000000", "drop:500000"]
    assert bundle(root, server, tmp_path) == 0
    asks = server.files_requested(big.name)
    assert [s.range for s in asks] == [None, "bytes=1000000-", "bytes=1500000-"]
    assert cli("verify", tmp_path / "app.tar") == 0


def test_server_without_ranges_restarts_the_file(setup, tmp_path) -> None:
    server, root, big, _ = setup
    server.ranges = False
    server.faults[big.name] = ["drop:700000"]
    assert bundle(root, server, tmp_path) == 0
    assert len(server.files_requested(big.name)) == 2
    assert cli("verify", tmp_path / "app.tar") == 0


def test_500_then_200_is_retried(setup, tmp_path) -> None:
    server, root, _, small = setup
    server.faults[small.name] = ["500", "500"]
    assert bundle(root, server, tmp_path) == 0
    assert len(server.files_requested(small.name)) == 3


def test_429_with_retry_after_is_honoured(setup, tmp_path) -> None:
    server, root, _, small = setup
    server.faults[small.name] = ["429:1"]
    assert bundle(root, server, tmp_path) == 0
    assert len(server.files_requested(small.name)) == 2


def test_wrong_bytes_are_refused_retried_once_and_never_cached(setup, tmp_path,
                                                               capsys) -> None:
    server, root, _, small = setup
    server.faults[small.name] = ["wrong", "wrong"]
    assert bundle(root, server, tmp_path) == 3
    err = capsys.readouterr().err
    assert small.name in err and "does not match" in err
    assert len(server.files_requested(small.name)) == 2
    cached = list((tmp_path / "cache").rglob("*"))
    assert not any(p.is_file() and p.stat().st_size == small.stat().st_size for p in cached)
    assert not (tmp_path / "app.tar").exists()


def test_stalled_server_times_out_with_a_clear_error(setup, tmp_path, capsys) -> None:
    server, root, _, small = setup
    server.faults[small.name] = ["stall:3"] * 4
    assert bundle(root, server, tmp_path, "--timeout", "0.5") == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "timed out" in err and small.name in err
    assert not (tmp_path / "app.tar").exists()


@pytest.mark.parametrize("kind", ["poetry", "requirements"])
def test_warm_rebuild_and_offline_rebuild_make_no_requests(kind, tmp_path, index_server,
                                                           wheel_factory, clean_environ,
                                                           capsys) -> None:
    wheels = [wheel_factory(f"pkg{i}", "1.0") for i in range(5)]
    # A second wheel the host cannot use: a hash-only lock lists it too.
    wheels.append(wheel_factory("pkg0", "1.0", tag="cp311-cp311-win_amd64"))
    for w in wheels:
        index_server.add(w)
    pins = [Pin(f"pkg{i}", "1.0", [w for w in wheels if w.name.startswith(f"pkg{i}-")])
            for i in range(5)]
    root = tmp_path / "p"
    root.mkdir()
    if kind == "poetry":
        (root / "pyproject.toml").write_text(pyproject())
        (root / "poetry.lock").write_text(poetry_lock(pins))
        lock = root
    else:
        lock = root / "requirements.txt"
        lock.write_text(hashed_requirements(pins))
    args = [lock, "--index-url", index_server.url, "--cache-dir", tmp_path / "cache", "--json"]
    assert cli("bundle", "-o", tmp_path / "cold.tar", *args) == 0
    cold = json.loads(capsys.readouterr().out)
    assert cold["downloaded"] == 5
    index_server.reset_requests()
    assert cli("bundle", "-o", tmp_path / "warm.tar", *args) == 0
    warm = json.loads(capsys.readouterr().out)
    assert warm["from_cache"] == 5 and warm["downloaded"] == 0
    assert index_server.requests() == []
    index_server.stop()
    assert cli("bundle", "-o", tmp_path / "offline.tar", "--offline", *args) == 0
    capsys.readouterr()
    # Same lock, same cache: the three bundles hold the same wheels, byte for byte.
    assert cli("inspect", tmp_path / "offline.tar", "--json") == 0
    offline = json.loads(capsys.readouterr().out)
    assert cli("inspect", tmp_path / "cold.tar", "--json") == 0
    assert json.loads(capsys.readouterr().out)["packages"] == offline["packages"]


def test_offline_names_what_the_cache_lacks(tmp_path, wheel_factory, clean_environ,
                                            capsys) -> None:
    w = wheel_factory("lonely", "1.0")
    root = tmp_path / "p"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock([Pin("lonely", "1.0", [w])]))
    assert cli("bundle", root, "-o", tmp_path / "x.tar", "--offline", "--index-url",
               "http://127.0.0.1:9/simple/", "--cache-dir", tmp_path / "empty") == 4
    err = capsys.readouterr().err
    assert "--offline" in err and w.name in err


def test_failed_download_leaves_the_folder_as_it_was(setup, tmp_path) -> None:
    """Wheels are copied out while others are still arriving; a failure takes them back.

    The small wheel is answered with a 500 twice (a retry waits at least 0.375 s) and
    then with wrong bytes, so the big one is in the folder well before the run fails.
    """
    server, root, big, small = setup
    server.faults[small.name] = ["500", "500", "wrong", "wrong"]
    fresh = tmp_path / "fresh"
    assert cli("download", root, "-d", fresh, "--index-url", server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 3
    assert len(server.files_requested(big.name)) == 1  # it did arrive
    assert not fresh.exists()

    server.faults[small.name] = ["500", "500", "wrong", "wrong"]
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    (used / big.name).write_bytes(b"an older download, cut short")
    assert cli("download", root, "-d", used, "--index-url", server.url,
               "--cache-dir", tmp_path / "cache2", "-q") == 3
    assert sorted(p.name for p in used.iterdir()) == [big.name, "notes.txt"]
    assert (used / big.name).read_bytes() == big.read_bytes()  # rewritten, verified, kept


def _uv_lock(url: str, wheel: Path, size: int) -> str:
    """A uv.lock pinning one wheel by URL, hash and size, as uv writes it."""
    file_url = f"{url.rsplit('/simple/', 1)[0]}/files/{wheel.name}"
    return f'''version = 1
revision = 3
requires-python = ">=3.8"

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "bigpkg" }}]

[[package]]
name = "bigpkg"
version = "1.0"
source = {{ registry = "{url}" }}
wheels = [
  {{ url = "{file_url}", hash = "sha256:{sha256_of(wheel)}", size = {size} }},
]
'''


def test_body_longer_than_the_locks_size_is_refused_retried_once_never_cached(
        setup, tmp_path, capsys) -> None:
    """The lock records the size: a longer body is refused as it streams, before its
    hash could be checked, retried once (a broken proxy may be to blame), then reported."""
    server, root, big, _ = setup
    lock_size = big.stat().st_size - 100
    (root / "poetry.lock").unlink()
    (root / "uv.lock").write_text(_uv_lock(server.url, big, lock_size))
    assert bundle(root, server, tmp_path) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert big.name in err and f"more than the lock's {lock_size} bytes" in err
    assert len(server.files_requested(big.name)) == 2
    assert not any(p.is_file() and p.stat().st_size >= lock_size
                   for p in (tmp_path / "cache").rglob("*"))
    assert not (tmp_path / "app.tar").exists()
