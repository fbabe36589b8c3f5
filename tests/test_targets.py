"""Targets from probes, target files and pyproject.toml, checked against real interpreters.

The oracle for `from_probe` is packaging itself, run inside the interpreter described: the
host's `sys_tags()`, and for each pyenv Python 3.8-3.13 the `sys_tags()` of the packaging
vendored in that interpreter's own pip (the pip that installs there). Synthetic facts
(musl, macOS, Windows, 32-bit ARM, debug and free-threaded builds) are checked against the
spec-string expansion, which tests/test_pip_oracle.py checks against pip.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import run_cli
from packaging.markers import default_environment
from packaging.tags import Tag, sys_tags
from packaging.utils import canonicalize_name
from packaging.version import Version
from venvs import clean_env

from wheelhouse_bundler import select, targets
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.errors import UsageError
from wheelhouse_bundler.model import Lock, LockedFile, LockedPackage
from wheelhouse_bundler.standalone import probe

MINORS = range(8, 14)
PIP_VIEW = ("import json\n"
            "from pip._internal.utils.compatibility_tags import get_supported\n"
            "from pip._vendor.packaging import markers\n"
            "print(json.dumps({'tags': [str(t) for t in get_supported()],\n"
            "                  'env': markers.default_environment()}))\n")
"""The oracle: the tags and markers an interpreter's own pip uses, printed as JSON."""


@functools.cache
def pyenv_python(minor: int) -> str | None:
    """`$(pyenv root)/versions/3.<minor>.*/bin/python3.<minor>`, newest patch; None if absent."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                              check=True).stdout.strip() or root
    found = [p for p in Path(root, "versions").glob(f"3.{minor}.*/bin/python3.{minor}")
             if p.parts[-3].split(".")[-1].isdigit()]
    found.sort(key=lambda p: int(p.parts[-3].split(".")[-1]))
    return str(found[-1]) if found else None


def run_python(python: str, code: str) -> str:
    """`python -I -c code` with no PIP_* settings, from a neutral folder; its stdout."""
    return subprocess.run([python, "-I", "-c", code], capture_output=True, text=True,
                          check=True, env=clean_env(), cwd="/").stdout


@pytest.fixture(scope="module")
def host_facts() -> dict:
    return probe.collect()


def strs(found) -> list[str]:
    return [str(t) for t in found]


# ---- real interpreters


def test_host_target_is_sys_tags(host_facts) -> None:
    """In-process and as a subprocess of sys.executable, the probe gives sys_tags()."""
    from pip._internal.utils.compatibility_tags import get_supported

    expected = strs(sys_tags())
    assert strs(targets.host().tags) == expected
    ran = targets.probe_interpreter(sys.executable)  # the script, run under -I
    assert ran["executable"] == sys.executable
    assert strs(targets.from_probe(ran).tags) == expected
    assert strs(targets.from_probe(host_facts).tags) == strs(get_supported())  # pip's own
    without_pip = {k: v for k, v in host_facts.items() if k != "pip"}
    assert strs(targets.from_probe(without_pip).tags) == expected  # our packaging's rules
    assert dict(targets.host().environment) == default_environment()
    first = next(t for t in sys_tags() if not t.platform.startswith("linux_"))
    assert targets.host().name == f"{first.interpreter}-{first.platform}"


@pytest.mark.parametrize("minor", MINORS)
def test_probe_matches_that_interpreters_own_pip(minor: int) -> None:
    """Tags equal the list the interpreter's own pip uses (its get_supported(): sys_tags()
    of the packaging it vendors, plus `cp3X-none-any` even where that packaging is older
    than 22.0, as pip 23 on 3.8-3.12 here); markers equal that packaging's."""
    python = pyenv_python(minor)
    if python is None:
        pytest.skip(f"no pyenv Python 3.{minor} here")
    theirs = json.loads(run_python(python, PIP_VIEW))
    target, facts = targets.interpreter(python)
    assert facts["python_version"][:2] == [3, minor]
    assert strs(target.tags) == theirs["tags"]
    assert dict(target.environment) == theirs["env"]
    assert target.name.startswith(f"cp3{minor}-manylinux_")


def test_probe_runs_with_nothing_installed(tmp_path: Path) -> None:
    """The oldest Python, no site-packages at all (-S): the script alone still answers."""
    python = next((p for p in map(pyenv_python, MINORS) if p), sys.executable)
    script = tmp_path / "probe.py"
    script.write_text(targets.probe_source())
    out = subprocess.run([python, "-I", "-S", str(script)], capture_output=True, text=True,
                         check=True, env=clean_env(), cwd=tmp_path).stdout
    facts = json.loads(out)
    assert facts["pip"] is None  # -S: no site-packages, so no pip either
    target = targets.from_probe(facts)
    version = facts["python_version"]
    assert target.environment["python_version"] == f"{version[0]}.{version[1]}"
    assert target.tags[0].interpreter == f"cp{version[0]}{version[1]}"
    assert target.tags[-1] == Tag("py30", "none", "any")


