"""uv rides along by default: carried wherever uv has a wheel for every target (listed in
the manifest and the SBOM), left out with one warning where it has none, an error only
when asked for by name; `--no-uv` opts out; `install` and the bundle's own install.py
restore with it (a venv without pip) and report each step's time.

The uv wheel is the real one scripts/test downloads into .venv/share/test-wheels, served
on the tests' own index: nothing here reaches the internet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import venvs
from clirun import run_cli
from indexserver import IndexServer
from locktext import Pin, hashed_requirements
from packaging.utils import parse_wheel_filename
from wheelfactory import build_wheel, sha256_of

from wheelhouse_bundler.install import STEPS
from wheelhouse_bundler.uvtool import UV_VERSION

REAL_UV = next(iter(sorted((Path(sys.prefix) / "share" / "test-wheels").glob(
    f"uv-{UV_VERSION}-*.whl"))), None)
needs_uv = pytest.mark.skipif(REAL_UV is None, reason=f"no uv {UV_VERSION} wheel in "
                              ".venv/share/test-wheels (scripts/test downloads it)")


def requirements(index: IndexServer, folder: Path) -> Path:
    """alpha and beta (which requires alpha), published on `index`, as a hashed lock."""
    wheels = [build_wheel(folder / "wheels", "alpha", "1.0"),
              build_wheel(folder / "wheels", "beta", "2.0", requires=["alpha"])]
    for wheel in wheels:
        index.add(wheel)
    lock = folder / "requirements.txt"
    lock.write_text(hashed_requirements(
        [Pin(str(parse_wheel_filename(w.name)[0]), str(parse_wheel_filename(w.name)[1]), [w])
         for w in wheels]))
    return lock


def bundle(lock: Path, index: IndexServer, out: Path, *extra: str
           ) -> subprocess.CompletedProcess[str]:
    """`bundle` with the cache beside the lock, shared by every bundle of the test."""
    return run_cli("bundle", lock, "-o", out, "--index-url", index.url, "--cache-dir",
                   lock.parent / "cache", *extra, env=venvs.clean_env())


def member(out: Path, rel: str) -> bytes:
    with tarfile.open(out) as tar:
        fh = tar.extractfile(f"{tar.getnames()[0].split('/')[0]}/{rel}")
        assert fh is not None
        return fh.read()


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


@needs_uv
def test_the_default_bundle_carries_uv_and_restores_with_it(tmp_path: Path) -> None:
    assert REAL_UV is not None
    with IndexServer(tmp_path / "index", log_dir=tmp_path / "log") as index:
        index.add(REAL_UV)
        lock = requirements(index, tmp_path)
        out = tmp_path / "app.tar"
        made = bundle(lock, index, out)
        assert made.returncode == 0, made.stderr
        assert warnings(made.stderr) == []  # nothing to say: uv is simply there

        manifest = json.loads(member(out, "manifest.json"))
        assert [(t["filename"], t["sha256"]) for t in manifest["tools"]] == [
            (REAL_UV.name, sha256_of(REAL_UV))]
        sbom = json.loads(member(out, "sbom.cdx.json"))
        uv = [c for c in sbom["components"] if c["name"] == "uv"]
        assert len(uv) == 1 and uv[0]["version"] == UV_VERSION
        assert uv[0]["hashes"] == [{"alg": "SHA-256", "content": sha256_of(REAL_UV)}]
        assert {"name": "wheelhouse-bundler:tool", "value": "true"} in uv[0]["properties"]

        # A warm rebuild asks the index nothing about uv, and an --offline one (the same
        # cache) carries the same uv: the same bytes, whatever the network.
        index.reset_requests()
        (tmp_path / "again").mkdir()
        again = bundle(lock, index, tmp_path / "again" / "app.tar")
        assert again.returncode == 0, again.stderr
        assert [r for r in index.requests() if "/uv" in r] == []
    (tmp_path / "offline").mkdir()
    offline = bundle(lock, index, tmp_path / "offline" / "app.tar", "--offline")  # index down
    assert offline.returncode == 0, offline.stderr
    assert (tmp_path / "offline" / "app.tar").read_bytes() == out.read_bytes()

    venv = tmp_path / "venv"
    done = run_cli("install", out, "--venv", venv, "--json", env=venvs.clean_env())
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["installer"] == "uv" and result["imported"] == ["beta"]
    assert sorted(result["timings"]) == sorted(STEPS)  # JSON keys come sorted
    assert all(seconds >= 0 for seconds in result["timings"].values())
    no_pip = "import importlib.util; print(importlib.util.find_spec('pip') is None)"
    assert venvs.run_in_venv(venvs.venv_python(venv), no_pip).strip() == "True"


@needs_uv
def test_the_bundles_own_install_py_restores_with_its_uv(tmp_path: Path) -> None:
    assert REAL_UV is not None
    with IndexServer(tmp_path / "index", log_dir=tmp_path / "log") as index:
        index.add(REAL_UV)
        out = tmp_path / "app.tar"
        assert bundle(requirements(index, tmp_path), index, out).returncode == 0
    site = tmp_path / "site"
    site.mkdir()
    subprocess.run(["tar", "xf", str(out)], cwd=site, check=True)
    root = next(site.iterdir())

    def install_py(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(root / "install.py"), *args],
                              capture_output=True, text=True, check=False,
                              env=venvs.clean_env(), cwd=site)

    done = install_py("--venv", str(tmp_path / "venv"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["installer"] == "uv" and result["imported"] == ["beta"]
    assert {"verify", "venv", "install", "check", "smoke"} <= set(result["timings"])
    assert not [p for p in os.listdir(tmp_path / "venv.releases") if p.startswith(".")]
    pip = install_py("--venv", str(tmp_path / "venv"), "--installer", "pip", "--json")
    assert pip.returncode == 0, pip.stderr
    assert json.loads(pip.stdout)["installer"] == "pip"


@needs_uv
def test_no_uv_leaves_it_out_where_the_index_has_it(tmp_path: Path) -> None:
    assert REAL_UV is not None
    with IndexServer(tmp_path / "index", log_dir=tmp_path / "log") as index:
        index.add(REAL_UV)
        out = tmp_path / "app.tar"
        made = bundle(requirements(index, tmp_path), index, out, "--no-uv")
        assert made.returncode == 0, made.stderr
        assert [r for r in index.requests() if "/uv" in r] == []
    assert warnings(made.stderr) == []
    assert "tools" not in json.loads(member(out, "manifest.json"))


def test_an_index_without_uv_gives_a_bundle_without_it_and_one_warning(
        index_server: IndexServer, tmp_path: Path) -> None:
    lock = requirements(index_server, tmp_path)
    out = tmp_path / "app.tar"
    made = bundle(lock, index_server, out)
    assert made.returncode == 0, made.stderr
    assert warnings(made.stderr) == [
        "warning: the bundle carries no uv, so install will use pip: uv is not on the "
        f"index {index_server.url} (--no-uv says so quietly)"]
    assert "tools" not in json.loads(member(out, "manifest.json"))

    # The answer is remembered with the cache: the next build does not ask again.
    index_server.reset_requests()
    again = bundle(lock, index_server, tmp_path / "again.tar")
    assert again.returncode == 0 and len(warnings(again.stderr)) == 1
    assert [r for r in index_server.requests() if "/uv" in r] == []

    # Asked for by name, uv's absence is the user's problem to hear about: exit 2.
    for flag in (["--with-uv"], ["--uv-version", UV_VERSION]):
        insisted = bundle(lock, index_server, tmp_path / "insisted.tar", *flag)
        assert insisted.returncode == 2, insisted.stderr
        assert insisted.stderr.strip().splitlines() == [
            f"wheelhouse-bundler: error: {flag[0]}: uv is not on the index "
            f"{index_server.url}"]
        assert not (tmp_path / "insisted.tar").exists()


def test_a_uv_without_a_wheel_for_every_target_is_left_out(index_server: IndexServer,
                                                          tmp_path: Path) -> None:
    """uv publishes a wheel per platform; one target it has none for means none at all
    (install would otherwise be fast on some machines and slow on others, unexplained)."""
    only_windows = build_wheel(tmp_path / "uvw", "uv", UV_VERSION, tag="py3-none-win_amd64")
    index_server.add(only_windows)
    made = bundle(requirements(index_server, tmp_path), index_server, tmp_path / "app.tar",
                  "-t", "cp311-win_amd64", "-t", "cp311-manylinux_2_28_x86_64")
    assert made.returncode == 0, made.stderr
    assert warnings(made.stderr) == [
        f"warning: the bundle carries no uv, so install will use pip: uv {UV_VERSION} has "
        "no wheel for target cp311-manylinux_2_28_x86_64 on the index (--no-uv says so "
        "quietly)"]
    assert "tools" not in json.loads(member(tmp_path / "app.tar", "manifest.json"))


def one_wheel_with_uv(tmp_path: Path, name: str, requires: list[str]) -> Path:
    """A default bundle (uv carried) of one wheel `name` 1.0 with these requirements."""
    assert REAL_UV is not None
    with IndexServer(tmp_path / "index", log_dir=tmp_path / "log") as index:
        index.add(REAL_UV)
        wheel = build_wheel(tmp_path / "wheels", name, "1.0", requires=requires)
        index.add(wheel)
        lock = tmp_path / "requirements.txt"
        lock.write_text(hashed_requirements([Pin(name, "1.0", [wheel])]))
        out = tmp_path / "app.tar"
        made = bundle(lock, index, out)
        assert made.returncode == 0, made.stderr
    return out


@needs_uv
@pytest.mark.parametrize("how", ["install", "install.py"])
def test_a_package_that_requires_pip_installs_with_uv(tmp_path: Path, how: str) -> None:
    """pip-compile leaves pip out of a lock on purpose; a venv pip makes has it anyway.
    uv's venv has no pip, so a package requiring it (httpie does) failed uv's check:
    the check's only complaint being ensurepip's packages, they are seeded offline."""
    out = one_wheel_with_uv(tmp_path, "needspip", requires=["pip"])
    venv = tmp_path / "venv"
    if how == "install":
        done = run_cli("install", out, "--venv", venv, "--json", env=venvs.clean_env())
    else:
        folder = tmp_path / "x"
        folder.mkdir()
        with tarfile.open(out) as tar:
            tar.extractall(folder, filter="data")
        (top,) = folder.iterdir()
        done = subprocess.run([sys.executable, str(top / "install.py"), "--venv", str(venv),
                               "--json"], capture_output=True, text=True,
                              env=venvs.clean_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["installer"] == "uv"
    listed = venvs.pip_freeze(venv / "bin" / "python", include_bootstrap=True)
    assert "needspip" in listed and "pip" in listed


@needs_uv
def test_a_missing_requirement_fails_uvs_check_and_keeps_nothing(tmp_path: Path) -> None:
    """Only ensurepip's packages are seeded: any other missing requirement fails the check
    (exit 5, uv's own words) and no release is left behind."""
    out = one_wheel_with_uv(tmp_path, "needsmore", requires=["notthere"])
    venv = tmp_path / "venv"
    done = run_cli("install", out, "--venv", venv, env=venvs.clean_env())
    assert done.returncode == 5, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "uv pip check failed" in line and "notthere" in line
    assert not venv.exists() and not (tmp_path / "venv.releases").exists()
