"""Damaged and malicious bundles: each must be refused (exit 3) with one line that names the
member and the fault, by `verify` and by `install`, writing nothing that outlives the command.

One good bundle is built from the test index (real pypiserver, real bundle command); every
bad one is derived from it by hand with tarfile, gzip or raw byte edits. The checks run
without a sidecar unless the case is about the sidecar, so the content checks stand alone.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import venvs
from clirun import run_cli
from indexserver import IndexServer
from locktext import Pin, hashed_requirements
from wheelfactory import build_wheel

from wheelhouse_bundler import bundle as bundle_mod
from wheelhouse_bundler.cli import main
from wheelhouse_bundler.errors import IntegrityError, UsageError
from wheelhouse_bundler.tarstream import TarStream

TOP = "app"
GiB = 1024 ** 3
Entry = tuple[tarfile.TarInfo, bytes | None]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real bundle (plain and gzip) of two wheels, and its members as (info, data)."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp, root)
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        wheels = root / "wheels"
        alpha = build_wheel(wheels, "alpha", "1.0", payload_size=300_000)
        beta = build_wheel(wheels, "beta", "2.0", requires=["alpha"])
        evil = build_wheel(root / "evil", "alpha", "1.0", payload_size=300_000, extra_files={
            "alpha/__init__.py": b"import os; os.system('echo owned')\n"})
        reqs = root / "lock" / "requirements.txt"
        reqs.parent.mkdir()
        reqs.write_text(hashed_requirements([Pin("alpha", "1.0", [alpha]),
                                             Pin("beta", "2.0", [beta])]))
        out = {}
        with IndexServer(root / "index", log_dir=root / "index-log") as server:
            server.add(alpha)
            server.add(beta)
            for name in ("app.tar", "app.tar.gz"):
                dest = root / name.replace(".", "-") / name
                assert main(["bundle", str(reqs), "-o", str(dest), "--index-url", server.url,
                             "--cache-dir", str(root / "cache"), "-q"]) == 0
                out[name] = dest
    with tarfile.open(out["app.tar"]) as tar:
        entries = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    return {"tar": out["app.tar"], "tgz": out["app.tar.gz"], "entries": entries,
            "alpha": alpha.name, "evil": evil.read_bytes()}


# --- building bad bundles -------------------------------------------------------------

def pack(entries: list[Entry], **tar_kwargs: object) -> bytes:
    """A tar of `entries`; a regular file's size follows its data unless data is None."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tar_kwargs.pop("format", tarfile.PAX_FORMAT),
                      **tar_kwargs) as tar:  # type: ignore[call-overload]
        for info, data in entries:
            info = copy.copy(info)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def file_entry(name: str, data: bytes, pax: dict[str, str] | None = None) -> Entry:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if pax:
        info.pax_headers = pax
    return info, data


def wheel(good: dict) -> str:
    return f"{TOP}/wheels/{good['alpha']}"


def replaced(good: dict, name: str, data: bytes | None = None, drop: bool = False
             ) -> list[Entry]:
    out = []
    for info, body in good["entries"]:
        if info.name == name:
            if drop:
                continue
            body = data
        out.append((info, body))
    return out


def inserted(good: dict, at: int, *extra: Entry) -> list[Entry]:
    entries = list(good["entries"])
    return entries[:at] + list(extra) + entries[at:]


def rebuilt(good: dict, folder: Path, edit: Callable[[dict[str, bytes]], None],
            name: str = "app.tar") -> Path:
    """The bundle re-made by our own writer after `edit` changed members (by relative path),
    with manifest order kept, SHA256SUMS recomputed and a fresh sidecar: what a careful
    attacker without the signing key can produce."""
    members = {info.name.split("/", 1)[1]: body for info, body in good["entries"]}
    edit(members)
    sums = {rel: hashlib.sha256(body).hexdigest() for rel, body in members.items()
            if rel != "SHA256SUMS"}
    members["SHA256SUMS"] = "".join(f"{sums[p]}  {p}\n" for p in sorted(sums)).encode()
    out = folder / name
    bundle_mod.write(out, [bundle_mod.Member(rel, data=body) for rel, body in members.items()])
    return out


