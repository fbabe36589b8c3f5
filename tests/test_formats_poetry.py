"""poetry.lock 2.0 and 2.1: what we export per target is what Poetry's own export says.

tests/data/locks/poetry/ holds a fixture project locked by the real Poetry against the test
index (scripts/regen-lock-fixtures --poetry): poetry.lock by Poetry 2 (lock-version 2.1,
groups and markers per package) and poetry-2.0.lock by Poetry 1.8 (lock-version 2.0: only
each package's dependencies, so the reader walks them from the pyproject's groups), plus
`poetry export` outputs of each (Poetry 2 with poetry-plugin-export) for several selections.
The server address is the placeholder http://127.0.0.1:PORT/; the wheels are rebuilt here
byte for byte from wheels.json, so the hashes there are the hashes of the files served.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lockfixtures import assert_installs_as_bundled, serve_fixture_wheels
from refusals import export_ok, export_refused
from reqpins import pins

from wheelhouse_bundler import locks, select, targets
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.model import Source

DATA = Path(__file__).parent / "data" / "locks" / "poetry"
PLACEHOLDER = "http://127.0.0.1:PORT/"
LINUX = "cp311-manylinux_2_28_x86_64"
WIN = "cp312-win_amd64"
LOCKS = {"2.1": "poetry.lock", "2.0": "poetry-2.0.lock"}
# poetry export selection -> the same selection in our options
SELECTIONS = {
    "default": [],
    "dev": ["--with", "dev"],
    "yaml": ["-E", "yaml"],
    "all": ["--all-extras", "--with", "dev", "--with", "docs"],
}


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def _serve(tmp_path: Path, index_server) -> None:
    serve_fixture_wheels(DATA / "wheels.json", tmp_path / "wheels", index_server)


def _project(tmp_path: Path, base_url: str, version: str) -> Path:
    """The fixture project holding the lock of `version` as its poetry.lock."""
    root = tmp_path / f"project-{version}"
    root.mkdir()
    for name, dest in (("pyproject.toml", "pyproject.toml"), (LOCKS[version], "poetry.lock")):
        text = (DATA / name).read_text().replace(PLACEHOLDER, base_url)
        (root / dest).write_text(text)
    return root


@pytest.fixture
def projects(tmp_path: Path, clean_environ) -> dict[str, Path]:
    """Both locks, pointing at a dead address: export needs no index (poetry.lock names
    every file with its hash), so any request would fail the test."""
    return {v: _project(tmp_path, "http://127.0.0.1:9/", v) for v in LOCKS}


def export(root: Path, target: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"out-{root.name}-{target}.txt"
    assert cli("export", root, "-t", target, "-o", out, *args, "-q") == 0
    return pins(out.read_text(), None)


def theirs(name: str, spec: str) -> dict:
    env = dict(targets.resolve((spec,), (), project=None)[0].environment)
    text = "\n".join(ln for ln in (DATA / name).read_text().splitlines()
                     if not ln.startswith("--"))  # --index-url / --trusted-host lines
    return pins(text, env)


@pytest.mark.parametrize("version", sorted(LOCKS))
@pytest.mark.parametrize("selection", sorted(SELECTIONS))
def test_export_equals_poetry_export_on_each_target(projects, tmp_path, version,
                                                    selection) -> None:
    """Differential: what Poetry's export installs on a target is what we export."""
    for spec in (LINUX, WIN):
        expected = theirs(f"export-{version}-{selection}.txt", spec)
        assert expected, "an empty poetry export proves nothing"
        ours = export(projects[version], spec, tmp_path, *SELECTIONS[selection])
        assert ours == expected, (version, selection, spec)


