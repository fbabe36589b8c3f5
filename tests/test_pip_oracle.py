"""pip is the oracle: for each target we pick exactly the file pip downloads for it.

The test index holds packages with many competing wheels: several manylinux levels,
legacy aliases in compressed tag sets (`manylinux_2_17_x86_64.manylinux2014_x86_64`),
a bare legacy tag (`manylinux1_x86_64`), musllinux, macOS versions in x86_64, arm64 and
universal2, win32/win_amd64/win_arm64, abi3, CPython-specific, `py3-none-<platform>`,
`cpXY-none-any`, `py2.py3` and pure wheels. For every target, `select.plan` must choose
the same file as real pip, run isolated from this machine's configuration:

    pip download --isolated --no-deps --only-binary=:all: --platform P [--platform ...]
        --python-version X.Y --implementation cp --abi cpXY -d DIR --index-url <test index>

How pip's `--platform` differs from a real machine (found by experiment, pip 26.3):

* `--platform manylinux_2_28_x86_64` accepts only that exact level: no manylinux_2_27 ...
  2_5 and no legacy aliases, although the pip on a glibc 2.28 machine accepts them all
  (its tags come from `sys_tags()`, which expands the glibc version). Likewise
  `musllinux_1_2` does not accept `musllinux_1_1`, and `manylinux2014_x86_64` accepts
  manylinux2010 and manylinux1 but not `manylinux_2_17_x86_64`.
* macOS is expanded by pip itself (`mac_platforms`), as on a real Mac; Windows needs none.

So Linux targets pass pip our expanded platform list, in our order, one `--platform`
each: what is compared there is the choice of the best file, given the platforms.
(pip re-expands `manylinux2014_x86_64` inside such a list, moving manylinux2010/manylinux1
up beside it; no package here has a manylinux_2_13..2_16 wheel that this could reorder.)
macOS and Windows targets pass pip only the spec's own platform, so pip's expansion is
tested too. Whether our Linux expansion is what a real machine's pip uses is checked on
real interpreters: the host and every pyenv Python 3.8-3.13 downloading with their own
pip and no `--platform` at all (below, and tag lists in tests/test_targets.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clirun import run_cli
from indexserver import IndexServer
from locktext import Pin, hashed_requirements
from packaging.utils import canonicalize_name
from packaging.version import Version
from test_targets import pyenv_python
from venvs import clean_env
from wheelfactory import build_wheel, sha256_of, wheel_filename

from wheelhouse_bundler import select, targets
from wheelhouse_bundler.model import Lock, LockedFile, LockedPackage, Target

NATIVE_MINORS = range(8, 14)

PACKAGES: dict[str, list[str]] = {
    "linuxy": [
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp311-cp311-manylinux_2_28_x86_64",
        "cp311-cp311-manylinux_2_34_x86_64",
        "cp311-cp311-manylinux1_x86_64",
        "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
        "cp311-cp311-musllinux_1_1_x86_64",
        "cp311-cp311-musllinux_1_2_x86_64",
        "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp312-cp312-musllinux_1_1_aarch64",
        "cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "py3-none-any",
    ],
    "macish": [
        "cp311-cp311-macosx_10_9_x86_64",
        "cp311-cp311-macosx_11_0_arm64",
        "cp311-cp311-macosx_10_9_universal2",
        "cp312-cp312-macosx_10_13_universal2",
        "cp312-cp312-macosx_14_0_arm64",
        "cp313-cp313-macosx_13_0_x86_64",
        "cp38-abi3-macosx_11_0_universal2",
        "py3-none-any",
    ],
    "winish": [
        "cp311-cp311-win32",
        "cp311-cp311-win_amd64",
        "cp312-cp312-win_amd64",
        "cp312-cp312-win_arm64",
        "cp39-abi3-win_amd64",
        "py2.py3-none-any",
    ],
    "toolish": [  # binaries without a Python ABI (ruff-like), and no pure fallback
        "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "py3-none-manylinux_2_5_x86_64.manylinux1_x86_64",
        "py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64",
        "py3-none-musllinux_1_2_x86_64",
        "py3-none-musllinux_1_2_aarch64",
        "py3-none-macosx_10_12_x86_64",
        "py3-none-macosx_11_0_arm64",
        "py3-none-win32",
        "py3-none-win_amd64",
        "py3-none-win_arm64",
    ],
    "pureish": [
        "py2.py3-none-any",
        "py312-none-any",
        *(f"cp3{minor}-none-any" for minor in NATIVE_MINORS if minor != 12),
    ],
    # Native linux_x86_64 builds against portable ones: the order changed in packaging 26.3.
    "nativeish": [
        *(f"cp3{minor}-cp3{minor}-linux_x86_64" for minor in NATIVE_MINORS),
        *(f"cp3{minor}-cp3{minor}-manylinux_2_17_x86_64.manylinux2014_x86_64"
          for minor in NATIVE_MINORS),
        "py3-none-any",
    ],
}

LINUX_SPECS = [
    "cp311-manylinux_2_28_x86_64",
    "cp311-manylinux_2_17_x86_64",
    "cp311-manylinux_2_5_x86_64",
    "cp312-manylinux_2_34_x86_64",
    "cp313-manylinux_2_28_x86_64",
    "cp311-manylinux_2_28_aarch64",
    "cp311-musllinux_1_2_x86_64",
    "cp312-musllinux_1_2_aarch64",
]
OTHER_SPECS = [
    "cp311-macosx_14_0_arm64",
    "cp311-macosx_10_15_x86_64",
    "cp312-macosx_14_0_x86_64",
    "cp313-macosx_13_0_x86_64",
    "cp310-macosx_12_0_arm64",
    "cp311-win_amd64",
    "cp311-win32",
    "cp312-win_arm64",
    "cp313-win_amd64",
]
SPECS = LINUX_SPECS + OTHER_SPECS


class Oracle:
    """The test index with PACKAGES on it, the same files as a Lock, and a pip runner."""

    def __init__(self, server: IndexServer, lock: Lock, work: Path) -> None:
        self.server, self.lock, self.work = server, lock, work

    def ours(self, target: Target) -> set[str]:
        (plan,) = select.plan(self.lock, [target], set(), set())
        return {pick.file.filename or "" for pick in plan.picks}

    def pip(self, label: str, python: str, *target_args: str,
            pins: tuple[str, ...] = tuple(f"{name}==1.0" for name in PACKAGES)) -> set[str]:
        """What `python -m pip download` fetches for every pin (that python's own pip)."""
        dest = self.work / "downloads" / label
        dest.mkdir(parents=True)
        proc = subprocess.run(
            [python, "-m", "pip", "download", "--isolated", "--no-deps", "--only-binary=:all:",
             "--no-cache-dir", "--disable-pip-version-check", "--quiet", *target_args,
             "-d", str(dest), "--index-url", self.server.url, *pins],
            capture_output=True, text=True, env=clean_env(), cwd=dest, check=False)
        assert proc.returncode == 0, f"pip download for {label} failed:\n{proc.stderr}"
        return {p.name for p in dest.iterdir()}


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    work = tmp_path_factory.mktemp("oracle")
    packages = []
    with IndexServer(work / "index", log_dir=work / "index-log") as server:
        for name, tag_list in PACKAGES.items():
            files = []
            for tag in tag_list:
                wheel = build_wheel(work / "wheels", name, "1.0", tag)
                server.add(wheel)
                files.append(LockedFile(sha256=sha256_of(wheel), filename=wheel.name))
            packages.append(LockedPackage(canonicalize_name(name), Version("1.0"),
                                          tuple(files)))
        lock = Lock(path=work / "poetry.lock", format="poetry", sha256="0" * 64,
                    packages=tuple(packages))
        yield Oracle(server, lock, work)


def _pip_target_args(target: Target) -> list[str]:
    spec = target.name
    minor = spec[3:spec.index("-")]
    if spec in LINUX_SPECS:  # pip does not expand these: give it our expansion, in order
        platforms = dict.fromkeys(t.platform for t in target.tags if t.platform != "any")
    else:
        platforms = dict.fromkeys([spec.split("-", 1)[1]])
    args = [arg for p in platforms for arg in ("--platform", p)]
    return [*args, "--python-version", f"3.{minor}", "--implementation", "cp",
            "--abi", f"cp3{minor}"]


@pytest.fixture(scope="module")
def pip_choices(oracle: Oracle) -> dict[str, set[str]]:
    """pip's downloads for every spec, run a few at a time (pip's start-up dominates)."""
    def run(spec: str) -> tuple[str, set[str]]:
        return spec, oracle.pip(spec, sys.executable, *_pip_target_args(targets.parse(spec)))

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(run, SPECS))


