"""Targets: spec strings, probe facts and target files -> tag priority lists and markers.

A spec like `cp311-manylinux_2_28_x86_64` names what a target's pip would accept; we
expand it the way pip and packaging do on that machine (older manylinux levels and their
legacy aliases, older musllinux minors, older macOS releases and universal2, abi3 of
older CPython minors, pure-Python tags last), so selection can run on the build box.

A real machine is described better by its own facts: `probe.py` (stdlib only) reports
them there, and `from_probe` expands them here with packaging's public tag functions into
the list that machine's own pip uses (pip's `get_supported()`: `sys_tags()` of the
packaging pip vendors, except that pip always adds `<impl><nodot>-none-any`, e.g.
`cp311-none-any` even where its packaging is older than 22.0, and `pp310-none-any` rather
than `pp3-none-any`). Rules that changed between packaging releases follow the one
vendored in the target's pip: packaging 26.3 moved the native `linux_<arch>` tags ahead
of manylinux/musllinux, and 26.1 added abi3t for free-threaded builds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import packaging
from packaging import tags
from packaging.tags import Tag
from packaging.version import InvalidVersion, Version

from .errors import UsageError
from .model import Target
from .standalone import probe

_SPEC = re.compile(r"^cp3(?P<minor>\d+)(?P<threaded>t?)-(?P<platform>[a-z0-9_]+)$")
_MANYLINUX = re.compile(r"^manylinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_LEGACY_ALIAS = {v: k for k, v in _LEGACY_MANYLINUX.items()}
_MUSLLINUX = re.compile(r"^musllinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_MACOS = re.compile(r"^macosx_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_WINDOWS = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
EXAMPLES = "cp311-manylinux_2_28_x86_64, cp312-musllinux_1_2_aarch64, " \
           "cp311-macosx_14_0_arm64, cp313-win_amd64, host"

# packaging's rules, restated over facts instead of the running interpreter.
_SHORT_NAMES = {"python": "py", "cpython": "cp", "pypy": "pp", "ironpython": "ip",
                "jython": "jy"}
_MANYLINUX_ARCHS = {"x86_64", "aarch64", "ppc64", "ppc64le", "s390x", "loongarch64", "riscv64"}
# Tag rules that changed between packaging releases, which pips of many ages vendor.
_ABI3T_SINCE = Version("26.1")
_NATIVE_LINUX_FIRST_SINCE = Version("26.3")
_ELF_ARM, _ELF_I386 = 40, 3
_EF_ARM_ABIMASK, _EF_ARM_ABI_VER5, _EF_ARM_ABI_FLOAT_HARD = 0xFF000000, 0x05000000, 0x400
_ENV_KEYS = frozenset(probe.marker_environment())

# What a spec may name. Each expansion loops from the level named down to the oldest, so
# an absurd level (glibc 2.9999999) cost gigabytes before anything was checked; the
# bounds are far beyond any release, and a typo in an architecture is refused, not
# turned into a target no wheel will ever match.
ARCHS = {
    "manylinux": ("x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x",
                  "riscv64", "loongarch64"),
    "musllinux": ("x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64",
                  "loongarch64"),
    "macosx": ("x86_64", "arm64", "universal2"),
}
MAX_PYTHON_MINOR = 40
MAX_GLIBC_MINOR = 99  # glibc is 2.x; 2.41 in 2025
MAX_MUSL_MINOR = 99  # musl is 1.x; 1.2 in 2025
MAX_MACOS_MAJOR = 60  # 10.x until 2020, then one major a year (26 in 2025)
MAX_MACOS_MINOR = 99


# ---- spec strings


def host() -> Target:
    """The running interpreter, exactly as its own pip sees it (same path as a probe)."""
    return from_probe(probe.collect())


def parse(spec: str) -> Target:
    """A target from its spec string; `host` means the running interpreter."""
    if spec == "host":
        return host()
    match = _SPEC.match(spec)
    if not match:
        raise UsageError(f"unknown target {spec!r} (examples: {EXAMPLES})")
    minor = _bounded(spec, "Python 3 minor version", match["minor"], 0, MAX_PYTHON_MINOR)
    platform = match["platform"]
    platforms = list(_expand_platform(platform, spec))
    version = (3, minor)
    interpreter = f"cp3{minor}"
    abi = interpreter + match["threaded"]
    if match["threaded"] and version < (3, 13):
        raise UsageError(f"target {spec!r}: free-threaded builds start with CPython 3.13")
    tag_list = (
        *tags.cpython_tags(version, abis=[abi], platforms=platforms),
        *tags.compatible_tags(version, interpreter=interpreter, platforms=platforms),
    )
    return Target(name=spec, tags=_unique(tag_list), environment=_environment(version, platform))


def _bounded(where: str, what: str, text: str | int, low: int, high: int) -> int:
    """`text` as an int within [low, high], else a UsageError naming `where` and `what`.

    Checked before the number drives any loop: the tag expansions count down from it.
    """
    digits = str(text)
    value = text if isinstance(text, int) else (
        int(digits) if digits.isdigit() and len(digits) <= 9 else None)
    if value is None or not low <= value <= high:
        raise UsageError(f"target {_short(where)!r}: {what} {_short(digits)} is out of range "
                         f"({low} to {high})")
    return value


def _short(text: str) -> str:
    """A spec as shown in an error: a pasted megabyte is not echoed back whole."""
    return text if len(text) <= 60 else text[:57] + "..."


def _check_arch(spec: str, family: str, arch: str) -> str:
    if arch not in ARCHS[family]:
        raise UsageError(f"target {_short(spec)!r}: unknown {family} architecture {arch!r} "
                         f"(known: {', '.join(ARCHS[family])})")
    return arch


def _expand_platform(platform: str, spec: str) -> Iterator[str]:
    if platform in _LEGACY_MANYLINUX:
        raise UsageError(f"target {spec!r}: write the glibc level, e.g. manylinux_2_17_x86_64")
    if m := _MANYLINUX.match(platform):
        arch = _check_arch(spec, "manylinux", m["arch"])
        floor = 5 if arch in ("x86_64", "i686") else 17
        _bounded(spec, "glibc major version", m["major"], 2, 2)
        top = _bounded(spec, "glibc minor version", m["minor"], floor, MAX_GLIBC_MINOR)
        for glibc_minor in range(top, floor - 1, -1):
            yield f"manylinux_2_{glibc_minor}_{arch}"
            if (2, glibc_minor) in _LEGACY_ALIAS:
                yield f"{_LEGACY_ALIAS[(2, glibc_minor)]}_{arch}"
        return
    if m := _MUSLLINUX.match(platform):
        arch = _check_arch(spec, "musllinux", m["arch"])
        _bounded(spec, "musl major version", m["major"], 1, 1)
        top = _bounded(spec, "musl minor version", m["minor"], 0, MAX_MUSL_MINOR)
        for musl_minor in range(top, -1, -1):
            yield f"musllinux_1_{musl_minor}_{arch}"
        return
    if m := _MACOS.match(platform):
        arch = _check_arch(spec, "macosx", m["arch"])
        yield from tags.mac_platforms(_macos_version(spec, m["major"], m["minor"]), arch)
        return
    if platform in _WINDOWS:
        yield platform
        return
    raise UsageError(f"unknown target {spec!r}: unknown platform {platform!r} "
                     f"(examples: {EXAMPLES})")


def _macos_version(where: str, major: str | int, minor: str | int) -> tuple[int, int]:
    """macOS 10.0-10.16, then 11 onwards (where the minor is a mid-year update)."""
    first = _bounded(where, "macOS major version", major, 10, MAX_MACOS_MAJOR)
    second = _bounded(where, "macOS minor version", minor, 0,
                      16 if first == 10 else MAX_MACOS_MINOR)
    return first, second


def _environment(version: tuple[int, int], platform: str) -> dict[str, str]:
    """Markers for a spec; the patch release is unknown, so `.0` (the lowest) stands in."""
    full = f"{version[0]}.{version[1]}.0"
    env = {
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "python_version": f"{version[0]}.{version[1]}",
        "python_full_version": full,
        "platform_release": "",
        "platform_version": "",
    }
    if platform.startswith(("manylinux", "musllinux")):
        arch = platform.split("_", 3)[-1]
        env.update(os_name="posix", sys_platform="linux", platform_system="Linux",
                   platform_machine=arch)
    elif platform.startswith("macosx"):
        arch = platform.split("_", 3)[-1]
        machine = "arm64" if arch in ("arm64", "universal2") else arch
        env.update(os_name="posix", sys_platform="darwin", platform_system="Darwin",
                   platform_machine=machine)
    else:
        env.update(os_name="nt", sys_platform="win32", platform_system="Windows",
                   platform_machine=_WINDOWS[platform])
    return env


# ---- probe facts


class _BadFacts(Exception):
    """A fact missing or of the wrong shape; from_probe names where it came from."""


def from_probe(facts: Mapping[str, Any], name: str | None = None, *,
               source: str = "probe output") -> Target:
    """The target a probe describes: its interpreter's tags, best first, and its markers.

    The tag list equals what the target's own pip uses there (its `get_supported()`,
    which for CPython with packaging >= 22 is `sys_tags()`); `name` defaults to
    interpreter and most specific portable platform, e.g. `cp311-manylinux_2_36_x86_64`.
    """
    try:
        if not isinstance(facts, Mapping) or probe.MARK not in facts:
            raise _BadFacts("not the output of the probe (wheelhouse-bundler target-info "
                            "--script)")
        if facts[probe.MARK] != probe.FORMAT:
            raise _BadFacts(f"probe format {facts[probe.MARK]!r}; this version reads "
                            f"format {probe.FORMAT}")
        tag_list, label = _probe_tags(facts)
        environment = _probe_environment(facts)
    except _BadFacts as exc:
        raise UsageError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UsageError(f"{source}: malformed probe facts ({type(exc).__name__}: {exc})"
                         ) from None
    if name is None:
        portable = next((t.platform for t in tag_list if not t.platform.startswith("linux_")
                         and t.platform != "any"), tag_list[0].platform)
        name = f"{label}-{portable}"
    return Target(name=_check_name(name, source), tags=tag_list, environment=environment)


def _probe_environment(facts: Mapping[str, Any]) -> dict[str, str]:
    env = facts["environment"]
    if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
        raise _BadFacts("`environment` must map marker names to strings")
    missing = _ENV_KEYS - env.keys()
    if missing:
        raise _BadFacts(f"`environment` lacks {', '.join(sorted(missing))}")
    return {str(k): env[k] for k in sorted(env)}


def _probe_tags(facts: Mapping[str, Any]) -> tuple[tuple[Tag, ...], str]:
    """The probed interpreter's pip's tags, and the name's interpreter part."""
    impl = str(facts["implementation"]["name"])
    version = tuple(int(x) for x in facts["python_version"][:2])
    if len(version) != 2 or version[0] != 3 or not 0 <= version[1] <= MAX_PYTHON_MINOR:
        raise _BadFacts(f"python_version {version} is out of range (3.0 to "
                        f"3.{MAX_PYTHON_MINOR})")
    short = _SHORT_NAMES.get(impl, impl)
    rules = _pip_packaging(facts)
    platforms = _probe_platforms(facts, rules)
    if not platforms:
        raise _BadFacts("no platform tags could be derived")
    nodot = str(facts["config_vars"].get("py_version_nodot") or f"{version[0]}{version[1]}")
    if short == "cp":
        abis = _cpython_abis(facts, version)
        found = [*tags.cpython_tags(version, abis=abis, platforms=platforms)]
        label = f"cp{version[0]}{version[1]}" + ("t" if _free_threaded(facts, version) else "")
    else:
        interpreter = f"{short}{nodot}"
        found = [*tags.generic_tags(interpreter, abis=_generic_abis(facts), platforms=platforms)]
        label = interpreter
    # pip passes its own interpreter name here, on every version (sys_tags() differs).
    found += tags.compatible_tags(version, interpreter=f"{short}{nodot}", platforms=platforms)
    if rules < _ABI3T_SINCE:
        found = [t for t in found if t.abi != "abi3t"]
    return _unique(found), label


