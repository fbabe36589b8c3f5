"""Lock -> bundle -> verify -> offline install, with a real index, real pip, real venvs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from clirun import cli_offline, run_cli
from locktext import Pin, hashed_requirements, poetry_lock, pyproject
from reqpins import pins as pins_of
from wheelfactory import build_wheel, sha256_of

from wheelhouse_bundler.cli import main


def cli(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def project(tmp_path: Path, index_server, wheel_factory, clean_environ):
    """A poetry project whose lock names wheels published on the test index."""
    alpha = wheel_factory("alpha", "1.0")
    beta = wheel_factory("beta", "2.0", requires=["alpha"])
    winonly = wheel_factory("winonly", "1.0")
    devtool = wheel_factory("devtool", "3.0")
    yamlish = wheel_factory("yamlish", "4.0")
    for w in (alpha, beta, winonly, devtool, yamlish):
        index_server.add(w)
    pins = [
        Pin("alpha", "1.0", [alpha]),
        Pin("beta", "2.0", [beta]),
        Pin("winonly", "1.0", [winonly], markers='sys_platform == "win32"'),
        Pin("devtool", "3.0", [devtool], groups=["dev"]),
        Pin("yamlish", "4.0", [yamlish], optional=True, markers='extra == "yaml"'),
    ]
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock(pins, extras={"yaml": ["yamlish"]}))
    return root, pins


def installed(venv: Path) -> dict[str, str]:
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PIP_CONFIG_FILE": os.devnull}).stdout
    return {p["name"]: p["version"] for p in json.loads(out)
            if p["name"] not in ("pip", "setuptools", "wheel")}


def test_poetry_lock_bundles_verifies_and_installs_offline(project, index_server, tmp_path,
                                                            capsys) -> None:
    root, _ = project
    out = tmp_path / "app.tar"
    assert cli("bundle", root / "poetry.lock", "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 2 and summary["downloaded"] == 2
    assert (tmp_path / "app.tar.sha256").read_text().split()[0] == summary["sha256"]

    assert cli("inspect", out, "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert {(p["name"], p["version"]) for p in listing["packages"]} == {("alpha", "1.0"),
                                                                         ("beta", "2.0")}
    assert listing["lock"]["name"] == "poetry.lock" and listing["groups"] == ["main"]

    index_server.stop()  # the target has no index; the namespace has no network either
    venv = tmp_path / "target" / "venv"
    verified = cli_offline("verify", out)
    assert verified.returncode == 0, verified.stderr
    done = cli_offline("install", out, "--venv", venv, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert venv.is_symlink() and Path(result["release"]).parent == venv.parent / "venv.releases"
    assert installed(venv) == {"alpha": "1.0", "beta": "2.0"}
    code = "import alpha, beta; print(alpha.__version__, beta.__version__)"
    ran = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, check=True)
    assert ran.stdout.split() == ["1.0", "2.0"]


def test_groups_and_extras_choose_what_is_bundled(project, index_server, tmp_path,
                                                  capsys) -> None:
    root, _ = project
    out = tmp_path / "full.tar"
    assert cli("bundle", root, "-o", out, "--index-url", index_server.url, "--with", "dev",
               "-E", "yaml", "--cache-dir", tmp_path / "cache", "-q") == 0
    assert cli("inspect", out, "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert sorted(p["name"] for p in listing["packages"]) == ["alpha", "beta", "devtool",
                                                              "yamlish"]
    assert listing["extras"] == ["yaml"] and listing["groups"] == ["dev", "main"]


def test_hashed_requirements_end_to_end(index_server, wheel_factory, tmp_path, clean_environ,
                                        capsys) -> None:
    gamma = wheel_factory("gamma", "0.3")
    delta_new = wheel_factory("delta", "1.1", tag="py3-none-any")
    delta_other = wheel_factory("delta", "1.1", tag="cp311-cp311-win_amd64")
    for w in (gamma, delta_new, delta_other):
        index_server.add(w)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(hashed_requirements([Pin("gamma", "0.3", [gamma]),
                                         Pin("delta", "1.1", [delta_new, delta_other])]))
    out = tmp_path / "req.tar"
    assert cli("bundle", reqs, "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    assert cli("inspect", out, "--json") == 0
    files = {p["filename"] for p in json.loads(capsys.readouterr().out)["packages"]}
    assert files == {gamma.name, delta_new.name}  # the host cannot use the win_amd64 wheel
    venv = tmp_path / "venv"
    done = cli_offline("install", out, "--venv", venv)
    assert done.returncode == 0, done.stderr
    assert installed(venv) == {"gamma": "0.3", "delta": "1.1"}


def test_export_writes_what_pip_installs_offline(project, index_server, tmp_path, capsys,
                                                 ) -> None:
    root, pins = project
    exported = tmp_path / "requirements.txt"
    assert cli("export", root / "poetry.lock", "-o", exported, "--with", "dev") == 0
    text = exported.read_text()
    assert "alpha==1.0" in text and "devtool==3.0" in text and "winonly" not in text
    find_links = tmp_path / "find-links"
    find_links.mkdir()
    for pin in pins:
        for w in pin.wheels:
            shutil.copy(w, find_links)
    target = tmp_path / "plain-venv"
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
                    "--require-hashes", "--find-links", str(find_links), "-r", str(exported)],
                   check=True, env=env)
    assert installed(target) == {"alpha": "1.0", "beta": "2.0", "devtool": "3.0"}


def test_two_builds_are_byte_identical(project, index_server, tmp_path) -> None:
    root, _ = project
    one, two = tmp_path / "a" / "app.tar", tmp_path / "b" / "app.tar"
    for out, cache in ((one, "c1"), (two, "c2")):
        assert cli("bundle", root, "-o", out, "--index-url", index_server.url,
                   "--cache-dir", tmp_path / cache, "-q") == 0
    assert one.read_bytes() == two.read_bytes()
    assert (one.parent / "app.tar.sha256").read_bytes() == \
        (two.parent / "app.tar.sha256").read_bytes()


def _swap_member(src: Path, dst: Path, suffix: str, payload: bytes) -> None:
    """Rewrite the tar with one member's bytes replaced (a tampered USB stick)."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read()
            if info.name.endswith(suffix):
                data = payload[: len(data)].ljust(len(data), b"\0")
            import io

            tout.addfile(info, io.BytesIO(data))