@pytest.mark.parametrize("version", sorted(LOCKS))
def test_markers_extras_and_groups_per_target(projects, tmp_path, version) -> None:
    root = projects[version]
    linux = export(root, LINUX, tmp_path)
    win = export(root, WIN, tmp_path)
    assert "winonly" in win and "winonly" not in linux  # a root dependency's marker
    assert "speedy" in linux  # gamma[speed]: a dependency's extra named by the root
    assert "devtool" not in linux and "yamlish" not in linux and "unused" not in linux
    dev_win = export(root, WIN, tmp_path, "--with", "dev")
    dev_linux = export(root, LINUX, tmp_path, "--with", "dev")
    assert "colorish" in dev_win and "colorish" not in dev_linux  # marker inside dev
    yaml = export(root, LINUX, tmp_path, "-E", "yaml", "--only", "main")
    assert {"yamlish", "deep"} <= yaml.keys()  # an extra reaches its transitive deps
    assert set(export(root, LINUX, tmp_path, "--only", "docs")) == {"docsy"}


def test_lock_20_is_a_graph_and_21_is_not(projects) -> None:
    default = Source("default", "http://127.0.0.1:9/simple/")
    new = locks.load(projects["2.1"], default=default)
    old = locks.load(projects["2.0"], default=default)
    assert new.graph is None and old.graph is not None
    assert new.groups == old.groups == {"main", "dev", "docs"}
    assert new.extras == old.extras == {"yaml"}
    assert {p.name for p in new.packages} == {p.name for p in old.packages}
    alpha = next(p for p in old.packages if p.name == "alpha")
    assert alpha.source is not None and alpha.source.name == "testindex"


@pytest.mark.parametrize("version", sorted(LOCKS))
def test_git_package_is_refused_only_on_the_targets_that_need_it(projects, capsys,
                                                                 version) -> None:
    """winonly, a root dependency for sys_platform == 'win32', comes from a git checkout.
    2.1 says so by its markers, 2.0 by the walk from the pyproject: Linux never needs it
    and goes ahead; Windows is refused, naming it and why."""
    lock = projects[version] / "poetry.lock"
    text = lock.read_text()
    src = text.index("[package.source]", text.index('name = "winonly"'))
    end = text.index("[[package]]", src)
    lock.write_text(text[:src] + '[package.source]\ntype = "git"\n'
                    'url = "https://example.com/winonly.git"\nreference = "main"\n'
                    'resolved_reference = "0123abcd"\n\n' + text[end:])
    out = export_ok(lock, LINUX, capsys)
    assert "beta==2" in out and "winonly" not in out
    err = export_refused(lock, WIN, capsys)
    assert "1 package(s)" in err
    assert (f"winonly 1.0 on {WIN}: comes from a git checkout "
            "(https://example.com/winonly.git), not a wheel on an index") in err


def test_lock_20_needs_its_pyproject(projects, capsys) -> None:
    (projects["2.0"] / "pyproject.toml").unlink()
    assert cli("export", projects["2.0"], "-t", LINUX, "--index-url",
               "http://127.0.0.1:9/simple/") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pyproject.toml" in err and "2.0" in err


def test_bundle_from_source_and_offline_install(index_server, tmp_path, clean_environ,
                                                capsys) -> None:
    """The packages pinned to the pyproject's source are fetched from it and install."""
    _serve(tmp_path, index_server)
    root = _project(tmp_path, index_server.base_url, "2.0")
    out = tmp_path / "poetry.tar"
    assert cli("bundle", root, "-t", "host", "-o", out,
               "--index-url", "http://127.0.0.1:9/simple/",  # dead: the lock's source serves
               "--cache-dir", tmp_path / "cache", "-E", "yaml", "-q") == 0
    assert cli("inspect", out, "--json") == 0
    files = {p["name"]: p for p in json.loads(capsys.readouterr().out)["packages"]}
    assert set(files) == {"alpha", "beta", "deep", "gamma", "speedy", "yamlish"}
    assert_installs_as_bundled(out, files, [index_server], tmp_path)


def test_groups_of_21_lock_select_like_poetry(projects) -> None:
    lock = locks.load(projects["2.1"], default=Source("d", "http://127.0.0.1:9/simple/"))
    target = targets.resolve((WIN,), (), project=None)[0]
    names = {p.name for p in select.needed(lock, target, {"dev"}, ())}
    assert names == {"devtool", "colorish"}
