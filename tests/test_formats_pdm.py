"""pdm.lock: groups and markers per package, checked against pdm's own export.

tests/data/locks/pdm/ holds a pdm.lock (two Python targets, every group locked), a
static_urls lock (pdm-static.lock, one target) and `pdm export` outputs, all written by
the real pdm 2.24.2 (scripts/regen-lock-fixtures --pdm) against the test index, with the
server address replaced by http://127.0.0.1:PORT/. The wheels are rebuilt here byte for
byte from wheels.json, so the hashes in those files are the hashes this test serves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lockfixtures import assert_installs_as_bundled, serve_fixture_wheels
from refusals import export_ok, export_refused
from reqpins import pins

from wheelhouse_bundler import locks, targets
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.model import Source

DATA = Path(__file__).parent / "data" / "locks" / "pdm"
PLACEHOLDER = "http://127.0.0.1:PORT/"
NO_INDEX = "http://127.0.0.1:9/simple/"  # export needs no index: every file is named
NOWHERE = "http://127.0.0.1:9/"  # stands for the server where a test needs no files
LINUX = "cp311-manylinux_2_28_x86_64"
WIN = "cp312-win_amd64"
WIN311 = "cp311-win_amd64"
# pdm export file -> (lock, our options for the same selection, targets to compare on)
SELECTIONS = {
    "export-default.txt": ("pdm.lock", [], (LINUX, WIN)),
    "export-dev.txt": ("pdm.lock", ["--without", "lint"], (LINUX, WIN)),
    "export-yaml.txt": ("pdm.lock", ["--only", "main", "-E", "yaml"], (LINUX, WIN)),
    "export-prod.txt": ("pdm.lock", ["--only", "main"], (LINUX, WIN)),
    "export-static.txt": ("pdm-static.lock", ["--format", "pdm"], (LINUX, WIN311)),
}


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def copy_project(root: Path, address: str = NOWHERE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "pdm.lock", "pdm-static.lock"):
        (root / name).write_text((DATA / name).read_text().replace(PLACEHOLDER, address))
    return root



def export(lock: Path, target: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"out-{target}.txt"
    assert cli("export", lock, "-t", target, "-o", out, "--index-url", NO_INDEX, *args,
               "-q") == 0
    return pins(out.read_text(), None)


@pytest.fixture
def project(tmp_path: Path, clean_environ) -> Path:
    return copy_project(tmp_path / "project")


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_export_equals_pdm_export_on_each_target(project, tmp_path, name) -> None:
    """Differential: what pdm's own export installs on a target is what we export."""
    lock, args, specs = SELECTIONS[name]
    for spec in specs:
        env = dict(targets.resolve((spec,), (), project=None)[0].environment)
        theirs = pins((DATA / name).read_text(), env)
        ours = export(project / lock, spec, tmp_path, *args)
        assert ours == theirs, (name, spec)


def test_markers_groups_extras_and_forks_per_target(project, tmp_path) -> None:
    linux = export(project / "pdm.lock", LINUX, tmp_path)
    win = export(project / "pdm.lock", WIN, tmp_path)
    # package markers: a transitive linux-only dependency, a windows-only one with 2 wheels
    assert "penguin" in linux and "penguin" not in win
    assert "winonly" in win and "winonly" not in linux and len(win["winonly"][1]) == 2
    # two targets in one lock: each Python gets its own version
    assert linux["forky"][0] == "1.0" and win["forky"][0] == "2.0"
    assert "oldpy" in linux and "oldpy" not in win
    # gamma[speed]: pdm's second entry for the extra is the same package (pins() refuses
    # a name twice) and pulls in the extra's dependency
    assert linux["gamma"][0] == "1.2" and "speedy" in linux
    # pdm's defaults: the default group and every dev group, no optional group
    assert {"devtool", "devhelper", "linty"} <= linux.keys() and "yamlish" not in linux
    # a package needed by default on win32 only, but by dev always: pdm merges the
    # markers, so it is in wherever either group is selected
    assert "shared" in linux
    only_main = export(project / "pdm.lock", LINUX, tmp_path, "--only", "main")
    assert not {"devtool", "devhelper", "linty", "yamlish", "deep"} & only_main.keys()
    # an optional-dependency group is an extra, and (as pdm calls it) a group too
    as_extra = export(project / "pdm.lock", LINUX, tmp_path, "-E", "yaml")
    as_group = export(project / "pdm.lock", LINUX, tmp_path, "--with", "yaml")
    assert {"yamlish", "deep"} <= as_extra.keys() and as_extra == as_group


