"""`delta OLD NEW` and `merge OLD DELTA`: real bundles of three releases of a lock (built
by the real `bundle` command against a real index), sent as deltas and rebuilt byte for
byte, and every refusal leaving nothing at the output path."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import venvs
from bundles import make_bundle
from clirun import cli_offline, run_cli
from indexserver import IndexServer
from test_signing import allowed_line, keygen
from test_target_side import NETWORK
from wheelfactory import build_wheel

from wheelhouse_bundler import delta as delta_mod
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.errors import IntegrityError

PAYLOAD = 150_000  # bytes of incompressible payload per wheel: sizes worth comparing
SIGNER = "release@example.com"
RELEASES = {
    # v2: alpha and beta changed, fresh added, gamma and stable kept.
    # v3: gamma changed, the rest as in v2.
    "v1": [("alpha", "1.0"), ("beta", "2.0"), ("gamma", "1.0"), ("stable", "1.0")],
    "v2": [("alpha", "1.1"), ("beta", "2.1"), ("fresh", "1.0"), ("gamma", "1.0"),
           ("stable", "1.0")],
    "v3": [("alpha", "1.1"), ("beta", "2.1"), ("fresh", "1.0"), ("gamma", "1.1"),
           ("stable", "1.0")],
}


@dataclass(frozen=True)
class World:
    root: Path
    wheels: dict[tuple[str, str], Path]
    bundles: dict[str, Path]  # "v1", "v2", "v3", their .tar.gz twins "v1.gz"..., "v2.signed"
    key: Path
    allowed: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("delta")
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp, root)
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        mp.delenv("SSH_AUTH_SOCK", raising=False)
        wheels = {(n, v): build_wheel(root / "wheels", n, v, payload_size=PAYLOAD)
                  for n, v in sorted({p for pins in RELEASES.values() for p in pins})}
        key = keygen(root / "release")
        allowed = root / "allowed_signers"
        allowed.write_text(allowed_line(SIGNER, key.with_suffix(".pub")))
        made: dict[str, Path] = {}
        (root / "build").mkdir()
        (root / "signed").mkdir()
        with IndexServer(root / "index", log_dir=root / "index-log") as index:
            for name, pins in RELEASES.items():
                files = [wheels[p] for p in pins]
                made[name] = make_bundle(root / "build" / f"app-{name}.tar", files, index,
                                         root / "cache")
                made[f"{name}.gz"] = make_bundle(root / "build" / f"app-{name}.tar.gz", files,
                                                 index, root / "cache")
            made["v2.signed"] = make_bundle(root / "signed" / "app-v2.tar",
                                            [wheels[p] for p in RELEASES["v2"]], index,
                                            root / "cache", "--sign", str(key))
        yield World(root, wheels, made, key, allowed)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def delta(w: World, old: str, new: str, out: Path, *extra: object) -> Path:
    assert main(["delta", str(w.bundles[old]), str(w.bundles[new]), "-o", str(out), "-q",
                 *map(str, extra)]) == 0
    return out


def names_in(tar: Path) -> list[str]:
    with tarfile.open(tar) as tf:
        return [m.name.split("/", 1)[1] for m in tf.getmembers()]


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_chain_of_deltas_rebuilds_each_release_byte_for_byte(world: World, tmp_path: Path,
                                                                capsys) -> None:
    """v1 crosses whole; v2 and v3 cross as deltas and come out as the very bundles
    built, sidecar beside them, and verify and merge on as the next base."""
    d12 = delta(world, "v1", "v2", tmp_path / "build" / "d12.tar")
    d23 = delta(world, "v2", "v3", tmp_path / "build" / "d23.tar")
    target = tmp_path / "target"
    target.mkdir()
    v1 = Path(shutil.copy(world.bundles["v1"], target / "app-v1.tar"))

    assert main(["merge", str(v1), str(d12), "-o", str(target / "app-v2.tar"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    v2 = target / "app-v2.tar"
    assert v2.read_bytes() == world.bundles["v2"].read_bytes()
    assert got["sha256"] == sha256(world.bundles["v2"]) == sha256(v2)
    assert (got["reused"], got["carried"]) == (2, len(names_in(d12)) - 1)  # - delta.json
    assert (target / "app-v2.tar.sha256").read_text() == f"{got['sha256']}  app-v2.tar\n"

    assert main(["merge", str(v2), str(d23), "-o", str(target / "app-v3.tar")]) == 0
    v3 = target / "app-v3.tar"
    assert v3.read_bytes() == world.bundles["v3"].read_bytes()
    assert "byte for byte" in capsys.readouterr().err
    done = cli_offline("verify", v3)
    assert done.returncode == 0 and "sha256" not in done.stderr, done.stderr
    assert left_in(target) == ["app-v1.tar", "app-v2.tar", "app-v2.tar.sha256",
                               "app-v3.tar", "app-v3.tar.sha256"]
    # ...and the merged release restores offline, as the bundle that crossed whole would.
    venv = tmp_path / "venv"
    done = cli_offline("install", v3, "--venv", venv, "--json", env=venvs.clean_env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["packages"] > 0


def test_the_delta_carries_only_new_wheels_and_says_what_it_saved(world: World,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "d12.tar"
    done = run_cli("delta", world.bundles["v1"], world.bundles["v2"], "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    new_wheels = [world.wheels[p] for p in RELEASES["v2"] if p not in RELEASES["v1"]]
    kept = [world.wheels[p] for p in RELEASES["v2"] if p in RELEASES["v1"]]
    carried = [n for n in names_in(out) if n.startswith("carried/wheels/")]
    assert sorted(carried) == sorted(f"carried/wheels/{p.name}" for p in new_wheels)
    assert doc["reused"] == {"files": 2, "bytes": sum(p.stat().st_size for p in kept)}
    assert doc["new"]["sha256"] == sha256(world.bundles["v2"])
    assert doc["saved_bytes"] == world.bundles["v2"].stat().st_size - out.stat().st_size
    assert doc["sha256"] == sha256(out) and doc["signature"] is False
    # Everything of NEW but its wheels is carried: manifest, sums, install.py, SBOM, ...
    small = [n for n in names_in(world.bundles["v2"]) if not n.startswith("wheels/")]
    assert [n.removeprefix("carried/") for n in names_in(out) if n.startswith("carried/")
            and not n.startswith("carried/wheels/")] == small
    # No larger than its new wheels, NEW's small files and a little framing: a tar header
    # (and pax record) per member, delta.json, and tar's padding to a 10 KiB record.
    with tarfile.open(world.bundles["v2"]) as tf:
        small_bytes = sum(m.size for m in tf.getmembers() if "/wheels/" not in m.name)
    wheel_bytes = sum(p.stat().st_size for p in new_wheels)
    assert out.stat().st_size <= wheel_bytes + small_bytes + 32 * 1024
    # ...so it saves the reused wheels' bytes, less that framing.
    assert out.stat().st_size <= world.bundles["v2"].stat().st_size - sum(
        p.stat().st_size for p in kept) + 32 * 1024
    again = tmp_path / "again" / "d12.tar"
    human = run_cli("delta", world.bundles["v1"], world.bundles["v2"], "-o", again)
    assert human.returncode == 0
    assert f"2 files reused from app-v1.tar, {doc['carried']['files']} files carried, " \
           f"{doc['saved_bytes'] / 1e6:.1f} MB saved" in human.stderr
    assert again.read_bytes() == out.read_bytes()  # deterministic too


def test_an_old_bundle_lacking_needed_wheels_is_refused_by_name(world: World,
                                                                tmp_path: Path) -> None:
    """d23 takes alpha 1.1, beta 2.1 and fresh from v2; v1 has none of them."""
    d23 = delta(world, "v2", "v3", tmp_path / "d23.tar")
    target = tmp_path / "target"
    target.mkdir()
    done = cli_offline("merge", world.bundles["v1"], d23, "-o", target / "app-v3.tar")
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "lacks 3 wheel(s) the delta needs" in done.stderr
    for name in ("alpha-1.1-py3-none-any.whl", "beta-2.1-py3-none-any.whl",
                 "fresh-1.0-py3-none-any.whl"):
        assert name in done.stderr
    assert "made against app-v2.tar" in done.stderr
    assert left_in(target) == []  # no bundle, no sidecar, no staging folder


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def member_offset(tar: Path, suffix: str) -> tuple[int, int]:
    """(data offset, size) of the member whose name ends with `suffix`."""
    with tarfile.open(tar) as tf:
        m = next(m for m in tf.getmembers() if m.name.endswith(suffix))
        return m.offset_data, m.size


def test_a_flipped_byte_in_the_delta_is_refused(world: World, tmp_path: Path) -> None:
    d12 = delta(world, "v1", "v2", tmp_path / "d12.tar")
    out = tmp_path / "target" / "app-v2.tar"
    out.parent.mkdir()
    out.write_bytes(b"an older file at the output path\n")

    # In a carried wheel, no sidecar to help: the member's own hash refuses it.
    wheel = tmp_path / "wheel" / "d12.tar"
    wheel.parent.mkdir()
    shutil.copy(d12, wheel)
    start, size = member_offset(wheel, "/carried/wheels/fresh-1.0-py3-none-any.whl")
    flip(wheel, start + size // 2)
    done = run_cli("merge", world.bundles["v1"], wheel, "-o", out)
    assert done.returncode == 3, done.stderr
    assert "fresh-1.0-py3-none-any.whl" in done.stderr and "sha256" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

    # In delta.json's record of NEW's sha256: only the rebuilt result can tell.
    record = tmp_path / "record" / "d12.tar"
    record.parent.mkdir()
    shutil.copy(d12, record)
    start, size = member_offset(record, "/delta.json")
    text = record.read_bytes()[start:start + size]
    at = start + text.index(sha256(world.bundles["v2"]).encode()) + 10
    data = bytearray(record.read_bytes())
    data[at] = ord("1") if data[at] == ord("0") else ord("0")  # still a sha256, another one
    record.write_bytes(bytes(data))
    done = run_cli("merge", world.bundles["v1"], record, "-o", out)
    assert done.returncode == 3, done.stderr
    assert "the rebuilt app-v2.tar has sha256" in done.stderr
    assert sha256(world.bundles["v2"]) in done.stderr  # what it actually rebuilt

    # With the delta's sidecar beside it, the sidecar refuses a change anywhere.
    shutil.copy(d12.with_name("d12.tar.sha256"), record.with_name("d12.tar.sha256"))
    assert run_cli("merge", world.bundles["v1"], record, "-o", out).returncode == 3

    assert out.read_bytes() == b"an older file at the output path\n"
    assert left_in(out.parent) == ["app-v2.tar"]


def test_a_signed_release_still_verifies_after_the_merge(world: World, tmp_path: Path,
                                                         capsys) -> None:
    signed = world.bundles["v2.signed"]
    trust = ["--allowed-signers", world.allowed, "--require-signature"]
    d = delta(world, "v1", "v2.signed", tmp_path / "d12s.tar", *trust)
    assert "new.sig" in names_in(d)
    out = tmp_path / "target" / "app-v2.tar"
    assert main(["merge", str(world.bundles["v1"]), str(d), "-o", str(out), "--json",
                 *map(str, trust)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["signature"]["verified"] is True and got["signature"]["signer"] == SIGNER
    assert got["signature"]["file"] == str(out) + ".sig"
    assert out.read_bytes() == signed.read_bytes()
    assert (out.parent / "app-v2.tar.sig").read_bytes() == \
        signed.with_name("app-v2.tar.sig").read_bytes()
    done = run_cli("verify", out, *trust)
    assert done.returncode == 0 and f"signed by {SIGNER}" in done.stdout, done.stderr

    # An unsigned release cannot pass --require-signature by crossing as a delta.
    plain = delta(world, "v1", "v2", tmp_path / "d12.tar")
    again = tmp_path / "again" / "app-v2.tar"
    done = run_cli("merge", world.bundles["v1"], plain, "-o", again, *trust)
    assert done.returncode == 3 and "--require-signature" in done.stderr, done.stderr
    assert not again.parent.exists() or left_in(again.parent) == []


def test_a_signature_that_does_not_verify_leaves_nothing(world: World,
                                                         tmp_path: Path) -> None:
    d = delta(world, "v1", "v2.signed", tmp_path / "d12s.tar")
    strangers = tmp_path / "allowed_signers"
    other = keygen(tmp_path / "other")
    strangers.write_text(allowed_line("ops@example.com", other.with_suffix(".pub")))
    out = tmp_path / "target" / "app-v2.tar"
    done = run_cli("merge", world.bundles["v1"], d, "-o", out, "--allowed-signers", strangers)
    assert done.returncode == 3, done.stderr
    assert str(out) + ".sig" in done.stderr and ".merge" not in done.stderr
    assert left_in(out.parent) == []


def test_gzip_bundles_round_trip_too(world: World, tmp_path: Path) -> None:
    d = delta(world, "v1.gz", "v2.gz", tmp_path / "d12.tar.gz")
    out = tmp_path / "target" / "app-v2.tar.gz"
    assert main(["merge", str(world.bundles["v1.gz"]), str(d), "-o", str(out), "-q"]) == 0
    assert out.read_bytes() == world.bundles["v2.gz"].read_bytes()
    # The output's name must say what the bytes are.
    done = run_cli("merge", world.bundles["v1.gz"], d, "-o", tmp_path / "plain" / "app.tar")
    assert done.returncode == 2 and "a .tar.gz bundle" in done.stderr, done.stderr


def test_merge_runs_offline_and_loads_no_network_code(world: World, tmp_path: Path) -> None:
    d = delta(world, "v1", "v2", tmp_path / "d12.tar")
    out = tmp_path / "target" / "app-v2.tar"
    code = ("import json, sys\n"
            "from wheelhouse_bundler.cli import main\n"
            f"code = main(['merge', {str(world.bundles['v1'])!r}, {str(d)!r}, '-o', "
            f"{str(out)!r}, '-q'])\n"
            "print(json.dumps([code, sorted(sys.modules)]))")
    prefix = ["unshare", "-n"] if shutil.which("unshare") else []
    done = subprocess.run([*prefix, sys.executable, "-I", "-c", code], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0 and prefix:  # no namespace here: the import check still holds
        done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                              text=True, check=False)
    assert done.returncode == 0, done.stderr
    exit_code, loaded = json.loads(done.stdout)
    assert exit_code == 0
    assert [m for m in loaded if m in NETWORK or m.split(".")[0] in NETWORK] == []
    assert out.read_bytes() == world.bundles["v2"].read_bytes()


def test_the_delta_side_refuses_a_damaged_new_bundle(world: World, tmp_path: Path) -> None:
    new = tmp_path / "app-v2.tar"
    shutil.copy(world.bundles["v2"], new)
    start, size = member_offset(new, "/wheels/fresh-1.0-py3-none-any.whl")
    flip(new, start + size // 2)
    done = run_cli("delta", world.bundles["v1"], new, "-o", tmp_path / "out" / "d.tar")
    assert done.returncode == 3, done.stderr
    assert "new bundle" in done.stderr or str(new) in done.stderr
    assert not (tmp_path / "out").exists() or left_in(tmp_path / "out") == []


def test_a_delta_with_a_link_or_an_unlisted_member_is_refused(world: World,
                                                               tmp_path: Path) -> None:
    """The delta is read with the bundle's strict checks: regular files only, and only
    the members its delta.json lists."""
    d = delta(world, "v1", "v2", tmp_path / "d12.tar")
    for case, extra in (("link", tarfile.SYMTYPE), ("unlisted", tarfile.REGTYPE)):
        bad = tmp_path / case / "d12.tar"
        bad.parent.mkdir()
        with tarfile.open(d) as src, tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as dst:
            for m in src.getmembers():
                dst.addfile(m, src.extractfile(m))
            info = tarfile.TarInfo("d12/carried/extra")
            info.type = extra
            info.linkname = "/etc/passwd" if extra == tarfile.SYMTYPE else ""
            dst.addfile(info, None if extra == tarfile.SYMTYPE else io.BytesIO())
        out = tmp_path / case / "out" / "app-v2.tar"
        done = run_cli("merge", world.bundles["v1"], bad, "-o", out)
        assert done.returncode == 3, done.stderr
        assert ("a symlink, not allowed" if case == "link" else "not in the delta.json") \
            in done.stderr
        assert not out.parent.exists() or left_in(out.parent) == []


def test_delta_json_with_an_unsafe_path_is_refused() -> None:
    doc = {"delta_format": 1, "tool": {"name": "wheelhouse-bundler", "version": "0"},
           "new": {"name": "app.tar", "sha256": "0" * 64, "size": 1, "tar_sha256": "0" * 64,
                   "top": "app", "mtime": 0, "compression": "none", "zlib": "1"},
           "base": {"name": "old.tar", "sha256": "1" * 64}, "signature": None,
           "members": [{"path": "../evil", "size": 1, "sha256": "2" * 64, "from": "delta"}]}
    with pytest.raises(IntegrityError, match=r"path '\.\./evil'"):
        delta_mod.from_json(json.dumps(doc).encode())
    doc["members"][0]["path"] = "ok"
    assert delta_mod.from_json(json.dumps(doc).encode()).entries[0].path == "ok"
    doc["new"]["top"] = "a/b"
    with pytest.raises(IntegrityError, match="top folder"):
        delta_mod.from_json(json.dumps(doc).encode())


def test_choose_reuses_only_wheels_the_old_bundle_has() -> None:
    e = [delta_mod.Entry("manifest.json", 1, "a" * 64, True),
         delta_mod.Entry("wheels/x.whl", 5, "b" * 64, True),
         delta_mod.Entry("wheels/y.whl", 5, "c" * 64, True)]
    reusable = {"wheels/x.whl": "b" * 64, "wheels/y.whl": "c" * 64}
    got = delta_mod.choose(e, reusable, have={"a" * 64, "b" * 64})
    assert [x.carried for x in got] == [True, False, True]
