"""pylock.toml (PEP 751): read into our Lock, checked against independent readers.

tests/data/locks/pylock/pylock.toml was written by the real `pip lock` (pip 26) against the
test index (scripts/regen-lock-fixtures --pylock), the server address replaced by
http://127.0.0.1:PORT/. The wheels are rebuilt here byte for byte from wheels.json.

pip has no export command, so the oracles are the two other readers of the standard:
packaging.pylock's `Pylock.select` (the reference selection algorithm of PEP 751,
which takes a target's environment and tags, so it answers for any target) and pip
itself installing from the lock (`pip install --dry-run --report -r pylock.toml`, which
answers for the host only). Our selection shares only marker evaluation with them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from lockfixtures import serve_fixture_wheels
from packaging.pylock import Pylock
from packaging.utils import parse_wheel_filename
from refusals import export_ok, export_refused
from reqpins import pins
from venvs import clean_env, pip_freeze
from wheelfactory import sha256_of

from wheelhouse_bundler import locks, select, targets
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.model import Source

DATA = Path(__file__).parent / "data" / "locks" / "pylock"
PLACEHOLDER = "http://127.0.0.1:PORT/"
LINUX = "cp311-manylinux_2_28_x86_64"
WIN = "cp312-win_amd64"
NOWHERE = "http://127.0.0.1:9/simple/"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def target(spec: str):
    return targets.resolve((spec,), (), project=None)[0]


def oracle(lock_path: Path, spec: str, *, extras: tuple[str, ...] = (),
           groups: tuple[str, ...] | None = None) -> dict[str, tuple[str, frozenset[str]]]:
    """What packaging.pylock selects for a target: name -> (version, the hashes of the
    package's wheels that install there)."""
    t = target(spec)
    lock = Pylock.from_dict(tomllib.loads(lock_path.read_text()))
    out = {}
    for package, wheel in lock.select(environment=dict(t.environment), tags=t.tags,  # type: ignore[arg-type]
                                      extras=extras, dependency_groups=groups):
        usable = {w.hashes["sha256"] for w in package.wheels or ()
                  if parse_wheel_filename(w.filename)[3] & set(t.tags)}
        assert wheel.hashes["sha256"] in usable  # type: ignore[union-attr]
        out[package.name] = (str(package.version), frozenset(usable))
    return out


def export(lock: Path, spec: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"out-{spec}.txt"
    assert cli("export", lock, "-t", spec, "-o", out, "--index-url", NOWHERE, *args,
               "-q") == 0
    return pins(out.read_text(), None)


@pytest.fixture
def project(tmp_path: Path, index_server, clean_environ) -> Path:
    """The fixture project with its real pip-written pylock.toml, served by the test index."""
    serve_fixture_wheels(DATA / "wheels.json", tmp_path / "wheels", index_server)
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(DATA / "pyproject.toml", root / "pyproject.toml")
    (root / "pylock.toml").write_text(
        (DATA / "pylock.toml").read_text().replace(PLACEHOLDER, index_server.base_url))
    return root


# ---- the lock pip wrote -----------------------------------------------------------------

def test_export_equals_pylock_select_on_two_targets(project, tmp_path) -> None:
    """Differential: what the PEP 751 reference selection installs is what we export."""
    for spec in (LINUX, WIN):
        theirs = oracle(project / "pylock.toml", spec)
        assert export(project / "pylock.toml", spec, tmp_path) == theirs, spec
    # pip resolved markers and the extra at lock time, on this (Linux) box: the lock holds
    # what it chose, nothing else.
    assert set(theirs) == {"alpha", "beta", "deep", "linuxonly", "yamlish"}


def test_detected_in_a_project_folder_with_recorded_urls(project, index_server) -> None:
    lock = locks.load(project, default=Source("default", NOWHERE))
    assert lock.format == "pylock" and lock.groups == set() and lock.extras == set()
    alpha = next(p for p in lock.packages if p.name == "alpha")
    assert alpha.files[0].url == index_server.file_url("alpha-1.0-py3-none-any.whl")
    served = sha256_of(index_server.root / "alpha-1.0-py3-none-any.whl")
    assert alpha.files[0].sha256 == served


def test_bundle_and_offline_install_with_real_pip(project, index_server, tmp_path,
                                                  capsys) -> None:
    """pip itself, reading the lock for this host, is the oracle of what gets installed;
    the bundle then installs exactly that with the index gone."""
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "--isolated", "install", "--dry-run",
                    "--ignore-installed", "--quiet", "--report", str(report),
                    "-r", str(project / "pylock.toml")],
                   env=clean_env(PIP_CONFIG_FILE=os.devnull), check=True,
                   capture_output=True, text=True)
    pip_says = {i["metadata"]["name"]: (i["metadata"]["version"],
                                        i["download_info"]["archive_info"]["hashes"]["sha256"])
                for i in json.loads(report.read_text())["install"]}
    out = tmp_path / "pylock.tar"
    assert cli("bundle", project, "-t", "host", "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "--no-own", "-q") == 0
    capsys.readouterr()
    assert cli("inspect", out, "--json") == 0
    files = {p["name"]: (p["version"], p["sha256"])
             for p in json.loads(capsys.readouterr().out)["packages"]}
    assert files == pip_says
    index_server.stop()
    venv = tmp_path / "target" / "venv"
    assert cli("install", out, "--venv", venv, "--no-smoke", "-q") == 0
    got = pip_freeze(venv / "bin" / "python")
    assert got == {n: v for n, (v, _) in pip_says.items()}


# ---- a hand-written lock: markers on extras and dependency groups -----------------------

def _h(c: str) -> str:
    return c * 64


def _pkg(name: str, version: str, marker: str | None = None, *, tags: tuple[str, ...] = (
        "py3-none-any",), extra: str = "") -> str:
    lines = ["[[packages]]", f'name = "{name}"', f'version = "{version}"']
    if marker:
        lines.append(f'marker = "{marker}"')
    lines.append(extra.strip()) if extra else None
    for i, tag in enumerate(tags):
        fn = f"{name}-{version}-{tag}.whl"
        lines += ["[[packages.wheels]]", f'url = "http://127.0.0.1:9/p/{fn}"',
                  f'hashes = {{ sha256 = "{_h("0123456789abcdef"[(len(name) + i) % 16])}" }}']
    return "\n".join(lines) + "\n"


NATIVE = ("cp311-cp311-manylinux_2_17_x86_64", "cp312-cp312-win_amd64")
HAND = (
    'lock-version = "1.0"\n'
    'created-by = "hand"\n'
    'requires-python = ">=3.10"\n'
    "environments = [\"sys_platform == 'linux'\", \"sys_platform == 'win32'\"]\n"
    'extras = ["yaml"]\n'
    'dependency-groups = ["dev", "lint"]\n'
    'default-groups = ["default"]\n\n'
    + _pkg("alpha", "1.0")
    + _pkg("beta", "2.0", "'default' in dependency_groups")
    + _pkg("winonly", "1.0", "sys_platform == 'win32' and 'default' in dependency_groups")
    + _pkg("yamlish", "4.0", "'yaml' in extras")
    + _pkg("devtool", "3.0", "'dev' in dependency_groups")
    + _pkg("linty", "0.1", "'lint' in dependency_groups")
    + _pkg("native", "1.0", "'default' in dependency_groups", tags=NATIVE,
           extra=f'sdist = {{ url = "http://127.0.0.1:9/p/native-1.0.tar.gz", '
                 f'hashes = {{ sha256 = "{_h("9")}" }} }}')
)
# our options -> the same selection for Pylock.select (groups None: its defaults)
SELECTIONS = [
    ((), {}),
    (("--with", "dev"), {"groups": ("default", "dev")}),
    (("--only", "lint"), {"groups": ("lint",)}),
    (("-E", "yaml", "--without", "default"), {"extras": ("yaml",), "groups": ()}),
]


@pytest.fixture
def hand(tmp_path: Path) -> Path:
    path = tmp_path / "hand" / "pylock.toml"
    path.parent.mkdir()
    path.write_text(HAND)
    return path


@pytest.mark.parametrize("ours, theirs", SELECTIONS)
def test_extras_and_groups_select_as_pylock_select_does(hand, tmp_path, clean_environ,
                                                        ours, theirs) -> None:
    for spec in (LINUX, WIN):
        assert export(hand, spec, tmp_path, *ours) == oracle(hand, spec, **theirs), (ours,
                                                                                     spec)


def test_markers_pick_per_target_group_and_extra(hand, tmp_path, clean_environ) -> None:
    lock = locks.load(hand, default=Source("d", NOWHERE))
    assert lock.groups == {"default", "dev", "lint"} and lock.default_groups == {"default"}
    assert lock.extras == {"yaml"}
    linux = export(hand, LINUX, tmp_path)
    assert set(linux) == {"alpha", "beta", "native"}
    assert set(export(hand, WIN, tmp_path)) == {"alpha", "beta", "native", "winonly"}
    assert set(export(hand, LINUX, tmp_path, "--with", "dev", "-E", "yaml")) == {
        "alpha", "beta", "native", "devtool", "yamlish"}
    assert set(export(hand, LINUX, tmp_path, "--only", "lint")) == {"alpha", "linty"}
    # the sdist is kept beside the wheels, but where a wheel fits it is the one choice
    native = next(p for p in lock.packages if p.name == "native")
    assert [f.filename for f in native.files] == [
        *(f"native-1.0-{t}.whl" for t in NATIVE), "native-1.0.tar.gz"]
    plan = select.plan(lock, [target(LINUX)], lock.default_groups, frozenset())[0]
    pick = next(p for p in plan.picks if p.package.name == "native")
    assert linux["native"][1] == {pick.file.sha256} and pick.file.filename.endswith(
        "manylinux_2_17_x86_64.whl")


def _fails(path: Path, capsys, *args: str) -> str:
    assert cli("export", path, "--index-url", NOWHERE, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    return err


def test_target_outside_environments_is_refused(hand, clean_environ, capsys) -> None:
    err = _fails(hand, capsys, "-t", "cp311-macosx_14_0_arm64")
    assert "outside every environment the lock supports" in err


def test_target_outside_requires_python_is_refused(hand, clean_environ, capsys) -> None:
    err = _fails(hand, capsys, "-t", "cp39-manylinux_2_28_x86_64")
    assert "requires-python >=3.10" in err and "3.9" in err


def test_package_requires_python_is_checked_when_selected(hand, clean_environ,
                                                          capsys) -> None:
    hand.write_text(HAND + _pkg("oldpy", "1.0", extra='requires-python = "<3.12"'))
    assert cli("export", hand, "-t", LINUX, "--index-url", NOWHERE) == 0
    assert "oldpy==1.0" in capsys.readouterr().out
    assert cli("export", hand, "-t", WIN, "--index-url", NOWHERE) == 2
    assert "oldpy==1.0 on cp312-win_amd64: needs Python <3.12" in capsys.readouterr().err


def test_missing_wheel_table_lists_wheels_and_the_sdist(hand, clean_environ, capsys) -> None:
    assert cli("export", hand, "-t", "cp311-manylinux_2_28_aarch64", "--no-build",
               "--index-url", NOWHERE) == 2
    err = capsys.readouterr().err
    assert ("  native==1.0 on cp311-manylinux_2_28_aarch64: no wheel for this target; "
            "wheels: cp311 on manylinux_2_17+ x86_64; cp312 on win_amd64; also an sdist "
            "(not built: --no-build)") in err.splitlines()


def test_an_sdist_only_package_is_kept_for_the_build_box(tmp_path, clean_environ,
                                                         capsys) -> None:
    """Its sdist is what the bundle builds a wheel from; a connected pip's export gets
    the sdist's hash; without a sha256 it is refused like a wheel without one."""
    sdist = ('sdist = { url = "http://127.0.0.1:9/p/solo-1.0.tar.gz", '
             'hashes = { sha256 = "%s" } }')
    path = tmp_path / "pylock.toml"
    path.write_text(HAND + '[[packages]]\nname = "solo"\nversion = "1.0"\n'
                    + sdist % _h("a") + "\n")
    assert cli("export", path, "-t", LINUX, "--index-url", NOWHERE) == 0
    assert f"solo==1.0 \\\n    --hash=sha256:{_h('a')}" in capsys.readouterr().out
    path.write_text(HAND + '[[packages]]\nname = "solo"\nversion = "1.0"\n'
                    + sdist.replace("sha256", "md5") % ("a" * 32) + "\n")
    err = _refused(tmp_path, path.read_text(), capsys)
    assert "solo 1.0 on " in err and "solo-1.0.tar.gz has no sha256 hash" in err


def test_overlapping_markers_are_refused(hand, clean_environ, capsys) -> None:
    hand.write_text(HAND + _pkg("alpha", "2.0", "sys_platform == 'win32'"))
    assert cli("export", hand, "-t", LINUX, "--index-url", NOWHERE) == 0
    assert "alpha==1.0" in capsys.readouterr().out
    err = _fails(hand, capsys, "-t", WIN)
    assert "alpha is needed twice on cp312-win_amd64 (1.0 and 2.0)" in err


def test_package_no_selected_group_needs_is_not_bundled(hand, tmp_path,
                                                        clean_environ) -> None:
    hand.write_text(HAND + _pkg("orphan", "1.0", "'docs' in dependency_groups"))
    got = export(hand, LINUX, tmp_path, "--with", "dev", "--with", "lint", "-E", "yaml")
    assert "devtool" in got and "orphan" not in got


def test_named_lock_and_newer_minor_version(tmp_path, clean_environ, capsys) -> None:
    path = tmp_path / "pylock.dev.toml"
    path.write_text(HAND.replace('lock-version = "1.0"', 'lock-version = "1.3"'))
    assert cli("export", tmp_path, "-t", LINUX, "--index-url", NOWHERE) == 0
    out = capsys.readouterr()
    assert "alpha==1.0" in out.out
    assert out.err.splitlines() == [
        f"warning: {path}: lock-version 1.3 is newer than 1.0; reading it as 1.0"]
    # the one output path: -q silences the warning like every other human line
    assert cli("export", tmp_path, "-t", LINUX, "--index-url", NOWHERE, "-q") == 0
    assert capsys.readouterr().err == ""


# ---- malformed: exit 2, one line naming the file; unbundleable: select's table -----------

def _bad(tmp_path: Path, text: str, capsys) -> str:
    path = tmp_path / "bad" / "pylock.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return _fails(path, capsys, "-t", LINUX)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_truncated_lock_names_file_and_line(tmp_path, clean_environ, capsys) -> None:
    cut = HAND[: HAND.index('hashes = { sha256 = "', HAND.index('"yamlish"')) + 30]
    err = _bad(tmp_path, cut, capsys)
    assert "invalid TOML" in err and f"pylock.toml:{cut.count(chr(10)) + 1}:" in err


def test_malformed_lock_names_file_and_line(tmp_path, clean_environ, capsys) -> None:
    broken = HAND.replace('name = "devtool"', 'name = "devtool')
    err = _bad(tmp_path, broken, capsys)
    assert f"pylock.toml:{_line_of(broken, 'name = ' + chr(34) + 'devtool')}:" in err


@pytest.mark.parametrize("version", ['"2.0"', '"0.9"', "1", '"one"'])
def test_unknown_lock_version_says_which_are_read(tmp_path, clean_environ, capsys,
                                                  version) -> None:
    err = _bad(tmp_path, HAND.replace('lock-version = "1.0"', f"lock-version = {version}"),
               capsys)
    assert "is not read" in err and "reads lock-version 1.0" in err


def _refused(tmp_path: Path, text: str, capsys, target: str = LINUX) -> str:
    path = tmp_path / "bad" / "pylock.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return export_refused(path, target, capsys)


def test_wheel_without_sha256_is_refused_at_its_package(tmp_path, clean_environ,
                                                        capsys) -> None:
    """linty's wheel has only an md5: refused where linty is needed (the lint group)."""
    url = 'url = "http://127.0.0.1:9/p/linty-0.1-py3-none-any.whl"\n'
    text = HAND.replace(url + "hashes = { sha256 = ", url + "hashes = { md5 = ")
    assert text != HAND
    path = tmp_path / "pylock.toml"
    path.write_text(text)
    assert "linty" not in export_ok(path, LINUX, capsys)
    err = export_refused(path, LINUX, capsys, "--only", "lint")
    header = _line_of(text, 'name = "linty"') - 1
    assert (f"linty 0.1 on {LINUX}: linty-0.1-py3-none-any.whl has no sha256 hash (hashes "
            f"are the point: lock again with hashes) (pylock.toml, line {header})") in err


def test_wheel_without_hashes_breaks_the_whole_lock(tmp_path, clean_environ, capsys) -> None:
    """PEP 751 requires `hashes`: without them the lock is malformed, for every target."""
    url = 'url = "http://127.0.0.1:9/p/linty-0.1-py3-none-any.whl"\n'
    start = HAND.index(url) + len(url)
    text = HAND[:start] + HAND[HAND.index("\n", start) + 1:]
    err = _bad(tmp_path, text, capsys)
    header = _line_of(text, 'name = "linty"') - 1
    assert (f"pylock.toml:{header}: package linty==0.1: http://127.0.0.1:9/p/linty-0.1-py3-"
            "none-any.whl has no sha256 hash") in err


@pytest.mark.parametrize("source, what", [
    ('archive = { url = "http://127.0.0.1:9/p/solo.zip", hashes = { sha256 = "%s" } }',
     "comes from an archive (http://127.0.0.1:9/p/solo.zip), not a wheel on an index"),
    ('vcs = { type = "git", url = "https://example.com/solo.git", commit-id = "abc%s" }',
     "comes from a git checkout (https://example.com/solo.git), not a wheel on an index"),
    ('directory = { path = "../solo" }',
     "comes from a local folder (../solo), not a wheel on an index"),
])
def test_sources_that_are_not_wheels_are_refused(tmp_path, clean_environ, capsys, source,
                                                 what) -> None:
    entry = '[[packages]]\nname = "solo"\n' + ('version = "1.0"\n' if "sdist" in source
                                              else "") + source.replace("%s", _h("a")) + "\n"
    text = HAND + entry
    err = _refused(tmp_path, text, capsys)
    header = _line_of(text, 'name = "solo"') - 1
    name = "solo 1.0" if "sdist" in source else "solo"
    assert f"{name} on {LINUX}: {what}" in err and f"(pylock.toml, line {header})" in err


def test_git_package_is_refused_only_where_its_marker_holds(tmp_path, clean_environ,
                                                            capsys) -> None:
    """A win32-only vcs package: Linux bundles without it, Windows is refused naming it."""
    path = tmp_path / "pylock.toml"
    path.write_text(HAND + '[[packages]]\nname = "wincolor"\nversion = "0.4.6"\n'
                    'marker = "sys_platform == \'win32\'"\nvcs = { type = "git", url = '
                    '"https://example.com/wincolor.git", commit-id = "0123abcd" }\n')
    out = export_ok(path, LINUX, capsys)
    assert "alpha==1.0" in out and "wincolor" not in out
    err = export_refused(path, WIN, capsys)
    assert "1 package(s)" in err
    assert (f"wincolor 0.4.6 on {WIN}: comes from a git checkout "
            "(https://example.com/wincolor.git), not a wheel on an index") in err


def test_invalid_lock_is_refused_at_its_package(tmp_path, clean_environ, capsys) -> None:
    text = HAND.replace('name = "devtool"', 'name = "DevTool"')
    err = _bad(tmp_path, text, capsys)
    assert "not a valid PEP 751 lock" in err and "DevTool" in err
    assert f"pylock.toml:{_line_of(text, 'DevTool') - 1}:" in err


def test_index_pins_the_source_and_path_wheels_are_found_by_hash(tmp_path) -> None:
    """`index` is the only place a package's files may be looked up; a wheel given by
    `path` alone has no URL of ours, so it is located on that index by its sha256."""
    path = tmp_path / "pylock.toml"
    path.write_text(HAND.replace(
        'name = "alpha"\nversion = "1.0"\n',
        'name = "alpha"\nversion = "1.0"\nindex = "http://127.0.0.1:9/corp/simple"\n').replace(
        'url = "http://127.0.0.1:9/p/alpha-1.0-py3-none-any.whl"',
        'path = "wheels/alpha-1.0-py3-none-any.whl"'))
    lock = locks.load(path, default=Source("d", NOWHERE))
    alpha = next(p for p in lock.packages if p.name == "alpha")
    beta = next(p for p in lock.packages if p.name == "beta")
    corp = "http://127.0.0.1:9/corp/simple/"
    assert alpha.source == Source(corp, corp) and beta.source == Source("d", NOWHERE)
    assert [(f.filename, f.url) for f in alpha.files] == [("alpha-1.0-py3-none-any.whl", None)]
