"""`diff OLD NEW`: two real bundles from two versions of a lock, compared per target."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import venvs
from clirun import run_cli
from indexserver import IndexServer
from locktext import Pin, hashed_requirements
from wheelfactory import build_wheel

from wheelhouse_bundler.cli import main
from wheelhouse_bundler.diff import compare
from wheelhouse_bundler.model import Manifest, ManifestFile, ManifestTarget

LINUX, WIN, MAC, WIN312 = ("cp311-manylinux_2_28_x86_64", "cp311-win_amd64",
                           "cp311-macosx_14_0_arm64", "cp312-win_amd64")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """v1 and v2 of a lock: alpha upgraded, gone removed, fresh added, a platform-only
    package on each side, a target dropped (mac) and one added (cp312 Windows)."""
    root = tmp_path_factory.mktemp("diff")
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp, root)
        d = root / "wheels"
        w = {(n, v): build_wheel(d, n, v) for n, v in [
            ("alpha", "1.0"), ("alpha", "1.1"), ("beta", "2.0"), ("gone", "1.0"),
            ("fresh", "1.0"), ("winonly", "1.0"), ("winonly", "1.1"), ("linuxonly", "1.0")]}
        win = 'sys_platform == "win32"'
        v1 = [Pin("alpha", "1.0", [w["alpha", "1.0"]]), Pin("beta", "2.0", [w["beta", "2.0"]]),
              Pin("gone", "1.0", [w["gone", "1.0"]]),
              Pin("winonly", "1.0", [w["winonly", "1.0"]], markers=win)]
        v2 = [Pin("alpha", "1.1", [w["alpha", "1.1"]]), Pin("beta", "2.0", [w["beta", "2.0"]]),
              Pin("fresh", "1.0", [w["fresh", "1.0"]]),
              Pin("winonly", "1.1", [w["winonly", "1.1"]], markers=win),
              Pin("linuxonly", "1.0", [w["linuxonly", "1.0"]],
                  markers='sys_platform == "linux"')]
        with IndexServer(root / "index", log_dir=root / "index-log") as index:
            for wheel in w.values():
                index.add(wheel)
            made = []
            for name, pins, targets in (("v1", v1, (LINUX, WIN, MAC)),
                                        ("v2", v2, (LINUX, WIN, WIN312))):
                reqs = root / f"{name}.txt"
                reqs.write_text(hashed_requirements(pins))
                out = root / f"app-{name}.tar"
                flags = [f for t in targets for f in ("-t", t)]
                assert main(["bundle", str(reqs), "-o", str(out), "--index-url", index.url,
                             "--cache-dir", str(root / "cache"), "-q", *flags]) == 0
                made.append(out)
        yield made[0], made[1]


def names(entries: list[dict]) -> list[tuple[str, str]]:
    return [(e["name"], e["version"]) for e in entries]


def test_diff_json_per_target(bundles: tuple[Path, Path], capsys) -> None:
    old, new = bundles
    assert main(["diff", str(old), str(new), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["old"]["bundle"] == str(old) and doc["new"]["bundle"] == str(new)
    assert doc["old"]["sha256"] != doc["new"]["sha256"] and doc["identical"] is False
    by = {t["target"]: t for t in doc["targets"]}
    assert sorted(by) == sorted([LINUX, WIN, MAC, WIN312])

    linux = by[LINUX]
    assert linux["status"] == "changed"
    assert names(linux["added"]) == [("fresh", "1.0"), ("linuxonly", "1.0")]
    assert names(linux["removed"]) == [("gone", "1.0")]
    assert [(c["name"], c["old"]["version"], c["new"]["version"], c["direction"], c["fields"])
            for c in linux["changed"]] == [("alpha", "1.0", "1.1", "upgrade",
                                            ["version", "sha256"])]
    alpha = linux["changed"][0]
    assert alpha["new"]["filename"] == "alpha-1.1-py3-none-any.whl"
    assert len(alpha["old"]["sha256"]) == 64 != alpha["new"]["sha256"]

    win = by[WIN]
    assert names(win["added"]) == [("fresh", "1.0")]
    assert names(win["removed"]) == [("gone", "1.0")]
    assert [(c["name"], c["new"]["version"]) for c in win["changed"]] == [("alpha", "1.1"),
                                                                          ("winonly", "1.1")]
    assert by[MAC]["status"] == "removed" and by[MAC]["added"] == []
    assert names(by[MAC]["removed"]) == [("alpha", "1.0"), ("beta", "2.0"), ("gone", "1.0")]
    assert by[WIN312]["status"] == "added" and by[WIN312]["removed"] == []
    assert names(by[WIN312]["added"]) == [("alpha", "1.1"), ("beta", "2.0"), ("fresh", "1.0"),
                                          ("winonly", "1.1")]


def test_diff_text_for_a_change_review(bundles: tuple[Path, Path], capsys) -> None:
    old, new = bundles
    assert main(["diff", str(old), str(new)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"--- {old}") and lines[1].startswith(f"+++ {new}")
    section = lines[lines.index(f"target {LINUX}: 2 added, 1 removed, 1 changed"):]
    assert section[1:5] == [
        "  + fresh 1.0  fresh-1.0-py3-none-any.whl",
        "  + linuxonly 1.0  linuxonly-1.0-py3-none-any.whl",
        "  - gone 1.0  gone-1.0-py3-none-any.whl",
        "  ~ alpha 1.0 -> 1.1 (upgrade)  alpha-1.1-py3-none-any.whl"]
    assert f"target {MAC} (only in app-v1.tar): 0 added, 3 removed, 0 changed" in lines
    assert f"target {WIN312} (only in app-v2.tar): 4 added, 0 removed, 0 changed" in lines


def test_a_bundle_against_itself_is_identical(bundles: tuple[Path, Path], capsys) -> None:
    old, _ = bundles
    assert main(["diff", str(old), str(old), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["identical"] is True
    assert {t["status"] for t in doc["targets"]} == {"same"}


def test_bad_input_is_not_a_report(bundles: tuple[Path, Path], tmp_path: Path,
                                   capsys) -> None:
    old, _ = bundles
    assert main(["diff", str(old), str(tmp_path / "missing.tar")]) == 2
    assert "missing.tar" in capsys.readouterr().err
    broken = tmp_path / "broken.tar"
    with tarfile.open(old) as tar:
        wheel = next(m for m in tar.getmembers() if m.name.endswith(".whl"))
    data = bytearray(old.read_bytes())
    data[wheel.offset_data + 10] ^= 0xFF  # inside a wheel
    broken.write_bytes(bytes(data))
    assert main(["diff", str(old), str(broken)]) == 3
    assert "broken.tar" in capsys.readouterr().err


def _manifest(*files: tuple[str, str, str]) -> Manifest:
    return Manifest(1, "0", "requirements.txt", "requirements", "0" * 64, (), (),
                    (ManifestTarget("host", {}),),
                    tuple(ManifestFile(f"{n}-{v}-py3-none-any.whl", sha, 1, n, v, "", ("host",))
                          for n, v, sha in files))


def test_same_version_with_other_bytes_is_a_rebuild() -> None:
    old = _manifest(("Alpha", "1.0", "a" * 64), ("beta", "2.0", "b" * 64))
    new = _manifest(("alpha", "1.0", "c" * 64), ("beta", "1.9", "d" * 64))
    (host,) = compare(old, new)
    assert host.status == "changed" and host.added == () and host.removed == ()
    rebuilt, downgraded = host.changed
    assert (rebuilt.new.name, rebuilt.direction, rebuilt.fields) == ("alpha", "rebuild",
                                                                     ("sha256",))
    assert (downgraded.direction, downgraded.fields) == ("downgrade", ("version", "sha256"))


def test_diff_as_its_own_process(bundles: tuple[Path, Path], tmp_path: Path) -> None:
    """What an operator runs in review: exit 0 whatever differs, the report on stdout;
    a bundle that is not there is exit 2 and one line, not a report."""
    old, new = bundles
    done = run_cli("diff", old, new, "--json")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    doc = json.loads(done.stdout)
    assert {t["target"]: t["status"] for t in doc["targets"]} == {
        LINUX: "changed", WIN: "changed", MAC: "removed", WIN312: "added"}
    assert doc["identical"] is False
    missing = run_cli("diff", old, tmp_path / "missing.tar")
    assert missing.returncode == 2 and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1 and "missing.tar" in missing.stderr
