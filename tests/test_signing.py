"""Signed bundles end to end: real ssh-keygen keys and signatures, real bundles, real CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import venvs
from clirun import run_cli
from indexserver import IndexServer
from locktext import Pin, hashed_requirements
from wheelfactory import build_wheel

from wheelhouse_bundler import signing
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.errors import UsageError

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
SIGNER = "release@example.com"


@dataclass(frozen=True)
class World:
    root: Path
    index: IndexServer
    reqs: Path
    cache: Path
    key: Path  # the release key (Ed25519, no passphrase)
    other: Path  # a key nobody trusts
    locked: Path  # a key with a passphrase
    allowed: Path  # allowed_signers naming SIGNER with the release key
    signed: Path
    unsigned: Path
    wheels: Path


def keygen(path: Path, passphrase: str = "") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "test key",
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    return path


def fingerprint(pub: Path) -> str:
    """What `ssh-keygen -l` says the key's fingerprint is (the oracle for ours)."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


def allowed_line(principal: str, pub: Path) -> str:
    keytype, blob = pub.read_text().split()[:2]
    return f'{principal} namespaces="wheelhouse-bundler" {keytype} {blob}\n'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One signed and one unsigned bundle of the same lock, built once for the module."""
    root = tmp_path_factory.mktemp("signing")
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp, root)
        mp.delenv("SSH_AUTH_SOCK", raising=False)  # no agent may lend a key to a test
        wheels = root / "wheels"
        alpha = build_wheel(wheels, "alpha", "1.0")
        beta = build_wheel(wheels, "beta", "2.0", requires=["alpha"])
        keys = root / "keys"
        keys.mkdir()
        key, other = keygen(keys / "release"), keygen(keys / "other")
        locked = keygen(keys / "locked", passphrase="correct horse")
        allowed = root / "allowed_signers"
        allowed.write_text(allowed_line(SIGNER, key.with_suffix(".pub")))
        with IndexServer(root / "index", log_dir=root / "index-log") as index:
            index.add(alpha)
            index.add(beta)
            reqs = root / "requirements.txt"
            reqs.write_text(hashed_requirements([Pin("alpha", "1.0", [alpha]),
                                                 Pin("beta", "2.0", [beta])]))
            w = World(root, index, reqs, root / "cache", key, other, locked, allowed,
                      root / "signed" / "app.tar", root / "unsigned" / "app.tar", wheels)
            assert bundle_cmd(w, w.signed, "--sign", key) == 0
            assert bundle_cmd(w, w.unsigned) == 0
            yield w


def bundle_cmd(w: World, out: Path, *extra: object) -> int:
    return main(["bundle", str(w.reqs), "-o", str(out), "--index-url", w.index.url,
                 "--cache-dir", str(w.cache), "-q", *map(str, extra)])


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def copy_bundle(src: Path, dest_dir: Path, sig: bool = True) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".sha256") + ((".sig",) if sig else ()):
        shutil.copy(src.with_name(src.name + suffix), dest_dir / (src.name + suffix))
    return dest_dir / src.name


def test_signed_bundle_verifies_and_names_its_signer(world: World, capsys) -> None:
    sig = world.signed.with_name("app.tar.sig")
    assert sig.read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    assert cli("verify", world.signed, "--allowed-signers", world.allowed,
               "--require-signature", "--json") == 0
    got = json.loads(capsys.readouterr().out)
    assert got["signature"] == {"file": str(sig), "signer": SIGNER, "verified": True,
                                "fingerprint": fingerprint(world.key.with_suffix(".pub"))}
    assert cli("verify", world.signed, "--allowed-signers", world.allowed,
               "--identity", SIGNER) == 0
    assert f"signed by {SIGNER}" in capsys.readouterr().out
    assert cli("verify", world.signed, "--allowed-signers", world.allowed,
               "--identity", "intruder@example.com") == 3
    assert sig.name in capsys.readouterr().err


def test_signature_verifies_with_plain_ssh_keygen(world: World) -> None:
    with open(world.signed, "rb") as data:
        done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(world.allowed),
                               "-I", SIGNER, "-n", "wheelhouse-bundler",
                               "-s", str(world.signed) + ".sig"],
                              stdin=data, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f'Good "wheelhouse-bundler" signature for {SIGNER}' in done.stdout


def test_a_key_not_in_allowed_signers_is_refused(world: World, tmp_path: Path,
                                                 capsys) -> None:
    strangers = tmp_path / "allowed_signers"
    strangers.write_text(allowed_line("ops@example.com", world.other.with_suffix(".pub")))
    assert cli("verify", world.signed, "--allowed-signers", strangers) == 3
    err = capsys.readouterr().err
    assert "app.tar.sig" in err and "unknown signer" in err and len(err.splitlines()) == 1
    # The other way round: the trusted name, but the bundle signed by an untrusted key.
    bundle = copy_bundle(world.unsigned, tmp_path / "resigned", sig=False)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(world.other), "-n",
                    "wheelhouse-bundler", str(bundle)], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    assert cli("verify", bundle, "--allowed-signers", world.allowed) == 3
    assert "app.tar.sig" in capsys.readouterr().err


def test_a_signature_for_another_namespace_is_refused(world: World, tmp_path: Path,
                                                      capsys) -> None:
    bundle = copy_bundle(world.unsigned, tmp_path / "git-sig", sig=False)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(world.key), "-n", "git",
                    str(bundle)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    loose = tmp_path / "allowed_any_namespace"  # the principal may sign in any namespace
    keytype, blob = world.key.with_suffix(".pub").read_text().split()[:2]
    loose.write_text(f"{SIGNER} {keytype} {blob}\n")
    assert cli("verify", bundle, "--allowed-signers", loose) == 3
    assert "namespace" in capsys.readouterr().err


def _swap_wheel(src: Path, dest: Path, filename: str, evil: bytes) -> None:
    """Rebuild the tarball by hand with `filename` replaced by `evil`, and manifest.json,
    SHA256SUMS and the .sha256 sidecar edited to agree: only the signature can tell."""
    with tarfile.open(src) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    top = members[0][0].name.split("/")[0]
    content = {m.name[len(top) + 1:]: data for m, data in members}
    doc = json.loads(content["manifest.json"])
    entry = next(f for f in doc["files"] if f["filename"] == filename)
    entry["sha256"], entry["size"] = hashlib.sha256(evil).hexdigest(), len(evil)
    content["manifest.json"] = json.dumps(doc, indent=2, sort_keys=True).encode()
    content[f"wheels/{filename}"] = evil
    sums = {rel: hashlib.sha256(data).hexdigest() for rel, data in content.items()
            if rel != "SHA256SUMS"}
    content["SHA256SUMS"] = "".join(f"{sums[p]}  {p}\n" for p in sorted(sums)).encode()
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, _ in members:
            rel = member.name[len(top) + 1:]
            info = tarfile.TarInfo(member.name)
            info.size, info.mode, info.mtime = len(content[rel]), 0o644, member.mtime
            tar.addfile(info, io.BytesIO(content[rel]))
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {dest.name}\n")


def test_a_consistently_edited_bundle_is_caught_only_by_the_signature(
        world: World, tmp_path: Path, capsys) -> None:
    evil_dir = tmp_path / "evil-wheels"
    evil = build_wheel(evil_dir, "alpha", "1.0", extra_files={
        "alpha/__init__.py": b"import os\n__version__ = '1.0'  # and something nasty\n"})
    forged = tmp_path / "forged" / "app.tar"
    forged.parent.mkdir()
    _swap_wheel(world.signed, forged, evil.name, evil.read_bytes())
    shutil.copy(str(world.signed) + ".sig", str(forged) + ".sig")

    assert cli("verify", forged) == 0  # every checksum agrees: content checks alone pass
    capsys.readouterr()
    assert cli("verify", forged, "--allowed-signers", world.allowed,
               "--require-signature") == 3
    err = capsys.readouterr().err
    assert "app.tar.sig" in err and "does not verify" in err and len(err.splitlines()) == 1

    venv = tmp_path / "target" / "venv"
    done = run_cli("install", forged, "--venv", venv, "--allowed-signers", world.allowed,
                   "--require-signature")
    assert done.returncode == 3, done.stderr
    assert "app.tar.sig" in done.stderr
    assert not os.path.lexists(venv)
    releases = venv.with_name("venv.releases")
    assert not releases.exists() or list(releases.iterdir()) == []  # nothing extracted remains

    drill = run_cli("rehearse", forged, "--allowed-signers", world.allowed,
                    "--require-signature", "--json", "--no-smoke")
    assert drill.returncode == 3, drill.stderr
    report = json.loads(drill.stdout)
    assert report["ok"] is False and "app.tar.sig" in report["error"]
    assert report["signature"] is None  # refused before any signer could be named


def test_a_signed_restore_rehearsal_passes_and_records_the_signer(world: World) -> None:
    drill = run_cli("rehearse", world.signed, "--allowed-signers", world.allowed,
                    "--require-signature", "--no-smoke")
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert drill.stdout.startswith("# Restore rehearsal: PASS")
    assert f"- signature: signed by {SIGNER}" in drill.stdout


def test_the_signature_is_checked_before_the_contents(world: World, tmp_path: Path,
                                                      capsys) -> None:
    bundle = copy_bundle(world.signed, tmp_path / "damaged")
    with tarfile.open(bundle) as tar:
        wheel = next(m for m in tar.getmembers() if m.name.endswith(".whl"))
    data = bytearray(bundle.read_bytes())
    data[wheel.offset_data + 10] ^= 0xFF
    bundle.write_bytes(bytes(data))
    assert cli("verify", bundle) == 3  # the content check alone names the wheel
    assert wheel.name in capsys.readouterr().err
    assert cli("verify", bundle, "--allowed-signers", world.allowed) == 3
    err = capsys.readouterr().err  # with trust, the signature speaks first
    assert "app.tar.sig" in err and "does not verify" in err and wheel.name not in err


def test_diff_checks_both_signatures(world: World, capsys) -> None:
    assert main(["diff", str(world.signed), str(world.signed), "--json",
                 "--allowed-signers", str(world.allowed)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["old"]["signature"]["signer"] == doc["new"]["signature"]["signer"] == SIGNER
    assert main(["diff", str(world.signed), str(world.unsigned), "--allowed-signers",
                 str(world.allowed), "--require-signature"]) == 3
    err = capsys.readouterr().err
    assert f"{world.unsigned}: unsigned" in err and len(err.splitlines()) == 1


def test_unsigned_bundles_and_the_require_flag(world: World, capsys) -> None:
    assert cli("verify", world.unsigned, "--allowed-signers", world.allowed,
               "--require-signature") == 3
    err = capsys.readouterr().err
    assert "unsigned" in err and "app.tar.sig" in err
    assert cli("verify", world.unsigned, "--allowed-signers", world.allowed, "--json") == 0
    assert json.loads(capsys.readouterr().out)["signature"] is None
    assert cli("verify", world.unsigned, "--require-signature") == 2
    assert "--allowed-signers" in capsys.readouterr().err
    assert cli("verify", world.signed, "--json") == 0  # signed, but nothing to check against
    unchecked = json.loads(capsys.readouterr().out)["signature"]
    assert unchecked["verified"] is False and unchecked["signer"] is None


def test_inspect_shows_the_signer(world: World, capsys) -> None:
    fp = fingerprint(world.key.with_suffix(".pub"))
    assert cli("inspect", world.signed, "--allowed-signers", world.allowed) == 0
    signer_line = next(line for line in capsys.readouterr().out.splitlines()
                       if line.startswith("signer"))
    assert SIGNER in signer_line and fp in signer_line and "verified" in signer_line
    assert cli("inspect", world.signed) == 0
    assert "signed (unchecked)" in capsys.readouterr().out
    assert cli("inspect", world.unsigned) == 0
    assert "signer   unsigned" in capsys.readouterr().out
    assert cli("inspect", world.signed, "--allowed-signers", world.allowed, "--json") == 0
    assert json.loads(capsys.readouterr().out)["signature"]["signer"] == SIGNER
    assert cli("inspect", world.unsigned, "--json") == 0
    assert json.loads(capsys.readouterr().out)["signature"] is None


def test_a_passphrase_key_fails_clearly_and_writes_nothing(world: World, tmp_path: Path,
                                                           capsys) -> None:
    out = tmp_path / "out" / "app.tar"
    assert bundle_cmd(world, out, "--sign", world.locked) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "passphrase" in err and "ssh-agent" in err and str(world.locked) in err
    assert "PRIVATE KEY" not in err and world.locked.read_text().splitlines()[1] not in err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []

    # Past the preflight (the agent went away, say): the finished tarball is removed too.
    bundle = copy_bundle(world.unsigned, tmp_path / "late", sig=False)
    with pytest.raises(UsageError, match="passphrase"):
        signing.sign_bundle(bundle, world.locked)
    assert list(bundle.parent.iterdir()) == []


def test_a_missing_key_is_a_usage_error(world: World, tmp_path: Path, capsys) -> None:
    out = tmp_path / "app.tar"
    assert bundle_cmd(world, out, "--sign", tmp_path / "no-such-key") == 2
    assert "no-such-key" in capsys.readouterr().err
    assert not out.exists()


def test_a_file_that_is_no_key_is_named_before_any_download(world: World, tmp_path: Path
                                                             ) -> None:
    not_a_key = tmp_path / "id_ed25519"
    not_a_key.write_text("hello, I am a text file\n")
    out = tmp_path / "out" / "app.tar"
    # A dead index and an empty cache: asking for anything would be a network error.
    done = run_cli("bundle", world.reqs, "-o", out, "--sign", not_a_key, "--index-url",
                   "http://127.0.0.1:9/simple/", "--cache-dir", tmp_path / "cache")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"wheelhouse-bundler: error: {not_a_key}: not an SSH "
                                   "private or public key")
    assert not out.parent.exists() and not (tmp_path / "cache").exists()


def test_a_folder_in_the_signature_s_place_leaves_no_bundle(world: World, tmp_path: Path
                                                            ) -> None:
    out = tmp_path / "out" / "app.tar"
    (tmp_path / "out" / "app.tar.sig").mkdir(parents=True)
    done = run_cli("bundle", world.reqs, "-o", out, "--sign", world.key, "--index-url",
                   world.index.url, "--cache-dir", world.cache)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"wheelhouse-bundler: error: {out}.sig: Is a directory"
    assert [p.name for p in out.parent.iterdir()] == ["app.tar.sig"]


def test_an_unsigned_rebuild_removes_a_stale_signature(world: World, tmp_path: Path) -> None:
    out = copy_bundle(world.signed, tmp_path / "rebuild")
    assert bundle_cmd(world, out) == 0
    assert out.is_file() and not out.with_name("app.tar.sig").exists()
    assert bundle_cmd(world, out, "--sign", world.key) == 0
    assert out.with_name("app.tar.sig").read_bytes() \
        .startswith(b"-----BEGIN SSH SIGNATURE-----")


@pytest.mark.skipif(shutil.which("ssh-agent") is None, reason="needs ssh-agent")
def test_a_passphrase_key_held_by_ssh_agent_signs_through_its_pub(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "agent.sock"
    started = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True,
                             text=True, check=True).stdout
    pid = int(started.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        askpass = tmp_path / "askpass"
        askpass.write_text("#!/bin/sh\necho 'correct horse'\n")
        askpass.chmod(0o700)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS": str(askpass),
               "SSH_ASKPASS_REQUIRE": "force"}
        subprocess.run(["ssh-add", str(world.locked)], env=env, check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        bundle = copy_bundle(world.unsigned, tmp_path / "agent", sig=False)
        made = signing.sign_bundle(bundle, world.locked.with_suffix(".pub"))
        assert made.fingerprint == fingerprint(world.locked.with_suffix(".pub"))
        allowed = tmp_path / "allowed_signers"
        allowed.write_text(allowed_line("agent@example.com", world.locked.with_suffix(".pub")))
        checked = signing.check(bundle, signing.Trust(allowed, require=True))
        assert checked is not None and checked.verified and checked.signer == "agent@example.com"
    finally:
        os.kill(pid, signal.SIGTERM)


def test_the_signing_key_is_read_from_the_signature_itself(world: World) -> None:
    armored = (world.signed.with_name("app.tar.sig")).read_bytes()
    want = fingerprint(world.key.with_suffix(".pub"))
    assert signing.fingerprint_of(armored) == want
    assert signing.fingerprint_of(armored.replace(b"\n", b"\r\n")) == want  # copied via Windows
    assert signing.fingerprint_of(b"not a signature\n") is None
    assert signing.fingerprint_of(armored.replace(b"U1NIU0lH", b"WFNIU0lH")) is None  # no magic