# ---- synthetic facts: other platforms and builds


def facts_like(base: dict, **changes) -> dict:
    facts = copy.deepcopy(base)
    for path, value in changes.items():
        node = facts
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return facts


def cpython(base: dict, minor: int) -> dict:
    """The host's facts as if it were CPython 3.<minor> (with a current pip)."""
    return facts_like(base, python_version=[3, minor, 0, "final", 0],
                      config_vars__py_version_nodot=f"3{minor}",
                      config_vars__Py_GIL_DISABLED=0, config_vars__Py_DEBUG=0,
                      environment__python_version=f"3.{minor}",
                      environment__python_full_version=f"3.{minor}.0",
                      pip={"version": "26.3", "packaging": "26.3"})


def without_native(found) -> list[str]:
    return [str(t) for t in found if not t.platform.startswith("linux_")]


def test_glibc_facts_expand_like_the_spec(host_facts) -> None:
    facts = facts_like(cpython(host_facts, 11), libc__glibc="2.28")
    target = targets.from_probe(facts)
    assert target.name == "cp311-manylinux_2_28_x86_64"
    assert without_native(target.tags) == strs(targets.parse(target.name).tags)
    assert target.tags[0] == Tag("cp311", "cp311", "linux_x86_64")  # packaging >= 26.3


def test_old_pip_rules_follow_its_vendored_packaging(host_facts) -> None:
    """pip 23 vendors packaging 21.3: native linux tags after the portable ones."""
    facts = facts_like(cpython(host_facts, 11), pip={"version": "23.0.1", "packaging": "21.3"})
    found = strs(targets.from_probe(facts).tags)
    assert found[0] == "cp311-cp311-manylinux_2_36_x86_64"
    assert found.index("cp311-cp311-linux_x86_64") == found.index(
        "cp311-cp311-manylinux1_x86_64") + 1
    assert sorted(found) == sorted(strs(targets.from_probe(cpython(host_facts, 11)).tags))
    assert "cp311-none-any" in found  # pip adds it whatever its packaging


_NATIVE, _M228 = "cp311-cp311-linux_x86_64", "cp311-cp311-manylinux_2_28_x86_64"
_M217 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"


@pytest.mark.parametrize(("pip", "ladder"), [
    ({"version": "26.3", "packaging": "26.3"}, [_NATIVE, _M228, _M217]),
    ({"version": "23.0.1", "packaging": "21.3"}, [_M228, _M217, _NATIVE]),
])
def test_a_probed_target_picks_as_its_own_pip_among_competing_wheels(host_facts, pip,
                                                                     ladder) -> None:
    """Several wheels of one release compete on a glibc 2.28 machine, best first: where
    the native build ranks depends on the pip there (first since packaging 26.3, after
    every manylinux level before), then abi3, then pure; newer glibc or CPython never."""
    facts = facts_like(cpython(host_facts, 11), libc__glibc="2.28", pip=pip)
    target = targets.from_probe(facts)
    ladder = [*ladder, "cp39-abi3-manylinux_2_28_x86_64", "py3-none-any"]
    never = ["cp311-cp311-manylinux_2_31_x86_64", "cp312-cp312-linux_x86_64"]
    for i, tag in enumerate(ladder):
        files = [f"comp-1.0-{t}.whl" for t in (*never, *ladder[i:])]
        package = LockedPackage(canonicalize_name("comp"), Version("1.0"), tuple(
            LockedFile(sha256=f"{n:064x}", filename=f) for n, f in enumerate(files)))
        lock = Lock(path=Path("poetry.lock"), format="poetry", sha256="0" * 64,
                    packages=(package,))
        (plan,) = select.plan(lock, [target], set(), set())
        assert plan.picks[0].file.filename == f"comp-1.0-{tag}.whl", (pip, i)


def test_musl_facts_expand_like_the_spec(host_facts) -> None:
    facts = facts_like(cpython(host_facts, 12), libc__glibc=None, libc__musl="1.2.4")
    target = targets.from_probe(facts)
    assert target.name == "cp312-musllinux_1_2_x86_64"
    assert without_native(target.tags) == strs(targets.parse(target.name).tags)
    assert not any("manylinux" in t.platform for t in target.tags)


