"""poetry.lock sources (explicit index, url and file wheels) and bad input, through the CLI.

Sources run against two real pypiservers: the default index and a password-protected
one that the lock names as an explicit source. Malformed input is always exit 2 with one
line naming the file (and the line where the TOML parser knows it); a package that is no
wheel on an index is exit 2 too, in select's table, only when a target needs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import AUTH
from locktext import Pin, poetry_lock
from refusals import export_ok, export_refused
from wheelfactory import sha256_of

from wheelhouse_bundler.cli import main

LINUX = "cp311-manylinux_2_28_x86_64"
DEAD = "http://127.0.0.1:9/simple/"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def _pyproject(primary: str, explicit: str) -> str:
    return f'''[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"

[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "main"
url = "{primary}"
priority = "primary"

[[tool.poetry.source]]
name = "corp"
url = "{explicit}"
priority = "explicit"
'''


@pytest.fixture
def sourced(tmp_path: Path, index_server, auth_index_server, wheel_factory, clean_environ,
            monkeypatch) -> dict:
    """A project whose lock pins alpha to the primary source, corpkit to the explicit
    (authenticated) one, urlpkg to a direct wheel URL and filepkg to a wheel on disk."""
    alpha = index_server.add(wheel_factory("alpha", "1.0"))
    urlpkg = index_server.add(wheel_factory("urlpkg", "1.0"))
    private = auth_index_server.add(wheel_factory(tmp_path / "private", "corpkit", "2.0"))
    # A look-alike on the primary: the explicit source's package must never come from it.
    index_server.add(wheel_factory("corpkit", "2.0", tag="py2.py3-none-any"))
    root = tmp_path / "project"
    (root / "artifacts").mkdir(parents=True)
    filepkg = shutil.copy(wheel_factory(tmp_path / "built", "filepkg", "1.0"),
                          root / "artifacts")
    (root / "pyproject.toml").write_text(_pyproject(index_server.url, auth_index_server.url))
    (root / "poetry.lock").write_text(poetry_lock([
        Pin("alpha", "1.0", [alpha], source=("main", index_server.url.rstrip("/"))),
        Pin("corpkit", "2.0", [private], source=("corp", auth_index_server.url.rstrip("/"))),
        Pin("urlpkg", "1.0", [urlpkg], source=("", index_server.file_url(urlpkg.name)),
            source_type="url"),
        Pin("filepkg", "1.0", [Path(filepkg)],
            source=("", "artifacts/filepkg-1.0-py3-none-any.whl"), source_type="file"),
    ]))
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_USERNAME", AUTH[0])
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_PASSWORD", AUTH[1])
    return {"root": root, "wheels": {"alpha": alpha, "corpkit": private, "urlpkg": urlpkg,
                                     "filepkg": Path(filepkg)}}


def test_each_package_comes_from_its_own_source_alone(sourced, index_server,
                                                       auth_index_server, tmp_path,
                                                       capsys) -> None:
    out = tmp_path / "app.tar"
    index_server.reset_requests()
    assert cli("bundle", sourced["root"], "-t", LINUX, "-o", out, "--index-url", DEAD,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    assert cli("inspect", out, "--json") == 0
    files = {p["name"]: p for p in json.loads(capsys.readouterr().out)["packages"]}
    assert {n: (f["filename"], f["sha256"]) for n, f in files.items()} == {
        n: (w.name, sha256_of(w)) for n, w in sourced["wheels"].items()}
    primary = index_server.requests()
    # the explicit source's package was never looked up on the primary, nor on the default
    assert not any("corpkit" in r for r in primary)
    assert any(r.startswith("/simple/corpkit/") for r in auth_index_server.requests())
    # url and file packages need no index page: the lock says where the bytes are
    assert not any(r.startswith(("/simple/urlpkg", "/simple/filepkg")) for r in primary)
    assert any(r.startswith("/packages/urlpkg-1.0") for r in primary)
    assert AUTH[1].encode() not in out.read_bytes()


def test_local_file_with_other_bytes_is_an_integrity_error(sourced, tmp_path,
                                                            capsys) -> None:
    local = sourced["root"] / "artifacts" / "filepkg-1.0-py3-none-any.whl"
    local.write_bytes(local.read_bytes() + b"tampered")
    out = tmp_path / "app.tar"
    assert cli("bundle", sourced["root"], "-t", LINUX, "-o", out, "--index-url", DEAD,
               "--cache-dir", tmp_path / "cache", "-q") == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "filepkg-1.0-py3-none-any.whl" in err
    assert not out.exists()


def test_missing_local_file_is_named(sourced, tmp_path, capsys) -> None:
    (sourced["root"] / "artifacts" / "filepkg-1.0-py3-none-any.whl").unlink()
    out = tmp_path / "app.tar"
    assert cli("bundle", sourced["root"], "-t", LINUX, "-o", out, "--index-url", DEAD,
               "--cache-dir", tmp_path / "cache", "-q") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err and not out.exists()


# ---- malformed: exit 2, one line naming the file; unbundleable: select's table -----------

A, B, C = "a" * 64, "b" * 64, "c" * 64
GOOD = poetry_lock([
    Pin("alpha", "1.0", [], extra_files={"alpha-1.0-py3-none-any.whl": A}),
    Pin("devtool", "3.0", [], groups=("dev",), extra_files={"devtool-3.0-py3-none-any.whl": B})])

GIT = '''
[[package]]
name = "fromgit"
version = "0.1"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = []
develop = false

[package.source]
type = "git"
url = "https://example.com/fromgit.git"
reference = "main"
resolved_reference = "0123456789abcdef0123456789abcdef01234567"

[[package]]
name = "fromdir"
version = "0.2"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = []
develop = true

[package.source]
type = "directory"
url = "../fromdir"
'''


def _lock(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad" / "poetry.lock"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def fails(tmp_path: Path, text: str, capsys) -> str:
    path = _lock(tmp_path, text)
    assert cli("export", path, "-t", LINUX, "--index-url", DEAD) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    return err


def test_good_lock_exports_only_what_selected_groups_need(tmp_path, clean_environ,
                                                          capsys) -> None:
    path = _lock(tmp_path, GOOD)
    assert cli("export", path, "-t", LINUX, "--index-url", DEAD) == 0
    out = capsys.readouterr().out
    assert f"alpha==1.0 \\\n    --hash=sha256:{A}" in out and "devtool" not in out
    assert cli("export", path, "-t", LINUX, "--index-url", DEAD, "--with", "dev") == 0
    assert "devtool==3.0" in capsys.readouterr().out


def test_lock_20_package_nothing_depends_on_is_not_exported(tmp_path, clean_environ,
                                                            capsys) -> None:
    text = GOOD.replace('lock-version = "2.1"', 'lock-version = "2.0"').replace(
        'groups = ["main"]\n', "").replace('groups = ["dev"]\n', "")
    path = _lock(tmp_path, text)
    (path.parent / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "x"\nversion = "0"\n\n[tool.poetry.dependencies]\n'
        'python = ">=3.11"\nalpha = "^1.0"\n')
    assert cli("export", path, "-t", LINUX, "--index-url", DEAD) == 0
    out = capsys.readouterr().out
    assert "alpha==1.0" in out and "devtool" not in out


def test_malformed_lock_names_file_and_line(tmp_path, clean_environ, capsys) -> None:
    broken = GOOD.replace('name = "devtool"', 'name = "devtool')
    err = fails(tmp_path, broken, capsys)
    line = broken.splitlines().index('name = "devtool') + 1
    assert f"poetry.lock:{line}:" in err and "invalid TOML" in err


def test_truncated_lock_is_refused(tmp_path, clean_environ, capsys) -> None:
    err = fails(tmp_path, GOOD[: GOOD.index("files = [") + 12], capsys)
    assert "invalid TOML" in err and "poetry.lock:" in err


def test_unknown_lock_version_says_which_are_read(tmp_path, clean_environ, capsys) -> None:
    for version in ("1.1", "3.0"):
        err = fails(tmp_path, GOOD.replace('"2.1"', f'"{version}"'), capsys)
        assert f"lock-version {version} is not read" in err and "reads 2.0, 2.1" in err


def test_package_without_hash_is_refused_where_needed(tmp_path, clean_environ,
                                                    capsys) -> None:
    """devtool (group dev) lost its hash: the main group goes ahead without it, and
    only a selection with dev is refused, naming the file."""
    path = _lock(tmp_path, GOOD.replace(f', hash = "sha256:{B}"', ""))
    out = export_ok(path, LINUX, capsys)
    assert "alpha==1.0" in out and "devtool" not in out
    err = export_refused(path, LINUX, capsys, "--with", "dev")
    assert (f"devtool 3.0 on {LINUX}: file 'devtool-3.0-py3-none-any.whl' has no sha256 "
            "hash (hashes are the lock; run `poetry lock` again, or pass "
            "--allow-unhashed)") in err


def test_git_and_directory_packages_are_refused_together(tmp_path, clean_environ,
                                                         capsys) -> None:
    path = _lock(tmp_path, GOOD.replace("[metadata]", GIT + "\n[metadata]"))
    err = export_refused(path, LINUX, capsys)
    assert "2 package(s) cannot be installed from poetry.lock" in err
    assert (f"fromgit 0.1 on {LINUX}: comes from a git checkout "
            "(https://example.com/fromgit.git), not a wheel on an index; build it into a "
            "wheel, publish it on an index and lock that (or bundle your own project's "
            "wheel with --dist)") in err
    assert (f"fromdir 0.2 on {LINUX}: comes from a local folder (../fromdir), not a wheel "
            "on an index") in err


def test_git_package_of_an_unselected_group_is_not_refused(tmp_path, clean_environ,
                                                           capsys) -> None:
    """A git checkout only the dev group needs: the main group bundles without it."""
    fromgit = GIT.split("[[package]]\nname = \"fromdir\"")[0]
    path = _lock(tmp_path, GOOD.replace(
        "[metadata]", fromgit.replace('groups = ["main"]', 'groups = ["dev"]') + "[metadata]"))
    out = export_ok(path, LINUX, capsys)
    assert "alpha==1.0" in out and "fromgit" not in out
    err = export_refused(path, LINUX, capsys, "--with", "dev")
    assert f"fromgit 0.1 on {LINUX}: comes from a git checkout" in err
    assert "1 package(s)" in err


def test_sdist_url_package_is_refused(tmp_path, clean_environ, capsys) -> None:
    sdist = f'''
[[package]]
name = "fromurl"
version = "1.0"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = [
    {{file = "fromurl-1.0.tar.gz", hash = "sha256:{C}"}},
]

[package.source]
type = "url"
url = "https://example.com/fromurl-1.0.tar.gz"
'''
    path = _lock(tmp_path, GOOD.replace("[metadata]", sdist + "\n[metadata]"))
    err = export_refused(path, LINUX, capsys)
    assert (f"fromurl 1.0 on {LINUX}: comes from a direct URL that is not a wheel "
            "(https://example.com/fromurl-1.0.tar.gz), not a wheel on an index") in err
