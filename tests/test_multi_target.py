"""Many targets in one bundle: union cost, one gap table, and install choosing its target.

End to end through the CLI with the real pypiserver, real pip and real venvs; the other
Python comes from pyenv (3.12), and tests that need it skip cleanly where it is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from clirun import cli_offline
from locktext import Pin, poetry_lock, pyproject
from test_targets import pyenv_python
from wheelfactory import sha256_of

from wheelhouse_bundler import targets
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.errors import InstallError, UsageError
from wheelhouse_bundler.install import choose_target
from wheelhouse_bundler.model import Manifest, ManifestFile, ManifestTarget

LINUX = "cp311-manylinux_2_28_x86_64"
WINDOWS = "cp313-win_amd64"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def project(root: Path, pins: list[Pin], config: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(pyproject() + config)
    (root / "poetry.lock").write_text(poetry_lock(pins))
    return root


def published(index_server, wheel_factory, name: str, version: str, tag: str = "py3-none-any",
              **kwargs) -> Path:
    wheel = wheel_factory(name, version, tag, **kwargs)
    index_server.add(wheel)
    return wheel


def downloads(index_server) -> Counter[str]:
    return Counter(p.rsplit("/", 1)[-1] for p in index_server.requests("GET")
                   if p.startswith("/packages/"))


def test_a_file_shared_by_two_targets_is_fetched_and_stored_once(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    shared = published(index_server, wheel_factory, "shared", "2.0", payload_size=200_000)
    linux = published(index_server, wheel_factory, "native", "1.0",
                      "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    windows = published(index_server, wheel_factory, "native", "1.0", "cp313-cp313-win_amd64")
    root = project(tmp_path / "p", [Pin("shared", "2.0", [shared]),
                                    Pin("native", "1.0", [linux, windows])])
    index_server.reset_requests()
    out = tmp_path / "app.tar"
    assert cli("bundle", root, "-o", out, "-t", WINDOWS, "-t", LINUX, "--index-url",
               index_server.url, "--cache-dir", tmp_path / "cache", "--json") == 0
    summary = json.loads(capsys.readouterr().out)

    assert downloads(index_server) == {shared.name: 1, linux.name: 1, windows.name: 1}
    pages = Counter(p for p in index_server.requests("GET") if p.startswith("/simple/"))
    assert all(n == 1 for n in pages.values())  # one index page per project, not per target
    assert summary["targets"] == [LINUX, WINDOWS] and summary["files"] == 3
    union = sum(w.stat().st_size for w in (shared, linux, windows))
    assert summary["bytes"] == union

    with tarfile.open(out) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        manifest = json.loads(tar.extractfile(f"{top}/manifest.json").read())
        reqs = {t: tar.extractfile(f"{top}/targets/{t}/requirements.txt").read().decode()
                for t in (LINUX, WINDOWS)}
    wheels = [n for n in names if "/wheels/" in n]
    assert sorted(wheels) == sorted(f"{top}/wheels/{w.name}" for w in (shared, linux, windows))
    entries = {f["filename"]: f["targets"] for f in manifest["files"]}
    assert entries == {shared.name: [LINUX, WINDOWS], linux.name: [LINUX],
                       windows.name: [WINDOWS]}
    assert sum(f["size"] for f in manifest["files"]) == union
    # each target's requirements name its own wheel's hash, and the shared one
    assert sha256_of(linux) in reqs[LINUX] and sha256_of(windows) not in reqs[LINUX]
    assert sha256_of(windows) in reqs[WINDOWS] and sha256_of(linux) not in reqs[WINDOWS]
    assert all(sha256_of(shared) in text for text in reqs.values())


def test_each_target_gets_the_best_of_the_competing_wheels_and_no_other_is_fetched(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    """One release, six wheels, three targets: each target's best (by its tag priority)
    is bundled for it, and the losers are never downloaded."""
    mac = "cp312-macosx_14_0_arm64"
    tags = {"m228": "cp311-cp311-manylinux_2_28_x86_64",
            "m217": "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
            "abi3": "cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
            "win": "cp313-cp313-win_amd64", "winabi3": "cp39-abi3-win_amd64",
            "any": "py3-none-any"}
    wheels = {k: published(index_server, wheel_factory, "native", "1.0", t)
              for k, t in tags.items()}
    root = project(tmp_path / "p", [Pin("native", "1.0", list(wheels.values())[::-1])])
    index_server.reset_requests()
    out = tmp_path / "app.tar"
    assert cli("bundle", root, "-o", out, "-t", LINUX, "-t", WINDOWS, "-t", mac,
               "--index-url", index_server.url, "--cache-dir", tmp_path / "cache",
               "--json") == 0
    assert json.loads(capsys.readouterr().out)["files"] == 3
    chosen = {LINUX: wheels["m228"], WINDOWS: wheels["win"], mac: wheels["any"]}
    assert downloads(index_server) == {w.name: 1 for w in chosen.values()}
    with tarfile.open(out) as tar:
        top = tar.getnames()[0].split("/")[0]
        manifest = json.loads(tar.extractfile(f"{top}/manifest.json").read())
    assert {f["filename"]: f["targets"] for f in manifest["files"]} == {
        w.name: [t] for t, w in chosen.items()}


def test_missing_wheels_for_one_target_fail_before_any_download(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    shared = published(index_server, wheel_factory, "shared", "2.0")
    linux = published(index_server, wheel_factory, "native", "1.0",
                      "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    root = project(tmp_path / "p", [
        Pin("shared", "2.0", [shared]),
        Pin("native", "1.0", [linux], extra_files={"native-1.0.tar.gz": "d" * 64}),
        Pin("sdonly", "3.0", [], extra_files={"sdonly-3.0.tar.gz": "e" * 64})])
    index_server.reset_requests()
    out = tmp_path / "app.tar"
    cache = tmp_path / "cache"
    assert cli("bundle", root, "-o", out, "-t", LINUX, "-t", WINDOWS, "--index-url",
               index_server.url, "--cache-dir", cache, "--no-build") == 2
    err = capsys.readouterr().err
    assert "3 package(s) cannot be installed from poetry.lock on the targets that need them" \
        in err
    lines = {line.strip().split(":")[0] for line in err.splitlines()[1:-1]}
    assert lines == {f"native==1.0 on {WINDOWS}", f"sdonly==3.0 on {LINUX}",
                     f"sdonly==3.0 on {WINDOWS}"}
    # what the release does publish, summarised; the sdist-only one names its sdist
    assert (f"native==1.0 on {WINDOWS}: no wheel for this target; wheels: cp311 on "
            "manylinux_2_17+ x86_64; also an sdist (not built: --no-build)") in err
    assert "no wheel at all, only the sdist sdonly-3.0.tar.gz" in err
    assert err.splitlines()[-1].startswith("  (a target takes only wheels built for its")
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "app.tar.sha256").exists()
    assert list(tmp_path.glob(".app.tar*")) == []
    assert downloads(index_server) == Counter()
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*.whl"))


def test_no_target_fits_the_interpreter_is_a_clear_error(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    shared = published(index_server, wheel_factory, "shared", "2.0")
    windows = published(index_server, wheel_factory, "native", "1.0", "cp313-cp313-win_amd64")
    root = project(tmp_path / "p", [Pin("shared", "2.0", [shared]),
                                    Pin("native", "1.0", [windows])])
    out = tmp_path / "win.tar"
    assert cli("bundle", root, "-o", out, "-t", WINDOWS, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    capsys.readouterr()
    venv = tmp_path / "venv"
    assert cli("install", out, "--venv", venv, "-q") == 5
    err = capsys.readouterr().err.strip()
    best = targets.host().tags[0]
    assert len(err.splitlines()) == 1
    assert "no target in the bundle fits" in err and WINDOWS in err and f"best tag {best}" in err
    assert f"{WINDOWS} (python_version 3.13)" in err  # why: made for another Python
    assert not venv.exists() and not venv.is_symlink()
    assert not (tmp_path / "venv.releases").exists()  # a failed first install leaves no trace


def test_install_with_another_python_picks_its_target_and_makes_its_venv(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    python312 = pyenv_python(12)
    if python312 is None:
        pytest.skip("no pyenv Python 3.12 here")
    if sys.version_info[:2] == (3, 12):
        pytest.skip("the host is 3.12 itself; nothing to tell apart")
    host = targets.host()
    host_minor = f"cp3{sys.version_info[1]}"
    flavors = {}
    for tag in (f"{host_minor}-{host_minor}-manylinux_2_17_x86_64.manylinux2014_x86_64",
                "cp312-cp312-manylinux_2_28_x86_64"):
        flavor = tag.split("-")[0]
        flavors[flavor] = published(index_server, wheel_factory, "native", "1.0", tag,
                                    extra_files={"native/flavor.py":
                                                 f'FLAVOR = "{flavor}"\n'.encode()})
    shared = published(index_server, wheel_factory, "shared", "2.0")
    oldonly = published(index_server, wheel_factory, "oldonly", "1.0")
    root = project(tmp_path / "p", [
        Pin("native", "1.0", list(flavors.values())), Pin("shared", "2.0", [shared]),
        Pin("oldonly", "1.0", [oldonly], markers='python_version < "3.12"')])
    out = tmp_path / "app.tar"
    assert cli("bundle", root, "-o", out, "-t", "host", "-t", "cp312-manylinux_2_28_x86_64",
               "--index-url", index_server.url, "--cache-dir", tmp_path / "cache",
               "--json") == 0
    assert json.loads(capsys.readouterr().out)["targets"] == sorted(
        [host.name, "cp312-manylinux_2_28_x86_64"])

    index_server.stop()
    venv = tmp_path / "target" / "venv"
    done = cli_offline("install", out, "--venv", venv, "--python", python312, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["target"] == "cp312-manylinux_2_28_x86_64"
    ran = subprocess.run([str(venv / "bin" / "python"), "-I", "-c",
                          "import sys, json, native.flavor, shared\n"
                          "import importlib.util as u\n"
                          "print(json.dumps([sys.version_info[:2], native.flavor.FLAVOR,"
                          " u.find_spec('oldonly') is not None]))"],
                         capture_output=True, text=True, check=True)
    assert json.loads(ran.stdout) == [[3, 12], "cp312", False]


def test_target_files_and_pyproject_targets_drive_export(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    """pyproject.toml names a spec and a target file made by target-info on the target."""
    python = pyenv_python(12) or sys.executable
    assert cli("target-info", "--python", python) == 0
    described = json.loads(capsys.readouterr().out)
    shared = published(index_server, wheel_factory, "shared", "2.0")
    linux = published(index_server, wheel_factory, "tool", "1.0",
                      "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64")
    windows = published(index_server, wheel_factory, "tool", "1.0", "py3-none-win_amd64")
    root = project(tmp_path / "p", [Pin("shared", "2.0", [shared]),
                                    Pin("tool", "1.0", [linux, windows])],
                   config='\n[tool.wheelhouse-bundler]\ntargets = ["cp313-win_amd64"]\n'
                          'target-files = ["bastion.json"]\n')
    (root / "bastion.json").write_text(json.dumps(described))
    out = tmp_path / "reqs"
    out.mkdir()
    assert cli("export", root, "-o", out, "--index-url", index_server.url) == 0

    written = {p.name: p.read_text() for p in out.iterdir()}
    assert set(written) == {f"{described['name']}.txt", f"{WINDOWS}.txt"}
    assert sha256_of(linux) in written[f"{described['name']}.txt"]
    assert sha256_of(windows) in written[f"{WINDOWS}.txt"]
    # a flag replaces the configured targets; a missing target file is one clear line
    capsys.readouterr()
    assert cli("export", root, "--target-file", tmp_path / "nope.json") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.json" in err


def manifest_of(*targets_files: tuple[str, dict[str, str], list[str]]) -> Manifest:
    files: dict[str, list[str]] = {}
    for name, _, filenames in targets_files:
        for filename in filenames:
            files.setdefault(filename, []).append(name)
    return Manifest(
        format_version=1, tool_version="0", lock_name="poetry.lock", lock_format="poetry",
        lock_sha256="0" * 64, groups=(), extras=(),
        targets=tuple(ManifestTarget(n, env) for n, env, _ in targets_files),
        files=tuple(ManifestFile(f, "0" * 64, 1, f.split("-")[0], "1.0", "", tuple(t))
                    for f, t in sorted(files.items())))


def test_choose_target_best_fit_markers_and_override() -> None:
    cp311 = {"python_version": "3.11", "sys_platform": "linux", "implementation_name": "cpython"}
    cp312 = {**cp311, "python_version": "3.12"}
    man = manifest_of(
        ("cp311-manylinux_2_17_x86_64", cp311, ["a-1.0-cp311-cp311-manylinux2014_x86_64.whl",
                                                "p-1.0-py3-none-any.whl"]),
        ("cp311-manylinux_2_28_x86_64", cp311, ["a-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                                                "p-1.0-py3-none-any.whl"]),
        ("cp312-pure", cp312, ["p-1.0-py3-none-any.whl"]))
    tag_list = list(targets.parse("cp311-manylinux_2_36_x86_64").tags)
    # the target whose worst wheel ranks best; the 3.12 one is pure but made for 3.12
    assert choose_target(man, tag_list, None, cp311) == "cp311-manylinux_2_28_x86_64"
    assert choose_target(man, tag_list, "cp311-manylinux_2_17_x86_64", cp311) == \
        "cp311-manylinux_2_17_x86_64"
    with pytest.raises(UsageError, match="not in the bundle"):
        choose_target(man, tag_list, "cp399-beos", cp311)
    old = list(targets.parse("cp311-manylinux_2_17_x86_64").tags)
    assert choose_target(man, old, None, cp311) == "cp311-manylinux_2_17_x86_64"
    with pytest.raises(InstallError) as info:
        choose_target(man, list(targets.parse("cp312-manylinux_2_17_x86_64").tags), None,
                      {**cp311, "python_version": "3.13"})
    text = str(info.value)
    assert "best tag cp312-cp312-manylinux_2_17_x86_64" in text and "python_version 3.13" in text
    assert all(name in text for name in ("cp311-manylinux_2_17_x86_64", "cp312-pure"))
