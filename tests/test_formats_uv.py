"""uv.lock: the dependency graph walked per target, checked against uv's own export.

tests/data/locks/uv/ holds a uv.lock and `uv export` outputs written by the real uv
(scripts/regen-lock-fixtures) against the test index, with the server address replaced by
http://127.0.0.1:PORT/. The wheels are rebuilt here byte for byte from wheels.json, so
the hashes in those files are the hashes of the files this test serves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lockfixtures import assert_installs_as_bundled, serve_fixture_wheels
from refusals import export_ok, export_refused
from reqpins import pins

from wheelhouse_bundler import locks, select, targets
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.model import Source

DATA = Path(__file__).parent / "data" / "locks" / "uv"
PLACEHOLDER = "http://127.0.0.1:PORT/"
LINUX = "cp311-manylinux_2_28_x86_64"
WIN = "cp312-win_amd64"
# uv export file -> the same selection in our options
SELECTIONS = {
    "export-default.txt": [],
    "export-yaml-lint.txt": ["-E", "yaml", "--with", "lint"],
    "export-no-dev.txt": ["--without", "dev"],
}


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def project(tmp_path: Path, index_server, clean_environ) -> Path:
    """The fixture project with its real uv.lock, served by the test index."""
    serve_fixture_wheels(DATA / "wheels.json", tmp_path / "wheels", index_server)
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(DATA / "pyproject.toml", root / "pyproject.toml")
    (root / "uv.lock").write_text(
        (DATA / "uv.lock").read_text().replace(PLACEHOLDER, index_server.base_url))
    return root



def export(root: Path, target: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"out-{target}.txt"
    assert cli("export", root / "uv.lock", "-t", target, "-o", out, *args, "-q") == 0
    return pins(out.read_text(), None)


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_export_equals_uv_export_on_each_target(project, tmp_path, name) -> None:
    """Differential: what uv's own export installs on a target is what we export."""
    for spec in (LINUX, WIN):
        env = dict(targets.resolve((spec,), (), project=None)[0].environment)
        theirs = pins((DATA / name).read_text(), env)
        ours = export(project, spec, tmp_path, *SELECTIONS[name])
        assert ours == theirs, (name, spec)


def test_markers_extras_groups_and_forks_per_target(project, tmp_path) -> None:
    linux = export(project, LINUX, tmp_path)
    win = export(project, WIN, tmp_path)
    # a marker edge that holds on win32 only
    assert "winonly" in win and "winonly" not in linux
    # one name forked into two versions by resolution markers: each target gets its own
    assert linux["forky"][0] == "1.0" and win["forky"][0] == "2.0"
    # an extra named on an edge (gamma[speed]) pulls in the extra's dependency
    assert "speedy" in linux
    # uv's default groups: the dev group is in, other groups are not
    assert "devtool" in linux and "linty" not in linux
    # extras of the project: off by default; on, they reach their transitive dependencies
    assert "yamlish" not in linux and "deep" not in linux
    with_yaml = export(project, LINUX, tmp_path, "-E", "yaml", "--without", "dev")
    assert {"yamlish", "deep"} <= with_yaml.keys() and "devtool" not in with_yaml
    only_lint = export(project, LINUX, tmp_path, "--only", "lint")
    assert set(only_lint) == {"linty"}
    # the project itself (a virtual source) is never a requirement
    assert "uvapp" not in linux and "uvapp" not in with_yaml


def test_detected_in_a_project_folder_with_sources_and_urls(project, index_server) -> None:
    lock = locks.load(project, default=Source("default", "http://127.0.0.1:9/simple/"))
    assert lock.format == "uv" and lock.default_groups == {"main", "dev"}
    assert lock.groups == {"main", "dev", "lint"} and lock.extras == {"yaml"}
    alpha = next(p for p in lock.packages if p.name == "alpha")
    assert alpha.source == Source(index_server.url, index_server.url)
    assert alpha.files[0].url == index_server.file_url("alpha-1.0-py3-none-any.whl")
    assert {p.name for p in lock.packages} == {"alpha", "beta", "deep", "devtool", "forky",
                                                "gamma", "linty", "speedy", "winonly",
                                                "yamlish"}


