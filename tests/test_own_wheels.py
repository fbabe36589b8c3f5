"""The project's own wheels: built with `build` (or taken from --dist), bundled like any
other wheel, installed last with --no-deps; and the default release name.

The tiny project uses hatchling, installed beside the tool (the dev extras), and is
built with --no-isolation so the test needs no index for the backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from clirun import cli_offline
from locktext import Pin, hashed_requirements, poetry_lock
from wheelfactory import wheel_filename

from wheelhouse_bundler.cli import main

pytest.importorskip("hatchling")

WINDOWS = "cp311-win_amd64"

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "{backend}"

[project]
name = "myapp"
version = "0.3.0"
requires-python = ">=3.11"
dependencies = ["alpha"]

[tool.hatch.build.targets.wheel]
packages = ["myapp"]
"""


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def app(tmp_path: Path, index_server, wheel_factory, clean_environ) -> Path:
    """A package project (hatchling) whose lock pins its one dependency, alpha."""
    alpha = wheel_factory("alpha", "1.0")
    index_server.add(alpha)
    root = tmp_path / "myapp-src"
    (root / "myapp").mkdir(parents=True)
    (root / "myapp" / "__init__.py").write_text(
        'from alpha import __version__ as ALPHA\n__version__ = "0.3.0"\n')
    (root / "pyproject.toml").write_text(PYPROJECT.format(backend="hatchling.build"))
    (root / "poetry.lock").write_text(poetry_lock([Pin("alpha", "1.0", [alpha])]))
    return root


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {i.name.split("/", 1)[1]: tar.extractfile(i).read() for i in tar.getmembers()}


def test_own_wheel_is_built_bundled_and_installed_last_offline(app, index_server, tmp_path,
                                                               capsys) -> None:
    outdir = tmp_path / "releases"
    outdir.mkdir()
    assert cli("bundle", app, "-o", outdir, "--no-isolation", "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    lock_sha = hashlib.sha256((app / "poetry.lock").read_bytes()).hexdigest()
    out = outdir / f"myapp-0.3.0-{lock_sha[:12]}.tar"  # the default release name
    assert summary["output"] == str(out) and out.is_file() and summary["own"] == 1

    files = members(out)
    manifest = json.loads(files["manifest.json"])
    (target,) = [t["name"] for t in manifest["targets"]]
    own = [f for f in manifest["files"] if f.get("own")]
    assert [(f["name"], f["version"], f["targets"]) for f in own] == [
        ("myapp", "0.3.0", [target])]
    assert "own" not in next(f for f in manifest["files"] if f["name"] == "alpha")
    wheel = own[0]
    assert hashlib.sha256(files[wheel["path"]]).hexdigest() == wheel["sha256"]
    sums = dict(reversed(line.split("  ", 1)) for line in files["SHA256SUMS"].decode()
                .splitlines())
    assert sums[wheel["path"]] == wheel["sha256"]
    own_txt = f"targets/{target}/own.txt"
    assert sums[own_txt] == hashlib.sha256(files[own_txt]).hexdigest()
    assert f"myapp==0.3.0 --hash=sha256:{wheel['sha256']}" in files[own_txt].decode()
    assert "myapp" not in files[f"targets/{target}/requirements.txt"].decode()
    sbom = json.loads(files["sbom.cdx.json"])
    mine = next(c for c in sbom["components"] if c["name"] == "myapp")
    assert {"name": "wheelhouse-bundler:own", "value": "true"} in mine["properties"]
    graph = {d["ref"]: d.get("dependsOn", []) for d in sbom["dependencies"]}
    assert graph[sbom["metadata"]["component"]["bom-ref"]] == [mine["bom-ref"]]
    assert graph[mine["bom-ref"]] == [next(c["bom-ref"] for c in sbom["components"]
                                           if c["name"] == "alpha")]

    assert cli("inspect", out) == 0
    listing = capsys.readouterr().out
    assert f"sha256 {lock_sha}" in listing and "(own)" in listing

    index_server.stop()
    venv = tmp_path / "target" / "venv"
    done = cli_offline("install", out, "--venv", venv, "--json")
    assert done.returncode == 0, done.stderr
    ran = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import myapp; print(myapp.__version__, myapp.ALPHA)"],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert ran.stdout.split() == ["0.3.0", "1.0"]
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list",
                             "--format=json"], capture_output=True, text=True, check=True,
                            env={**os.environ, "PIP_CONFIG_FILE": os.devnull}).stdout
    assert {"myapp": "0.3.0", "alpha": "1.0"}.items() <= \
        {p["name"]: p["version"] for p in json.loads(listed)}.items()