def swap_alpha(good: dict) -> Callable[[dict[str, bytes]], None]:
    """Put the evil alpha wheel in and make the manifest agree with it."""
    def edit(members: dict[str, bytes]) -> None:
        rel = f"wheels/{good['alpha']}"
        doc = json.loads(members["manifest.json"])
        for f in doc["files"]:
            if f["path"] == rel:
                f["sha256"] = hashlib.sha256(good["evil"]).hexdigest()
                f["size"] = len(good["evil"])
        members["manifest.json"] = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        members[rel] = good["evil"]
    return edit


def edit_manifest(change: Callable[[dict], object]) -> Callable[[dict[str, bytes]], None]:
    def edit(members: dict[str, bytes]) -> None:
        doc = json.loads(members["manifest.json"])
        change(doc)
        members["manifest.json"] = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    return edit


def add_tool(filename: str = "uv-0.1-py3-none-any.whl", size_off: int = 0
             ) -> Callable[[dict[str, bytes]], None]:
    """A tool wheel in the bundle and in the manifest's `tools` list, whose recorded size
    is `size_off` bytes off (SHA256SUMS agrees with the bytes either way)."""
    body = b"not really uv"

    def edit(members: dict[str, bytes]) -> None:
        members[f"tools/{filename}"] = body
        edit_manifest(lambda m: m.update(tools=[{
            "filename": filename, "path": f"tools/{filename}", "name": "uv", "version": "0.1",
            "sha256": hashlib.sha256(body).hexdigest(), "size": len(body) + size_off,
            "origin": "https://example.com/uv.whl", "targets": [m["targets"][0]["name"]]}]))(
            members)
    return edit


