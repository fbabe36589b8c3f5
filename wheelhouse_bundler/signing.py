"""SSH signatures over a bundle, made and checked by ssh-keygen (`-Y sign` / `-Y verify`).

Operators already hold SSH keys and bastions already have ssh-keygen, so an SSHSIG
signature needs no new trust machinery, and anyone can check one with plain ssh-keygen.
ssh-keygen reads the tarball itself in both directions: this process never holds it.

ssh-keygen never prompts here: stdin is /dev/null, it runs without a controlling
terminal and with askpass refused, so a key that needs a passphrase fails at once with
a clear error instead of hanging a build job (load it into ssh-agent and pass its .pub).
Key paths are paths, not secrets; no key material is ever read or printed by us.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .bundle import sidecar_path
from .errors import IntegrityError, UsageError
from .files import atomic_output
from .options import Trust

NAMESPACE = "wheelhouse-bundler"
"""The SSHSIG namespace: a signature made for anything else (git, files) never passes."""
MAX_SIG = 64 * 1024
_ARMOR = ("-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----")
_NO_PROMPT_ENV_DROP = ("DISPLAY", "WAYLAND_DISPLAY", "SSH_ASKPASS")


@dataclass(frozen=True)
class Signature:
    """A bundle's `.sig`: who signed it, and whether that was checked against trust."""

    path: Path
    fingerprint: str | None  # of the key named inside the signature
    signer: str | None = None  # the allowed_signers principal, once verified
    verified: bool = False

    def to_json(self) -> dict[str, object]:
        return {"file": str(self.path), "signer": self.signer,
                "fingerprint": self.fingerprint, "verified": self.verified}

    def describe(self) -> str:
        if self.verified:
            return f"signed by {self.signer} ({self.fingerprint}), verified"
        key = f" by key {self.fingerprint}" if self.fingerprint else ""
        return f"signed (unchecked){key}: give --allowed-signers to check it"


def sig_path(bundle: Path) -> Path:
    return bundle.with_name(bundle.name + ".sig")


def _ssh_keygen() -> str:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise UsageError("ssh-keygen not found on PATH: signatures need OpenSSH 8.2 or newer")
    return exe


