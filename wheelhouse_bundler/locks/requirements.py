"""Hashed requirements files, as `pip-compile --generate-hashes` or `pip lock` write them.

Every line must pin one version (`name==version`) and carry its `--hash` options: the
hashes are the lock. File names are not recorded here, so each file is known only by
hash until the index names it. An `--index-url` line names the source. A line pip would
have to build or resolve (a direct URL, no single pinned version) or that has no
`--hash` is recorded as model.Unusable with its marker, so select refuses it, naming its
line, only on the targets that need it; what cannot be read at all refuses the file.
"""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import LockError, excerpt
from ..model import ALWAYS, Condition, Lock, LockedFile, LockedPackage, Source, Unusable
from ..sources import index_source
from . import not_an_index_wheel, read_bytes, sha256_hex

_IGNORED_OPTIONS = ("--no-binary", "--only-binary", "--prefer-binary", "--trusted-host",
                    "--pre", "--find-links", "-f")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations and drop comments, keeping the first line number."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw
        if line.lstrip().startswith("#"):
            line = ""
        elif " #" in line or "\t#" in line:
            line = line[: min(i for i in (line.find(" #"), line.find("\t#")) if i >= 0)]
        if not buf:
            start = number
        if line.rstrip().endswith("\\"):
            buf.append(line.rstrip()[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf).strip()
        buf = []
        if joined:
            out.append((start, joined))
    if buf:
        joined = " ".join(part.strip() for part in buf).strip()
        if joined:
            out.append((start, joined))
    return out


def _split_options(line: str) -> tuple[str, list[str]]:
    """`req ; marker --hash=a --hash b` -> ("req ; marker", ["--hash=a", "--hash=b"])."""
    tokens = line.split()
    req: list[str] = []
    opts: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-"):
            if "=" not in tok and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                opts.append(f"{tok}={tokens[i + 1]}")
                i += 2
                continue
            opts.append(tok)
        elif opts:
            opts[-1] += " " + tok
        else:
            req.append(tok)
        i += 1
    return " ".join(req), opts


def _bad_hash(value: str) -> str:
    """Why a --hash value is not one we can check: the algorithm, or the digest itself."""
    algo, sep, digest = value.partition(":")
    if not sep:
        return f"--hash {excerpt(value)} is not algorithm:digest (sha256:<64 hex>)"
    if algo != "sha256":
        return f"--hash {excerpt(value, quote=False)}: only sha256 hashes are accepted"
    return f"--hash sha256:{excerpt(digest, 70, quote=False)}: the digest is not 64 hex " \
        "characters"


def parse(path: Path, *, default: Source, allow_unhashed: bool = False) -> Lock:
    data, digest = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockError(path, "not UTF-8 text") from exc
    sources: list[Source] = []
    packages: dict[str, LockedPackage] = {}
    unusable: dict[str, Unusable] = {}
    for number, line in _logical_lines(text):
        spec, opts = _split_options(line)
        if not spec:
            for opt in opts:
                key, _, value = opt.partition("=")
                if key in ("--index-url", "-i"):
                    sources.insert(0, index_source("requirements-index", value,
                                                  f"{path}:{number}: --index-url"))
                elif key == "--extra-index-url":
                    raise LockError(path, "--extra-index-url is ambiguous in a lock: give one "
                                    "--index-url (files are found by hash)", number)
                elif key in ("-e", "--editable"):
                    raise LockError(path, "editable requirements cannot be bundled", number)
                elif key in ("-r", "--requirement", "-c", "--constraint"):
                    raise LockError(path, f"{key} is not supported in a lock; inline it", number)
                elif not key.startswith(_IGNORED_OPTIONS):
                    raise LockError(path, f"unsupported option {excerpt(key)}", number)
            continue
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            # packaging's message repeats the line under a caret: its first line suffices.
            why = str(exc).splitlines()[0] if str(exc) else "invalid"
            raise LockError(path, f"not a requirement: {excerpt(spec)} "
                            f"({excerpt(why, quote=False)})", number) from exc
        name = canonicalize_name(req.name)
        if name in packages or name in unusable:
            raise LockError(path, f"{name} is listed twice", number)
        hashes = []
        for opt in opts:
            key, _, value = opt.partition("=")
            if key != "--hash":
                raise LockError(path, f"{req.name}: unsupported option {excerpt(key)}",
                                number)
            if (hexdigest := sha256_hex(value)) is None:
                raise LockError(path, f"{req.name}: {_bad_hash(value)}", number)
            hashes.append(hexdigest)
        when = (Condition(marker=req.marker),) if req.marker else ALWAYS
        pins = [s for s in req.specifier if s.operator in ("==", "===")]
        why = None
        if req.url:
            why = (not_an_index_wheel(f"a direct URL ({req.url})")
                   if not req.url.endswith(".whl") else
                   f"is a direct URL ({req.url}), which a hashed requirements lock cannot "
                   "bundle; publish the wheel on an index and lock that")
        elif len(pins) != 1 or "*" in pins[0].version:
            why = "is not pinned to one version (need name==X)"
        if why is not None:
            unusable[name] = Unusable(name, str(req.specifier), f"{why} ({path.name}, line "
                                      f"{number})", when)
            continue
        try:
            version = Version(pins[0].version)
        except InvalidVersion as exc:
            raise LockError(path, f"{req.name}: invalid version {excerpt(pins[0].version)}",
                            number) from exc
        if not hashes and not allow_unhashed:
            unusable[name] = Unusable(
                name, str(req.specifier), "has no --hash (hashes are the lock; compile it "
                f"again with --generate-hashes, or pass --allow-unhashed) "
                f"({path.name}, line {number})", when)
            continue
        packages[name] = LockedPackage(
            name=name,
            version=version,
            files=tuple(LockedFile(sha256=h) for h in dict.fromkeys(hashes)),
            when=when,
        )
    source = sources[0] if sources else default
    pkgs = tuple(
        LockedPackage(p.name, p.version, p.files, p.when, p.requires_python, source)
        for p in sorted(packages.values(), key=lambda p: p.name)
    )
    return Lock(path=path, format="requirements", sha256=digest, packages=pkgs,
                unusable=tuple(unusable[n] for n in sorted(unusable)))