def test_reads_groups_targets_and_static_urls(project) -> None:
    default = Source("default", NO_INDEX)
    lock = locks.load(project, default=default)
    assert lock.format == "pdm" and lock.path.name == "pdm.lock"
    assert lock.groups == {"main", "dev", "lint", "yaml"} and lock.extras == {"yaml"}
    assert lock.default_groups == {"main", "dev", "lint"}
    assert lock.support is not None
    assert [str(m) for m in lock.support.environments] == ['python_full_version == "3.11.*"',
                                                   'python_full_version >= "3.12"']
    assert {p.name for p in lock.packages} == {
        "alpha", "beta", "deep", "devhelper", "devtool", "forky", "gamma", "linty", "oldpy",
        "penguin", "shared", "speedy", "winonly", "yamlish"}
    assert all(p.source == default and f.url is None for p in lock.packages for f in p.files)
    static = locks.load(project / "pdm-static.lock", fmt="pdm", default=default)
    alpha = next(p for p in static.packages if p.name == "alpha")
    assert alpha.files[0].url == f"{NOWHERE}packages/alpha-1.0-py3-none-any.whl"
    assert alpha.files[0].filename == "alpha-1.0-py3-none-any.whl"


def test_without_pyproject_every_group_is_a_group(project) -> None:
    (project / "pyproject.toml").unlink()
    lock = locks.load(project / "pdm.lock", default=Source("d", NO_INDEX))
    assert lock.default_groups == {"main"} and lock.extras == frozenset()
    assert lock.groups == {"main", "dev", "lint", "yaml"}


def test_target_outside_the_locked_targets_is_refused(project, capsys) -> None:
    lock = project / "pdm-static.lock"  # locked for Python 3.11 only
    assert cli("export", lock, "--format", "pdm", "-t", WIN, "--index-url", NO_INDEX) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "target cp312-win_amd64 is outside" in err and "3.11.*" in err
    assert cli("export", project / "pdm.lock", "-t", "cp310-manylinux_2_28_x86_64",
               "--index-url", NO_INDEX) == 2
    assert "cp310-manylinux_2_28_x86_64" in capsys.readouterr().err