def test_default_groups_come_from_tool_uv(project) -> None:
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text + '\n[tool.uv]\ndefault-groups = ["lint"]\n')
    lock = locks.load(project / "uv.lock", default=Source("d", "http://127.0.0.1:9/simple/"))
    assert lock.default_groups == {"main", "lint"}
    host = targets.resolve((LINUX,), (), project=None)[0]
    names = {p.name for p in select.needed(lock, host, lock.default_groups, ())}
    assert "linty" in names and "devtool" not in names


def test_bundle_and_offline_install_with_real_pip(project, index_server, tmp_path,
                                                  capsys) -> None:
    out = tmp_path / "uv.tar"
    assert cli("bundle", project, "-t", "host", "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-E", "yaml", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    files = {p["name"]: p for p in _inspect(out, capsys)["packages"]}
    assert set(files) == {"alpha", "beta", "deep", "devtool", "forky", "gamma", "speedy",
                          "yamlish"}
    assert summary["files"] == len(files)
    assert_installs_as_bundled(out, files, [index_server], tmp_path)


def _inspect(bundle: Path, capsys) -> dict:
    assert cli("inspect", bundle, "--json") == 0
    return json.loads(capsys.readouterr().out)


# ---- malformed: exit 2, one line naming the file; unbundleable: select's table -----------

HASH = "a" * 64
GOOD = f'''version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "alpha" }},
]

[[package]]
name = "alpha"
version = "1.0"
source = {{ registry = "http://127.0.0.1:9/simple" }}
wheels = [
  {{ url = "http://127.0.0.1:9/p/alpha-1.0-py3-none-any.whl", hash = "sha256:{HASH}", size = 10 }},
]
'''


def fails(tmp_path: Path, text: str, capsys) -> str:
    path = tmp_path / "bad" / "uv.lock"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    assert cli("export", path, "-t", LINUX, "--index-url", "http://127.0.0.1:9/simple/") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    return err


def test_good_minimal_lock_reads(tmp_path, clean_environ, capsys) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(GOOD)
    assert cli("export", path, "-t", LINUX, "--index-url", "http://127.0.0.1:9/simple/") == 0
    assert f"alpha==1.0 \\\n    --hash=sha256:{HASH}" in capsys.readouterr().out


def test_malformed_lock_names_file_and_line(tmp_path, clean_environ, capsys) -> None:
    broken = GOOD.replace('name = "alpha"\nversion', 'name = "alpha\nversion')
    err = fails(tmp_path, broken, capsys)
    line = broken.splitlines().index('name = "alpha') + 1
    assert f"uv.lock:{line}:" in err


def test_truncated_lock_is_refused(tmp_path, clean_environ, capsys) -> None:
    err = fails(tmp_path, GOOD[: GOOD.index("wheels = [") + 20], capsys)
    assert "invalid TOML" in err


def test_unknown_version_says_which_are_read(tmp_path, clean_environ, capsys) -> None:
    err = fails(tmp_path, GOOD.replace("version = 1\n", "version = 2\n", 1), capsys)
    assert "version 2 is not read" in err and "reads version 1" in err


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lock" / "uv.lock"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_wheel_without_hash_is_refused(tmp_path, clean_environ, capsys) -> None:
    path = _write(tmp_path, GOOD.replace(f', hash = "sha256:{HASH}"', ""))
    err = export_refused(path, LINUX, capsys)
    assert (f"alpha 1.0 on {LINUX}: wheel 'alpha-1.0-py3-none-any.whl' has no sha256 hash "
            "(hashes are the lock; re-run `uv lock`, or pass --allow-unhashed)") in err


@pytest.mark.parametrize("source, what", [
    ('{ git = "https://example.com/alpha.git?rev=main#0123abcd" }',
     "a git checkout (https://example.com/alpha.git?rev=main#0123abcd)"),
    ('{ path = "dist/alpha-1.0-py3-none-any.whl" }',
     "a local file (dist/alpha-1.0-py3-none-any.whl)"),
    ('{ directory = "../alpha" }', "a local folder (../alpha)"),
    ('{ editable = "../alpha" }', "an editable install (../alpha)"),
    ('{ url = "https://example.com/alpha-1.0.tar.gz" }',
     "a direct URL that is not a wheel (https://example.com/alpha-1.0.tar.gz)"),
])
def test_sources_that_are_not_index_wheels_are_refused(tmp_path, clean_environ, capsys,
                                                       source, what) -> None:
    text = GOOD.replace('source = { registry = "http://127.0.0.1:9/simple" }',
                        f"source = {source}")
    if "url =" in source:
        text = text[: text.index("wheels = [")] + 'sdist = { url = "https://example.com/' \
            f'alpha-1.0.tar.gz", hash = "sha256:{HASH}" }}\n'
    err = export_refused(_write(tmp_path, text), LINUX, capsys)
    assert (f"alpha 1.0 on {LINUX}: comes from {what}, not a wheel on an index; build it "
            "into a wheel, publish it on an index and lock that (or bundle your own "
            "project's wheel with --dist)") in err


def test_local_index_is_refused(tmp_path, clean_environ, capsys) -> None:
    text = GOOD.replace('source = { registry = "http://127.0.0.1:9/simple" }',
                        'source = { registry = "../wheels" }')
    err = export_refused(_write(tmp_path, text), LINUX, capsys)
    assert (f"alpha 1.0 on {LINUX}: comes from the local index '../wheels'; bundle from an "
            "HTTP index (pass it to `uv lock --index-url`)") in err


def test_git_package_only_windows_reaches_is_refused_on_windows_only(
        tmp_path, clean_environ, capsys) -> None:
    """The walk decides: wincolor is reached through alpha's edge for win32 only, so a
    Linux export goes ahead without it and a Windows one is refused, naming it."""
    text = GOOD.replace('source = { registry = "http://127.0.0.1:9/simple" }\nwheels',
                        'source = { registry = "http://127.0.0.1:9/simple" }\n'
                        'dependencies = [\n    { name = "wincolor", marker = '
                        '"sys_platform == \'win32\'" },\n]\nwheels') + \
        '\n[[package]]\nname = "wincolor"\nversion = "0.4.6"\n' \
        'source = { git = "https://example.com/wincolor.git#0123abcd" }\n'
    path = _write(tmp_path, text)
    out = export_ok(path, LINUX, capsys)
    assert "alpha==1.0" in out and "wincolor" not in out
    err = export_refused(path, WIN, capsys)
    assert "1 package(s)" in err
    assert (f"wincolor 0.4.6 on {WIN}: comes from a git checkout "
            "(https://example.com/wincolor.git#0123abcd), not a wheel on an index") in err


def test_ambiguous_fork_edge_is_refused(tmp_path, clean_environ, capsys) -> None:
    second = GOOD[GOOD.index('[[package]]\nname = "alpha"'):].replace('"1.0"', '"2.0"')
    err = fails(tmp_path, GOOD + "\n" + second.replace("alpha-1.0", "alpha-2.0"), capsys)
    assert "without saying which of 1.0, 2.0" in err


def test_package_no_selected_group_needs_is_not_bundled(tmp_path, clean_environ,
                                                        capsys) -> None:
    text = GOOD + f'''
[[package]]
name = "orphan"
version = "1.0"
source = {{ registry = "http://127.0.0.1:9/simple" }}
wheels = [
    {{ url = "http://127.0.0.1:9/p/orphan-1.0-py3-none-any.whl", hash = "sha256:{"b" * 64}" }},
]
'''
    path = tmp_path / "uv.lock"
    path.write_text(text)
    assert cli("export", path, "-t", LINUX, "--index-url", "http://127.0.0.1:9/simple/") == 0
    out = capsys.readouterr().out
    assert "alpha==1.0" in out and "orphan" not in out
