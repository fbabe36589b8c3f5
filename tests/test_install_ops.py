"""Atomic installs through the real CLI: smoke imports, rollback, --keep, and every way an
install can fail (a wheel whose import raises, a wheel pip refuses, a full disk, Ctrl-C)
leaving `--venv` on the old, working release with nothing half-made beside it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import venvs
from bundles import make_bundle
from clirun import run_cli
from indexserver import IndexServer
from packaging.utils import parse_wheel_filename
from wheelfactory import build_wheel

REAL_UV = next(iter(sorted((Path(sys.prefix) / "share" / "test-wheels").glob("uv-*.whl"))),
               None)
"""uv's real wheel for this machine, downloaded by scripts/test (tests never download)."""
REAL_UV_VERSION = str(parse_wheel_filename(REAL_UV.name)[1]) if REAL_UV else ""


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Bundles built once for the module, with the machine's pip settings out of the way."""
    root = tmp_path_factory.mktemp("ops")
    wheels = root / "wheels"
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp, root)
        alpha = build_wheel(wheels, "alpha", "1.0")
        alpha11 = build_wheel(wheels, "alpha", "1.1")
        beta = build_wheel(wheels, "beta", "2.0", requires=["alpha"])
        boom = build_wheel(wheels, "boom", "1.0", extra_files={
            "boom/__init__.py":
                b"raise ImportError('libboom.so.1: cannot open shared object file')\n"})
        future = build_wheel(wheels, "future", "1.0", extra_files={
            "future-1.0.dist-info/WHEEL": b"Wheel-Version: 9.0\nGenerator: test\n"
                                          b"Root-Is-Purelib: true\nTag: py3-none-any\n"})
        bulky = build_wheel(wheels, "bulky", "1.0", payload_size=1_500_000)
        heavy = build_wheel(wheels, "heavy", "1.0", payload_size=40_000_000)
        cache = root / "cache"
        # A "uv" whose binary cannot start, to prove the fallback to pip.
        dud = build_wheel(wheels, "uv", "0.0.1", extra_files={
            "uv-0.0.1.data/scripts/uv": b"#!/bin/sh\nexit 1\n"})
        with IndexServer(root / "index", log_dir=root / "index-log") as index:
            index.add(dud)
            made = {}
            if REAL_UV is not None:
                index.add(REAL_UV)
                made["uv"] = make_bundle(root / "fast.tar", [alpha, beta], index, cache,
                                         "--uv-version", REAL_UV_VERSION)
            # The rest restore with pip: the failures below are pip's (--no-uv).
            yield made | {
                "dud-uv": make_bundle(root / "dud.tar", [alpha, beta], index, cache,
                                      "--with-uv", "--uv-version", "0.0.1"),
                "v1": make_bundle(root / "app-v1.tar", [alpha, beta], index, cache, "--no-uv"),
                "v2": make_bundle(root / "app-v2.tar", [alpha11, beta], index, cache, "--no-uv"),
                "boom": make_bundle(root / "boom.tar", [alpha, boom], index, cache, "--no-uv"),
                "future": make_bundle(root / "future.tar", [alpha, future], index, cache,
                                      "--no-uv"),
                "bulky": make_bundle(root / "bulky.tar", [alpha, bulky], index, cache,
                                     "--no-uv"),
                "heavy": make_bundle(root / "heavy.tar", [alpha, heavy], index, cache,
                                     "--no-uv"),
            }


