"""Deltas: a new bundle minus the wheels the other side already holds, rebuilt there
byte for byte.

The next release must cross the gap too, and most of its wheels crossed with the last
one. A delta carries the rest. Because the bundle format is deterministic (bundle.py),
the target does not reassemble "something equivalent": it rebuilds NEW's exact bytes,
so NEW's sha256 and NEW's signature, both made on the build box, still hold, and
`verify --require-signature` and `install` treat the result as a bundle that crossed
whole. That is the trust model: the delta itself is checked member by member like a
bundle, but what makes the result trustworthy is that its sha256 is the one recorded
and its `.sig` verifies.

A delta is a tar (deterministic, written by bundle.write, with its own `.sha256`
sidecar) holding one top folder:

    <delta>/delta.json          what to rebuild: NEW's name, sha256, size and framing
                                (top folder, mtime, gzip), and every member of NEW in
                                tar order with its size, sha256 and whether it is carried
                                here or taken from OLD by its sha256
    <delta>/carried/<path>      NEW's members that OLD lacks (manifest, SHA256SUMS,
                                install.py, SBOM, per-target files, new wheels)
    <delta>/new.sig             NEW's signature, when it has one

`make` (build side) verifies OLD and NEW and checks, before writing, that NEW's own
members rebuild NEW byte for byte here, so a delta that cannot be merged never leaves the
build box. `merge` (target side, no network code) verifies the delta and OLD, rebuilds
NEW in a staging folder beside the output, checks its sha256 and signature, and only
then renames it (sidecar and .sig first) into place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import __version__, bundle, signing, verify
from .errors import BundlerError, IntegrityError, UsageError
from .manifest import SUMS, layout, parse_sums
from .options import Trust
from .tarstream import TarStream

FORMAT = 1
DELTA_JSON = "delta.json"
CARRIED = "carried"
SIGNATURE = "new.sig"
BUNDLE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Entry:
    """One member of NEW, by path below its top folder: carried in the delta, or taken
    from OLD, found there by its sha256 (whatever OLD calls the file)."""

    path: str
    size: int
    sha256: str
    carried: bool


@dataclass(frozen=True)
class Plan:
    """delta.json: all a merge needs to rebuild NEW, and what to tell when it cannot."""

    name: str  # NEW's file name on the build box
    sha256: str  # NEW's tarball: the result must have exactly this
    size: int
    tar_sha256: str  # NEW's tar before gzip (= sha256 for a plain .tar): for messages
    framing: bundle.Framing
    entries: tuple[Entry, ...]  # NEW's members in tar order
    signature: Entry | None  # NEW's .sig, carried as SIGNATURE
    base_name: str  # the OLD it was made against, for messages only:
    base_sha256: str  # any OLD holding the reused wheels will do
    zlib: str  # the build box's zlib: a gzip rebuild depends on it
    tool_version: str

    def needs(self) -> dict[str, str]:
        """sha256 -> NEW's path of each member taken from OLD."""
        return {e.sha256: e.path for e in self.entries if not e.carried}

    def carried(self) -> list[Entry]:
        return [e for e in self.entries if e.carried]


def choose(entries: Sequence[Entry], reusable: Mapping[str, str], have: set[str]
           ) -> tuple[Entry, ...]:
    """NEW's members with `carried` decided: a member OLD already holds (its sha256 in
    `have`) is left out of the delta when it is reusable, i.e. a wheel or tool wheel
    (`reusable`: path -> sha256). The small files are always carried: they are what
    changes, and they cost nothing."""
    return tuple(dataclasses.replace(e, carried=not (e.path in reusable
                                                     and e.sha256 in have))
                 for e in entries)