def test_macos_facts_expand_like_the_spec(host_facts) -> None:
    facts = facts_like(cpython(host_facts, 11), system="Darwin",
                       sysconfig_platform="macosx-11.0-arm64",
                       macos={"release": "14.2.1", "machine": "arm64"},
                       environment__sys_platform="darwin")
    target = targets.from_probe(facts)
    assert target.name == "cp311-macosx_14_0_arm64"
    assert strs(target.tags) == strs(targets.parse(target.name).tags)
    assert target.environment["sys_platform"] == "darwin"


def test_windows_facts_expand_like_the_spec(host_facts) -> None:
    facts = facts_like(cpython(host_facts, 13), system="Windows", sysconfig_platform="win-amd64")
    target = targets.from_probe(facts)
    assert target.name == "cp313-win_amd64"
    assert strs(target.tags) == strs(targets.parse(target.name).tags)


def test_32_bit_arm_needs_a_hard_float_interpreter(host_facts) -> None:
    elf = {"class": 32, "byteorder": "little", "machine": 40, "interpreter": None,
           "flags": 0x05000400}
    hard = facts_like(cpython(host_facts, 11), sysconfig_platform="linux-armv7l",
                      pointer_bits=32, elf=elf, libc__glibc="2.31")
    soft = facts_like(hard, elf__flags=0x05000200)
    hard_platforms = list(dict.fromkeys(t.platform for t in targets.from_probe(hard).tags))
    assert hard_platforms[:3] == ["linux_armv7l", "manylinux_2_31_armv7l",
                                  "manylinux_2_30_armv7l"]
    assert "manylinux_2_17_armv7l" in hard_platforms
    assert "manylinux_2_16_armv7l" not in hard_platforms  # ARM starts at glibc 2.17
    soft_platforms = {t.platform for t in targets.from_probe(soft).tags}
    assert soft_platforms == {"linux_armv7l", "any"}


def test_a_manylinux_module_vetoes_levels(host_facts) -> None:
    answers = {"2_36_x86_64": False, "2_35_x86_64": None}
    facts = facts_like(cpython(host_facts, 11), manylinux_module={
        "manylinux_compatible": answers, "legacy": {}})
    platforms = [t.platform for t in targets.from_probe(facts).tags]
    assert "manylinux_2_36_x86_64" not in platforms and "manylinux_2_35_x86_64" in platforms
    legacy = facts_like(facts, manylinux_module={"manylinux_compatible": None,
                                                 "legacy": {"manylinux1_compatible": False}})
    platforms = [t.platform for t in targets.from_probe(legacy).tags]
    assert "manylinux_2_5_x86_64" not in platforms and "manylinux1_x86_64" not in platforms
    assert "manylinux_2_36_x86_64" in platforms


def test_debug_and_free_threaded_builds_have_their_abis(host_facts) -> None:
    debug = targets.from_probe(facts_like(cpython(host_facts, 12), config_vars__Py_DEBUG=1))
    abis = list(dict.fromkeys(t.abi for t in debug.tags))
    assert abis[:3] == ["cp312d", "cp312", "abi3"]
    threaded = targets.from_probe(facts_like(cpython(host_facts, 13),
                                             config_vars__Py_GIL_DISABLED=1))
    assert threaded.name == "cp313t-manylinux_2_36_x86_64"
    assert threaded.tags[0] == Tag("cp313", "cp313t", "linux_x86_64")
    assert not any(t.abi == "abi3" for t in threaded.tags)
    spec = targets.parse("cp313t-manylinux_2_36_x86_64")
    assert without_native(threaded.tags) == strs(spec.tags)


def test_pypy_facts_use_generic_tags(host_facts) -> None:
    facts = facts_like(host_facts, implementation__name="pypy", python_version=[3, 10, 14,
                       "final", 0], config_vars__py_version_nodot="310",
                       config_vars__EXT_SUFFIX=".pypy310-pp73-x86_64-linux-gnu.so")
    target = targets.from_probe(facts)
    assert target.tags[0] == Tag("pp310", "pypy310_pp73", "linux_x86_64")
    assert Tag("pp310", "none", "any") in target.tags  # pip's; sys_tags() says pp3
    assert target.name == "pp310-manylinux_2_36_x86_64"


@pytest.mark.parametrize(("change", "message"), [
    ({"wheelhouse_bundler_probe": 99}, "probe format 99"),
    ({"environment": {"python_version": "3.11"}}, "lacks implementation_name"),
    ({"config_vars": None}, "malformed probe facts"),
    ({"system": "Android"}, "Android interpreters are not supported"),
])
def test_bad_facts_are_usage_errors_naming_the_source(host_facts, change, message) -> None:
    with pytest.raises(UsageError, match=message) as info:
        targets.from_probe({**host_facts, **change}, source="bastion.json")
    assert str(info.value).startswith("bastion.json: ")