def gz_bomb(prefix: bytes, zeros: int, suffix: bytes = b"") -> bytes:
    """gzip of prefix + `zeros` zero bytes + suffix, built from repeated gzip members (valid
    gzip), so a GiB of zeros costs about a MB on disk and nothing to make."""
    mib = gzip.compress(bytes(1024 * 1024), mtime=0)
    assert zeros % (1024 * 1024) == 0
    return gzip.compress(prefix, mtime=0) + mib * (zeros // (1024 * 1024)) \
        + gzip.compress(suffix, mtime=0)


def header_offset(data: bytes, name: str) -> int:
    """Where the header block of member `name` starts in an uncompressed tar."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmember(name).offset


def data_offset(data: bytes, name: str) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmember(name).offset_data


def prefix_before(good: dict, name: str) -> bytes:
    """The good tar up to (not including) the header of member `name`."""
    data = good["tar"].read_bytes()
    return data[:header_offset(data, name)]


def block_with_size(info: tarfile.TarInfo, size: int, kind: bytes | None = None) -> bytes:
    info = copy.copy(info)
    info.size = size
    if kind is not None:
        info.type = kind
    return info.tobuf(tarfile.USTAR_FORMAT)


def flipped(good: dict) -> bytes:
    body = dict((i.name, b) for i, b in good["entries"])[wheel(good)]
    assert body is not None
    return bytes([body[0] ^ 1]) + body[1:]


def hidden_nul(good: dict) -> bytes:
    """A member whose ustar name field reads `app/x` to tarfile (which stops at the first
    NUL) but carries `/../../evil` after it for a reader that does not."""
    marker = f"{TOP}/" + "M" * 40
    data = bytearray(pack(inserted(good, 2, file_entry(marker, b""))))
    at = header_offset(bytes(data), marker)
    block = data[at:at + 512]
    block[0:100] = f"{TOP}/x\0/../../evil".encode().ljust(100, b"\0")
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    data[at:at + 512] = block
    return bytes(data)


def size_bomb(good: dict) -> bytes:
    """The alpha wheel's header claims a GiB (the manifest says 300 kB), and a GiB of
    zeros follows: the header alone must stop verify."""
    info = dict((i.name, i) for i, _ in good["entries"])[wheel(good)]
    return gz_bomb(prefix_before(good, wheel(good)) + block_with_size(info, GiB), GiB,
                   bytes(1024))


def pax_bomb(good: dict) -> bytes:
    """A pax extended header declaring a GiB of records (tarfile would read it all into
    memory) right after SHA256SUMS."""
    third = good["entries"][2][0]
    return gz_bomb(prefix_before(good, third.name)
                   + block_with_size(tarfile.TarInfo("PaxHeader"), GiB, tarfile.XHDTYPE), GiB)


def pax_global(good: dict) -> bytes:
    return pack(good["entries"], pax_headers={"comment": "hi"})


def gnu_longname(good: dict) -> bytes:
    long = f"{TOP}/targets/" + "x" * 120 + "/requirements.txt"
    return pack(inserted(good, 2, file_entry(long, b"x")), format=tarfile.GNU_FORMAT)


# Each case: (what to write as app.tar / app.tar.gz, fragments the one error line must hold)
Case = tuple[Callable[[dict], tuple[str, bytes]], tuple[str, ...]]
CASES: dict[str, Case] = {
    "absolute path": (lambda g: ("app.tar", pack(inserted(g, 2, file_entry("/etc/evil", b"x")))),
                      ("'/etc/evil'", "absolute")),
    "dot-dot": (lambda g: ("app.tar", pack(inserted(g, 2, file_entry(
        f"{TOP}/wheels/../../evil.pth", b"x")))), ("../../evil.pth", "'..'")),
    "symlink": (lambda g: ("app.tar", pack(inserted(g, 2, special(
        f"{TOP}/wheels/link.whl", tarfile.SYMTYPE, "/etc/passwd")))), ("link.whl", "a symlink")),
    "hard link": (lambda g: ("app.tar", pack(inserted(g, 2, special(
        f"{TOP}/wheels/hl.whl", tarfile.LNKTYPE, f"{TOP}/manifest.json")))),
        ("hl.whl", "a hard link")),
    "character device": (lambda g: ("app.tar", pack(inserted(g, 2, special(
        f"{TOP}/null", tarfile.CHRTYPE)))), ("'app/null'", "character device")),
    "FIFO": (lambda g: ("app.tar", pack(inserted(g, 2, special(f"{TOP}/pipe", tarfile.FIFOTYPE)))),
             ("'app/pipe'", "a FIFO")),
    "directory": (lambda g: ("app.tar", pack(inserted(g, 2, special(
        f"{TOP}/wheels", tarfile.DIRTYPE)))), ("'app/wheels'", "a directory")),
    "duplicate, same content": (lambda g: ("app.tar", pack(
        g["entries"] + [e for e in g["entries"] if e[0].name == wheel(g)])),
        ("alpha-1.0", "appears twice")),
    "duplicate, other content": (lambda g: ("app.tar", pack(
        g["entries"] + [(e[0], g["evil"]) for e in g["entries"] if e[0].name == wheel(g)])),
        ("alpha-1.0", "appears twice")),
    "member not in the manifest": (lambda g: ("app.tar", pack(g["entries"] + [file_entry(
        f"{TOP}/wheels/extra-1.0-py3-none-any.whl", b"PK")])),
        ("extra-1.0", "not in the manifest")),
    "missing member": (lambda g: ("app.tar", pack(replaced(g, wheel(g), drop=True))),
                       ("alpha-1.0", "missing member")),
    "size mismatch": (lambda g: ("app.tar", pack(replaced(g, wheel(g), g["evil"] + b"x"))),
                      ("alpha-1.0", "manifest says")),
    "hash mismatch, same size": (lambda g: ("app.tar", pack(replaced(g, wheel(g), flipped(g)))),
                                 ("alpha-1.0", "does not match SHA256SUMS")),
    "truncated mid-wheel": (lambda g: ("app.tar", (lambda d: d[:data_offset(d, wheel(g)) + 1000])(
        g["tar"].read_bytes())), ("alpha-1.0", "truncated")),
    "truncated mid-header": (lambda g: ("app.tar", (lambda d: d[:header_offset(d, wheel(g)) + 300])(
        g["tar"].read_bytes())), ("after member", "cut inside a header")),
    "cut at a member boundary": (lambda g: ("app.tar", (lambda d: d[:header_offset(d, wheel(g))])(
        g["tar"].read_bytes())), ("after member", "no end-of-archive marker")),
    "trailing garbage": (lambda g: ("app.tar", g["tar"].read_bytes() + b"#!/bin/sh\nrm -rf /\n"),
                         ("after the end-of-archive marker", "trailing data")),
    "garbage where a header should be": (lambda g: ("app.tar", (
        lambda d: d[:header_offset(d, wheel(g))] + b"x" * 512 + d[header_offset(d, wheel(g)):])(
        g["tar"].read_bytes())), ("after member", "not a tar header")),
    "not a tar": (lambda g: ("app.tar", b"this is a README, not a bundle\n" * 40),
                  ("not a tar archive",)),
    "gzip bundle truncated": (lambda g: ("app.tar.gz", g["tgz"].read_bytes()[
        : g["tgz"].stat().st_size // 2]), ("member 'app/", "truncated or corrupt compressed")),
    "gzip with trailing junk": (lambda g: ("app.tar.gz", g["tgz"].read_bytes() + b"junk" * 8),
                                ("member 'app/", "corrupt compressed data")),
    "manifest not first": (lambda g: ("app.tar", pack(
        [g["entries"][1], g["entries"][0], *g["entries"][2:]])),
                           ("'app/SHA256SUMS'", "first member must be manifest.json")),
    "SHA256SUMS missing": (lambda g: ("app.tar", pack(replaced(
        g, f"{TOP}/SHA256SUMS", drop=True))), ("second member must be SHA256SUMS",)),
    "member far larger than the manifest says (gzip bomb)": (
        lambda g: ("app.tar.gz", size_bomb(g)), ("alpha-1.0", f"{GiB} bytes, manifest says")),
    "a GiB of zeros after the end (gzip bomb)": (lambda g: ("app.tar.gz", gz_bomb(
        g["tar"].read_bytes(), GiB)), ("after the end-of-archive marker", "bytes of padding")),
    "pax header of a GiB (gzip bomb)": (lambda g: ("app.tar.gz", pax_bomb(g)),
                                        ("pax header after member", "over the 65536 limit")),
    "pax path override to ..": (lambda g: ("app.tar", pack(inserted(g, 2, file_entry(
        f"{TOP}/wheels/ok.whl", b"x", {"path": "../../../tmp/evil.pth"})))),
        ("'../../../tmp/evil.pth'", "'..'")),
    "pax path override to an absolute path": (lambda g: ("app.tar", pack(inserted(
        g, 2, file_entry(f"{TOP}/ok", b"x", {"path": "/usr/lib/python3/evil.pth"})))),
        ("'/usr/lib/python3/evil.pth'", "absolute")),
    "pax linkpath on a file": (lambda g: ("app.tar", pack(inserted(g, 2, file_entry(
        f"{TOP}/ok", b"x", {"linkpath": "/etc/shadow"})))), ("pax header", "'linkpath'")),
    "pax global header": (lambda g: ("app.tar", pax_global(g)), ("pax global header",)),
    "GNU long name": (lambda g: ("app.tar", gnu_longname(g)), ("GNU long name",)),
    "NUL in a pax path": (lambda g: ("app.tar", pack(inserted(g, 2, file_entry(
        f"{TOP}/ok", b"x", {"path": f"{TOP}/wheels/a\0.pth"})))),
        ("a\\x00.pth", "control character")),
    "NUL hiding bytes in the name field": (lambda g: ("app.tar", hidden_nul(g)),
                                           ("'app/x'", "hides bytes after a NUL")),
    "backslash": (lambda g: ("app.tar", pack(inserted(g, 2, file_entry(
        f"{TOP}\\..\\evil.pth", b"x")))), ("evil.pth", "non-POSIX")),
    "Windows drive": (lambda g: ("app.tar", pack(inserted(g, 2, file_entry(
        "C:/Windows/evil.dll", b"x")))), ("'C:/Windows/evil.dll'", "drive colon")),
    "name differing only in case": (lambda g: ("app.tar", pack(g["entries"] + [file_entry(
        wheel(g).replace("alpha-", "ALPHA-"), g["evil"])])),
        ("ALPHA-1.0", "case-insensitive file system")),
}
FILE_CASES: dict[str, tuple[Callable[[dict, Path], Path], tuple[str, ...]]] = {
    "manifest and SHA256SUMS edited for a swapped wheel, sidecar stale": (
        lambda g, d: (lambda out: (shutil.copy(g["tar"].with_name("app.tar.sha256"),
                                               d / "app.tar.sha256"), out)[1])(
            rebuilt(g, d, swap_alpha(g))), ("app.tar", "does not match app.tar.sha256")),
    "unknown manifest format_version": (
        lambda g, d: rebuilt(g, d, edit_manifest(lambda m: m.update(format_version=2))),
        ("manifest.json", "unknown format version 2")),
    "malformed manifest JSON": (
        lambda g, d: rebuilt(g, d, lambda m: m.update({"manifest.json": b'{"format_version":'})),
        ("manifest.json", "malformed")),
    "manifest naming a file outside the bundle": (
        lambda g, d: rebuilt(g, d, edit_manifest(lambda m: m["files"][0].update(
            filename="../../evil.whl"))), ("manifest.json", "'wheels/../../evil.whl'")),
    "a tool wheel of another size than the manifest says": (
        lambda g, d: rebuilt(g, d, add_tool(size_off=1)),
        ("'app/tools/uv-0.1-py3-none-any.whl'", "13 bytes, manifest says 14")),
    "manifest naming a tool outside the bundle": (
        lambda g, d: rebuilt(g, d, add_tool("../../evil.whl")),
        ("manifest.json", "'tools/../../evil.whl'")),
    "sidecar of another bundle": (
        lambda g, d: (lambda out: (shutil.copy(g["tgz"].with_name("app.tar.gz.sha256"),
                                               d / "app.tar.sha256"), out)[1])(
            shutil.copy(g["tar"], d / "app.tar")), ("app.tar", "does not match app.tar.sha256")),
}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for the bad bundle, and an empty temp folder the code under test would use."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    (tmp_path / "case").mkdir()
    return tmp_path


def refused(args: list[str], capsys: pytest.CaptureFixture[str], fragments: tuple[str, ...]
            ) -> None:
    capsys.readouterr()
    assert main(args) == 3
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("wheelhouse-bundler: integrity error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert captured.out == ""


def check_refused(bad: Path, sandbox: Path, capsys: pytest.CaptureFixture[str],
                  fragments: tuple[str, ...]) -> None:
    before = snapshot(sandbox / "case")
    refused(["verify", str(bad)], capsys, fragments)
    assert snapshot(sandbox / "case") == before  # verify extracts nothing at all
    venv = sandbox / "target" / "venv"
    venv.parent.mkdir()
    refused(["install", str(bad), "--venv", str(venv), "-q"], capsys, fragments)
    assert not venv.exists() and not venv.is_symlink()
    assert list(venv.parent.iterdir()) == []  # no <venv>.releases, no staging folder
    assert snapshot(sandbox / "case") == before
    assert list((sandbox / "tmp").iterdir()) == []


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_tar_is_refused(case: str, good: dict, sandbox: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    make, fragments = CASES[case]
    name, data = make(good)
    bad = sandbox / "case" / name
    bad.write_bytes(data)
    check_refused(bad, sandbox, capsys, fragments)


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_edited_bundle_is_refused(case: str, good: dict, sandbox: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    make, fragments = FILE_CASES[case]
    bad = make(good, sandbox / "case")
    check_refused(bad, sandbox, capsys, fragments)


def test_the_good_bundles_verify(good: dict, capsys: pytest.CaptureFixture[str]) -> None:
    """The baseline every case above departs from: both good bundles pass."""
    for path in (good["tar"], good["tgz"]):
        assert main(["verify", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["sidecar"] == "ok"


def test_consistent_forgery_passes_verify_without_a_signature(good: dict, tmp_path: Path,
                                                              capsys) -> None:
    """Manifest, SHA256SUMS and sidecar all rewritten for a swapped wheel: every checksum
    agrees, so verify accepts it. That is what checksums can do; only a signature made with
    a key the attacker lacks (verify --require-signature) tells this bundle apart."""
    forged = rebuilt(good, tmp_path, swap_alpha(good))
    assert main(["verify", str(forged), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sidecar"] == "ok"
    with tarfile.open(forged) as tar:
        inside = tar.extractfile(wheel(good)).read()  # type: ignore[union-attr]
    assert inside == good["evil"]


def test_long_and_non_ascii_names_pass(good: dict, tmp_path: Path) -> None:
    """What our writer emits for names over 100 bytes or beyond ASCII (a pax `path` record
    per member) is what the strict reader accepts."""
    name = "café-" + "x" * 110 + ".tar"
    out = rebuilt(good, tmp_path, lambda _members: None, name=name)
    with tarfile.open(out) as tar:
        assert all(m.pax_headers.get("path") == m.name for m in tar.getmembers())
    assert main(["verify", str(out)]) == 0


class _Counting(io.BytesIO):
    """Counts the bytes the reader pulls, to show that it stops."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.pulled = 0

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = super().readinto(buffer)
        self.pulled += n
        return n


def test_reading_stops_at_the_limit(good: dict) -> None:
    """The byte budget verify sets from the manifest: reading stops right past it, however
    much data follows (the backstop behind the per-member size checks)."""
    data = pack([file_entry(f"{TOP}/big", bytes(8 * 1024 * 1024))])
    source = _Counting(data)
    stream = TarStream(source, limit=100_000)
    with pytest.raises(IntegrityError, match="runs past 100000 bytes"):
        for member in stream:
            stream.copy(member, lambda _chunk: None)
    # An upper bound by nature: how far short of the limit reading stops depends on the
    # chunk size (here the first chunk of the member's data would cross it); what the
    # budget promises is that no byte past it is pulled from the source.
    assert source.pulled <= 100_000


def test_bundle_refuses_names_that_verify_would_refuse(tmp_path: Path) -> None:
    """Two paths equal but for case would be refused on the far side: fail the build."""
    out = tmp_path / "app.tar"
    with pytest.raises(UsageError, match="case-insensitive file system"):
        bundle_mod.write(out, [bundle_mod.Member("targets/Bastion/requirements.txt", b"a"),
                               bundle_mod.Member("targets/bastion/requirements.txt", b"b")])
    assert list(tmp_path.iterdir()) == []


# --- the sidecar must vouch for this bundle; what files say reaches no terminal raw ------

ESCAPE = "\x1b]0;owned\x07\x1b[2J"


def copied(good: dict, folder: Path, sidecar: str | None = None) -> Path:
    out = folder / "app.tar"
    shutil.copy(good["tar"], out)
    if sidecar is not None:
        out.with_name("app.tar.sha256").write_text(sidecar)
    return out


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_integrity_line(done, *fragments: str) -> str:
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_sidecar_naming_another_file_is_refused(good: dict, tmp_path: Path) -> None:
    out = copied(good, tmp_path)
    out.with_name("app.tar.sha256").write_text(f"{digest_of(out)}  other.tar\n")
    one_integrity_line(run_cli("verify", out), "'other.tar'", "'app.tar'")


def test_sidecar_naming_nothing_is_refused(good: dict, tmp_path: Path) -> None:
    out = copied(good, tmp_path)
    out.with_name("app.tar.sha256").write_text(f"{digest_of(out)}\n")
    one_integrity_line(run_cli("verify", out), "names 'no file'", "'app.tar'")


def test_sidecar_in_binary_mode_naming_the_bundle_passes(good: dict, tmp_path: Path) -> None:
    """`sha256sum -b` writes `<digest> *app.tar`: the same bundle, named."""
    out = copied(good, tmp_path)
    out.with_name("app.tar.sha256").write_text(f"{digest_of(out)} *app.tar\n")
    done = run_cli("verify", out, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sidecar"] == "ok"


def test_sidecar_path_that_is_a_folder_is_refused(good: dict, tmp_path: Path) -> None:
    out = copied(good, tmp_path)
    out.with_name("app.tar.sha256").mkdir()
    one_integrity_line(run_cli("verify", out), "app.tar.sha256", "not a file")


def test_escapes_in_a_sidecar_reach_the_terminal_escaped(good: dict, tmp_path: Path) -> None:
    out = copied(good, tmp_path, sidecar=f"{ESCAPE}  app.tar\n")
    line = one_integrity_line(run_cli("verify", out), "does not match app.tar.sha256")
    assert "\x1b" not in line and "\x07" not in line
    assert "\\x1b]0;owned\\x07" in line


def test_escapes_in_a_manifest_reach_the_terminal_escaped(good: dict, tmp_path: Path) -> None:
    """A consistent forgery (no signature asked for) passes verify; what inspect and diff
    show of its names must not drive the operator's terminal."""
    forged = rebuilt(good, tmp_path, edit_manifest(lambda m: m["files"][0].update(
        name=f"alpha{ESCAPE}", version=f"1.0{ESCAPE}")))
    for args in (("inspect", forged), ("diff", good["tar"], forged)):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stdout
        assert "alpha\\x1b]0;owned\\x07" in done.stdout


def test_escapes_in_a_lock_reach_the_terminal_escaped(tmp_path: Path) -> None:
    """A package name is refused (not a project name), and shown escaped."""
    lock = tmp_path / "Pipfile.lock"
    lock.write_text(json.dumps({
        "_meta": {"pipfile-spec": 6, "sources": []}, "develop": {},
        "default": {f"al{ESCAPE}pha": {"hashes": ["sha256:" + "a" * 64],
                                        "version": "==1.0"}}}))
    done = run_cli("export", lock, "-t", "cp311-manylinux_2_28_x86_64",
                   "--index-url", "http://127.0.0.1:9/simple/")
    assert done.returncode == 2, done.stderr
    assert "\x1b" not in done.stderr and "not a valid project name" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
