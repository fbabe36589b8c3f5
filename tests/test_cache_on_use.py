"""The cache is checked where it is used, not fsynced where it is written.

A crash can leave a cache entry short or with wrong bytes (entries are renamed into place
without fsync, as pip's and uv's are). No such byte may reach a bundle or a `download -d`
folder: sizes are checked at lookup, hashes while packing or copying; online, a damaged
entry is evicted and fetched again; --offline, the run names the file and exits 3,
leaving nothing at the output path.
"""

from __future__ import annotations

import json
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from locktext import Pin, hashed_requirements
from wheelfactory import sha256_of

from wheelhouse_bundler.cache import Cache
from wheelhouse_bundler.cli import main


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def built(tmp_path: Path, index_server, wheel_factory, clean_environ, capsys):
    """A hash-only lock of three wheels, bundled once: the cache holds all three."""
    wheels = [wheel_factory("alpha", "1.0", payload_size=300_000),
              wheel_factory("beta", "2.0"), wheel_factory("gamma", "3.0")]
    for w in wheels:
        index_server.add(w)
    lock = tmp_path / "requirements.txt"
    lock.write_text(hashed_requirements([Pin(w.name.split("-")[0], w.name.split("-")[1], [w])
                                         for w in wheels]))
    cache = tmp_path / "cache"
    assert cli("bundle", lock, "-o", tmp_path / "first.tar", "--index-url", index_server.url,
               "--cache-dir", cache, "-q") == 0
    capsys.readouterr()
    index_server.reset_requests()
    return lock, cache, wheels[0]


def flip_a_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 1000)


DAMAGE = {"flipped": flip_a_byte, "truncated": truncate}


def run(command: str, lock: Path, out: Path, cache: Path, url: str, *extra: object) -> int:
    flag = "-o" if command == "bundle" else "-d"
    return cli(command, lock, flag, out, "--index-url", url, "--cache-dir", cache, "-q",
               *extra)


def wheels_in(command: str, out: Path) -> dict[str, str]:
    """File name -> sha256 of the wheels a bundle or a -d folder holds."""
    if command == "download":
        return {p.name: sha256_of(p) for p in out.iterdir()}
    import hashlib

    with tarfile.open(out) as tar:
        return {m.name.rsplit("/", 1)[-1]: hashlib.sha256(tar.extractfile(m).read()).hexdigest()
                for m in tar.getmembers() if "/wheels/" in m.name}