def test_there_are_enough_targets_and_competition(oracle: Oracle) -> None:
    """A guard on the test data, not on the code: floors, so that adding a target or a
    wheel needs no edit here, while trimming the data below what the module docstring
    promises fails. Competition is checked where it matters: for every target, several
    packages have more than one wheel that installs there, so the choice is a real one."""
    assert len(SPECS) >= 12
    assert sum(len(tags) for tags in PACKAGES.values()) >= 50
    for spec in SPECS:
        target = targets.parse(spec)
        contested = [p.name for p in oracle.lock.packages
                     if len(select.ranked_wheels(p, target)) >= 2]
        assert len(contested) >= 2, (spec, contested)


@pytest.mark.parametrize("spec", SPECS)
def test_spec_target_picks_what_pip_downloads(spec: str, oracle: Oracle,
                                              pip_choices: dict[str, set[str]]) -> None:
    ours = oracle.ours(targets.parse(spec))
    assert ours == pip_choices[spec]
    assert len(ours) == len(PACKAGES)


def test_pure_and_abi3_wheels_win_where_pip_says(oracle: Oracle,
                                                 pip_choices: dict[str, set[str]]) -> None:
    """A few of the choices spelled out, so a shared mistake of pip and us shows too."""
    assert "linuxy-1.0-cp311-cp311-manylinux1_x86_64.whl" in \
        pip_choices["cp311-manylinux_2_5_x86_64"]
    assert "linuxy-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in \
        pip_choices["cp313-manylinux_2_28_x86_64"]
    assert "macish-1.0-cp38-abi3-macosx_11_0_universal2.whl" in \
        pip_choices["cp310-macosx_12_0_arm64"]
    assert "pureish-1.0-py312-none-any.whl" in pip_choices["cp312-win_arm64"]
    assert "pureish-1.0-cp311-none-any.whl" in pip_choices["cp311-win32"]
    assert "linuxy-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl" in \
        pip_choices["cp311-manylinux_2_28_aarch64"]