def test_tampered_wheel_is_refused_before_anything_is_installed(project, index_server,
                                                                tmp_path, capsys) -> None:
    root, _ = project
    good = tmp_path / "good.tar"
    assert cli("bundle", root, "-o", good, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    bad = tmp_path / "bad.tar"
    _swap_member(good, bad, "alpha-1.0-py3-none-any.whl", b"evil" * 1000)
    capsys.readouterr()
    assert cli("verify", bad) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "alpha-1.0-py3-none-any.whl" in err and "sha256" in err
    venv = tmp_path / "venv"
    done = cli_offline("install", bad, "--venv", venv)
    assert done.returncode == 3
    assert not venv.exists() and not venv.is_symlink()
    assert not (tmp_path / "venv.releases").exists()  # a failed first install leaves no trace


def test_wrong_hash_on_index_is_refused_and_nothing_is_written(project, index_server,
                                                               wheel_factory, tmp_path,
                                                               capsys) -> None:
    root, pins = project
    # The index now serves other bytes under alpha's name (a compromised mirror).
    evil = build_wheel(tmp_path / "evil", "alpha", "1.0", extra_files={"alpha/x.py": b"1"})
    shutil.copy(evil, index_server.root / evil.name)
    out, cache = tmp_path / "app.tar", tmp_path / "cache"
    locked = next(p for p in pins if p.name == "alpha").wheels[0]
    assert cli("bundle", root, "-o", out, "--index-url", index_server.url,
               "--cache-dir", cache, "-q") == 3
    err = capsys.readouterr().err
    # Refused by the index listing, before a byte is fetched (the hash check while
    # streaming would also exit 3, but only after downloading the mirror's file).
    assert (f"alpha-1.0-py3-none-any.whl: source 'default' lists sha256 {sha256_of(evil)}, "
            f"the lock says {sha256_of(locked)}") in err and "Traceback" not in err
    assert not any(r.startswith("/packages/alpha") for r in index_server.requests())
    cached = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert not any(sha256_of(evil) in p.name or p.read_bytes() == evil.read_bytes()
                   for p in cached)
    assert not out.exists() and not (tmp_path / "app.tar.sha256").exists()
    assert list(tmp_path.glob(".app.tar.*")) == []


def test_malformed_lock_gives_exit_2_and_one_line(project, tmp_path, capsys) -> None:
    root, _ = project
    lock = root / "poetry.lock"
    lock.write_text(lock.read_text()[:200])
    out = tmp_path / "app.tar"
    assert cli("bundle", lock, "-o", out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(lock) in err and "invalid TOML" in err
    assert not out.exists()


def test_package_without_wheel_fails_before_download(index_server, wheel_factory, tmp_path,
                                                     clean_environ, capsys) -> None:
    alpha = wheel_factory("alpha", "1.0")
    index_server.add(alpha)
    root = tmp_path / "p"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock([
        Pin("alpha", "1.0", [alpha]),
        Pin("sdonly", "1.0", [], extra_files={"sdonly-1.0.tar.gz": "e" * 64})]))
    out = tmp_path / "app.tar"
    assert cli("bundle", root, "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "--no-build") == 2
    err = capsys.readouterr().err
    assert "sdonly==1.0" in err and "sdonly-1.0.tar.gz (not built: --no-build)" in err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_failed_install_keeps_the_previous_release(project, index_server, wheel_factory,
                                                   tmp_path, capsys) -> None:
    root, pins = project
    good = tmp_path / "good.tar"
    assert cli("bundle", root, "-o", good, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    venv = tmp_path / "venv"
    assert cli_offline("install", good, "--venv", venv).returncode == 0
    before = os.readlink(venv)
    # A second release whose dependency is missing: pip check fails after the install.
    broken = wheel_factory("broken", "1.0", requires=["notthere"])
    index_server.add(broken)
    (root / "poetry.lock").write_text(poetry_lock([*pins, Pin("broken", "1.0", [broken])]))
    bad = tmp_path / "bad.tar"
    assert cli("bundle", root, "-o", bad, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    done = cli_offline("install", bad, "--venv", venv)
    assert done.returncode == 5, done.stderr
    assert "pip check" in done.stderr
    assert os.readlink(venv) == before
    assert [p.name for p in (tmp_path / "venv.releases").iterdir()] == [Path(before).name]
    assert installed(venv) == {"alpha": "1.0", "beta": "2.0"}


def test_download_writes_only_the_target_wheels(project, index_server, tmp_path,
                                                capsys) -> None:
    root, pins = project
    dest = tmp_path / "dl"
    assert cli("download", root, "-d", dest, "-t", "cp312-win_amd64", "--with", "dev",
               "--index-url", index_server.url, "--cache-dir", tmp_path / "cache",
               "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    expected = {w.name for p in pins if p.name in ("alpha", "beta", "winonly", "devtool")
                for w in p.wheels}
    assert set(listing["files"]) == expected == {p.name for p in dest.iterdir()}
    for pin in pins:
        for w in pin.wheels:
            if w.name in expected:
                assert (dest / w.name).read_bytes() == w.read_bytes()


def _limit_file_size() -> None:
    """In the child: writes past 200 kB fail with EFBIG, like a disk that is full."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_full_disk_while_writing_leaves_no_bundle(index_server, wheel_factory, tmp_path,
                                                  clean_environ) -> None:
    big = wheel_factory("bulky", "1.0", payload_size=1_000_000)
    index_server.add(big)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(hashed_requirements([Pin("bulky", "1.0", [big])]))
    cache = tmp_path / "cache"
    # Fill the cache first (the limit would stop the download too), then build full-disk.
    assert cli("bundle", reqs, "-o", tmp_path / "first.tar", "--index-url", index_server.url,
               "--cache-dir", cache, "-q") == 0
    out = tmp_path / "out" / "app.tar"
    done = run_cli("bundle", reqs, "-o", out, "--cache-dir", cache, "--index-url",
                   index_server.url, "-q", preexec_fn=_limit_file_size)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and "Traceback" not in done.stderr
    assert f"{out}: File too large" in lines[0] and ".part" not in lines[0]  # the user's path
    assert list((tmp_path / "out").iterdir()) == []

    # The same limit while downloading: the cache folder is named, not its private file.
    fresh = tmp_path / "fresh-cache"
    done = run_cli("bundle", reqs, "-o", out, "--cache-dir", fresh, "--index-url",
                   index_server.url, "-q", preexec_fn=_limit_file_size)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"wheelhouse-bundler: error: {fresh}: File too large"
    assert list((tmp_path / "out").iterdir()) == []


def test_export_download_and_inspect_as_an_operator_runs_them(project, index_server,
                                                                tmp_path) -> None:
    """Each command as its own process (exit code, stdout, files), for a Windows target
    from this Linux box: the marker-only package is in, the dev group only when asked."""
    root, pins = project
    wheels = {p.name: p.wheels[0] for p in pins}
    win = "cp312-win_amd64"

    exported = tmp_path / "win-requirements.txt"
    done = run_cli("export", root / "poetry.lock", "-t", win, "-o", exported, "-q")
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert pins_of(exported.read_text(), None) == {
        n: ("1.0" if n != "beta" else "2.0", frozenset({sha256_of(wheels[n])}))
        for n in ("alpha", "beta", "winonly")}

    dest = tmp_path / "dl"
    done = run_cli("download", root, "-d", dest, "-t", win, "--with", "dev", "--index-url",
                   index_server.url, "--cache-dir", tmp_path / "cache", "--json")
    assert done.returncode == 0, done.stderr
    expected = {wheels[n].name for n in ("alpha", "beta", "winonly", "devtool")}
    assert set(json.loads(done.stdout)["files"]) == expected
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == {
        w.name: w.read_bytes() for w in wheels.values() if w.name in expected}

    out = tmp_path / "app.tar"
    assert cli("bundle", root, "-o", out, "-t", win, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    done = run_cli("inspect", out, "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["targets"] == [win] and listing["lock"]["name"] == "poetry.lock"
    assert {(p["name"], p["version"], p["filename"]) for p in listing["packages"]} == {
        (n, v, wheels[n].name) for n, v in (("alpha", "1.0"), ("beta", "2.0"),
                                            ("winonly", "1.0"))}
    text = run_cli("inspect", out)
    assert text.returncode == 0 and f"targets  {win}" in text.stdout
    assert text.stdout.rstrip().endswith(f"3 wheels, {out.stat().st_size / 1e6:.1f} MB")
    assert "unsigned" in text.stdout

    bad = tmp_path / "bad.tar"
    with tarfile.open(out) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(wheels["beta"].name))
    data = bytearray(out.read_bytes())
    data[member.offset_data + 10] ^= 0xFF  # inside a wheel: inspect verifies before it lists
    bad.write_bytes(bytes(data))
    refused = run_cli("inspect", bad, "--json")
    assert refused.returncode == 3 and refused.stdout == ""
    assert wheels["beta"].name in refused.stderr
    checked = run_cli("verify", bad)
    assert checked.returncode == 3 and wheels["beta"].name in checked.stderr
    assert run_cli("verify", out).returncode == 0
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