def _cpython_abis(facts: Mapping[str, Any], version: tuple[int, ...]) -> list[str]:
    """The ABI tags of a CPython build, from the sysconfig variables packaging reads."""
    config = facts["config_vars"]
    nodot = f"{version[0]}{version[1]}"
    with_debug = config.get("Py_DEBUG")
    debug = bool(with_debug) or (with_debug is None and (
        bool(facts.get("has_gettotalrefcount")) or "_d.pyd" in facts["extension_suffixes"]))
    threading = "t" if _free_threaded(facts, version) else ""
    pymalloc = ""
    if version < (3, 8) and (config.get("WITH_PYMALLOC") or config.get("WITH_PYMALLOC") is None):
        pymalloc = "m"
    abis = [f"cp{nodot}{threading}{'d' if debug else ''}{pymalloc}"]
    if debug and version >= (3, 8):
        abis.append(f"cp{nodot}{threading}")  # debug builds also load release extensions
    return abis


def _free_threaded(facts: Mapping[str, Any], version: tuple[int, ...]) -> bool:
    return version >= (3, 13) and bool(facts["config_vars"].get("Py_GIL_DISABLED"))


def _generic_abis(facts: Mapping[str, Any]) -> list[str]:
    """The ABI tag of a non-CPython interpreter, read from its EXT_SUFFIX."""
    suffix = facts["config_vars"].get("EXT_SUFFIX")
    if not isinstance(suffix, str) or not suffix.startswith("."):
        raise _BadFacts("EXT_SUFFIX is missing or invalid")
    parts = suffix.split(".")
    if len(parts) < 3 or not parts[1]:
        return []
    soabi = parts[1]
    pieces = soabi.split("-")
    if soabi.startswith("cpython"):
        abi = "cp" + pieces[1]
    elif soabi.startswith("cp"):
        abi = pieces[0]
    elif soabi.startswith("pypy"):
        abi = "-".join(pieces[:2])
    elif soabi.startswith("graalpy"):
        abi = "-".join(pieces[:3])
    else:
        abi = soabi
    return [_normalize(abi)]


