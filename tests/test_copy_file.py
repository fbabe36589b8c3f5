"""download's copy out of the cache: in-kernel when possible, whole and exact either way."""

from __future__ import annotations

import errno
import os

import pytest

from wheelhouse_bundler import files


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src.whl"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


def copy(source, tmp_path):
    out = tmp_path / "out.whl"
    with open(source, "rb") as src, open(out, "wb") as dst:
        files.copy_file(src, dst)
    return out.read_bytes()


def test_copies_exactly(source, tmp_path) -> None:
    assert copy(source, tmp_path) == source.read_bytes()


def test_falls_back_where_sendfile_refuses_midway(source, tmp_path, monkeypatch) -> None:
    real = os.sendfile
    calls = []

    def flaky(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(offset)
        if len(calls) == 1:
            return real(out_fd, in_fd, offset, 1000)  # a short first send
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", flaky)
    assert copy(source, tmp_path) == source.read_bytes()
    assert calls == [0, 1000]


def test_a_full_disk_is_not_swallowed(source, tmp_path, monkeypatch) -> None:
    def full(*args: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "sendfile", full)
    with pytest.raises(OSError) as caught:
        copy(source, tmp_path)
    assert caught.value.errno == errno.ENOSPC


def test_hashed_copy_returns_the_sha256_of_what_it_wrote(source, tmp_path, monkeypatch) -> None:
    """A copy out of the cache is hashed on its way (the cache is checked on use), so the
    bytes pass through Python once and the kernel copy is not used."""
    import hashlib

    def refuse(*args: int) -> int:
        raise AssertionError("the hashed copy must not use sendfile")

    monkeypatch.setattr(os, "sendfile", refuse)
    out = tmp_path / "out.whl"
    with open(source, "rb") as src, open(out, "wb") as dst:
        digest = files.copy_file(src, dst, hashed=True)
    assert out.read_bytes() == source.read_bytes()
    assert digest == hashlib.sha256(source.read_bytes()).hexdigest()
