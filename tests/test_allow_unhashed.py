"""--allow-unhashed: a lock without hashes is refused, unless the user accepts the index's.

Hashes are what makes a lock exact, so every reader refuses a package without one. The
escape hatch takes the wheels of the pinned version with the sha256 the index lists, and
the manifest says which files were trusted that way.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from locktext import Pin, poetry_lock
from wheelfactory import sha256_of

from wheelhouse_bundler.cli import main

LINUX = "cp311-manylinux_2_28_x86_64"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def _poetry_lock_without_hash(alpha: Path, beta: Path) -> str:
    """alpha's file recorded without a hash, beta's with one."""
    return poetry_lock([Pin("alpha", "1.0", [], extra_files={alpha.name: ""}),
                        Pin("beta", "2.0", [beta])])


def test_unhashed_requirements_refused_then_bundled_with_the_index_hash(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    alpha = wheel_factory("alpha", "1.0")
    alpha_old = wheel_factory("alpha", "0.9")
    beta = wheel_factory("beta", "2.0")
    for w in (alpha, alpha_old, beta):
        index_server.add(w)
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"alpha==1.0\nbeta==2.0 --hash=sha256:{sha256_of(beta)}\n")
    out = tmp_path / "app.tar"
    common = ["-t", LINUX, "--index-url", index_server.url, "--cache-dir", tmp_path / "c"]

    assert cli("bundle", lock, "-o", out, *common) == 2
    err = capsys.readouterr().err
    assert "cannot be installed from requirements.txt on the targets that need them" in err
    assert (f"alpha ==1.0 on {LINUX}: has no --hash (hashes are the lock; compile it again "
            "with --generate-hashes, or pass --allow-unhashed) (requirements.txt, "
            "line 1)") in err
    assert not out.exists()

    assert cli("bundle", lock, "-o", out, *common, "--allow-unhashed", "-q") == 0
    capsys.readouterr()
    assert cli("inspect", out, "--json") == 0
    files = {f["name"]: f for f in json.loads(capsys.readouterr().out)["packages"]}
    assert files["alpha"]["sha256"] == sha256_of(alpha)  # 1.0 only, not 0.9
    assert files["alpha"]["hash_from_index"] is True
    assert files["beta"]["hash_from_index"] is False
    with tarfile.open(out) as tar:
        top = tar.getnames()[0].split("/")[0]
        reqs = tar.extractfile(f"{top}/targets/{LINUX}/requirements.txt").read().decode()
    assert f"alpha==1.0 --hash=sha256:{sha256_of(alpha)}" in reqs.replace(" \\\n   ", "")


def test_unhashed_poetry_file_uses_the_index_hash_and_export_shows_it(
        tmp_path, index_server, wheel_factory, clean_environ, capsys) -> None:
    alpha = wheel_factory("alpha", "1.0")
    beta = wheel_factory("beta", "2.0")
    for w in (alpha, beta):
        index_server.add(w)
    root = tmp_path / "project"
    root.mkdir()
    (root / "poetry.lock").write_text(_poetry_lock_without_hash(alpha, beta))
    common = ["-t", LINUX, "--index-url", index_server.url]

    assert cli("export", root, *common) == 2
    err = capsys.readouterr().err
    assert "cannot be installed from poetry.lock on the targets that need them" in err
    assert (f"alpha 1.0 on {LINUX}: file {alpha.name!r} has no sha256 hash (hashes are the "
            "lock; run `poetry lock` again, or pass --allow-unhashed)") in err

    assert cli("export", root, *common, "--allow-unhashed") == 0
    text = capsys.readouterr().out
    assert sha256_of(alpha) in text and sha256_of(beta) in text


def test_allow_unhashed_cannot_work_offline(tmp_path, index_server, wheel_factory,
                                            clean_environ, capsys) -> None:
    index_server.add(wheel_factory("alpha", "1.0"))
    lock = tmp_path / "requirements.txt"
    lock.write_text("alpha==1.0\n")
    assert cli("bundle", lock, "-o", tmp_path / "a.tar", "-t", LINUX, "--index-url",
               index_server.url, "--cache-dir", tmp_path / "c", "--offline",
               "--allow-unhashed") == 4
    assert "no hash in the lock" in capsys.readouterr().err
