"""Pipfile.lock: categories as groups, per-package index, checked against pipenv's export.

tests/data/locks/pipfile/ holds a Pipfile.lock and `pipenv requirements --hash` outputs
written by the real pipenv (scripts/regen-lock-fixtures --pipfile) against two test
indexes, with their addresses replaced by http://127.0.0.1:PORT/ and
http://127.0.0.1:PORT2/. The wheels are rebuilt here byte for byte from wheels.json; the
second index (the Pipfile's `corp` source) is served with basic auth here, so a package
pinned to it can only come from it, with its own credentials.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import AUTH
from lockfixtures import assert_installs_as_bundled, build_fixture_wheels
from refusals import export_refused
from reqpins import pins
from wheelfactory import sha256_of

from wheelhouse_bundler import locks, targets
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.model import Source

DATA = Path(__file__).parent / "data" / "locks" / "pipfile"
PLACEHOLDER, PLACEHOLDER2 = "http://127.0.0.1:PORT/", "http://127.0.0.1:PORT2/"
LINUX = "cp311-manylinux_2_28_x86_64"
WIN = "cp312-win_amd64"
# pipenv requirements output -> the same selection in our options
SELECTIONS = {
    "export-default.txt": [],
    "export-dev.txt": ["--with", "dev"],
    "export-dev-only.txt": ["--only", "dev"],
    "export-lint.txt": ["--only", "lint"],
}
NOWHERE = "http://127.0.0.1:9/simple/"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def project(tmp_path: Path, index_server, auth_index_server, clean_environ,
            monkeypatch) -> Path:
    """The fixture project with its real Pipfile.lock; `corp` needs its credentials."""
    built = build_fixture_wheels(DATA / "wheels.json", tmp_path / "wheels")
    for path in built["default"]:
        index_server.add(path)
    for path in built["corp"]:
        auth_index_server.add(path)
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(DATA / "Pipfile", root / "Pipfile")
    text = (DATA / "Pipfile.lock").read_text()
    (root / "Pipfile.lock").write_text(text.replace(PLACEHOLDER, index_server.base_url)
                                       .replace(PLACEHOLDER2, auth_index_server.base_url))
    monkeypatch.setenv("WHEELHOUSE_BUNDLER_HTTP_BASIC_CORP_USERNAME", AUTH[0])
    monkeypatch.setenv("WHEELHOUSE_BUNDLER_HTTP_BASIC_CORP_PASSWORD", AUTH[1])
    return root



def export(root: Path, target: str, tmp_path: Path, *args: str) -> dict:
    """Our export; the --index-url is a server that answers nothing: the lock's own
    sources serve every package."""
    out = tmp_path / f"out-{target}.txt"
    assert cli("export", root / "Pipfile.lock", "-t", target, "-o", out, "--index-url",
               NOWHERE, *args, "-q") == 0
    return pins(out.read_text(), None)


def test_export_equals_pipenv_requirements_on_each_target(project, tmp_path) -> None:
    """Differential: what pipenv's own export installs on a target is what we export."""
    for name, args in SELECTIONS.items():
        for spec in (LINUX, WIN):
            env = dict(targets.resolve((spec,), (), project=None)[0].environment)
            theirs = pins((DATA / name).read_text(), env)
            assert theirs, name  # the comparison is never between two empty sets
            assert export(project, spec, tmp_path, *args) == theirs, (name, spec)


def test_categories_markers_and_targets(project, tmp_path) -> None:
    linux = export(project, LINUX, tmp_path, "--with", "dev")
    win = export(project, WIN, tmp_path, "--with", "dev")
    # markers evaluated per target: a not-on-Windows package, a dev dependency for < 3.12
    assert {"nixonly", "devhelper"} <= linux.keys()
    assert not {"nixonly", "devhelper"} & win.keys()
    # the extra's dependency is its own entry in the lock, so it is simply there
    assert {"beta", "speedy", "corpkit", "devtool"} <= win.keys()
    # default selection: "default" only; a custom category only when asked for
    default = export(project, LINUX, tmp_path)
    assert "devtool" not in default and "linty" not in default and "alpha" in default
    assert "linty" in export(project, LINUX, tmp_path, "--with", "lint")
    assert "unused" not in linux  # on the index, not in the lock


def test_detected_in_a_project_folder_with_its_sources(project, index_server,
                                                       auth_index_server) -> None:
    default = Source("default", NOWHERE)
    lock = locks.load(project, default=default)
    assert lock.format == "pipfile" and lock.default_groups == {"main"}
    assert lock.groups == {"main", "dev", "lint"} and lock.extras == frozenset()
    by_name = {p.name: p for p in lock.packages}
    assert by_name["corpkit"].source == Source("corp", auth_index_server.url)
    assert by_name["alpha"].source == Source("testindex", index_server.url)
    # no `index`: the first source, pipenv's primary index
    assert by_name["speedy"].source == by_name["alpha"].source
    assert all(f.filename is None and len(f.sha256) == 64
               for p in lock.packages for f in p.files)