def _normalize(text: str) -> str:
    return re.sub(r"[.\- ]", "_", text)


def _probe_platforms(facts: Mapping[str, Any], rules: Version) -> list[str]:
    system = facts["system"]
    if system == "Darwin":
        release = [int(x) for x in str(facts["macos"]["release"]).split(".")[:2]]
        version = _facts_bounded(_macos_version, release[0],
                                 release[1] if len(release) > 1 else 0)
        arch = str(facts["macos"]["machine"])
        if facts["pointer_bits"] == 32:
            arch = "ppc" if arch.startswith("ppc") else "i386"
        return list(tags.mac_platforms(version, arch))
    if system in ("iOS", "Android", "Emscripten"):
        raise _BadFacts(f"{system} interpreters are not supported as targets yet")
    plat = _normalize(str(facts["sysconfig_platform"]))
    if system != "Linux" or not plat.startswith("linux_"):
        return [plat]
    archs = probe.linux_archs(plat, facts["pointer_bits"])
    native = [f"linux_{arch}" for arch in archs]
    portable = [*_manylinux_platforms(facts, archs), *_musllinux_platforms(facts, archs)]
    return native + portable if rules >= _NATIVE_LINUX_FIRST_SINCE else portable + native


def _pip_packaging(facts: Mapping[str, Any]) -> Version:
    """The packaging release whose tag rules the target's pip follows: the one it vendors.

    Unknown (no pip found): the packaging installed here, whose rules a fresh pip follows.
    """
    vendored = (facts.get("pip") or {}).get("packaging")
    try:
        return Version(vendored) if vendored else Version(packaging.__version__)
    except InvalidVersion:
        return Version(packaging.__version__)


