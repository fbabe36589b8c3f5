"""Where wheels come from: the user's index configuration, and sources pinned in the lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AUTH
from locktext import Pin, poetry_lock, pyproject

from wheelhouse_bundler.cli import main
from wheelhouse_bundler.model import Source
from wheelhouse_bundler.sources import (
    credentials_for,
    default_source,
    pip_default_index,
    redact,
    strip_credentials,
)


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def simple_project(tmp_path: Path, index_server, wheel_factory, clean_environ) -> Path:
    alpha = wheel_factory("alpha", "1.0")
    index_server.add(alpha)
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock([Pin("alpha", "1.0", [alpha])]))
    return root


def test_pip_index_url_is_the_default(simple_project, index_server, tmp_path, monkeypatch,
                                      capsys) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", index_server.url)
    out = tmp_path / "app.tar"
    assert cli("bundle", simple_project, "-o", out, "--cache-dir", tmp_path / "c", "-q") == 0
    assert any(r.startswith("/simple/alpha/") for r in index_server.requests())


def test_pip_config_file_index_is_the_default(simple_project, index_server, tmp_path,
                                              monkeypatch) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {index_server.url}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    out = tmp_path / "app.tar"
    assert cli("bundle", simple_project, "-o", out, "--cache-dir", tmp_path / "c", "-q") == 0
    assert out.is_file()


def test_credentials_on_the_command_line_are_refused(simple_project, tmp_path, capsys) -> None:
    out = tmp_path / "app.tar"
    assert cli("bundle", simple_project, "-o", out,
               "--index-url", "http://bob:hunter2@127.0.0.1:9/simple/") == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "credentials do not belong on the command line" in err


def test_package_pinned_to_a_source_comes_from_it_alone_with_its_credentials(
        tmp_path: Path, index_server, auth_index_server, wheel_factory, clean_environ,
        monkeypatch, capsys) -> None:
    public = wheel_factory("alpha", "1.0")
    private = wheel_factory("corpkit", "2.0")
    index_server.add(public)
    auth_index_server.add(private)
    # A look-alike on the default index must never be used for the pinned package.
    index_server.add(wheel_factory("corpkit", "2.0", tag="py2.py3-none-any"))
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject(sources=[("corp", auth_index_server.url)]))
    (root / "poetry.lock").write_text(poetry_lock([
        Pin("alpha", "1.0", [public]),
        Pin("corpkit", "2.0", [private], source=("corp", auth_index_server.url))]))
    out = tmp_path / "app.tar"

    # Without credentials: the source refuses, the error names it and exits 4.
    assert cli("bundle", root, "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "c") == 4
    err = capsys.readouterr().err
    assert "'corp'" in err and "401" in err and not out.exists()

    # A wrong password: refused, and the password is nowhere in the output.
    monkeypatch.setenv("WHEELHOUSE_BUNDLER_HTTP_BASIC_CORP_USERNAME", AUTH[0])
    monkeypatch.setenv("WHEELHOUSE_BUNDLER_HTTP_BASIC_CORP_PASSWORD", "wrong-pw-123")
    assert cli("bundle", root, "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "c") == 4
    captured = capsys.readouterr()
    assert "wrong-pw-123" not in captured.err + captured.out and "'corp'" in captured.err

    monkeypatch.setenv("WHEELHOUSE_BUNDLER_HTTP_BASIC_CORP_PASSWORD", AUTH[1])
    assert cli("bundle", root, "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "c", "--json") == 0
    assert cli("inspect", out, "--json") == 0
    listing = json.loads(capsys.readouterr().out.split("\n}\n", 1)[1])
    corpkit = next(p for p in listing["packages"] if p["name"] == "corpkit")
    assert corpkit["filename"] == private.name
    assert not any("corpkit" in r for r in index_server.requests())
    manifest_text = out.read_bytes()
    assert AUTH[1].encode() not in manifest_text


def test_poetry_env_credentials_and_url_credentials(monkeypatch) -> None:
    src = Source("my-repo", "http://u:p%40ss@127.0.0.1:9/simple/")
    assert credentials_for(src, "http://127.0.0.1:9/simple/x/") == ("u", "p@ss")
    assert credentials_for(src, "http://127.0.0.2:9/files/x.whl") is None  # other host
    monkeypatch.setenv("POETRY_HTTP_BASIC_MY_REPO_USERNAME", "env-user")
    monkeypatch.setenv("POETRY_HTTP_BASIC_MY_REPO_PASSWORD", "env-pw")
    assert credentials_for(src, "http://127.0.0.1:9/simple/x/") == ("env-user", "env-pw")
    assert redact(src.url) == "http://***@127.0.0.1:9/simple/"
    assert strip_credentials(src.url) == "http://127.0.0.1:9/simple/"


def test_netrc_credentials(tmp_path: Path, monkeypatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login nina password n3trc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    src = Source("corp", "http://127.0.0.1:9/simple/")
    assert credentials_for(src, "http://127.0.0.1:9/simple/x/") == ("nina", "n3trc")


def test_pips_default_index_is_what_pip_itself_says(clean_environ) -> None:
    """The default comes through sources._from_pip (pip's internals): checked against
    pip's own help text, so a move inside pip shows up here and not as a wrong index."""
    text = subprocess.run([sys.executable, "-m", "pip", "download", "--help"],
                          capture_output=True, text=True, check=True).stdout
    said = re.search(r"\(default\s+(\S+?)\)", " ".join(text.split()))
    assert said is not None
    assert pip_default_index().rstrip("/") == said.group(1).rstrip("/")


def test_pips_configuration_precedence_is_pips(tmp_path, monkeypatch, clean_environ) -> None:
    """`download.index-url` beats `global.index-url`, as for `pip download` itself."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:9/global/\n"
                    "[download]\nindex-url = http://127.0.0.1:9/download/\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert default_source().url == "http://127.0.0.1:9/download/"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:9/global/\n")
    assert default_source().url == "http://127.0.0.1:9/global/"