def test_dist_wheels_serve_the_targets_they_fit(app, index_server, wheel_factory, tmp_path,
                                                capsys) -> None:
    dist = tmp_path / "dist"
    wheel_factory(dist, "myapp", "0.4.0")
    wheel_factory(dist, "myext", "1.0", "cp311-cp311-win_amd64")
    out = tmp_path / "app.tar"
    assert cli("bundle", app, "-o", out, "--dist", dist, "-t", "host", "-t", WINDOWS,
               "--index-url", index_server.url, "--cache-dir", tmp_path / "cache", "-q") == 0
    files = members(out)
    manifest = json.loads(files["manifest.json"])
    host = next(t["name"] for t in manifest["targets"] if t["name"] != WINDOWS)
    own = {f["filename"]: f["targets"] for f in manifest["files"] if f.get("own")}
    assert own == {wheel_filename("myapp", "0.4.0"): sorted([host, WINDOWS]),
                   wheel_filename("myext", "1.0", "cp311-cp311-win_amd64"): [WINDOWS]}
    assert "myext" in files[f"targets/{WINDOWS}/own.txt"].decode()
    assert "myext" not in files[f"targets/{host}/own.txt"].decode()
    assert cli("verify", out) == 0


def test_no_own_skips_and_a_failed_build_writes_nothing(app, index_server, wheel_factory,
                                                        tmp_path, capsys) -> None:
    common = ["--no-isolation", "--index-url", index_server.url, "--cache-dir",
              tmp_path / "cache", "-q"]
    out = tmp_path / "deps.tar"
    assert cli("bundle", app, "-o", out, "--no-own", *common) == 0
    files = members(out)
    assert not [f for f in json.loads(files["manifest.json"])["files"] if f.get("own")]
    assert not [p for p in files if p.endswith("own.txt")]

    (app / "pyproject.toml").write_text(PYPROJECT.format(backend="no_such_backend.build"))
    broken = tmp_path / "broken.tar"
    capsys.readouterr()
    assert cli("bundle", app, "-o", broken, *common) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "building the project's wheel" in err
    assert not broken.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".broken")] == []

    dist = tmp_path / "dist"
    wheel_factory(dist, "alpha", "9.9")  # the lock already pins alpha: refuse, do not guess
    assert cli("bundle", app, "-o", broken, "--dist", dist, *common) == 2
    assert "also pinned by the lock" in capsys.readouterr().err


def test_default_name_without_a_pyproject(index_server, wheel_factory, tmp_path,
                                          clean_environ, monkeypatch, capsys) -> None:
    gamma = wheel_factory("gamma", "0.3")
    index_server.add(gamma)
    folder = tmp_path / "reqs"
    folder.mkdir()
    lock = folder / "requirements.txt"
    lock.write_text(hashed_requirements([Pin("gamma", "0.3", [gamma])]))
    monkeypatch.chdir(tmp_path)
    assert cli("bundle", lock, "--index-url", index_server.url, "--cache-dir",
               tmp_path / "cache", "-q") == 0
    sha = hashlib.sha256(lock.read_bytes()).hexdigest()
    out = tmp_path / f"reqs-0-{sha[:12]}.tar"
    assert out.is_file() and (tmp_path / f"{out.name}.sha256").is_file()
    assert cli("inspect", out, "--json") == 0
    assert json.loads(capsys.readouterr().out)["lock"]["sha256"] == sha
