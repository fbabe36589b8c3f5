"""download's way out of the cache: a link where the filesystem allows, else a copy in
the kernel when possible; whole and exact either way."""

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


def test_link_gives_the_cache_entry_a_second_name_replacing_what_was_there(
        source, tmp_path) -> None:
    out = tmp_path / "out.whl"
    out.write_bytes(b"an older, shorter file")
    assert files.link_atomic(source, out)
    assert os.path.samefile(source, out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP,
                                  errno.EINVAL])
def test_link_says_no_where_the_filesystem_cannot(source, tmp_path, monkeypatch,
                                                  code: int) -> None:
    """Another filesystem (the cache in ~/.cache, -d on a mounted disk), one without
    hard links, or a platform's own refusal: the caller copies instead, and nothing is
    left behind."""
    def refuse(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", refuse)
    out = tmp_path / "out.whl"
    assert not files.link_atomic(source, out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["src.whl"]


def test_a_link_whose_rename_fails_leaves_no_temporary_name(source, tmp_path) -> None:
    """`out` is a folder: the rename cannot replace it; the link made on the way goes."""
    out = tmp_path / "out.whl"
    out.mkdir()
    assert not files.link_atomic(source, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.whl", "src.whl"]