def _run(args: list[str], stdin: object = subprocess.DEVNULL,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """ssh-keygen with no way to ask anyone anything (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k not in _NO_PROMPT_ENV_DROP}
    env["SSH_ASKPASS_REQUIRE"] = "never"
    exe = _ssh_keygen()
    try:
        return subprocess.run([exe, *args], stdin=stdin, capture_output=True, text=True,
                              errors="replace", env=env, cwd=cwd, start_new_session=True,
                              check=False)
    except OSError as exc:
        raise UsageError(f"cannot run {exe}: {exc.strerror}") from exc


def _why(proc: subprocess.CompletedProcess[str]) -> str:
    """ssh-keygen's own reason, on one line, without its interactive prompts."""
    text = " ".join((proc.stderr + " " + proc.stdout).split())
    for noise in ("Enter passphrase:", "Could not verify signature.", "Overwrite (y/n)?"):
        text = text.replace(noise, "")
    return " ".join(text.split()) or f"exit {proc.returncode}"


def _sign_file(data: Path, key: Path) -> bytes:
    """The armored signature of `data`, made in a private folder.

    `ssh-keygen -Y sign FILE` writes FILE.sig beside its input and would ask before
    overwriting one, so it signs a symlink in a fresh folder and we read the result.
    """
    if not key.is_file():
        raise UsageError(f"{key}: no such key file")
    with tempfile.TemporaryDirectory(prefix="wheelhouse-sign-") as tmp:
        link = Path(tmp) / "bundle"
        link.symlink_to(os.path.abspath(data))
        proc = _run(["-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(link)])
        produced = Path(tmp) / "bundle.sig"
        if proc.returncode != 0 or not produced.is_file():
            why = _why(proc)
            # ssh-keygen, failing to read a private key, retries the file as a public one
            # and reports "No such file": ask it plainly whether the file is a key at all.
            if "passphrase" not in why and _run(["-l", "-f", str(key)]).returncode != 0:
                raise UsageError(f"{key}: not an SSH private or public key")
            hint = (": the key needs a passphrase and nothing may prompt for it; add it "
                    "to ssh-agent (ssh-add) and pass its .pub file"
                    if "passphrase" in why else "")
            raise UsageError(f"{key}: cannot sign with this key ({why}){hint}")
        return produced.read_bytes()


def preflight(key: Path) -> None:
    """Sign a few bytes with `key` before a build, so a bad key fails in a second,
    not after every wheel was downloaded."""
    with tempfile.TemporaryDirectory(prefix="wheelhouse-sign-probe-") as tmp:
        probe = Path(tmp) / "probe"
        probe.write_bytes(b"wheelhouse-bundler signing probe\n")
        _sign_file(probe, key)


def sign_bundle(bundle: Path, key: Path) -> Signature:
    """Write `<bundle>.sig` atomically; on failure remove the bundle and its sidecar.

    A build asked for a signed bundle: an unsigned one left at the output path could be
    shipped by a script that only checks that the file exists.
    """
    sig = sig_path(bundle)
    try:
        data = _sign_file(bundle, key)
        with atomic_output(sig) as fh:
            fh.write(data)
    except BaseException:
        for path in (bundle, sidecar_path(bundle), sig):
            if not path.is_dir():  # a folder in the way is the error itself: leave it
                path.unlink(missing_ok=True)
        raise
    return Signature(sig, fingerprint_of(data))


def _read_sig(sig: Path) -> bytes:
    try:
        if sig.stat().st_size > MAX_SIG:
            raise IntegrityError(f"{sig}: {sig.stat().st_size} bytes, not an SSH signature")
        return sig.read_bytes()
    except OSError as exc:
        raise UsageError(f"{sig}: cannot read: {exc.strerror}") from exc


def fingerprint_of(armored: bytes) -> str | None:
    """`SHA256:...` of the public key inside an SSHSIG blob (PROTOCOL.sshsig), as
    `ssh-keygen -l` prints it; None when the text is not a signature. It says which key
    claims to have signed; only `ssh-keygen -Y verify` says whether that is true."""
    lines = armored.decode("ascii", "replace").strip().splitlines()
    if len(lines) < 3 or lines[0].strip() != _ARMOR[0] or lines[-1].strip() != _ARMOR[1]:
        return None
    try:
        blob = base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except ValueError:
        return None
    if blob[:6] != b"SSHSIG" or len(blob) < 14:
        return None
    (length,) = struct.unpack(">I", blob[10:14])
    key = blob[14:14 + length]
    if len(key) != length:
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")


def check(bundle: Path, trust: Trust) -> Signature | None:
    """The bundle's signature checked against `trust`, or None when it has none.

    With allowed signers, a signature that does not verify, or a key no principal
    holds, is an IntegrityError naming the .sig; without them the signature is
    reported unchecked. `trust.require` refuses a bundle with no .sig at all.
    """
    trust.validate()
    sig = sig_path(bundle)
    if not sig.is_file():
        if trust.require and bundle.is_file():
            raise IntegrityError(f"{bundle}: unsigned (no {sig.name} beside it) and "
                                 "--require-signature is set")
        return None
    armored = _read_sig(sig)
    fingerprint = fingerprint_of(armored)
    if trust.allowed_signers is None:
        return Signature(sig, fingerprint)
    if fingerprint is None:
        raise IntegrityError(f"{sig}: not an SSH signature (no SSHSIG armor)")
    allowed = trust.allowed_signers
    principal = trust.identity or _principal(sig, allowed, fingerprint)
    try:
        with open(bundle, "rb") as data:
            proc = _run(["-Y", "verify", "-f", str(allowed), "-I", principal, "-n",
                         NAMESPACE, "-s", str(sig)], stdin=data)
    except OSError as exc:
        raise UsageError(f"{bundle}: cannot open: {exc.strerror}") from exc
    if proc.returncode != 0:
        why = _why(proc)
        if why.startswith("exit "):  # ssh-keygen gave no reason: name the likely ones
            why = (f"the key is not listed for {principal} (and namespace {NAMESPACE}) in "
                   "it, or the bundle differs from what was signed")
        raise IntegrityError(f"{sig}: signature does not verify for {principal} "
                             f"({fingerprint}) against {allowed}: {why}")
    return Signature(sig, fingerprint, principal, True)


def _principal(sig: Path, allowed: Path, fingerprint: str) -> str:
    """The first allowed_signers principal holding the signature's key."""
    proc = _run(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed)])
    names = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not names:
        raise IntegrityError(f"{sig}: signed by key {fingerprint}, which no principal in "
                             f"{allowed} holds (unknown signer)")
    return names[0]