# ---- target files, target-info and pyproject.toml


def test_probe_output_and_target_info_output_are_both_target_files(tmp_path, capsys) -> None:
    python = pyenv_python(12) or sys.executable
    raw = tmp_path / "raw.json"
    raw.write_text(run_python(python, targets.probe_source()))
    assert main(["target-info", "--python", python]) == 0
    described = tmp_path / "described.json"
    described.write_text(capsys.readouterr().out)
    from_raw = targets.load_target_file(raw)
    from_info = targets.load_target_file(described)
    assert from_raw == from_info
    assert from_raw.environment["python_full_version"] == json.loads(
        raw.read_text())["environment"]["python_full_version"]


def test_target_info_script_prints_the_probe(capsys) -> None:
    assert main(["target-info", "--script"]) == 0
    source = capsys.readouterr().out
    assert source == Path(probe.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the script must not import its package"
            imported.add((node.module or "").split(".")[0])
    assert imported and imported <= sys.stdlib_module_names | {"__future__", "_manylinux"}


def test_target_info_with_a_missing_python_is_one_line_exit_2(tmp_path, capsys) -> None:
    assert main(["target-info", "--python", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err and "cannot run" in err


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not JSON"),
    ('{"hello": 1}', "not a target file"),
    ('{"name": "../evil", "tags": ["py3-none-any"], "environment": ENV}', "target name"),
    ('{"name": "x", "tags": ["py3-none"], "environment": ENV}', "bad tag"),
])
def test_bad_target_files_are_refused(tmp_path, text, message) -> None:
    path = tmp_path / "t.json"
    path.write_text(text.replace("ENV", json.dumps(default_environment())))
    with pytest.raises(UsageError, match=message) as info:
        targets.load_target_file(path)
    assert str(path) in str(info.value)


def test_pyproject_targets_apply_when_no_target_is_given(tmp_path, host_facts) -> None:
    facts_file = tmp_path / "bastion.json"
    facts_file.write_text(json.dumps(facts_like(host_facts, libc__glibc="2.28")))
    (tmp_path / "pyproject.toml").write_text(
        '[tool.wheelhouse-bundler]\ntargets = ["cp313-win_amd64", "cp312-macosx_14_0_arm64"]\n'
        'target-files = ["bastion.json"]\n')
    (tmp_path / "poetry.lock").write_text("")
    names = [t.name for t in targets.resolve([], project=tmp_path / "poetry.lock")]
    assert names == ["cp311-manylinux_2_28_x86_64", "cp312-macosx_14_0_arm64",
                     "cp313-win_amd64"]
    assert [t.name for t in targets.resolve(["cp311-win32"], project=tmp_path)] == [
        "cp311-win32"]  # flags win over the file
    assert targets.resolve([], project=tmp_path / "elsewhere" / "x.lock")[0].name == \
        targets.host().name  # no pyproject: the host
    (tmp_path / "pyproject.toml").write_text('[tool.wheelhouse-bundler]\ntargets = "host"\n')
    with pytest.raises(UsageError, match="targets must be a list of strings"):
        targets.resolve([], project=tmp_path)


def test_two_different_targets_under_one_name_are_refused(tmp_path, host_facts) -> None:
    path = tmp_path / "spoof.json"
    path.write_text(json.dumps({"name": "cp312-win_amd64", "tags": ["py3-none-any"],
                                "environment": default_environment()}))
    with pytest.raises(UsageError, match="two different targets are named 'cp312-win_amd64'"):
        targets.resolve(["cp312-win_amd64"], [path])
    assert len(targets.resolve(["host", "host"])) == 1


def test_target_info_as_its_own_process_is_that_interpreters_pip_view(tmp_path) -> None:
    """Run on a target as an operator would: the JSON on stdout has the tags the
    interpreter's own pip accepts, in its order, and its markers; it is a target file."""
    python = pyenv_python(12) or sys.executable
    done = run_cli("target-info", "--python", python, env=clean_env())
    assert done.returncode == 0 and done.stderr == "", done.stderr
    info = json.loads(done.stdout)
    theirs = json.loads(run_python(python, PIP_VIEW))
    assert info["tags"] == theirs["tags"] and info["environment"] == theirs["env"]
    path = tmp_path / "target.json"
    path.write_text(done.stdout)
    assert targets.load_target_file(path).name == info["name"]
