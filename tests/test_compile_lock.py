"""`wheelhouse-bundler lock`: pip-tools compiles a hashed lock against the test index.

Real pip-compile (a subprocess) against the real pypiserver: the lock it writes must pin
every package with the sha256 of the file the index serves, then bundle and install offline
like any other lock. Failures are one line, with the exit code of their kind, and leave no
output (nor temporary file) behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clirun import run_cli
from venvs import pip_freeze
from wheelfactory import build_wheel, sha256_of

from wheelhouse_bundler.cli import main

DEAD = "http://127.0.0.1:9/simple/"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def served(tmp_path: Path, index_server, clean_environ) -> dict[str, str]:
    """filename -> sha256 of what the index serves: beta needs alpha; gamma is unused."""
    wheels = [build_wheel(tmp_path / "wheels", "alpha", "1.0"),
              build_wheel(tmp_path / "wheels", "alpha", "1.1"),
              build_wheel(tmp_path / "wheels", "beta", "2.0", requires=["alpha>=1"]),
              build_wheel(tmp_path / "wheels", "gamma", "0.3")]
    for w in wheels:
        index_server.add(w)
    return {w.name: sha256_of(w) for w in wheels}


def _entries(text: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (pinned version, hashes) of a pip-compile output; asserts every line is
    a pin with at least one hash."""
    out = {}
    for entry in re.split(r"\n(?=\S)", text.replace("\\\n", "")):
        entry = entry.split("#", 1)[0].strip() if entry.startswith("#") else entry.strip()
        if not entry:
            continue
        spec, *hashes = entry.split("--hash=")
        name, sep, version = spec.split("#", 1)[0].strip().partition("==")
        assert sep and hashes, f"not pinned with a hash: {entry!r}"
        out[name] = (version.strip(), {h.split()[0].removeprefix("sha256:") for h in hashes})
    return out


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "requirements.in")


def test_lock_pins_with_served_hashes_then_bundles_and_installs_offline(
        tmp_path, served, index_server, make_venv, capsys) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.in").write_text("beta\n")
    assert cli("lock", project / "requirements.in", "--index-url", index_server.url) == 0
    assert "2 pinned, hashed packages" in capsys.readouterr().err
    lock = project / "requirements.txt"
    text = lock.read_text()
    assert index_server.base_url not in text  # --no-emit-index-url
    entries = _entries(text)
    assert entries == {"alpha": ("1.1", {served["alpha-1.1-py3-none-any.whl"]}),
                       "beta": ("2.0", {served["beta-2.0-py3-none-any.whl"]})}
    assert _leftovers(project) == ["requirements.txt"]

    out = tmp_path / "app.tar"
    assert cli("bundle", lock, "-t", "host", "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    index_server.stop()
    venv = tmp_path / "target" / "venv"
    assert cli("install", out, "--venv", venv, "--no-smoke", "-q") == 0
    got = pip_freeze(venv / "bin" / "python")
    assert got == {"alpha": "1.1", "beta": "2.0"}


def test_lock_keeps_existing_pins(tmp_path, served, index_server) -> None:
    """As pip-compile alone: a pin already in the output is kept, not upgraded."""
    source = tmp_path / "requirements.in"
    source.write_text("alpha\n")
    output = tmp_path / "out" / "locked.txt"
    output.parent.mkdir()
    output.write_text(f"alpha==1.0 \\\n    --hash=sha256:{served['alpha-1.0-py3-none-any.whl']}\n")
    assert cli("lock", source, "-o", output, "--index-url", index_server.url, "-q") == 0
    assert _entries(output.read_text()) == {
        "alpha": ("1.0", {served["alpha-1.0-py3-none-any.whl"]})}
    assert sorted(p.name for p in output.parent.iterdir()) == ["locked.txt"]


def test_requirement_the_index_lacks_is_one_line_exit_2(tmp_path, served, index_server,
                                                         capsys) -> None:
    source = tmp_path / "requirements.in"
    source.write_text("beta\nnosuchthing==1.0\n")
    assert cli("lock", source, "--index-url", index_server.url) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "requirements.in" in err and "nosuchthing" in err
    assert not (tmp_path / "requirements.txt").exists()
    assert not list(tmp_path.glob(".requirements.txt.*"))


def test_dead_index_is_one_line_exit_4(tmp_path, clean_environ, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PIP_RETRIES", "0")  # passed through to pip: fail at once
    source = tmp_path / "requirements.in"
    source.write_text("alpha\n")
    assert cli("lock", source, "--index-url", DEAD) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the index" in err
    assert DEAD in err
    assert not (tmp_path / "requirements.txt").exists()
    assert not list(tmp_path.glob(".requirements.txt.*"))


def test_missing_input_is_exit_2(tmp_path, clean_environ, capsys) -> None:
    assert cli("lock", tmp_path / "nope.in", "--index-url", DEAD) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.in: no such file" in err


def test_lock_as_its_own_process(tmp_path, served, index_server) -> None:
    """pip-compile runs under the CLI's own process: the lock pins what the index serves,
    the summary goes to stderr, and a requirement the index lacks is exit 2, no file."""
    source = tmp_path / "requirements.in"
    source.write_text("beta\n")
    output = tmp_path / "locked.txt"
    done = run_cli("lock", source, "-o", output, "--index-url", index_server.url)
    assert done.returncode == 0, done.stderr
    assert "2 pinned, hashed packages" in done.stderr
    assert _entries(output.read_text()) == {
        "alpha": ("1.1", {served["alpha-1.1-py3-none-any.whl"]}),
        "beta": ("2.0", {served["beta-2.0-py3-none-any.whl"]})}
    source.write_text("nosuchthing==1.0\n")
    missing = tmp_path / "missing.txt"
    failed = run_cli("lock", source, "-o", missing, "--index-url", index_server.url)
    assert failed.returncode == 2 and not missing.exists()
    assert len(failed.stderr.strip().splitlines()) == 1 and "nosuchthing" in failed.stderr


def test_input_and_output_relative_to_where_the_user_is(tmp_path, served, index_server
                                                        ) -> None:
    """`cd /tmp && lock sub/requirements.in`: both paths mean the user's folder, and the
    lock names its input as the user's file, not an absolute path of this machine."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "requirements.in").write_text("beta\n")
    done = run_cli("lock", "sub/requirements.in", "-o", "sub/locked.txt", "--index-url",
                   index_server.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (sub / "locked.txt").read_text()
    assert set(_entries(text)) == {"alpha", "beta"}
    assert str(tmp_path) not in text and "-r requirements.in" in text
    assert sorted(p.name for p in sub.iterdir()) == ["locked.txt", "requirements.in"]
