"""Selection picks pip's best wheel per target and reports every gap at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from wheelhouse_bundler import select, targets
from wheelhouse_bundler.errors import SelectionError
from wheelhouse_bundler.model import Lock, LockedFile, LockedPackage


def pkg(name: str, version: str, *filenames: str) -> LockedPackage:
    files = tuple(LockedFile(sha256=f"{i:064x}", filename=f) for i, f in enumerate(filenames))
    return LockedPackage(canonicalize_name(name), Version(version), files)


def lock_of(*packages: LockedPackage) -> Lock:
    return Lock(path=Path("poetry.lock"), format="poetry", sha256="0" * 64, packages=packages)


NATIVE = pkg("native", "1.0",
             "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "native-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
             "native-1.0-cp311-cp311-musllinux_1_1_x86_64.whl",
             "native-1.0-cp312-cp312-win_amd64.whl",
             "native-1.0-cp38-abi3-macosx_11_0_universal2.whl",
             "native-1.0.tar.gz")


@pytest.mark.parametrize(("spec", "expected"), [
    ("cp311-manylinux_2_28_x86_64", "native-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
    ("cp311-manylinux_2_27_x86_64",
     "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    ("cp311-musllinux_1_2_x86_64", "native-1.0-cp311-cp311-musllinux_1_1_x86_64.whl"),
    ("cp312-win_amd64", "native-1.0-cp312-cp312-win_amd64.whl"),
    ("cp313-macosx_14_0_arm64", "native-1.0-cp38-abi3-macosx_11_0_universal2.whl"),
])
def test_best_wheel_follows_tag_priority(spec: str, expected: str) -> None:
    (plan,) = select.plan(lock_of(NATIVE), [targets.parse(spec)], set(), set())
    assert plan.picks[0].file.filename == expected


def test_every_gap_is_reported_before_anything_is_fetched() -> None:
    sdist_only = pkg("sdistonly", "2.0", "sdistonly-2.0.tar.gz")
    with pytest.raises(SelectionError) as info:
        select.plan(lock_of(NATIVE, sdist_only),
                    [targets.parse("cp311-manylinux_2_28_x86_64"),
                     targets.parse("cp313-win_amd64")], set(), set())
    text = str(info.value)
    assert "3 package(s)" in text
    assert "native==1.0 on cp313-win_amd64" in text
    assert "sdistonly==2.0 on cp311-manylinux_2_28_x86_64" in text
    assert "sdistonly==2.0 on cp313-win_amd64" in text
    assert "sdistonly-2.0.tar.gz" in text


def test_unknown_target_is_a_usage_error() -> None:
    with pytest.raises(Exception, match="unknown target 'cp311-beos'"):
        targets.parse("cp311-beos")


def test_target_order_does_not_matter() -> None:
    a = targets.resolve(["cp312-win_amd64", "cp311-manylinux_2_28_x86_64"])
    b = targets.resolve(["cp311-manylinux_2_28_x86_64", "cp312-win_amd64", "cp312-win_amd64"])
    assert [t.name for t in a] == [t.name for t in b] == ["cp311-manylinux_2_28_x86_64",
                                                         "cp312-win_amd64"]


# Several wheels of one release compete; listed best first for the target. Each suffix of
# a ladder is a lock of its own (the best file gone, then the next...), so every step of
# the target's tag priority is tested against every file below it, whatever the order
# in which the lock lists the files.
LADDERS = {
    "cp311-manylinux_2_28_x86_64": [
        "cp311-cp311-manylinux_2_28_x86_64",
        "cp311-cp311-manylinux_2_5_x86_64.manylinux_2_24_x86_64",  # its best tag counts
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp311-cp311-manylinux2014_x86_64",  # the same glibc level: the alias comes after
        "cp311-cp311-manylinux1_x86_64",
        "cp311-abi3-manylinux_2_28_x86_64",
        "cp39-abi3-manylinux_2_28_x86_64",
        "cp39-abi3-manylinux2014_x86_64",
        "py3-none-manylinux_2_28_x86_64",
        "cp311-none-any",
        "py3-none-any",
    ],
    "cp312-musllinux_1_2_aarch64": [
        "cp312-cp312-musllinux_1_2_aarch64",
        "cp312-cp312-musllinux_1_1_aarch64",
        "cp310-abi3-musllinux_1_2_aarch64",
        "py3-none-musllinux_1_1_aarch64",
        "py3-none-any",
    ],
    "cp311-macosx_14_0_arm64": [
        "cp311-cp311-macosx_14_0_arm64",
        "cp311-cp311-macosx_14_0_universal2",
        "cp311-cp311-macosx_13_0_arm64",
        "cp311-cp311-macosx_11_0_arm64",
        "cp311-cp311-macosx_11_0_universal2",
        "cp311-cp311-macosx_10_9_universal2",
        "cp38-abi3-macosx_11_0_universal2",
        "py3-none-macosx_11_0_arm64",
        "py3-none-any",
    ],
    "cp312-win_amd64": [
        "cp312-cp312-win_amd64",
        "cp312-abi3-win_amd64",
        "cp39-abi3-win_amd64",
        "py312-none-win_amd64",
        "py3-none-win_amd64",
        "cp312-none-any",
        "py312-none-any",
        "py3-none-any",
    ],
}
# Files of the same release that no step of a ladder may ever pick for its target.
NEVER = {
    "cp311-manylinux_2_28_x86_64": ["cp311-cp311-manylinux_2_34_x86_64",
                                    "cp312-cp312-manylinux_2_28_x86_64",
                                    "cp311-cp311-musllinux_1_2_x86_64",
                                    "cp312-abi3-manylinux_2_28_x86_64"],
    "cp312-musllinux_1_2_aarch64": ["cp312-cp312-musllinux_1_3_aarch64",
                                    "cp312-cp312-manylinux_2_17_aarch64"],
    "cp311-macosx_14_0_arm64": ["cp311-cp311-macosx_15_0_arm64",
                                "cp311-cp311-macosx_11_0_x86_64"],
    "cp312-win_amd64": ["cp312-cp312-win32", "cp312-cp312-win_arm64", "cp313-abi3-win_amd64"],
}


@pytest.mark.parametrize("spec", list(LADDERS))
def test_the_best_of_several_competing_wheels_wins_at_every_step(spec: str) -> None:
    target = targets.parse(spec)
    names = [f"comp-1.0-{tag}.whl" for tag in LADDERS[spec]]
    never = [f"comp-1.0-{tag}.whl" for tag in NEVER[spec]]
    for i, best in enumerate(names):
        rest = names[i:] + never
        for order in (rest, rest[::-1]):
            (plan,) = select.plan(lock_of(pkg("comp", "1.0", *order)), [target], set(), set())
            assert [p.file.filename for p in plan.picks] == [best], (spec, i, order)
    with pytest.raises(SelectionError, match=r"comp==1\.0 on "):
        select.plan(lock_of(pkg("comp", "1.0", *never)), [target], set(), set())
