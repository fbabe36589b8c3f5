"""What changed between two bundles, per target: for the human who approves a release.

Only verified manifests are compared (the caller verifies both bundles first), so the
report is about the bytes that would really be installed. A package counts as changed
when its version or its file's sha256 differs; the same version with another hash (a
rebuilt or re-uploaded wheel) is called out on its own, since that is exactly what a
reviewer wants to see. Comparing is pure: rendering to text or JSON is separate.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .model import Manifest, ManifestFile


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    filename: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "filename": self.filename,
                "sha256": self.sha256}


@dataclass(frozen=True)
class Change:
    old: Entry
    new: Entry

    @property
    def fields(self) -> tuple[str, ...]:
        """Which of version and sha256 differ (a file with a new version differs in both)."""
        return tuple(k for k, a, b in (("version", self.old.version, self.new.version),
                                       ("sha256", self.old.sha256, self.new.sha256)) if a != b)

    @property
    def direction(self) -> str:
        """upgrade, downgrade, or rebuild (same version, other bytes)."""
        if self.old.version == self.new.version:
            return "rebuild"
        try:
            return "upgrade" if Version(self.new.version) > Version(self.old.version) \
                else "downgrade"
        except InvalidVersion:
            return "upgrade" if self.new.version > self.old.version else "downgrade"


@dataclass(frozen=True)
class TargetDiff:
    target: str
    status: str  # "added" / "removed" (target in one bundle only), "changed", "same"
    added: tuple[Entry, ...] = ()
    removed: tuple[Entry, ...] = ()
    changed: tuple[Change, ...] = ()


def _entries(manifest: Manifest, target: str) -> dict[str, Entry]:
    return {canonicalize_name(f.name): _entry(f) for f in manifest.files_for(target)}


def _entry(f: ManifestFile) -> Entry:
    return Entry(f.name, f.version, f.filename, f.sha256)


def compare(old: Manifest, new: Manifest) -> list[TargetDiff]:
    """Per target (sorted by name): packages added, removed and changed from old to new."""
    old_targets = {t.name for t in old.targets}
    new_targets = {t.name for t in new.targets}
    out = []
    for target in sorted(old_targets | new_targets):
        before = _entries(old, target) if target in old_targets else {}
        after = _entries(new, target) if target in new_targets else {}
        added = tuple(after[k] for k in sorted(after.keys() - before.keys()))
        removed = tuple(before[k] for k in sorted(before.keys() - after.keys()))
        changed = tuple(Change(before[k], after[k]) for k in sorted(before.keys() & after.keys())
                        if before[k].sha256 != after[k].sha256
                        or before[k].version != after[k].version)
        if target not in old_targets:
            status = "added"
        elif target not in new_targets:
            status = "removed"
        else:
            status = "changed" if added or removed or changed else "same"
        out.append(TargetDiff(target, status, added, removed, changed))
    return out


def to_json(diffs: list[TargetDiff]) -> dict[str, object]:
    targets = [{"target": d.target, "status": d.status,
                "added": [e.to_json() for e in d.added],
                "removed": [e.to_json() for e in d.removed],
                "changed": [{"name": c.new.name, "fields": list(c.fields),
                             "direction": c.direction, "old": c.old.to_json(),
                             "new": c.new.to_json()} for c in d.changed]}
               for d in diffs]
    return {"targets": targets, "identical": all(d.status == "same" for d in diffs)}


def to_lines(diffs: list[TargetDiff], old_name: str, new_name: str) -> list[str]:
    """A change review: one heading per target, then + added, - removed, ~ changed."""
    lines = []
    for d in diffs:
        if d.status == "same":
            lines.append(f"target {d.target}: no change")
            continue
        where = {"added": f" (only in {new_name})", "removed": f" (only in {old_name})"}
        lines.append(f"target {d.target}{where.get(d.status, '')}: {len(d.added)} added, "
                     f"{len(d.removed)} removed, {len(d.changed)} changed")
        lines += [f"  + {e.name} {e.version}  {e.filename}" for e in d.added]
        lines += [f"  - {e.name} {e.version}  {e.filename}" for e in d.removed]
        for c in d.changed:
            if c.direction == "rebuild":
                lines.append(f"  ~ {c.new.name} {c.new.version}: same version, other file "
                             f"(sha256 {c.old.sha256[:12]}... -> {c.new.sha256[:12]}...)  "
                             f"{c.new.filename}")
            else:
                lines.append(f"  ~ {c.new.name} {c.old.version} -> {c.new.version} "
                             f"({c.direction})  {c.new.filename}")
    return lines