def test_bundle_and_offline_install_with_real_pip(project, index_server, auth_index_server,
                                                  tmp_path, capsys) -> None:
    """corpkit is pinned to `corp`: even an identical file on the default index is not
    asked for, so the bytes can only have come from the source the lock names."""
    corpkit = next((tmp_path / "wheels" / "corp").glob("corpkit-*.whl"))
    index_server.add(corpkit)
    out = tmp_path / "pipfile.tar"
    assert cli("bundle", project, "-t", "host", "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "--with", "dev", "-q") == 0
    capsys.readouterr()
    assert any("corpkit" in r for r in auth_index_server.requests("GET"))
    assert not any("corpkit" in r for r in index_server.requests())
    assert cli("inspect", out, "--json") == 0
    files = {p["name"]: p for p in json.loads(capsys.readouterr().out)["packages"]}
    assert set(files) == {"alpha", "beta", "corpkit", "devhelper", "devtool", "nixonly",
                          "speedy"}
    assert_installs_as_bundled(out, files, [index_server, auth_index_server], tmp_path)


# ---- malformed: exit 2, one line naming the file; unbundleable: select's table -----------

HASH = "a" * 64


def lock_doc(url: str = NOWHERE, alpha: str = HASH, **categories: dict) -> dict:
    return {
        "_meta": {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6, "requires": {},
                  "sources": [{"name": "pypi", "url": url, "verify_ssl": True}]},
        "default": {"alpha": {"hashes": [f"sha256:{alpha}"], "index": "pypi",
                              "version": "==1.0"}},
        "develop": {},
        **categories,
    }


GOOD = json.dumps(lock_doc(), indent=4, sort_keys=True) + "\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad" / "Pipfile.lock"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def fails(tmp_path: Path, text: str, capsys) -> str:
    path = write(tmp_path, text)
    assert cli("export", path, "-t", LINUX, "--index-url", NOWHERE) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    return err


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def served(index_server, wheel_factory) -> dict[str, str]:
    """alpha 1.0 and linty 0.1 on the test index: name -> sha256 (a Pipfile.lock names
    files by hash only, so even export asks the index for their names)."""
    out = {}
    for name, version in (("alpha", "1.0"), ("linty", "0.1")):
        out[name] = sha256_of(index_server.add(wheel_factory(name, version)))
    return out


def test_good_minimal_lock_reads(tmp_path, index_server, served, clean_environ,
                                 capsys) -> None:
    path = write(tmp_path, json.dumps(lock_doc(index_server.url, served["alpha"])))
    assert cli("export", path, "-t", LINUX, "--index-url", NOWHERE) == 0
    assert f"alpha==1.0 \\\n    --hash=sha256:{served['alpha']}" in capsys.readouterr().out


def test_malformed_json_names_file_and_line(tmp_path, clean_environ, capsys) -> None:
    broken = GOOD.replace('"index": "pypi",', '"index": "pypi"')
    err = fails(tmp_path, broken, capsys)
    # the parser notices the missing comma where the next key starts
    line = line_of(broken, '"version": "==1.0"')
    assert f"Pipfile.lock:{line}:" in err
    assert "invalid JSON" in err


def test_truncated_json_is_refused(tmp_path, clean_environ, capsys) -> None:
    cut = GOOD[: GOOD.index('"develop"')]
    err = fails(tmp_path, cut, capsys)
    assert "invalid JSON" in err and f"Pipfile.lock:{cut.count(chr(10)) + 1}:" in err


def test_unknown_pipfile_spec_says_which_are_read(tmp_path, clean_environ, capsys) -> None:
    err = fails(tmp_path, GOOD.replace('"pipfile-spec": 6', '"pipfile-spec": 7'), capsys)
    assert "pipfile-spec 7 is not read" in err and "reads pipfile-spec 6" in err


def refused_on(tmp_path: Path, text: str, capsys, target: str = LINUX, *args: str) -> str:
    """A lock that reads but holds a package this target needs and cannot have."""
    return export_refused(write(tmp_path, text), target, capsys, *args)


def test_package_without_hashes_is_refused(tmp_path, clean_environ, capsys) -> None:
    doc = lock_doc()
    doc["default"]["alpha"]["hashes"] = []
    text = json.dumps(doc, indent=4)
    err = refused_on(tmp_path, text, capsys)
    line = line_of(text, '"alpha": {')
    assert f"alpha ==1.0 on {LINUX}: has no sha256 hashes" in err
    assert f"(Pipfile.lock, default, line {line})" in err


def test_unpinned_version_is_refused_where_needed(tmp_path, index_server, served,
                                                   clean_environ, capsys) -> None:
    """What pipenv writes for a package its markers exclude on the locking machine: a
    Linux-made lock leaves colorama-like Windows packages at `*`. Linux and macOS bundles
    go ahead without it; a Windows target, which needs it, is refused naming it."""
    doc = lock_doc(index_server.url, served["alpha"])
    doc["default"]["wincolor"] = {"markers": "sys_platform == 'win32'", "version": "*"}
    path = write(tmp_path, json.dumps(doc, indent=4))
    for target in (LINUX, "cp311-macosx_14_0_arm64"):
        assert cli("export", path, "-t", target, "--index-url", NOWHERE) == 0
        out = capsys.readouterr().out
        assert "alpha==1.0" in out and "wincolor" not in out
    err = refused_on(tmp_path, json.dumps(doc, indent=4), capsys, WIN)
    assert (f"wincolor * on {WIN}: version '*' is not one pinned version (pipenv writes "
            "==X; `*` means pipenv could not lock it") in err


@pytest.mark.parametrize("entry, what", [
    ({"git": "https://example.com/beta.git", "ref": "0123abcd"}, "git checkout"),
    ({"path": "./beta", "editable": True}, "local path"),
    ({"file": "https://example.com/beta-1.0.tar.gz"}, "direct file URL"),
    ({"editable": True, "version": "==1.0", "hashes": [f"sha256:{HASH}"]}, "editable"),
])
def test_entries_that_are_not_index_wheels_are_refused(tmp_path, index_server, served,
                                                       clean_environ, capsys, entry,
                                                       what) -> None:
    doc = lock_doc(index_server.url, served["alpha"])
    doc["develop"]["beta"] = entry
    path = write(tmp_path, json.dumps(doc, indent=4))
    # the main group does not need beta: no refusal
    assert cli("export", path, "-t", LINUX, "--index-url", NOWHERE) == 0
    assert "alpha==1.0" in capsys.readouterr().out
    path.unlink()
    err = refused_on(tmp_path, json.dumps(doc, indent=4) + "\n", capsys, LINUX,
                     "--with", "dev")
    assert f"beta{' ==1.0' if 'version' in entry else ''} on {LINUX}: " in err
    assert what in err and "not a wheel on an index" in err
    assert "(Pipfile.lock, develop, line" in err


def test_unknown_index_name_is_refused(tmp_path, clean_environ, capsys) -> None:
    doc = lock_doc()
    doc["default"]["alpha"]["index"] = "corp"
    err = fails(tmp_path, json.dumps(doc, indent=4), capsys)
    assert "index 'corp' is not one of the lock's sources (pypi)" in err


def test_two_versions_of_one_package_are_refused(tmp_path, clean_environ, capsys) -> None:
    doc = lock_doc()
    doc["develop"]["alpha"] = {**doc["default"]["alpha"], "version": "==2.0"}
    err = fails(tmp_path, json.dumps(doc, indent=4), capsys)
    assert "alpha" in err and "at 2.0 here and at 1.0" in err


def test_package_in_an_unselected_category_is_not_bundled(tmp_path, index_server, served,
                                                          clean_environ, capsys) -> None:
    linty = {"hashes": [f"sha256:{served['linty']}"], "version": "==0.1"}
    path = write(tmp_path, json.dumps(lock_doc(index_server.url, served["alpha"],
                                               lint={"linty": linty}), indent=4))
    assert cli("export", path, "-t", LINUX, "--index-url", NOWHERE, "--with", "dev") == 0
    out = capsys.readouterr().out
    assert "alpha==1.0" in out and "linty" not in out
    assert cli("export", path, "-t", LINUX, "--index-url", NOWHERE, "--only", "lint") == 0
    out = capsys.readouterr().out
    assert "linty==0.1" in out and "alpha" not in out


def test_same_package_in_two_categories_is_one_package(tmp_path, clean_environ) -> None:
    doc = lock_doc()
    doc["develop"]["alpha"] = {**doc["default"]["alpha"], "markers": "os_name == 'nt'"}
    lock = locks.load(write(tmp_path, json.dumps(doc)), default=Source("d", NOWHERE))
    (alpha,) = lock.packages
    assert [c.group for c in alpha.when] == ["main", "dev"]


def test_source_url_variables_come_from_the_environment(tmp_path, clean_environ,
                                                        monkeypatch) -> None:
    doc = lock_doc()
    doc["_meta"]["sources"][0]["url"] = "http://${WHB_TEST_USER}:pw@127.0.0.1:9/simple"
    path = write(tmp_path, json.dumps(doc))
    monkeypatch.setenv("WHB_TEST_USER", "carol")
    lock = locks.load(path, default=Source("d", NOWHERE))
    assert lock.packages[0].source == Source("pypi", "http://carol:pw@127.0.0.1:9/simple/")
    monkeypatch.delenv("WHB_TEST_USER")
    with pytest.raises(Exception, match=r"\$\{WHB_TEST_USER\}, which is not set"):
        locks.load(path, default=Source("d", NOWHERE))
