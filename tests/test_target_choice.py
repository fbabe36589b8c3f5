"""One target choice on both sides: `wheelhouse-bundler install` and the bundle's own
install.py call the same bootstrap.choose_target, and the tags each gives it (packaging's,
from the interpreter's probe; install.py's small stdlib matcher) must lead to the same
choice. Checked on every interpreter this machine has, Python 3.8 and later."""

from __future__ import annotations

import glob
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.tags import Tag

from wheelhouse_bundler import targets
from wheelhouse_bundler.install import choose_target
from wheelhouse_bundler.model import Manifest, ManifestFile, ManifestTarget
from wheelhouse_bundler.standalone import bootstrap

_ROOT = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                       check=False).stdout.strip() if os.environ.get("PATH") else ""
PYTHONS = sorted({sys.executable, *(p for v in ("8", "9", "10", "11", "12", "13")
                                    for p in glob.glob(f"{_ROOT}/versions/3.{v}.*/bin/python3.{v}")
                                    if _ROOT)})
BOOTSTRAP = Path(bootstrap.__file__)


def bootstrap_view(python: str) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """install.py's own tags and markers, computed by that interpreter."""
    code = ("import json, runpy\n"
            f"g = runpy.run_path({str(BOOTSTRAP)!r})\n"
            "print(json.dumps([g['interpreter_tags'](), g['marker_env']()]))")
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    tags, env = json.loads(out)
    return [tuple(t) for t in tags], env


def candidates(py: str, plat: str) -> list[tuple[str, list[str]]]:
    """Bundle targets as a build box makes them, each with one wheel of another shape."""
    return [
        ("glibc-2.17", [f"a-1.0-{py}-{py}-manylinux_2_17_{plat}.manylinux2014_{plat}.whl"]),
        ("glibc-2.28", [f"a-1.0-{py}-{py}-manylinux_2_28_{plat}.whl"]),
        ("glibc-2.99", [f"a-1.0-{py}-{py}-manylinux_2_99_{plat}.whl"]),
        ("legacy-1", [f"a-1.0-{py}-{py}-manylinux1_{plat}.whl"]),
        ("abi3", [f"a-1.0-cp38-abi3-manylinux_2_17_{plat}.whl"]),
        ("plain-linux", [f"a-1.0-{py}-{py}-linux_{plat}.whl"]),
        ("musl", [f"a-1.0-{py}-{py}-musllinux_1_2_{plat}.whl"]),
        ("windows", [f"a-1.0-{py}-{py}-win_amd64.whl"]),
        ("pure", ["a-1.0-py3-none-any.whl"]),
        ("py2-pure", ["a-1.0-py2-none-any.whl"]),
        ("other-python", [f"a-1.0-cp27-cp27mu-manylinux1_{plat}.whl"]),
    ]


def manifest_of(chosen: list[tuple[str, list[str]]], env: dict[str, str]) -> Manifest:
    files = {f: [n for n, fs in chosen if f in fs] for _, fs in chosen for f in fs}
    return Manifest(
        format_version=1, tool_version="0", lock_name="l", lock_format="pylock",
        lock_sha256="0" * 64, groups=(), extras=(),
        targets=tuple(ManifestTarget(n, env) for n, _ in chosen),
        files=tuple(ManifestFile(f, "0" * 64, 1, "a", "1.0", "", tuple(t))
                    for f, t in sorted(files.items())))


def choice(manifest: Manifest, tags: list[Tag], env: dict[str, str]) -> str:
    try:
        return choose_target(manifest, tags, None, env)
    except Exception as exc:  # the same refusal on both sides counts as agreeing
        return f"refused: {type(exc).__name__}"


@pytest.mark.parametrize("python", PYTHONS)
def test_the_tool_and_install_py_choose_the_same_target(python: str) -> None:
    tool = targets.interpreter(python)[0]
    theirs, env = bootstrap_view(python)
    assert {k: tool.environment[k] for k in env} == env
    py = "cp" + env["python_version"].replace(".", "")
    plat = tool.environment["platform_machine"]
    shapes = candidates(py, plat)
    as_tags = [Tag(*t) for t in theirs]
    # every wheel alone: accepted by both or by neither
    for name, files in shapes:
        single = manifest_of([(name, files)], env)
        assert choice(single, list(tool.tags), env) == choice(single, as_tags, env), name
    # every pair of targets: the same one wins
    for pair in itertools.combinations(shapes, 2):
        both = manifest_of(list(pair), env)
        assert choice(both, list(tool.tags), env) == choice(both, as_tags, env), pair


def test_a_bundle_target_for_another_python_is_ruled_out_on_both_sides() -> None:
    tool = targets.interpreter(None)[0]
    env = dict(tool.environment)
    other = {**env, "python_version": "3.99"}
    man = manifest_of([("pure-3.99", ["a-1.0-py3-none-any.whl"])], other)
    with pytest.raises(Exception, match=r"no target in the bundle fits this interpreter "
                       r".*the bundle has: pure-3.99 \(python_version 3.99\)"):
        choose_target(man, list(tool.tags), None, env)
    plain = {"targets": [{"name": "pure-3.99", "environment": other}],
             "files": [{"filename": "a-1.0-py3-none-any.whl", "targets": ["pure-3.99"]}]}
    with pytest.raises(bootstrap.Failure, match=r"the bundle has: pure-3.99 "
                       r"\(python_version 3.99\)"):
        bootstrap.choose_target(plain, bootstrap.interpreter_tags(), bootstrap.marker_env())
