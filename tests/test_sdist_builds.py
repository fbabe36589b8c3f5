"""sdist-only packages: built on the build box, used by their tags, recorded, cached.

Real sdists (sdistfactory) on a real index with the real setuptools wheel beside them,
built by real PEP 517 hooks, installed offline by real pip; the C extension is compiled
by the machine's gcc and tagged by auditwheel.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import pytest
import sdistfactory
from clirun import cli_offline, run_cli
from conftest import AUTH
from locktext import Pin, hashed_requirements, poetry_lock, pyproject
from venvs import clean_env, run_in_venv
from wheelfactory import sha256_of

from wheelhouse_bundler.cli import main

SETUPTOOLS = sdistfactory.setuptools_wheel()
pytestmark = pytest.mark.skipif(
    SETUPTOOLS is None, reason="no setuptools wheel in .venv/share/test-wheels "
    "(scripts/test downloads it; run it once with network)")

HOST = "cp311-manylinux_2_28_x86_64"  # what this box's python3.11 installs (glibc >= 2.28)
FOREIGN = ["cp312-manylinux_2_28_aarch64", "cp311-win_amd64", "cp312-macosx_11_0_arm64"]


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tf:
        return {m.name.split("/", 1)[1]: tf.extractfile(m).read()  # type: ignore[union-attr]
                for m in tf.getmembers() if m.isfile()}


def manifest_of(bundle: Path) -> dict:
    return json.loads(members(bundle)["manifest.json"])


@pytest.fixture
def build_index(index_server, tmp_path, clean_environ):
    """The test index with setuptools on it (what every sdist here builds with)."""
    assert SETUPTOOLS is not None
    index_server.add(SETUPTOOLS)
    return index_server


def _lock(tmp_path: Path, pins: list[Pin]) -> Path:
    lock = tmp_path / "requirements.txt"
    lock.write_text(hashed_requirements(pins))
    return lock


def _bundle(lock: Path, out: Path, index, cache: Path, *targets: str, extra=()) -> int:
    args = ["bundle", lock, "-o", out, "--index-url", index.url, "--cache-dir", cache, "-q"]
    for t in targets:
        args += ["--target", t]
    return cli(*args, *extra)


def test_pure_sdist_serves_every_target_and_installs_offline(build_index, tmp_path,
                                                             wheel_factory) -> None:
    sdist = build_index.add(sdistfactory.pure(tmp_path / "sd", "puresd", "1.0", "hello"))
    alpha = build_index.add(wheel_factory("alpha", "1.0"))
    lock = _lock(tmp_path, [Pin("puresd", "1.0", [sdist]), Pin("alpha", "1.0", [alpha])])
    out = tmp_path / "b.tar"
    assert _bundle(lock, out, build_index, tmp_path / "cache", HOST, *FOREIGN) == 0

    files = {f["name"]: f for f in manifest_of(out)["files"]}
    built = files["puresd"]
    assert built["filename"] == "puresd-1.0-py3-none-any.whl"
    assert sorted(built["targets"]) == sorted([HOST, *FOREIGN])
    record = built["built_from"]
    assert record["sdist"] == {"filename": sdist.name, "sha256": sha256_of(sdist)}
    assert record["backend"]["object"] == "setuptools.build_meta"
    assert record["backend"]["distribution"].startswith("setuptools==")
    setuptools_dep = f"{SETUPTOOLS.name.split('-')[0]}=={SETUPTOOLS.name.split('-')[1]}"
    assert record["build_dependencies"] == [f"{setuptools_dep} sha256:{sha256_of(SETUPTOOLS)}"]
    assert record["builder"]["python"] == f"cpython-{'.'.join(map(str, sys.version_info[:3]))}"
    assert "built_from" not in files["alpha"]
    inside = members(out)
    for target in [HOST, *FOREIGN]:  # each target checks exactly the wheel built here
        reqs = inside[f"targets/{target}/requirements.txt"].decode()
        assert f"puresd==1.0 \\\n    --hash=sha256:{built['sha256']}" in reqs
        assert sha256_of(sdist) not in reqs
        assert built["sha256"] in inside[f"targets/{target}/pylock.toml"].decode()
    sbom = json.loads(inside["sbom.cdx.json"])
    component = next(c for c in sbom["components"] if c["name"] == "puresd")
    assert component["pedigree"]["ancestors"][0]["hashes"][0]["content"] == sha256_of(sdist)
    props = {p["name"]: p["value"] for p in component["properties"]}
    assert props["wheelhouse-bundler:built-from"] == f"{sdist.name} sha256:{sha256_of(sdist)}"

    shown = run_cli("inspect", out)
    assert shown.returncode == 0, shown.stderr
    assert f"(built here from {sdist.name} with setuptools==" in shown.stdout

    venv = tmp_path / "venv"
    done = cli_offline("install", out, "--venv", venv, env=clean_env())
    assert done.returncode == 0, done.stderr
    shown = run_in_venv(venv / "bin" / "python", "import puresd; print(puresd.VALUE)")
    assert shown.strip() == "hello"


def test_native_sdist_is_tagged_honestly_and_refused_for_a_foreign_target(
        build_index, tmp_path) -> None:
    sdist = build_index.add(sdistfactory.native(tmp_path / "sd", "nativesd", "1.0", 7))
    lock = _lock(tmp_path, [Pin("nativesd", "1.0", [sdist])])
    out = tmp_path / "b.tar"
    cache = tmp_path / "cache"

    refused = run_cli("bundle", lock, "-o", out, "--index-url", build_index.url,
                      "--cache-dir", cache, "--target", HOST, "--target", "cp311-win_amd64",
                      env=clean_env())
    assert refused.returncode == 2
    assert "1 package(s) cannot be installed from requirements.txt" in refused.stderr
    line = next(ln for ln in refused.stderr.splitlines() if "on cp311-win_amd64" in ln)
    assert f"only the sdist {sdist.name}" in line
    assert "platform wheel (cp311-cp311-manylinux" in line
    assert "needs a build box on the target's platform with cpython 3.11" in line
    assert "Traceback" not in refused.stderr
    assert not out.exists()

    assert _bundle(lock, out, build_index, cache, HOST) == 0  # the same build, now cached
    (entry,) = manifest_of(out)["files"]
    assert entry["filename"].startswith("nativesd-1.0-cp311-cp311-manylinux")
    assert "linux_x86_64" not in entry["filename"].replace("manylinux", "")
    venv = tmp_path / "venv"
    done = cli_offline("install", out, "--venv", venv, env=clean_env())
    assert done.returncode == 0, done.stderr
    shown = run_in_venv(venv / "bin" / "python", "import nativesd; print(nativesd.answer())")
    assert shown.strip() == "7"


def test_a_platform_wheel_is_built_once_per_python_version(build_index, tmp_path) -> None:
    """cp312 is built by a 3.12 of this box (pyenv's, or --build-python); a Python the
    box does not have is refused with what to give it."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    py312 = next(iter(sorted(pyenv.glob("3.12.*/bin/python3.12"))), None)
    if py312 is None:
        pytest.skip("no Python 3.12 on this machine")
    sdist = build_index.add(sdistfactory.native(tmp_path / "sd", "nativesd", "1.0"))
    lock = _lock(tmp_path, [Pin("nativesd", "1.0", [sdist])])
    out = tmp_path / "b.tar"
    assert _bundle(lock, out, build_index, tmp_path / "cache", HOST,
                   "cp312-manylinux_2_28_x86_64", extra=["--build-python", py312]) == 0
    files = sorted((f["filename"].split("-")[2], f["targets"], f["built_from"]["builder"]["python"])
                   for f in manifest_of(out)["files"])
    assert [(abi, targets) for abi, targets, _ in files] == [
        ("cp311", [HOST]), ("cp312", ["cp312-manylinux_2_28_x86_64"])]
    assert files[1][2].startswith("cpython-3.12.")

    missing = run_cli("bundle", lock, "-o", tmp_path / "c.tar", "--index-url", build_index.url,
                      "--cache-dir", tmp_path / "cache", "--target", "cp314-manylinux_2_28_x86_64",
                      env=clean_env(PYENV_ROOT=str(tmp_path / "no-pyenv")))
    assert missing.returncode == 2
    assert "this build box has no cpython 3.14 to build it with (--build-python PATH)" \
        in missing.stderr
    assert not (tmp_path / "c.tar").exists()


def test_build_dependency_comes_from_the_locks_source_with_its_credentials(
        auth_index_server, tmp_path, wheel_factory, clean_environ, monkeypatch) -> None:
    assert SETUPTOOLS is not None
    auth_index_server.add(SETUPTOOLS)
    helper = auth_index_server.add(wheel_factory("wb-buildhelper", "1.0"))
    sdist = auth_index_server.add(
        sdistfactory.needs_helper(tmp_path / "sd", "helped", "2.0", "wb-buildhelper"))
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_USERNAME", AUTH[0])
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_PASSWORD", AUTH[1])
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock(
        [Pin("helped", "2.0", [sdist], source=("corp", auth_index_server.url))]))
    out = tmp_path / "b.tar"
    result = run_cli("bundle", root, "-o", out, "--cache-dir", tmp_path / "cache",
                     "--target", HOST, "--no-own", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    (entry,) = manifest_of(out)["files"]
    assert f"wb-buildhelper==1.0 sha256:{sha256_of(helper)}" in \
        entry["built_from"]["build_dependencies"]
    assert entry["built_from"]["backend"] == {"object": "inhouse", "distribution": "in-tree"}
    everything = result.stdout + result.stderr + out.read_bytes().decode("latin-1")
    assert AUTH[1] not in everything


def test_a_failing_build_names_the_package_and_the_backends_last_words(
        build_index, tmp_path) -> None:
    sdist = build_index.add(sdistfactory.failing(tmp_path / "sd", "brokensd", "0.1",
                                                 "this package cannot build here: boom-7"))
    lock = _lock(tmp_path, [Pin("brokensd", "0.1", [sdist])])
    out = tmp_path / "b.tar"
    result = run_cli("bundle", lock, "-o", out, "--index-url", build_index.url,
                     "--cache-dir", tmp_path / "cache", "--target", HOST, env=clean_env())
    assert result.returncode == 2
    note, line = result.stderr.strip().splitlines()
    assert note == f"building brokensd==0.1 from {sdist.name} with cpython-" + ".".join(
        map(str, sys.version_info[:3]))
    assert line.startswith("wheelhouse-bundler: error: building brokensd==0.1 from "
                           "brokensd-0.1.tar.gz")
    assert "boom-7" in line
    assert not out.exists()
    assert list(tmp_path.glob("b.tar*")) == []


def test_optional_c_extension_is_compiled_where_the_box_can(build_index, tmp_path) -> None:
    sdist = build_index.add(sdistfactory.optional_native(tmp_path / "sd", "speedy", "1.0"))
    lock = _lock(tmp_path, [Pin("speedy", "1.0", [sdist])])
    out = tmp_path / "b.tar"
    assert _bundle(lock, out, build_index, tmp_path / "cache", HOST) == 0
    (entry,) = manifest_of(out)["files"]
    assert "-cp311-cp311-manylinux" in entry["filename"]
    venv = tmp_path / "venv"
    done = cli_offline("install", out, "--venv", venv, env=clean_env())
    assert done.returncode == 0, done.stderr
    assert run_in_venv(venv / "bin" / "python",
                       "import speedy; print(speedy.HAVE_C, speedy.answer())").strip() == "True 42"


def test_optional_c_extension_that_does_not_compile_falls_back(build_index, tmp_path
                                                                ) -> None:
    """No compiler (CC fails): setuptools skips the optional extension but still tags the
    wheel linux_<arch> for this interpreter. With no compiled code in it, nothing ties it
    to a libc: it serves every Linux target of that interpreter and architecture, and no
    other."""
    sdist = build_index.add(sdistfactory.optional_native(tmp_path / "sd", "speedy", "1.0"))
    lock = _lock(tmp_path, [Pin("speedy", "1.0", [sdist])])
    out = tmp_path / "b.tar"
    env = clean_env(CC="/bin/false")
    foreign = run_cli("bundle", lock, "-o", out, "--index-url", build_index.url,
                      "--cache-dir", tmp_path / "cache", "-t", HOST,
                      "-t", "cp311-manylinux_2_28_aarch64", env=env)
    assert foreign.returncode == 2
    assert ("speedy==1.0 on cp311-manylinux_2_28_aarch64: no wheel for this target, only "
            "the sdist speedy-1.0.tar.gz, whose build here gives a platform wheel "
            "(cp311-cp311-linux_x86_64)") in foreign.stderr
    assert not out.exists()
    done = run_cli("bundle", lock, "-o", out, "--index-url", build_index.url,
                   "--cache-dir", tmp_path / "cache", "-t", HOST, "-q", env=env)
    assert done.returncode == 0, done.stderr
    (entry,) = manifest_of(out)["files"]
    assert entry["filename"] == "speedy-1.0-cp311-cp311-linux_x86_64.whl"
    venv = tmp_path / "venv"
    installed = cli_offline("install", out, "--venv", venv, env=clean_env())
    assert installed.returncode == 0, installed.stderr
    assert run_in_venv(venv / "bin" / "python",
                       "import speedy; print(speedy.HAVE_C, speedy.answer())").strip() == "False 42"


@pytest.mark.parametrize("flag", [["--no-build"], ["--no-build-package", "PureSD"]])
def test_no_build_refuses_as_before(build_index, tmp_path, flag) -> None:
    sdist = build_index.add(sdistfactory.pure(tmp_path / "sd", "puresd", "1.0"))
    lock = _lock(tmp_path, [Pin("puresd", "1.0", [sdist])])
    out = tmp_path / "b.tar"
    result = run_cli("bundle", lock, "-o", out, "--index-url", build_index.url,
                     "--cache-dir", tmp_path / "cache", "--target", HOST, *flag,
                     env=clean_env())
    assert result.returncode == 2
    assert (f"puresd==1.0 on {HOST}: no wheel for this target; no wheel at all, only the "
            f"sdist {sdist.name} (not built: {' '.join(flag).replace('PureSD', 'puresd')})"
            ) in result.stderr
    assert not out.exists()
    assert not (tmp_path / "cache" / "built").exists()


def test_rebuild_is_byte_identical_and_a_warm_one_builds_nothing(build_index, tmp_path,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    sdist = build_index.add(sdistfactory.pure(tmp_path / "sd", "puresd", "1.0"))
    lock = _lock(tmp_path, [Pin("puresd", "1.0", [sdist])])
    first, second = tmp_path / "one" / "b.tar", tmp_path / "two" / "b.tar"
    assert _bundle(lock, first, build_index, tmp_path / "cache1", HOST) == 0
    assert _bundle(lock, second, build_index, tmp_path / "cache2", HOST) == 0
    assert first.read_bytes() == second.read_bytes()

    # Warm: the build environment's setuptools is gone from the index, and the network
    # too; the cached wheel and its record make the same bundle.
    (build_index.root / SETUPTOOLS.name).unlink()
    third = tmp_path / "three" / "b.tar"
    done = cli_offline("bundle", lock, "-o", third, "--cache-dir", tmp_path / "cache1",
                       "--index-url", build_index.url, "--target", HOST, "--offline",
                       env=clean_env(SOURCE_DATE_EPOCH="1700000000"))
    assert done.returncode == 0, done.stderr
    assert third.read_bytes() == first.read_bytes()


def test_download_places_the_built_wheel_not_the_sdist(build_index, tmp_path) -> None:
    sdist = build_index.add(sdistfactory.pure(tmp_path / "sd", "puresd", "1.0"))
    lock = _lock(tmp_path, [Pin("puresd", "1.0", [sdist])])
    dest = tmp_path / "wheels"
    assert cli("download", lock, "-d", dest, "--index-url", build_index.url,
               "--cache-dir", tmp_path / "cache", "--target", HOST, "-q") == 0
    assert [p.name for p in dest.iterdir()] == ["puresd-1.0-py3-none-any.whl"]


def test_export_gives_the_sdist_hash_for_a_package_without_wheels(build_index, tmp_path
                                                                 ) -> None:
    """A connected pip builds it itself; the export must not drop its hash."""
    sdist = build_index.add(sdistfactory.pure(tmp_path / "sd", "puresd", "1.0"))
    lock = _lock(tmp_path, [Pin("puresd", "1.0", [sdist])])
    out = tmp_path / "req.txt"
    assert cli("export", lock, "-o", out, "--index-url", build_index.url,
               "--target", HOST) == 0
    assert f"puresd==1.0 \\\n    --hash=sha256:{sha256_of(sdist)}" in out.read_text()


def test_an_older_python_builds_with_its_own_pip(build_index, tmp_path) -> None:
    """pip beside the tool may not run on the target's Python (pip 26 needs 3.10): the
    build environment then gets that Python's own pip, emptied of ensurepip's setuptools,
    so the record lists exactly what the index gave."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if not any(pyenv.glob("3.9.*/bin/python3.9")):
        pytest.skip("no Python 3.9 from pyenv on this machine")
    sdist = build_index.add(sdistfactory.pure(tmp_path / "sd", "puresd", "1.0"))
    lock = _lock(tmp_path, [Pin("puresd", "1.0", [sdist])])
    out = tmp_path / "b.tar"
    assert _bundle(lock, out, build_index, tmp_path / "cache",
                   "cp39-manylinux_2_28_x86_64") == 0
    (entry,) = manifest_of(out)["files"]
    record = entry["built_from"]
    assert record["builder"]["python"].startswith("cpython-3.9.")
    assert [d.split(" ")[0] for d in record["build_dependencies"]] == [
        "==".join(SETUPTOOLS.name.split("-")[:2])]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_sdist_and_built_wheel_in_the_cache_are_not_used(build_index, tmp_path,
                                                                 monkeypatch) -> None:
    """The cache is not fsynced: a damaged sdist is fetched again before it is built, a
    damaged built wheel is built again, and the bundle comes out the same."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    sdist = build_index.add(sdistfactory.pure(tmp_path / "sd", "puresd", "1.0"))
    lock = _lock(tmp_path, [Pin("puresd", "1.0", [sdist])])
    cache = tmp_path / "cache"
    first = tmp_path / "one" / "b.tar"
    assert _bundle(lock, first, build_index, cache, HOST) == 0
    (entry,) = manifest_of(first)["files"]
    for sha in (sha256_of(sdist), entry["sha256"]):
        _flip(cache / "sha256" / sha[:2] / sha)
    second = tmp_path / "two" / "b.tar"
    assert _bundle(lock, second, build_index, cache, HOST) == 0
    assert second.read_bytes() == first.read_bytes()
    for sha in (sha256_of(sdist), entry["sha256"]):
        assert sha256_of(cache / "sha256" / sha[:2] / sha) == sha