@pytest.fixture(scope="module")
def working(bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv link on a good release of v1, which every failure below must leave alone."""
    venv = tmp_path_factory.mktemp("live") / "venv"
    done = run_cli("install", bundles["v1"], "--venv", venv, "--json")
    assert done.returncode == 0, done.stderr
    return venv


def release_names(venv: Path) -> list[str]:
    """Everything in the releases folder, hidden staging folders included."""
    return sorted(p.name for p in venv.with_name(venv.name + ".releases").iterdir())


def alpha_version(venv: Path) -> str:
    return venvs.run_in_venv(venvs.venv_python(venv),
                             "import alpha; print(alpha.__version__)").strip()


def assert_untouched(venv: Path, before: str, releases: list[str]) -> None:
    assert os.readlink(venv) == before
    assert release_names(venv) == releases  # no new release, no staging folder
    assert not list(venv.parent.glob(f".{venv.name}.switch-*"))
    assert alpha_version(venv) == "1.0"


def test_install_smoke_rollback_and_keep(bundles: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    first = run_cli("install", bundles["v1"], "--venv", venv, "--json")
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["imported"] == ["beta"] and one["previous"] is None
    assert one["installer"] == "pip"  # auto, and the bundle carries no uv

    check = "python -c \"import alpha, sys; sys.exit(alpha.__version__ != '1.1')\""
    second = run_cli("install", bundles["v2"], "--venv", venv, "--smoke", check, "--json")
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)
    assert two["previous"] == one["release"] and os.readlink(venv) == two["release"]
    assert alpha_version(venv) == "1.1"

    back = run_cli("rollback", "--venv", venv)
    assert back.returncode == 0, back.stderr
    assert os.readlink(venv) == one["release"] and alpha_version(venv) == "1.0"
    again = run_cli("rollback", "--venv", venv)
    assert again.returncode == 2
    assert len(again.stderr.strip().splitlines()) == 1 and "no release older" in again.stderr
    forward = run_cli("rollback", "--venv", venv, "--to", Path(two["release"]).name)
    assert forward.returncode == 0, forward.stderr
    assert os.readlink(venv) == two["release"]

    # --no-smoke installs the bundle whose import raises; --keep 1 prunes the oldest
    # release but keeps the current one and the one a rollback would go to.
    third = run_cli("install", bundles["boom"], "--venv", venv, "--no-smoke", "--keep", "1",
                    "--json")
    assert third.returncode == 0, third.stderr
    three = json.loads(third.stdout)
    assert three["imported"] == [] and three["pruned"] == [one["release"]]
    assert release_names(venv) == sorted([Path(two["release"]).name,
                                          Path(three["release"]).name])
    assert run_cli("rollback", "--venv", venv).returncode == 0
    assert os.readlink(venv) == two["release"]


def test_rollback_without_an_install_is_one_clear_line(tmp_path: Path) -> None:
    done = run_cli("rollback", "--venv", tmp_path / "venv")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"wheelhouse-bundler: error: {tmp_path / 'venv'} is not a release link: "
        "nothing to roll back"]


def test_a_wheel_whose_import_fails_fails_the_smoke_test(bundles, working) -> None:
    before, releases = os.readlink(working), release_names(working)
    done = run_cli("install", bundles["boom"], "--venv", working)
    assert done.returncode == 5, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "smoke imports failed: import boom: ImportError: libboom.so.1: cannot open" in line
    assert "Traceback" not in done.stderr
    assert_untouched(working, before, releases)


def test_a_package_pip_cannot_install_keeps_the_old_release(bundles, working) -> None:
    before, releases = os.readlink(working), release_names(working)
    done = run_cli("install", bundles["future"], "--venv", working)
    assert done.returncode == 5, done.stderr
    assert "pip install (requirements.txt) failed" in done.stderr
    assert "Traceback" not in done.stderr
    assert_untouched(working, before, releases)


def _small_disk() -> None:
    """In the child: writes past 500 kB fail with EFBIG, as on a disk that is full."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))


def test_a_full_disk_is_one_line_and_changes_nothing(bundles, working) -> None:
    before, releases = os.readlink(working), release_names(working)
    done = run_cli("install", bundles["bulky"], "--venv", working, preexec_fn=_small_disk)
    assert done.returncode == 5, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "File too large (disk full?)" in lines[-1] and "is as it was" in lines[-1]
    assert "Traceback" not in done.stderr
    assert_untouched(working, before, releases)


def test_ctrl_c_while_installing_leaves_no_trace(bundles, working) -> None:
    before, releases = os.readlink(working), release_names(working)
    folder = working.with_name(working.name + ".releases")
    proc = subprocess.Popen([sys.executable, "-m", "wheelhouse_bundler", "install",
                             str(bundles["heavy"]), "--venv", str(working)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    started = None
    while time.monotonic() < deadline and proc.poll() is None:
        fresh = [p for p in folder.iterdir() if p.name not in releases
                 and not p.name.startswith(".") and (p / "bin" / "python").exists()]
        if fresh:
            started = fresh[0]
            break
        time.sleep(0.05)
    assert started is not None, "the install never reached venv creation"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "wheelhouse-bundler: interrupted"
    assert not started.exists()
    assert_untouched(working, before, releases)


def test_auto_falls_back_to_pip_when_the_bundled_uv_cannot_start(bundles, tmp_path) -> None:
    venv = tmp_path / "venv"
    insist = run_cli("install", bundles["dud-uv"], "--venv", venv, "--installer", "uv")
    assert insist.returncode == 5
    assert insist.stderr.strip().splitlines()[-1] == (
        "wheelhouse-bundler: install error: --installer uv: the uv from "
        "uv-0.0.1-py3-none-any.whl does not start here")
    assert not venv.is_symlink()
    done = run_cli("install", bundles["dud-uv"], "--venv", venv, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["installer"] == "pip" and result["imported"] == ["beta"]


@pytest.mark.skipif(REAL_UV is None, reason="no uv wheel in .venv/share/test-wheels "
                    "(scripts/test downloads it)")
def test_bundled_uv_installs_offline(bundles, tmp_path) -> None:
    venv = tmp_path / "venv"
    done = run_cli("install", bundles["uv"], "--venv", venv, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["installer"] == "uv" and result["imported"] == ["beta"]
    assert venvs.run_in_venv(venvs.venv_python(venv), "import beta; print(beta.__version__)"
                             ).strip() == "2.0"
    pip = run_cli("install", bundles["uv"], "--venv", venv, "--installer", "pip", "--json")
    assert pip.returncode == 0, pip.stderr
    assert json.loads(pip.stdout)["installer"] == "pip"


def test_asking_for_what_is_not_there_is_usage_exit_2(bundles, working, tmp_path) -> None:
    """`--to .` (or `..`) names no release; `--installer uv` with no uv anywhere tried
    nothing: both are the user's request, not a failed install."""
    before, releases = os.readlink(working), release_names(working)
    for bad in (".", ".."):
        done = run_cli("rollback", "--venv", working, "--to", bad)
        assert done.returncode == 2, done.stderr
        line, = done.stderr.strip().splitlines()
        assert line.startswith(f"wheelhouse-bundler: error: no release {bad!r}"), line
    # A PATH without uv (the project's venv may hold one: scripts/corpus installs it).
    no_uv = {**os.environ, "PATH": str(tmp_path)}
    done = run_cli("install", bundles["v1"], "--venv", working, "--installer", "uv", env=no_uv)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "wheelhouse-bundler: error: --installer uv: the bundle carries no uv")
    assert_untouched(working, before, releases)


@pytest.mark.parametrize("width", [1, 3, 40])
def test_remove_tree_removes_everything_and_follows_no_symlink(tmp_path: Path,
                                                               width: int) -> None:
    """The parallel removal used for staging folders, failed releases and rehearsal
    scratch: all of a venv-shaped tree goes (however wide its levels are), and a symlink
    inside it is removed as a link, its target untouched."""
    from wheelhouse_bundler.standalone import bootstrap

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("kept")
    tree = tmp_path / "tree"
    site = tree / "lib" / "python3.11" / "site-packages"
    for n in range(width):
        pkg = site / f"pkg{n}" / "sub"
        pkg.mkdir(parents=True)
        (pkg / "mod.py").write_text("x = 1\n")
        (site / f"pkg{n}" / "__init__.py").write_text("")
    (site / "top.py").write_text("")
    (tree / "bin").mkdir()
    (tree / "bin" / "python").symlink_to(outside)
    (site / "linked").symlink_to(outside, target_is_directory=True)

    bootstrap.remove_tree(str(tree))

    assert not tree.exists() and not tree.is_symlink()
    assert (outside / "keep.txt").read_text() == "kept"
    bootstrap.remove_tree(str(tree))  # already gone: nothing to do, no error