def _manylinux_platforms(facts: Mapping[str, Any], archs: list[str]) -> Iterator[str]:
    """PEP 600 tags, newest glibc first, as packaging's _manylinux.platform_tags."""
    if not _manylinux_abi_ok(facts.get("elf"), archs):
        return
    glibc = _two_ints(facts["libc"].get("glibc"))
    if glibc is None:
        return
    _facts_bounded(_bounded, "glibc major version", glibc[0], 2, 2)
    _facts_bounded(_bounded, "glibc minor version", glibc[1], 0, MAX_GLIBC_MINOR)
    oldest_minor = 4 if set(archs) & {"x86_64", "i686"} else 16  # exclusive bound on 2.x
    ceilings = [glibc] + [(major, 50) for major in range(glibc[0] - 1, 1, -1)]
    for arch in archs:
        for major, top in ceilings:
            bottom = oldest_minor if major == 2 else -1
            for minor in range(top, bottom, -1):
                if _manylinux_allowed(facts, arch, (major, minor)):
                    yield f"manylinux_{major}_{minor}_{arch}"
                    if (major, minor) in _LEGACY_ALIAS:
                        yield f"{_LEGACY_ALIAS[(major, minor)]}_{arch}"


def _manylinux_abi_ok(elf: Mapping[str, Any] | None, archs: list[str]) -> bool:
    """32-bit ARM needs a hard-float interpreter and i686 a 32-bit x86 one (ELF header)."""
    if "armv7l" in archs:
        return bool(elf) and elf["class"] == 32 and elf["byteorder"] == "little" \
            and elf["machine"] == _ELF_ARM \
            and elf["flags"] & _EF_ARM_ABIMASK == _EF_ARM_ABI_VER5 \
            and elf["flags"] & _EF_ARM_ABI_FLOAT_HARD == _EF_ARM_ABI_FLOAT_HARD
    if "i686" in archs:
        return bool(elf) and elf["class"] == 32 and elf["byteorder"] == "little" \
            and elf["machine"] == _ELF_I386
    return any(arch in _MANYLINUX_ARCHS for arch in archs)