def to_json(plan: Plan) -> bytes:
    doc = {
        "delta_format": FORMAT,
        "tool": {"name": "wheelhouse-bundler", "version": plan.tool_version},
        "new": {"name": plan.name, "sha256": plan.sha256, "size": plan.size,
                "tar_sha256": plan.tar_sha256, "top": plan.framing.top,
                "mtime": plan.framing.mtime,
                "compression": "gzip" if plan.framing.gzip else "none",
                "zlib": plan.zlib},
        "base": {"name": plan.base_name, "sha256": plan.base_sha256},
        "members": [{"path": e.path, "size": e.size, "sha256": e.sha256,
                     "from": "delta" if e.carried else "base"} for e in plan.entries],
        "signature": None if plan.signature is None else {
            "path": SIGNATURE, "size": plan.signature.size,
            "sha256": plan.signature.sha256},
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def from_json(data: bytes) -> Plan:
    """Read delta.json, refusing (exit 3) anything but the shape `to_json` writes: its
    paths are written to disk and its numbers bound what is read."""
    try:
        doc = json.loads(data)
        if doc.get("delta_format") != FORMAT:
            raise IntegrityError(f"{DELTA_JSON}: unknown delta format "
                                 f"{doc.get('delta_format')!r} (this tool reads {FORMAT})")
        new, base = doc["new"], doc["base"]
        entries = tuple(_entry(m) for m in doc["members"])
        sig = doc["signature"]
        plan = Plan(
            name=_text(new["name"]), sha256=_sha(new["sha256"]), size=_size(new["size"]),
            tar_sha256=_sha(new["tar_sha256"]),
            framing=bundle.Framing(_text(new["top"]), _size(new["mtime"]),
                                   {"gzip": True, "none": False}[new["compression"]]),
            entries=entries,
            signature=None if sig is None else Entry(
                SIGNATURE, _size(sig["size"]), _sha(sig["sha256"]), True),
            base_name=_text(base["name"]), base_sha256=_sha(base["sha256"]),
            zlib=_text(new["zlib"]), tool_version=_text(doc["tool"]["version"]))
    except IntegrityError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{DELTA_JSON}: malformed ({type(exc).__name__}: {exc})"
                             ) from exc
    _check_names(plan)
    return plan


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _size(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a size")
    return value


def _sha(value: object) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ValueError(f"{value!r} is not a sha256")
    return value


def _entry(m: dict) -> Entry:
    return Entry(_text(m["path"]), _size(m["size"]), _sha(m["sha256"]),
                 {"delta": True, "base": False}[m["from"]])


def _check_names(plan: Plan) -> None:
    """Paths the merge writes and the bundle it names must be as safe as a bundle's
    members: no '..', no absolute paths, no two names one file on a case-insensitive
    file system."""
    for what, name in (("the new bundle's name", plan.name),
                       ("its top folder", plan.framing.top)):
        why = verify.unsafe_path(name) or ("has a '/'" if "/" in name else None)
        if why is not None:
            raise IntegrityError(f"{DELTA_JSON}: {what} {name!r}: {why}")
    if not plan.name.endswith(BUNDLE_SUFFIXES):
        raise IntegrityError(f"{DELTA_JSON}: the new bundle's name {plan.name!r} is not "
                             "a .tar or .tar.gz")
    folded: dict[str, str] = {}
    for e in plan.entries:
        why = verify.unsafe_path(e.path)
        if why is not None:
            raise IntegrityError(f"{DELTA_JSON}: path {e.path!r}: {why}")
        key = unicodedata.normalize("NFC", e.path).casefold()
        if key in folded:
            raise IntegrityError(f"{DELTA_JSON}: path {e.path!r} appears twice "
                                 f"(as {folded[key]!r})")
        folded[key] = e.path
    if not plan.entries:
        raise IntegrityError(f"{DELTA_JSON}: lists no members")


# --- build side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """What `make` wrote, for the summary line and --json."""

    output: Path
    sha256: str  # the delta's own
    size: int  # the delta's bytes
    plan: Plan

    @property
    def reused(self) -> list[Entry]:
        return [e for e in self.plan.entries if not e.carried]

    @property
    def carried(self) -> list[Entry]:
        return self.plan.carried()

    @property
    def saved(self) -> int:
        """Bytes that need not cross: the bundle's size less the delta's."""
        return self.plan.size - self.size


def make(old: Path, new: Path, out: Path, trust: Trust) -> Made:
    """Verify OLD and NEW (signatures as `trust` asks), then write the delta to `out`."""
    bundle.refuse_overwriting(
        (out, bundle.sidecar_path(out)),
        [("old bundle", old), ("new bundle", new),
         ("new bundle's signature", signing.sig_path(new)),
         ("--allowed-signers file", trust.allowed_signers)])
    if not out.name.endswith(BUNDLE_SUFFIXES):
        raise UsageError(f"{out}: the delta's name must end in .tar, .tar.gz or .tgz")
    bundle.check_writable(out, "--output")
    a = _checked("old", old, None, _for_old(trust))
    have = {p.sha256 for p in layout(a.manifest) if p.sha256 is not None}
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".new", dir=out.parent))
    try:
        b = _checked("new", new, stage, trust)
        assert b.root is not None
        framing = _framing_of(new, b)
        sums = parse_sums((b.root / SUMS).read_bytes())
        sums[SUMS] = _sha256_file(b.root / SUMS)
        entries = [Entry(rel, (b.root / rel).stat().st_size, sums[rel], True)
                   for rel in b.order]
        reusable = {p.path: p.sha256 for p in layout(b.manifest) if p.sha256 is not None}
        members = [bundle.Member(e.path, source=b.root / e.path) for e in entries]
        tar_sha256 = _rebuild_digest(new, b.sha256, members, framing)
        sig = signing.sig_path(new)
        sig_data = sig.read_bytes() if sig.is_file() else None
        if sig_data is not None and len(sig_data) > signing.MAX_SIG:
            raise IntegrityError(f"{sig}: {len(sig_data)} bytes, not an SSH signature")
        plan = Plan(
            name=new.name, sha256=b.sha256, size=new.stat().st_size, tar_sha256=tar_sha256,
            framing=framing, entries=choose(entries, reusable, have),
            signature=None if sig_data is None else Entry(
                SIGNATURE, len(sig_data), _sha256_bytes(sig_data), True),
            base_name=old.name, base_sha256=a.sha256, zlib=zlib.ZLIB_RUNTIME_VERSION,
            tool_version=__version__)
        parts = [bundle.Member(DELTA_JSON, data=to_json(plan)),
                 *(bundle.Member(f"{CARRIED}/{e.path}", source=b.root / e.path)
                   for e in plan.carried()),
                 *([bundle.Member(SIGNATURE, data=sig_data)] if sig_data is not None else [])]
        digest = bundle.write(out, parts)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Made(out, digest, out.stat().st_size, plan)


