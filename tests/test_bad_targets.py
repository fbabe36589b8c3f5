"""Absurd or misspelt targets are refused at once: exit 2, one line naming spec and fault.

Tag expansion counts down from the level a target names, so `manylinux_2_9999999` once
took gigabytes and `cp311111111` never finished; `x86_65` was taken as a target no wheel
would ever match. Each CLI run here gets a memory ceiling, so a regression fails the
test instead of the machine.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest
from clirun import run_cli

from wheelhouse_bundler.standalone import probe

HASH = "a" * 64
NO_INDEX = "http://127.0.0.1:9/simple/"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))  # 2 GiB


def export_with(tmp_path: Path, *args: object):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"alpha==1.0 --hash=sha256:{HASH}\n")
    return run_cli("export", reqs, "--index-url", NO_INDEX, *args, preexec_fn=_limit_memory)


def assert_refused(done, *says: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for text in says:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize(("spec", "says"), [
    ("cp311-manylinux_2_9999999_x86_64", "glibc minor version 9999999"),
    ("cp311-manylinux_2_" + "9" * 5000 + "_x86_64", "glibc minor version"),
    ("cp311-manylinux_3_28_x86_64", "glibc major version 3"),
    ("cp311-manylinux_2_4_x86_64", "glibc minor version 4"),
    ("cp311-manylinux_2_16_aarch64", "glibc minor version 16"),
    ("cp311-macosx_99999999_0_arm64", "macOS major version 99999999"),
    ("cp311-macosx_10_99999999_x86_64", "macOS minor version 99999999"),
    ("cp311-macosx_9_0_x86_64", "macOS major version 9"),
    ("cp311111111-win_amd64", "Python 3 minor version 11111111"),
    ("cp311-musllinux_1_999999999_x86_64", "musl minor version 999999999"),
    ("cp311-musllinux_2_1_x86_64", "musl major version 2"),
    ("cp311-manylinux_2_28_x86_65", "unknown manylinux architecture 'x86_65'"),
    ("cp311-musllinux_1_2_ppc64", "unknown musllinux architecture 'ppc64'"),
    ("cp311-macosx_14_0_aarch64", "unknown macosx architecture 'aarch64'"),
])
def test_absurd_spec_is_refused_at_once(spec, says, tmp_path, clean_environ) -> None:
    done = export_with(tmp_path, "-t", spec)
    assert_refused(done, f"target '{spec[:40]}", says)
    assert len(done.stderr) < 300  # a pasted megabyte is not echoed back


@pytest.mark.parametrize("spec", ["cp311-manylinux_2_99_x86_64", "cp312-musllinux_1_99_aarch64",
                                  "cp311-macosx_10_16_x86_64", "cp313-macosx_60_0_universal2",
                                  "cp340-manylinux_2_17_s390x"])
def test_specs_at_the_bounds_are_accepted(spec, tmp_path, clean_environ) -> None:
    """The bounds refuse nothing real: these reach the (absent) index, a network error."""
    done = export_with(tmp_path, "-t", spec)
    assert done.returncode == 4, done.stderr
    assert "cannot connect" in done.stderr


def facts(**changes) -> dict:
    """This machine's probe facts with some replaced (as a target file would carry them)."""
    return {**probe.collect(), **changes}


@pytest.mark.parametrize(("doc", "says"), [
    (facts(python_version=[3, 11111111, 0, "final", 0]), "python_version"),
    (facts(libc={"glibc": "2.9999999", "musl": None}), "glibc minor version 9999999"),
    (facts(libc={"glibc": None, "musl": "1.999999999"}), "musl minor version 999999999"),
    (facts(system="Darwin", macos={"release": "99999999.0", "machine": "arm64"}),
     "macOS major version 99999999"),
])
def test_target_file_with_absurd_facts_is_refused(doc, says, tmp_path, clean_environ) -> None:
    path = tmp_path / "bastion.json"
    path.write_text(json.dumps(doc))
    done = export_with(tmp_path, "--target-file", path)
    assert_refused(done, str(path), says)