def _manylinux_allowed(facts: Mapping[str, Any], arch: str, level: tuple[int, int]) -> bool:
    """A `_manylinux` module on the target may veto levels (PEP 600 / 513 / 571 / 599)."""
    module = facts.get("manylinux_module")
    if not module:
        return True
    answers = module.get("manylinux_compatible")
    if answers is not None:
        answer = answers.get(f"{level[0]}_{level[1]}_{arch}")
        return True if answer is None else bool(answer)
    legacy = module.get("legacy") or {}
    flag = {(2, 5): "manylinux1_compatible", (2, 12): "manylinux2010_compatible",
            (2, 17): "manylinux2014_compatible"}.get(level)
    return bool(legacy.get(flag, True)) if flag else True


def _musllinux_platforms(facts: Mapping[str, Any], archs: list[str]) -> Iterator[str]:
    musl = _two_ints(facts["libc"].get("musl"))
    if musl is None:
        return
    _facts_bounded(_bounded, "musl major version", musl[0], 1, 1)
    _facts_bounded(_bounded, "musl minor version", musl[1], 0, MAX_MUSL_MINOR)
    for arch in archs:
        for minor in range(musl[1], -1, -1):
            yield f"musllinux_{musl[0]}_{minor}_{arch}"


def _facts_bounded(check: Any, *args: Any) -> Any:
    """A spec's bound applied to a probe's fact: the same limits, said as bad facts."""
    try:
        return check("probe facts", *args)
    except UsageError as exc:
        raise _BadFacts(str(exc).split(": ", 1)[1]) from None


def _two_ints(text: object) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", text) if isinstance(text, str) else None
    return (int(match[1]), int(match[2])) if match else None


def _unique(found: Iterable[Tag]) -> tuple[Tag, ...]:
    """Tags in order, each once (the first, best, rank wins)."""
    return tuple(dict.fromkeys(found))


def _check_name(name: str, source: str) -> str:
    """Target names become folder names in the bundle: keep them plain."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"{source}: target name {name!r} must be letters, digits, '.', '_' "
                         "or '-' (at most 100)")
    return name


# ---- interpreters and target files


def probe_source() -> str:
    """probe.py's text, to print (`target-info --script`) or to run in another Python."""
    return resources.files(probe.__package__).joinpath("probe.py").read_text(encoding="utf-8")


def probe_interpreter(python: str) -> dict[str, Any]:
    """Run the stdlib-only probe in `python` (isolated mode) and return its facts."""
    try:
        proc = subprocess.run([python, "-I", "-"], input=probe_source(), capture_output=True,
                              text=True, timeout=120, check=False)
    except OSError as exc:
        raise UsageError(f"--python {python}: cannot run it: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"--python {python}: the probe did not finish in 120 s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"--python {python}: the probe failed (exit {proc.returncode}): "
                         f"{tail}")
    try:
        facts = json.loads(proc.stdout)
    except ValueError:
        raise UsageError(f"--python {python}: the probe printed no JSON") from None
    if not isinstance(facts, dict):
        raise UsageError(f"--python {python}: the probe printed no JSON object")
    return facts