def _for_old(trust: Trust) -> Trust:
    """OLD's wheels count by sha256 alone, and NEW's sha256 and .sig vouch for them: a
    .sig beside OLD must verify, but --require-signature is for NEW, since OLD may
    well be unsigned (a merge of an unsigned delta, an older release)."""
    return dataclasses.replace(trust, require=False)


def _checked(role: str, path: Path, extract_to: Path | None, trust: Trust
             ) -> verify.Verified:
    """verify_signed, its message saying which of the two bundles is at fault."""
    try:
        return verify.verify_signed(path, extract_to=extract_to, trust=trust)
    except BundlerError as exc:
        if str(path) not in str(exc):
            exc.args = (f"{role} bundle {path}: {exc}",)
        raise


def _framing_of(new: Path, b: verify.Verified) -> bundle.Framing:
    if b.mtime is None:
        raise IntegrityError(f"{new}: its members have different mtimes; not a bundle this "
                             "tool wrote, so no delta can rebuild it (send it whole)")
    with open(new, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return bundle.Framing(b.top, b.mtime, gz)


def _rebuild_digest(new: Path, sha256: str, members: list[bundle.Member],
                    framing: bundle.Framing) -> str:
    """Refuse a NEW that its own members do not rebuild byte for byte here (made by
    another version of the tool, or repacked): its delta could never be merged. Returns
    the sha256 of the tar inside (before gzip), which a merge uses to explain a
    mismatch."""
    if _digest_of(members, framing) != sha256:
        raise IntegrityError(f"{new}: its members do not rebuild it byte for byte here "
                             "(made by another version of the tool, or repacked?), so a "
                             "delta could not be merged; send the whole bundle")
    if not framing.gzip:
        return sha256
    return _digest_of(members, dataclasses.replace(framing, gzip=False))


def _digest_of(members: list[bundle.Member], framing: bundle.Framing) -> str:
    with open(os.devnull, "wb") as sink:
        return bundle.write_tar(sink, members, framing)


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- target side --------------------------------------------------------------------


@dataclass(frozen=True)
class Merged:
    """What `merge` wrote."""

    output: Path
    sha256: str
    size: int
    plan: Plan
    signature: signing.Signature | None


def read(path: Path, extract_to: Path) -> tuple[Plan, Path]:
    """Verify the delta at `path` like a bundle (one pass, strict tar, safe names,
    every member listed in delta.json with its size and sha256, none missing, its
    sidecar when there is one), extracting it below `extract_to`; the plan and the
    folder holding its members."""
    (plan, top), _, _ = verify.read_archive(
        path, lambda p, stream: _walk(p, stream, extract_to))
    return plan, extract_to / top


def _walk(path: Path, stream: TarStream, extract_to: Path) -> tuple[Plan, str]:
    top: str | None = None
    plan: Plan | None = None
    expected: verify.Expected = {}
    sums: dict[str, str] = {}
    seen: set[str] = set()
    folded: dict[str, str] = {}
    for index, member in enumerate(stream):
        top, rel = verify.check_entry(member, top, seen, folded)
        if index == 0:
            if rel != DELTA_JSON:
                raise IntegrityError(f"{path}: first member must be {DELTA_JSON}, found "
                                     f"{member.name!r}; not a delta")
            plan = from_json(verify.read_small(stream, member, verify.MAX_META))
            listed = [(f"{CARRIED}/{e.path}", e) for e in plan.carried()]
            if plan.signature is not None:
                listed.append((SIGNATURE, plan.signature))
            expected = {rel: (e.size, e.sha256) for rel, e in listed}
            sums = {rel: e.sha256 for rel, e in listed}
            stream.limit = verify.budget(stream.consumed, expected)
            continue
        verify.check_member(stream, member, rel, sums, expected, extract_to, top,
                            listing=(DELTA_JSON, DELTA_JSON))
    if plan is None or top is None:
        raise IntegrityError(f"{path}: no {DELTA_JSON}; not a delta")
    missing = sorted(set(expected) - seen)
    if missing:
        raise IntegrityError(f"{path}: missing member(s): {', '.join(missing[:5])}"
                             + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    return plan, top


def merge(old: Path, delta: Path, out: Path, trust: Trust) -> Merged:
    """Rebuild NEW at `out` from OLD and the delta, or refuse with nothing at `out`."""
    bundle.refuse_overwriting(
        (out, bundle.sidecar_path(out), signing.sig_path(out)),
        [("old bundle", old), ("delta", delta), ("old bundle's sidecar",
                                                 bundle.sidecar_path(old)),
         ("old bundle's signature", signing.sig_path(old)),
         ("--allowed-signers file", trust.allowed_signers)])
    if not out.name.endswith(BUNDLE_SUFFIXES):
        raise UsageError(f"{out}: the bundle's name must end in .tar, .tar.gz or .tgz")
    bundle.check_writable(out, "--output")
    trust.validate()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".merge", dir=out.parent))
    try:
        plan, carried = _read_delta(delta, stage / "delta")
        if plan.framing.gzip != bundle.is_gzip(out):
            kind = ".tar.gz" if plan.framing.gzip else ".tar"
            raise UsageError(f"{out}: the delta rebuilds {plan.name}, a {kind} bundle; "
                             f"name the output {kind}")
        if plan.signature is None and trust.require:
            raise IntegrityError(f"{delta}: carries no signature for {plan.name} and "
                                 "--require-signature is set")
        have = _base_files(old, stage / "old", plan, _for_old(trust))
        members = [bundle.Member(e.path, source=(carried / CARRIED / e.path) if e.carried
                                 else have[e.sha256]) for e in plan.entries]
        staged = stage / out.name
        digest = bundle.write(staged, members, plan.framing)
        if digest != plan.sha256:
            raise IntegrityError(_mismatch(delta, plan, digest, members))
        if plan.signature is not None:
            shutil.copyfile(carried / SIGNATURE, signing.sig_path(staged))
        signature = _check_signature(staged, out, trust)
        _place(staged, out, signed=plan.signature is not None)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Merged(out, digest, out.stat().st_size, plan, signature)