def test_bundle_and_offline_install_with_real_pip(tmp_path, index_server, clean_environ,
                                                  capsys) -> None:
    serve_fixture_wheels(DATA / "wheels.json", tmp_path / "wheels", index_server)
    root = copy_project(tmp_path / "project", index_server.base_url)
    out = tmp_path / "pdm.tar"
    assert cli("bundle", root, "-t", "host", "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-E", "yaml", "--without", "lint",
               "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert cli("inspect", out, "--json") == 0
    files = {p["name"]: p for p in json.loads(capsys.readouterr().out)["packages"]}
    host = targets.resolve(("host",), (), project=None)[0].environment
    expected = {"alpha", "beta", "deep", "devhelper", "devtool", "forky", "gamma", "shared",
                "speedy", "yamlish"}
    expected |= {"oldpy"} if host["python_version"] == "3.11" else set()
    expected |= {"penguin"} if host["sys_platform"] == "linux" else set()
    assert set(files) == expected and summary["files"] == len(files)
    assert files["forky"]["version"] == ("1.0" if host["python_version"] == "3.11" else "2.0")
    assert_installs_as_bundled(out, files, [index_server], tmp_path)


# ---- malformed: exit 2, one line naming the file; unbundleable: select's table -----------

HASH = "a" * 64
GOOD = f'''# This file is @generated by PDM.

[metadata]
groups = ["default", "docs"]
strategy = ["inherit_metadata"]
lock_version = "4.5.0"
content_hash = "sha256:{"c" * 64}"

[[metadata.targets]]
requires_python = ">=3.9"

[[package]]
name = "alpha"
version = "1.0"
summary = ""
groups = ["default"]
files = [
    {{file = "alpha-1.0-py3-none-any.whl", hash = "sha256:{HASH}"}},
]

[[package]]
name = "orphan"
version = "1.0"
summary = ""
groups = ["docs"]
files = [
    {{file = "orphan-1.0-py3-none-any.whl", hash = "sha256:{"b" * 64}"}},
]
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad" / "pdm.lock"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def fails(tmp_path: Path, text: str, capsys) -> str:
    path = write(tmp_path, text)
    assert cli("export", path, "-t", LINUX, "--index-url", NO_INDEX) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    return err


def test_good_minimal_lock_reads_and_skips_unselected_groups(tmp_path, clean_environ,
                                                             capsys) -> None:
    """`orphan` is only in the docs group: not exported (nor bundled, see the end-to-end
    test's lint group) unless docs is selected."""
    path = write(tmp_path, GOOD)
    assert cli("export", path, "-t", LINUX, "--index-url", NO_INDEX) == 0
    out = capsys.readouterr().out
    assert f"alpha==1.0 \\\n    --hash=sha256:{HASH}" in out and "orphan" not in out
    assert cli("export", path, "-t", LINUX, "--index-url", NO_INDEX, "--with", "docs") == 0
    assert "orphan==1.0" in capsys.readouterr().out


def test_malformed_lock_names_file_and_line(tmp_path, clean_environ, capsys) -> None:
    broken = GOOD.replace('name = "orphan"', 'name = "orphan')
    err = fails(tmp_path, broken, capsys)
    line = broken.splitlines().index('name = "orphan') + 1
    assert f"pdm.lock:{line}:" in err and "invalid TOML" in err


def test_truncated_lock_names_file_and_line(tmp_path, clean_environ, capsys) -> None:
    cut = GOOD[: GOOD.index('{file = "orphan') + 12]
    err = fails(tmp_path, cut, capsys)
    assert f"pdm.lock:{cut.count(chr(10)) + 1}:" in err and "invalid TOML" in err


def test_unknown_lock_version_says_which_are_read(tmp_path, clean_environ, capsys) -> None:
    err = fails(tmp_path, GOOD.replace('"4.5.0"', '"3.1.0"'), capsys)
    assert "lock_version 3.1.0 is not read" in err and "4.4.x, 4.5.x" in err


def test_lock_version_4_4_reads_and_keeps_its_python_range(tmp_path, clean_environ,
                                                           capsys) -> None:
    old = GOOD.replace('"4.5.0"', '"4.4.3"').replace(
        '[[metadata.targets]]\nrequires_python = ">=3.9"', 'requires_python = ">=3.12"')
    assert "[[metadata.targets]]" not in old
    path = write(tmp_path, old)
    assert cli("export", path, "-t", WIN, "--index-url", NO_INDEX) == 0
    assert "alpha==1.0" in capsys.readouterr().out
    assert cli("export", path, "-t", LINUX, "--index-url", NO_INDEX) == 2
    err = capsys.readouterr().err
    assert "target cp311-manylinux_2_28_x86_64 has Python 3.11.0" in err and ">=3.12" in err


def test_lock_without_inherit_metadata_is_refused(tmp_path, clean_environ, capsys) -> None:
    err = fails(tmp_path, GOOD.replace('["inherit_metadata"]', '["cross_platform"]'), capsys)
    assert "pdm lock --strategy inherit_metadata" in err


def test_file_without_hash_is_refused(tmp_path, clean_environ, capsys) -> None:
    err = export_refused(write(tmp_path, GOOD.replace(f', hash = "sha256:{HASH}"', "")),
                         LINUX, capsys)
    assert (f"alpha 1.0 on {LINUX}: file 'alpha-1.0-py3-none-any.whl' has no sha256 hash "
            "(hashes are the lock; re-run `pdm lock`, or pass --allow-unhashed)") in err


@pytest.mark.parametrize("keys, what", [
    ('git = "https://example.com/alpha.git"\nrevision = "0123abcd"',
     "a git checkout (https://example.com/alpha.git)"),
    ('path = "./vendor/alpha"', "a local path (./vendor/alpha)"),
    ('url = "https://example.com/alpha-1.0.tar.gz"',
     "a direct URL that is not a wheel (https://example.com/alpha-1.0.tar.gz)"),
])
def test_packages_that_are_not_index_wheels_are_refused(tmp_path, clean_environ, capsys,
                                                        keys, what) -> None:
    text = GOOD.replace('version = "1.0"\nsummary = ""\ngroups = ["default"]',
                        f'version = "1.0"\n{keys}\ngroups = ["default"]')
    if "tar.gz" in keys:
        text = text.replace('file = "alpha-1.0-py3-none-any.whl"', 'file = "alpha-1.0.tar.gz"')
    else:
        text = text.replace(f'    {{file = "alpha-1.0-py3-none-any.whl", hash = "sha256:'
                            f'{HASH}"}},\n', "")
    err = export_refused(write(tmp_path, text), LINUX, capsys)
    assert (f"alpha 1.0 on {LINUX}: comes from {what}, not a wheel on an index; build it "
            "into a wheel, publish it on an index and lock that (or bundle your own "
            "project's wheel with --dist)") in err


WINCOLOR = '''
[[package]]
name = "wincolor"
version = "0.4.6"
git = "https://example.com/wincolor.git"
revision = "0123abcd"
summary = ""
groups = ["default"]
marker = "sys_platform == 'win32'"
'''


def test_git_package_is_refused_only_where_its_marker_and_group_hold(
        tmp_path, clean_environ, capsys) -> None:
    """wincolor (win32 only) and orphan (docs only) come from git checkouts: Linux with
    the default groups goes ahead without either; Windows is refused naming wincolor,
    and selecting docs names orphan."""
    text = GOOD.replace('name = "orphan"\nversion = "1.0"\n',
                        'name = "orphan"\nversion = "1.0"\n'
                        'git = "https://example.com/orphan.git"\n') + WINCOLOR
    path = write(tmp_path, text)
    out = export_ok(path, LINUX, capsys)
    assert "alpha==1.0" in out and "wincolor" not in out and "orphan" not in out
    err = export_refused(path, WIN, capsys)
    assert "1 package(s)" in err
    assert (f"wincolor 0.4.6 on {WIN}: comes from a git checkout "
            "(https://example.com/wincolor.git), not a wheel on an index") in err
    err = export_refused(path, LINUX, capsys, "--with", "docs")
    assert "1 package(s)" in err
    assert (f"orphan 1.0 on {LINUX}: comes from a git checkout "
            "(https://example.com/orphan.git), not a wheel on an index") in err


def test_direct_wheel_url_is_fetched_from_there(tmp_path, clean_environ) -> None:
    url = "https://example.com/dl/alpha-1.0-py3-none-any.whl"
    text = GOOD.replace('version = "1.0"\nsummary = ""\ngroups = ["default"]',
                        f'version = "1.0"\nurl = "{url}"\ngroups = ["default"]')
    lock = locks.load(write(tmp_path, text), default=Source("d", NO_INDEX))
    alpha = next(p for p in lock.packages if p.name == "alpha")
    assert alpha.files[0].url == url and alpha.files[0].sha256 == HASH