def test_bundle_for_foreign_targets_holds_what_pip_downloads_for_each(
        oracle: Oracle, pip_choices: dict[str, set[str]], tmp_path: Path) -> None:
    """End to end: `bundle` as its own process, every spec target at once, a hashed
    requirements lock naming all the competing files; per target, the manifest's files
    are pip's choice (and the bundle holds their union, nothing else)."""
    pins = [Pin(name, "1.0", [oracle.work / "wheels" / wheel_filename(name, "1.0", tag)
                              for tag in tags]) for name, tags in PACKAGES.items()]
    lock = tmp_path / "requirements.txt"
    lock.write_text(hashed_requirements(pins))
    out = tmp_path / "app.tar"
    done = run_cli("bundle", lock, "-o", out, *(a for s in SPECS for a in ("-t", s)),
                   "--index-url", oracle.server.url, "--cache-dir", tmp_path / "cache",
                   "--json", env=clean_env(XDG_CACHE_HOME=str(tmp_path / "xdg")))
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        top = tar.getnames()[0].split("/")[0]
        manifest = json.loads(tar.extractfile(f"{top}/manifest.json").read())  # type: ignore[union-attr]
        wheels = {n.rsplit("/", 1)[-1] for n in tar.getnames() if "/wheels/" in n}
    for spec in SPECS:
        assert {f["filename"] for f in manifest["files"] if spec in f["targets"]} == \
            pip_choices[spec], spec
    assert wheels == set().union(*pip_choices.values())
    assert json.loads(done.stdout)["files"] == len(wheels)


@pytest.mark.parametrize("minor", ["host", *NATIVE_MINORS])
def test_real_interpreter_target_picks_what_its_own_pip_downloads(minor, oracle: Oracle) -> None:
    """No --platform: the interpreter's pip uses its real tags, as on a bastion."""
    python = sys.executable if minor == "host" else pyenv_python(minor)
    if python is None:
        pytest.skip(f"no pyenv Python 3.{minor} here")
    target, _ = targets.interpreter(python)
    assert oracle.ours(target) == oracle.pip(f"native-{minor}", python)


def test_build_tag_breaks_ties_as_pip_does(oracle: Oracle) -> None:
    """Same version, same tags, build numbers 1, 2 and 10: pip takes build 10."""
    files = []
    for build in ("1", "2", "10"):
        wheel = build_wheel(oracle.work / "builds" / build, "buildish", "1.0",
                            extra_files={"buildish/build.txt": build.encode()})
        named = wheel.with_name(f"buildish-1.0-{build}-py3-none-any.whl")
        wheel.rename(named)
        oracle.server.add(named)
        files.append(LockedFile(sha256=sha256_of(named), filename=named.name))
    lock = Lock(path=oracle.lock.path, format="poetry", sha256="0" * 64, packages=(
        LockedPackage(canonicalize_name("buildish"), Version("1.0"), tuple(files)),))
    (plan,) = select.plan(lock, [targets.host()], set(), set())
    theirs = oracle.pip("buildish", sys.executable, pins=("buildish==1.0",))
    assert theirs == {"buildish-1.0-10-py3-none-any.whl"}
    assert {plan.picks[0].file.filename} == theirs