def interpreter(python: str | None) -> tuple[Target, dict[str, Any]]:
    """The target an interpreter is (None: the running one) and the facts behind it."""
    # No resolve(): a venv's python links to its base interpreter but has its own pip.
    same = python is None or os.path.abspath(python) == os.path.abspath(sys.executable)
    facts = probe.collect() if same else probe_interpreter(str(python))
    return from_probe(facts, source=f"--python {python}" if python else "this Python"), facts


def describe(target: Target, facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What `target-info` prints: a target file `--target-file` reads back as it is."""
    doc: dict[str, Any] = {"name": target.name, "tags": [str(t) for t in target.tags],
                           "environment": dict(target.environment)}
    if facts is not None:
        doc["facts"] = dict(facts)
    return doc


def load_target_file(path: Path) -> Target:
    """A target from a JSON file: the probe's raw facts, or `target-info`'s output."""
    where = str(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{where}: cannot read the target file: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: not JSON ({exc})") from None
    if isinstance(doc, dict) and probe.MARK in doc:
        return from_probe(doc, source=where)
    if isinstance(doc, dict) and "tags" in doc and "environment" in doc:
        return _from_description(doc, where)
    raise UsageError(f"{where}: not a target file: expected the JSON of `python3 probe.py` "
                     "or of `wheelhouse-bundler target-info`")


def _from_description(doc: Mapping[str, Any], where: str) -> Target:
    raw = doc["tags"]
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise UsageError(f"{where}: `tags` must be a non-empty list of tag strings")
    try:
        tag_list = _unique(t for text in raw for t in sorted(tags.parse_tag(text), key=str))
    except ValueError as exc:
        raise UsageError(f"{where}: bad tag in `tags`: {exc}") from None
    env = doc["environment"]
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise UsageError(f"{where}: `environment` must map marker names to strings")
    missing = _ENV_KEYS - env.keys()
    if missing:
        raise UsageError(f"{where}: `environment` lacks {', '.join(sorted(missing))}")
    name = doc.get("name")
    if name is None:
        name = f"{tag_list[0].interpreter}-{tag_list[0].platform}"
    return Target(name=_check_name(name, where), tags=tag_list,
                  environment={k: env[k] for k in sorted(env)})


# ---- which targets a run serves


def configured(project: Path) -> tuple[list[str], list[Path]]:
    """`targets` and `target-files` from `[tool.wheelhouse-bundler]` in the project's
    pyproject.toml (beside the lock, or in the project folder); empty when absent."""
    folder = project if project.is_dir() else project.parent
    path = folder / "pyproject.toml"
    if not path.is_file():
        return [], []
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    table = doc.get("tool", {}).get("wheelhouse-bundler", {})
    specs = table.get("targets", [])
    files = table.get("target-files", [])
    for key, value in (("targets", specs), ("target-files", files)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{path}: [tool.wheelhouse-bundler] {key} must be a list of "
                             "strings")
    return list(specs), [folder / f for f in files]


def resolve(specs: Iterable[str], files: Iterable[Path] = (), project: Path | None = None
            ) -> list[Target]:
    """The run's targets, de-duplicated and sorted by name.

    From `--target` and `--target-file`; when neither is given, from the project's
    pyproject.toml; else the host. Sorting makes the bundle independent of the order of
    the flags; two different targets under one name are refused, never merged.
    """
    specs, files = list(specs), list(files)
    if not specs and not files and project is not None:
        specs, files = configured(project)
    if not specs and not files:
        specs = ["host"]
    found: dict[str, tuple[Target, str]] = {}
    candidates = [(parse(s), f"--target {s}") for s in specs]
    candidates += [(load_target_file(f), f"--target-file {f}") for f in files]
    for target, origin in candidates:
        if target.name in found:
            seen, where = found[target.name]
            if seen.tags != target.tags or dict(seen.environment) != dict(target.environment):
                raise UsageError(f"two different targets are named {target.name!r} "
                                 f"({where} and {origin}); keep one of them")
            continue
        found[target.name] = (target, origin)
    return [found[name][0] for name in sorted(found)]
