"""Shared fixtures. Thin on purpose: the logic lives in wheelfactory, indexserver and venvs.

The helper modules are imported top-level (`from wheelfactory import build_wheel`), as the
test modules do: tests/ has no __init__.py, and this file puts its own folder on sys.path
(pytest's default import mode does too; this also covers --import-mode=importlib).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("lockfixtures")  # its assert helpers report like tests

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import venvs  # noqa: E402
from indexserver import IndexServer  # noqa: E402
from wheelfactory import WheelFactory, factory_for  # noqa: E402

AUTH = ("alice", "s3cret-pw")
"""The credentials of `auth_index_server` (also on the fixture, as `.auth`)."""


@pytest.fixture
def wheel_factory(tmp_path: Path) -> WheelFactory:
    """build_wheel writing into `tmp_path/wheels`, or into a Path given as first argument."""
    return factory_for(tmp_path / "wheels")


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[IndexServer]:
    """A running pypiserver over the empty folder `tmp_path/index` (add files with .add())."""
    with IndexServer(tmp_path / "index", log_dir=tmp_path / "index-log") as server:
        yield server


@pytest.fixture
def auth_index_server(tmp_path: Path) -> Iterator[IndexServer]:
    """Like index_server, but downloads and listings need basic auth AUTH."""
    with IndexServer(tmp_path / "auth-index", auth=AUTH,
                     log_dir=tmp_path / "auth-index-log") as server:
        yield server


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """os.environ as venvs.clean_env() makes it, for in-process code; returns the cache dir.

    Subprocesses started without env= inherit it too. XDG_CACHE_HOME points into tmp_path
    so pip (and the code under test) caches nothing outside the test.
    """
    venvs.clean_os_environ(monkeypatch, tmp_path)  # also hides the machine's ~/.netrc
    cache = tmp_path / "xdg"
    cache.mkdir()
    return cache


@pytest.fixture
def make_venv(tmp_path: Path) -> Callable[..., Path]:
    """`make_venv(name="venv", python=sys.executable, with_pip=True)` -> the venv's python."""

    def make(name: str = "venv", python: str = sys.executable, *, with_pip: bool = True) -> Path:
        return venvs.make_venv(tmp_path / name, python, with_pip=with_pip)

    return make
