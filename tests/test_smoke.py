"""The default smoke check on wheels in the shapes real packages have.

Its rule (README, "What install does"): load the root distributions through the modules their
RECORD installs; ImportError or SyntaxError refuses, an exception raised by code that loaded
is a warning. These tests hold both halves: healthy installs with odd metadata pass, broken
ones still fail, through the tool's `install` and through the bundle's own `install.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import venvs
from bundles import make_bundle
from clirun import run_cli
from indexserver import IndexServer
from wheelfactory import build_wheel

SO = b"\x7fELF not really a shared object"


def healthy_wheels(dest: Path) -> list[Path]:
    """One wheel per shape that the old check (import every top_level.txt name) refused."""
    return [
        # cffi style: top_level.txt names a private extension module that lives inside the
        # package; and the import name (saltbox) is not the project name (PySaltbox).
        build_wheel(dest, "PySaltbox", "1.0", with_package=False, extra_files={
            "saltbox/__init__.py": b"from saltbox import _sodium_glue\n",
            "saltbox/_sodium_glue.py": b"",
            "saltbox/_sodium.abi3.so": SO,
            "pysaltbox-1.0.dist-info/top_level.txt": b"_sodium\nsaltbox\n"}),
        # top_level.txt names a data folder that is not a module at all.
        build_wheel(dest, "picturebook", "1.0", extra_files={
            "images/logo.png": b"\x89PNG\r\n",
            "picturebook-1.0.dist-info/top_level.txt": b"images\npicturebook\n"}),
        # One namespace package (no __init__.py) split over two distributions.
        build_wheel(dest, "acme-alpha", "1.0", with_package=False, extra_files={
            "acme/alpha/__init__.py": b"",
            "acme_alpha-1.0.dist-info/top_level.txt": b"acme\n"}),
        build_wheel(dest, "acme-beta", "1.0", with_package=False, extra_files={
            "acme/beta/__init__.py": b"",
            "acme_beta-1.0.dist-info/top_level.txt": b"acme\n"}),
        # A private twin whose name folds to the project's name too (google-cloud-storage
        # ships google/cloud/_storage beside google/cloud/storage); it needs an extra.
        build_wheel(dest, "acme-store", "1.0", with_package=False, extra_files={
            "acme/store/__init__.py": b"",
            "acme/_store/__init__.py": b"import acme_iam_extra\n"}),
        # Data only, a .pth file only, console scripts only: nothing to import.
        build_wheel(dest, "fontdata", "1.0", with_package=False, extra_files={
            "fontdata-1.0.data/data/share/fontdata/mono.ttf": b"font"}),
        build_wheel(dest, "pathhook", "1.0", with_package=False, extra_files={
            "pathhook.pth": b"# adds nothing\n"}),
        build_wheel(dest, "clitool", "1.0", with_package=False, extra_files={
            "clitool-1.0.data/scripts/clitool": b"#!/bin/sh\necho clitool\n"}),
        # A settings-driven framework that raises on import without configuration, pulled
        # in by the application (not imported by it at import time).
        build_wheel(dest, "settingsfw", "1.0", extra_files={
            "settingsfw/__init__.py": b"raise RuntimeError('settings are not configured')\n"}),
        build_wheel(dest, "webapp", "1.0", requires=["settingsfw"]),
        # A server module beside the CLI package that needs an extra, and a helper module
        # that imports what its distribution does not require.
        build_wheel(dest, "toolkit", "1.0", extra_files={
            # METADATA as real wheels have it: UTF-8 text and a folded header
            "toolkit-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: toolkit\n"
                "Version: 1.0\nAuthor: José Müller\nLicense: Licence libre du café\n"
                "Summary: a summary folded\n   over two lines\n".encode(),
            "toolkit_server.py": b"raise ImportError('aiohttp dependency is not installed')\n",
            "toolkit_helpers.py": b"import not_required_anywhere\n",
            "toolkit-1.0.dist-info/top_level.txt":
                b"toolkit\ntoolkit_helpers\ntoolkit_server\n"}),
        # Two roots that cannot share one process in this order (as pip's distutils shim
        # and setuptools on 3.11): toolbox fails after distshim, and loads on its own.
        # Roots load cheapest first (by their Python source): toolbox is the larger.
        build_wheel(dest, "distshim", "1.0", extra_files={
            "distshim/__init__.py": b"import sys\nsys.modules.setdefault('toolbox', None)\n"}),
        build_wheel(dest, "toolbox", "1.0", extra_files={
            "toolbox/__init__.py": b'"""' + b"A box of tools. " * 20 + b'"""\n'}),
        # A root whose own code loads and then wants configuration: a warning, not a refusal.
        build_wheel(dest, "configapp", "1.0", extra_files={
            "configapp/__init__.py": b"import os\nos.environ['CONFIGAPP_SETTINGS']\n"}),
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("smoke")
    wheels = root / "wheels"
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp, root)
        healthy = healthy_wheels(wheels)
        base1 = build_wheel(wheels, "base", "1.0")
        needy = build_wheel(wheels, "needy", "1.0", requires=["base>=2"])
        broken = build_wheel(wheels, "brokenlib", "1.0", extra_files={
            "brokenlib/__init__.py":
                b"raise ImportError('libbroken.so.1: cannot open shared object file')\n"})
        app = build_wheel(wheels, "app", "1.0", requires=["brokendep"], extra_files={
            "app/__init__.py": b"import brokendep\n"})
        brokendep = build_wheel(wheels, "brokendep", "1.0", extra_files={
            "brokendep/__init__.py": b"from brokendep import _speedups\n"})
        windows = build_wheel(wheels, "winonly", "1.0", "cp311-cp311-win_amd64")
        cache = root / "cache"
        with IndexServer(root / "index", log_dir=root / "index-log") as index:
            yield {
                "healthy": make_bundle(root / "healthy.tar", healthy, index, cache),
                "broken-root": make_bundle(root / "broken.tar", [base1, broken], index, cache),
                "broken-dep": make_bundle(root / "brokendep.tar", [app, brokendep], index,
                                          cache),
                "conflict": make_bundle(root / "conflict.tar", [base1, needy], index, cache),
                "windows": make_bundle(root / "win.tar", [windows], index, cache,
                                       "-t", "cp311-win_amd64"),
            }


def installed(venv: Path) -> dict[str, str]:
    return venvs.pip_freeze(venvs.venv_python(venv))


def test_healthy_installs_of_odd_shapes_pass_the_default_check(built, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = run_cli("install", built["healthy"], "--venv", venv, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Each root loads through its real module; dependencies (settingsfw) are left to their
    # roots; names that top_level.txt lists but no file backs (_sodium, images) are skipped.
    assert sorted(report["imported"]) == ["acme.alpha", "acme.beta", "acme.store", "distshim",
                                          "picturebook", "saltbox", "toolbox", "toolkit",
                                          "webapp"]
    assert report["warnings"] == [
        "warning: import toolbox raised ModuleNotFoundError: import of toolbox halted; None "
        "in sys.modules after the other roots were loaded, and loads on its own (packages "
        "that do not share one process); not counted as a failure",
        "warning: import configapp raised KeyError: 'CONFIGAPP_SETTINGS' (it loaded, but "
        "wants configuration this shell lacks; not counted as a failure)"]
    assert set(installed(venv)) >= {"pysaltbox", "fontdata", "pathhook", "clitool",
                                     "settingsfw", "toolkit"}


def test_the_bundles_own_installer_applies_the_same_rule(built, tmp_path: Path) -> None:
    subprocess.run(["tar", "xf", str(built["healthy"])], cwd=tmp_path, check=True)
    root = tmp_path / "healthy"
    done = subprocess.run([sys.executable, str(root / "install.py"), "--venv",
                           str(tmp_path / "venv")], capture_output=True, text=True,
                          env=venvs.clean_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert "warning: import configapp raised KeyError" in done.stderr
    assert os.path.islink(tmp_path / "venv")


@pytest.mark.parametrize(("bundle", "message"), [
    ("broken-root", "smoke imports failed: import brokenlib: ImportError: libbroken.so.1: "
                    "cannot open shared object file"),
    ("broken-dep", "smoke imports failed: import app: ImportError: cannot import name "
                   "'_speedups' from partially initialized module 'brokendep'"),
    ("conflict", "pip check failed"),
])
def test_broken_installs_still_fail(built, tmp_path: Path, bundle: str, message: str) -> None:
    venv = tmp_path / "venv"
    done = run_cli("install", built[bundle], "--venv", venv)
    assert done.returncode == 5, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert message in line, line
    assert not venv.exists() and not venv.is_symlink()
    assert not venv.with_name("venv.releases").exists()


def test_a_wheel_for_another_platform_is_refused(built, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = run_cli("install", built["windows"], "--venv", venv, "--target", "cp311-win_amd64")
    assert done.returncode == 5, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "wheelhouse-bundler: install error: target cp311-win_amd64 does not fit this "
        "interpreter (best tag cp311-cp311-")
    assert done.stderr.strip().endswith("the bundle has: cp311-win_amd64 (sys_platform win32)")
    assert not venv.exists() and not venv.is_symlink()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the helper runs only with a second core")
@pytest.mark.parametrize(("compiled", "tmp_ok"), [(False, True), (True, True), (False, False)])
def test_a_helper_compiles_from_the_other_end_when_the_installer_wrote_no_bytecode(
        tmp_path: Path, compiled: bool, tmp_ok: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """uv installs without bytecode; a second process then loads the roots from the last
    one backwards (writing their bytecode) while the checking run loads from the first.
    Each root here notes which process loaded it: the slow first root (the cheaper by
    its source, so first) keeps the checking run busy while the helper loads the last.
    Where the helper cannot start (no writable temporary folder for its progress note),
    the check runs alone."""
    from wheelhouse_bundler.standalone import bootstrap

    mark = tmp_path / "loaded.txt"
    note = f"import os\nopen({str(mark)!r}, 'a').write('%s %d\\n' % (__name__, os.getpid()))\n"
    wheels = [build_wheel(tmp_path / "wheels", "aaa", "1.0", extra_files={
                  "aaa/__init__.py": (note + "import time\ntime.sleep(1.5)\n").encode()}),
              build_wheel(tmp_path / "wheels", "zzz", "1.0", extra_files={
                  "zzz/__init__.py": (note + "#" * 400 + "\n").encode()})]
    venv = tmp_path / "venv"
    py = venvs.make_venv(venv, with_pip=False)
    venvs.run_pip(py, "install", "--no-compile", "--no-index", "--no-deps", *map(str, wheels))
    before = set(os.listdir(tempfile.gettempdir()))
    if not tmp_ok:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))

    imported = bootstrap.smoke(str(py), ["aaa", "zzz"], compiled=compiled)
    monkeypatch.undo()

    assert imported == ["aaa", "zzz"]  # the checking run's verdict, whatever the helper did
    loads = mark.read_text().split("\n")
    pids = {line.split()[1] for line in loads if line.startswith("zzz ")}
    assert len(pids) == (2 if tmp_ok and not compiled else 1)
    assert [line for line in loads if line.startswith("aaa ")][:1]  # loaded by the check
    cached = list((venv / "lib").glob("python3.*/site-packages/zzz/__pycache__/*.pyc"))
    assert cached  # written by whichever process loaded it first
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - before
                if n.startswith("smoke-")}  # the helper's progress note is removed


def test_roots_load_cheapest_first_counting_their_dependencies(tmp_path: Path) -> None:
    """The checking run takes the roots in order of the Python source their dependency
    closures install (the helper from the other end): bbb is small itself but requires
    a large dependency, so it loads after the medium ccc, not in name order."""
    from wheelhouse_bundler.standalone import bootstrap

    mark = tmp_path / "loaded.txt"
    note = f"open({str(mark)!r}, 'a').write(__name__ + '\\n')\n"
    wheels = [
        build_wheel(tmp_path / "wheels", "aaa", "1.0", extra_files={
            "aaa/__init__.py": note.encode()}),
        build_wheel(tmp_path / "wheels", "bbb", "1.0", requires=["heavy"], extra_files={
            "bbb/__init__.py": (note + "import heavy\n").encode()}),
        build_wheel(tmp_path / "wheels", "heavy", "1.0", extra_files={
            "heavy/__init__.py": ("#" * 5000 + "\n").encode()}),
        build_wheel(tmp_path / "wheels", "ccc", "1.0", extra_files={
            "ccc/__init__.py": (note + "#" * 1000 + "\n").encode()}),
    ]
    py = venvs.make_venv(tmp_path / "venv", with_pip=False)
    venvs.run_pip(py, "install", "--no-index", "--no-deps", *map(str, wheels))

    imported = bootstrap.smoke(str(py), ["aaa", "bbb", "ccc", "heavy"])

    assert mark.read_text().split() == ["aaa", "ccc", "bbb"]
    assert sorted(imported) == ["aaa", "bbb", "ccc"]


def test_a_root_that_needs_a_sibling_root_loaded_first_passes(tmp_path: Path) -> None:
    """psycopg-binary's module refuses to load before psycopg's (the application imports
    psycopg, which loads it). Both are roots (psycopg wants it behind an extra only), and
    the cheaper, psycopg-binary, comes first: it is tried again after the others, and
    passes. Found by scripts/corpus when roots began loading cheapest first."""
    from wheelhouse_bundler.standalone import bootstrap

    wheels = [
        build_wheel(tmp_path / "wheels", "basepkg", "1.0",
                    requires=['basepkg-binary; extra == "binary"'], extra_files={
                        "basepkg/__init__.py": ("#" * 2000 + "\nimport sys\n").encode()}),
        build_wheel(tmp_path / "wheels", "basepkg-binary", "1.0", extra_files={
            "basepkg_binary/__init__.py":
                b"import sys\nif 'basepkg' not in sys.modules:\n"
                b"    raise ImportError('the basepkg package should be imported before "
                b"basepkg_binary')\n"}),
    ]
    py = venvs.make_venv(tmp_path / "venv", with_pip=False)
    venvs.run_pip(py, "install", "--no-index", "--no-deps", *map(str, wheels))

    assert sorted(bootstrap.smoke(str(py), ["basepkg", "basepkg-binary"])) == [
        "basepkg", "basepkg_binary"]