@pytest.mark.parametrize("command", ["bundle", "download"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_fetched_again_online(command, damage, built, tmp_path,
                                                 index_server, capsys) -> None:
    lock, cache, victim = built
    entry = Cache(cache).path(sha256_of(victim))
    DAMAGE[damage](entry)
    out = tmp_path / ("app.tar" if command == "bundle" else "dest")
    assert run(command, lock, out, cache, index_server.url) == 0
    # That one file again (its page too, where the hash-only lock needs its URL).
    assert [r for r in index_server.requests() if r.startswith("/packages/")] == [
        f"/packages/{victim.name}"]
    assert sha256_of(entry) == sha256_of(victim)
    got = wheels_in(command, out)
    assert got[victim.name] == sha256_of(victim) and len(got) == 3
    if command == "bundle":
        assert cli("verify", out) == 0
    capsys.readouterr()


@pytest.mark.parametrize("command", ["bundle", "download"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_offline_is_named_and_nothing_is_written(command, damage, built,
                                                                 tmp_path, index_server,
                                                                 capsys) -> None:
    lock, cache, victim = built
    entry = Cache(cache).path(sha256_of(victim))
    DAMAGE[damage](entry)
    out = tmp_path / ("app.tar" if command == "bundle" else "dest")
    assert run(command, lock, out, cache, index_server.url, "--offline") == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--offline" in err and victim.name in err
    assert not out.exists() and not (tmp_path / "app.tar.sha256").exists()
    assert not entry.exists()  # evicted: the next online run fetches it
    assert index_server.requests() == []
    assert run(command, lock, out, cache, index_server.url) == 0
    assert wheels_in(command, out)[victim.name] == sha256_of(victim)


def test_an_entry_without_its_note_is_still_hashed_when_packed(built, tmp_path, index_server,
                                                               capsys) -> None:
    """No recorded size (a note lost, or a cache from an older version): the short entry
    passes the lookup, and the hash taken while packing catches it."""
    lock, cache, victim = built
    entry = Cache(cache).path(sha256_of(victim))
    entry.with_suffix(".json").unlink()
    truncate(entry)
    out = tmp_path / "app.tar"
    assert run("bundle", lock, out, cache, index_server.url) == 0
    assert [r for r in index_server.requests() if r.startswith("/packages/")] == [
        f"/packages/{victim.name}"]
    assert wheels_in("bundle", out)[victim.name] == sha256_of(victim)
    assert sha256_of(entry) == sha256_of(victim)
    capsys.readouterr()


def test_damage_the_sbom_would_read_first_is_fetched_again(built, tmp_path, index_server,
                                                           capsys) -> None:
    """The SBOM reads each wheel's METADATA before the wheels are packed: a flipped byte
    there reads as a broken wheel, which the build tells from a damaged entry by its hash."""
    lock, cache, victim = built
    entry = Cache(cache).path(sha256_of(victim))
    with zipfile.ZipFile(entry) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".dist-info/METADATA"))
    with open(entry, "rb") as fh:  # past the local header: its name and extra field
        fh.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
    flip_a_byte(entry, info.header_offset + 30 + name_len + extra_len
                + info.compress_size // 2)
    for memo in (cache / "sbom").glob("*"):
        memo.unlink()  # otherwise the SBOM of this manifest comes from its memo
    out = tmp_path / "app.tar"
    assert run("bundle", lock, out, cache, index_server.url, "--offline") == 3
    err = capsys.readouterr().err
    assert victim.name in err and "--offline" in err and not out.exists()
    assert run("bundle", lock, out, cache, index_server.url) == 0
    assert wheels_in("bundle", out)[victim.name] == sha256_of(victim)
    assert cli("verify", out) == 0


def test_cache_entries_are_not_fsynced_and_the_bundle_is(tmp_path, index_server,
                                                         wheel_factory, clean_environ,
                                                         monkeypatch, capsys) -> None:
    wheels = [wheel_factory(f"pkg{i}", "1.0") for i in range(3)]
    for w in wheels:
        index_server.add(w)
    lock = tmp_path / "requirements.txt"
    lock.write_text(hashed_requirements([Pin(f"pkg{i}", "1.0", [w])
                                         for i, w in enumerate(wheels)]))
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "out" / "app.tar"
    cache = tmp_path / "cache"
    assert cli("bundle", lock, "-o", out, "--index-url", index_server.url, "--cache-dir",
               cache, "--json") == 0
    assert json.loads(capsys.readouterr().out)["downloaded"] == 3
    assert not [p for p in synced if p.startswith(str(cache))]
    assert any(Path(p).parent == out.parent and ".app.tar." in p for p in synced)


def test_download_links_from_the_cache_and_an_edit_there_is_caught_on_next_use(
        built, tmp_path, index_server, capsys) -> None:
    """On the cache's filesystem, `download -d` gives each cached wheel a second name
    instead of copying it (as uv links from its cache). The price: editing a file in -d
    in place edits the cache entry too. The next use hashes the entry, so the edit never
    reaches a bundle: the entry is fetched again."""
    lock, cache, alpha = built
    out = tmp_path / "downloaded"
    assert run("download", lock, out, cache, index_server.url) == 0
    placed = out / alpha.name
    entry = Cache(cache).path(sha256_of(alpha))
    assert os.path.samefile(placed, entry)

    flip_a_byte(placed)
    index_server.reset_requests()
    assert run("bundle", lock, tmp_path / "again.tar", cache, index_server.url) == 0
    assert wheels_in("bundle", tmp_path / "again.tar")[alpha.name] == sha256_of(alpha)
    assert any(alpha.name in r for r in index_server.requests())