def _read_delta(delta: Path, extract_to: Path) -> tuple[Plan, Path]:
    try:
        return read(delta, extract_to)
    except BundlerError as exc:
        if str(delta) not in str(exc):
            exc.args = (f"delta {delta}: {exc}",)
        raise


def _base_files(old: Path, extract_to: Path, plan: Plan, trust: Trust) -> dict[str, Path]:
    """OLD verified and extracted: sha256 -> path of each member the delta takes from it.
    An OLD without them all is refused, naming the wheels it lacks."""
    a = _checked("old", old, extract_to, trust)
    assert a.root is not None
    sums = parse_sums((a.root / SUMS).read_bytes())
    have = {sha: a.root / rel for rel, sha in sums.items()}
    lacking = sorted(path.rsplit("/", 1)[-1] for sha, path in plan.needs().items()
                     if sha not in have)
    if lacking:
        shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more"
                                          if len(lacking) > 5 else "")
        raise IntegrityError(f"{old}: lacks {len(lacking)} wheel(s) the delta needs: "
                             f"{shown}; the delta was made against {plan.base_name} "
                             f"(sha256 {plan.base_sha256})")
    return have


def _mismatch(delta: Path, plan: Plan, digest: str, members: list[bundle.Member]) -> str:
    """Why the rebuilt bundle is not NEW. For a .tar.gz whose tar inside is right, the
    gzip stream differs: another zlib compresses the same bytes differently."""
    said = (f"{delta}: the rebuilt {plan.name} has sha256 {digest}, not the "
            f"{plan.sha256} the delta records")
    if plan.framing.gzip and _digest_of(
            members, dataclasses.replace(plan.framing, gzip=False)) == plan.tar_sha256:
        return (f"{said}: the tar inside is identical, but this machine's zlib "
                f"{zlib.ZLIB_RUNTIME_VERSION} compresses it differently from the build "
                f"box's {plan.zlib}; use plain .tar bundles for deltas, or send it whole")
    return f"{said} (a tampered or damaged delta, or the wrong one)"


def _check_signature(staged: Path, out: Path, trust: Trust) -> signing.Signature | None:
    """The staged result's .sig checked as verify would; messages name `out`, where the
    files will be, not the staging folder, which is gone by the time they are read."""
    try:
        sig = signing.check(staged, trust)
    except BundlerError as exc:
        exc.args = (str(exc).replace(str(staged.parent), str(out.parent)),)
        raise
    return None if sig is None else dataclasses.replace(sig, path=signing.sig_path(out))


def _place(staged: Path, out: Path, signed: bool) -> None:
    """Sidecar and signature first, the bundle last: a bundle at `out` always has its
    own. Should the last rename fail, the two that moved are taken back."""
    moved: list[Path] = []
    try:
        for src, dst in ((bundle.sidecar_path(staged), bundle.sidecar_path(out)),
                         (signing.sig_path(staged), signing.sig_path(out))):
            if src.exists():
                os.replace(src, dst)
                moved.append(dst)
        if not signed:  # an older file's .sig cannot match this bundle
            signing.sig_path(out).unlink(missing_ok=True)
        os.replace(staged, out)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise

