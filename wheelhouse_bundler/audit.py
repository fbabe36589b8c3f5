"""Offline vulnerability gate: pinned versions against an OSV advisory dump.

The dump is what OSV publishes per ecosystem (a zip of `<ID>.json` records, such as the
PyPI `all.zip`) or a folder of such records. Nothing here touches the network, so an
operator can re-audit a bundle on the far side of the gap with a fresh dump carried over.

Matching follows the OSV schema: an `affected` entry counts when its ecosystem is PyPI
and its normalized package name is ours, and the version is either listed in `versions`
or inside one of its ECOSYSTEM/SEMVER `ranges` (events `introduced`, `fixed`,
`last_affected`, `limit`), all compared with `packaging.version`. Withdrawn records
never match.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from . import locks
from .errors import IntegrityError, UsageError
from .model import AcceptedVuln, Manifest
from .sources import default_source

MAX_RECORD = 16 * 1024 * 1024
_NO_INDEX = "http://127.0.0.1/no-index/"
_RANGE_TYPES = ("ECOSYSTEM", "SEMVER")
_EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


class VulnerableError(IntegrityError):
    """A bundled version has a known advisory nobody accepted (exit 3, policy failure)."""

    kind = "vulnerable"


@dataclass(frozen=True)
class Advisory:
    """One OSV record, reduced to what matching and the report need."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    affected: tuple[dict[str, Any], ...]  # PyPI entries only


@dataclass(frozen=True)
class Finding:
    """A pinned version that an advisory affects."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    summary: str
    fixed: tuple[str, ...]

    def names(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass
class Database:
    """Advisories by normalized PyPI package name."""

    by_name: dict[str, list[Advisory]] = field(default_factory=dict)
    records: int = 0
    withdrawn: int = 0
    pypi: int = 0  # records with a PyPI `affected` entry, withdrawn ones too
    newest: str | None = None  # the latest `modified` of any record: how fresh the dump is
    newest_at: datetime | None = None


def _records(path: Path) -> Iterator[tuple[str, bytes]]:
    """(where, JSON bytes) of every record in a zip dump or a folder tree."""
    if path.is_dir():
        for item in sorted(path.rglob("*.json")):
            yield str(item), item.read_bytes()
        return
    if not path.is_file():
        raise UsageError(f"--osv-db {path}: no such file or folder")
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                if info.file_size > MAX_RECORD:
                    raise UsageError(f"{path}:{info.filename}: {info.file_size} bytes, over "
                                     f"the {MAX_RECORD} limit for one record")
                yield f"{path}:{info.filename}", zf.read(info)
    except zipfile.BadZipFile as exc:
        raise UsageError(f"--osv-db {path}: not a zip of OSV records nor a folder") from exc


def _pypi_entries(doc: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    out = []
    for entry in doc.get("affected") or ():
        package = entry.get("package") or {}
        if package.get("ecosystem") == "PyPI" and package.get("name"):
            out.append(entry)
    return tuple(out)


def _modified(doc: dict[str, Any]) -> datetime | None:
    """A record's `modified` (RFC 3339), or None when absent or unreadable."""
    try:
        at = datetime.fromisoformat(str(doc["modified"]))
    except (KeyError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def load(path: Path) -> Database:
    """Read the dump once into an index by package name; malformed records are errors
    (a half-read advisory database would pass vulnerable versions silently).

    So is a dump with no PyPI advisory at all (an empty folder, a zip of something
    else, another ecosystem's dump): matching against it finds nothing and would report
    every version clean. The newest `modified` is kept so a stale dump shows its age.
    """
    db = Database()
    for where, raw in _records(path):
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                raise ValueError("no `id`")
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"{where}: not an OSV record ({exc})") from exc
        db.records += 1
        at = _modified(doc)
        if at is not None and (db.newest_at is None or at > db.newest_at):
            db.newest_at, db.newest = at, str(doc["modified"])
        entries = _pypi_entries(doc)
        db.pypi += bool(entries)
        if doc.get("withdrawn"):
            db.withdrawn += 1
            continue
        if not entries:
            continue
        advisory = Advisory(doc["id"], tuple(str(a) for a in doc.get("aliases") or ()),
                            str(doc.get("summary") or ""), entries)
        for name in {canonicalize_name(e["package"]["name"]) for e in entries}:
            db.by_name.setdefault(name, []).append(advisory)
    if not db.pypi:
        held = f"{db.records} record(s), none about a PyPI package" if db.records \
            else "no OSV records (*.json)"
        raise UsageError(f"--osv-db {path}: {held}; an empty or wrong advisory database "
                         "would pass every version (give the PyPI dump: all.zip)")
    return db


def describe(db: Database) -> str:
    """One line on the dump itself, for stderr: how big and how fresh it is."""
    return (f"advisory database: {db.records} records ({db.pypi} for PyPI), newest "
            f"modified {db.newest or 'unknown (no `modified` dates)'}")


def _version(text: object) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def in_range(version: Version, events: Iterable[dict[str, Any]]) -> bool:
    """OSV range semantics: walk the events in version order; `introduced` opens,
    `fixed` closes before its version, `last_affected` closes after its version, and
    any `limit` caps the whole range (exclusive)."""
    walk: list[tuple[Version, int, str]] = []
    limits: list[Version] = []
    for event in events:
        for kind, value in event.items():
            if kind not in _EVENT_ORDER:
                continue
            if kind == "limit" and value == "*":
                continue
            if kind == "introduced" and str(value) == "0":
                at: Version | None = Version("0")
            else:
                at = _version(value)
            if at is None:
                continue  # an unparseable bound cannot be compared; ignore that event
            if kind == "limit":
                limits.append(at)
            else:
                walk.append((at, _EVENT_ORDER[kind], kind))
    if limits and not any(version < limit for limit in limits):
        return False
    affected = False
    for at, _, kind in sorted(walk):
        if kind == "introduced" and version >= at:
            affected = True
        elif (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at):
            affected = False
    return affected


def _affects(entry: dict[str, Any], version: Version) -> bool:
    for listed in entry.get("versions") or ():
        if _version(listed) == version:
            return True
    return any(r.get("type") in _RANGE_TYPES and in_range(version, r.get("events") or ())
               for r in entry.get("ranges") or ())


def _fixed(entry: dict[str, Any]) -> list[str]:
    return [str(e["fixed"]) for r in entry.get("ranges") or ()
            if r.get("type") in _RANGE_TYPES for e in r.get("events") or () if "fixed" in e]


def check(db: Database, pins: Iterable[tuple[str, str]]) -> list[Finding]:
    """Every (package, version) an advisory affects, sorted by package, version, id."""
    found: dict[tuple[str, str, str], Finding] = {}
    for name, text in pins:
        key = canonicalize_name(name)
        version = _version(text)
        if version is None:
            continue
        for adv in db.by_name.get(key, ()):
            entries = [e for e in adv.affected
                       if canonicalize_name(e["package"]["name"]) == key
                       and _affects(e, version)]
            if entries:
                fixed = sorted({f for e in entries for f in _fixed(e)},
                               key=lambda f: (_version(f) or Version("0"), f))
                found[(key, text, adv.id)] = Finding(str(key), text, adv.id, adv.aliases,
                                                     adv.summary, tuple(fixed))
    return [found[k] for k in sorted(found)]


@dataclass(frozen=True)
class Report:
    """The audit's result: findings split by whether someone accepted them."""

    packages: int
    records: int
    open: tuple[Finding, ...]
    accepted: tuple[Finding, ...]
    unused_ignores: tuple[str, ...]
    newest_modified: str | None = None

    @property
    def ok(self) -> bool:
        return not self.open


def audit(db: Database, pins: Iterable[tuple[str, str]], ignore: Iterable[str] = ()
          ) -> Report:
    """Match and split: a finding is accepted when --ignore-vuln names its ID or an alias."""
    pins = sorted(set(pins))
    ignore = set(ignore)
    findings = check(db, pins)
    accepted = tuple(f for f in findings if f.names() & ignore)
    used = {n for f in accepted for n in f.names()}
    return Report(len(pins), db.records, tuple(f for f in findings if not f.names() & ignore),
                  accepted, tuple(sorted(ignore - used)), db.newest)


def pins_of_manifest(manifest: Manifest) -> list[tuple[str, str]]:
    return sorted({(f.name, f.version) for f in manifest.files})


def pins_of_lock(lock: Path, fmt: str | None = None) -> list[tuple[str, str]]:
    """Every version the lock pins, whatever group, extra or marker selects it, including
    the packages it cannot bundle (model.Unusable: a git checkout, a line without a hash)
    that still name one version: the lock installs them somewhere, so they are audited.

    Readers want a default index for unpinned packages; auditing never asks it, so a
    placeholder keeps pip's configuration (and the network) out of an offline audit."""
    parsed = locks.load(lock, fmt=fmt, default=default_source(_NO_INDEX))
    # The lock's own text: "1.0", or "==1.0" (Pipfile, requirements); "*" or a range
    # pins nothing to audit.
    unusable = {(str(u.name), str(v)) for u in parsed.unusable
                if (v := _version(u.version.removeprefix("===").removeprefix("==")))}
    return sorted({(str(p.name), str(p.version)) for p in parsed.packages} | unusable)


def accepted_vulns(report: Report) -> tuple[AcceptedVuln, ...]:
    """What the manifest records about each acceptance."""
    return tuple(AcceptedVuln(f.id, f.package, f.version, f.aliases) for f in report.accepted)


def refuse_if_open(report: Report) -> None:
    """The gate: raise when any finding is not accepted."""
    if report.ok:
        return
    first = report.open[0]
    more = f" and {len(report.open) - 1} more" if len(report.open) > 1 else ""
    raise VulnerableError(f"{first.package} {first.version} is affected by {first.id}"
                          f"{more}; run `audit` for the report, upgrade, or accept with "
                          f"--ignore-vuln ID")


def finding_json(f: Finding) -> dict[str, Any]:
    return {"package": f.package, "version": f.version, "id": f.id, "aliases": list(f.aliases),
            "summary": f.summary, "fixed": list(f.fixed)}


def to_json(report: Report) -> dict[str, Any]:
    return {"ok": report.ok, "packages": report.packages, "records": report.records,
            "newest_modified": report.newest_modified,
            "findings": [finding_json(f) for f in report.open],
            "accepted": [finding_json(f) for f in report.accepted],
            "unused_ignores": list(report.unused_ignores)}


def to_lines(report: Report) -> list[str]:
    """The human report: one line per finding."""
    lines = []
    for label, group in (("VULN", report.open), ("accepted", report.accepted)):
        for f in group:
            aliases = f" ({', '.join(f.aliases)})" if f.aliases else ""
            fixed = f"fixed in {', '.join(f.fixed)}" if f.fixed else "no fixed version"
            lines.append(f"{label:<8} {f.package} {f.version}  {f.id}{aliases}  {fixed}"
                         + (f"  {f.summary}" if f.summary else ""))
    for name in report.unused_ignores:
        lines.append(f"note     --ignore-vuln {name} matched nothing")
    lines.append(f"{len(report.open)} open, {len(report.accepted)} accepted; "
                 f"{report.packages} pinned versions against {report.records} records")
    return lines
