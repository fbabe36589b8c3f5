"""Target spec strings -> tag priority lists and marker environments.

A spec like `cp311-manylinux_2_28_x86_64` names what a target's pip would accept; we
expand it the way pip and packaging do on that machine (older manylinux levels and their
legacy aliases, older musllinux minors, older macOS releases and universal2, abi3 of
older CPython minors, pure-Python tags last), so selection can run on the build box.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

from packaging import tags
from packaging.markers import default_environment

from .errors import UsageError
from .model import Target

_SPEC = re.compile(r"^cp3(?P<minor>\d+)-(?P<platform>[a-z0-9_]+)$")
_MANYLINUX = re.compile(r"^manylinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_LEGACY_ALIAS = {v: k for k, v in _LEGACY_MANYLINUX.items()}
_MUSLLINUX = re.compile(r"^musllinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_MACOS = re.compile(r"^macosx_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_WINDOWS = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}
EXAMPLES = "cp311-manylinux_2_28_x86_64, cp312-musllinux_1_2_aarch64, " \
           "cp311-macosx_14_0_arm64, cp313-win_amd64, host"


def host() -> Target:
    """The running interpreter, exactly as its own pip sees it."""
    tag_list = tuple(tags.sys_tags())
    # Name it by its most specific portable platform (manylinux_2_36 rather than linux).
    first = next((t for t in tag_list if not t.platform.startswith("linux_")), tag_list[0])
    env = {k: str(v) for k, v in default_environment().items()}
    return Target(name=f"{first.interpreter}-{first.platform}", tags=tag_list, environment=env)


def parse(spec: str) -> Target:
    """A target from its spec string; `host` means the running interpreter."""
    if spec == "host":
        return host()
    match = _SPEC.match(spec)
    if not match:
        raise UsageError(f"unknown target {spec!r} (examples: {EXAMPLES})")
    minor = int(match["minor"])
    platform = match["platform"]
    platforms = list(_expand_platform(platform, spec))
    version = (3, minor)
    interpreter = f"cp3{minor}"
    tag_list = (
        *tags.cpython_tags(version, abis=[interpreter], platforms=platforms),
        *tags.compatible_tags(version, interpreter=interpreter, platforms=platforms),
    )
    return Target(name=spec, tags=tuple(tag_list), environment=_environment(version, platform))


def _expand_platform(platform: str, spec: str) -> Iterator[str]:
    if platform in _LEGACY_MANYLINUX:
        raise UsageError(f"target {spec!r}: write the glibc level, e.g. manylinux_2_17_x86_64")
    if m := _MANYLINUX.match(platform):
        arch = m["arch"]
        floor = 5 if arch in ("x86_64", "i686") else 17
        for glibc_minor in range(int(m["minor"]), floor - 1, -1):
            yield f"manylinux_2_{glibc_minor}_{arch}"
            if (2, glibc_minor) in _LEGACY_ALIAS:
                yield f"{_LEGACY_ALIAS[(2, glibc_minor)]}_{arch}"
        return
    if m := _MUSLLINUX.match(platform):
        for musl_minor in range(int(m["minor"]), -1, -1):
            yield f"musllinux_{m['major']}_{musl_minor}_{m['arch']}"
        return
    if m := _MACOS.match(platform):
        yield from tags.mac_platforms((int(m["major"]), int(m["minor"])), m["arch"])
        return
    if platform in _WINDOWS:
        yield platform
        return
    raise UsageError(f"unknown target {spec!r}: unknown platform {platform!r} "
                     f"(examples: {EXAMPLES})")


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


def resolve(specs: list[str]) -> list[Target]:
    """Targets for the given specs (host when none), de-duplicated and sorted by name.

    Sorting makes the bundle independent of the order of `--target` flags.
    """
    found = {t.name: t for t in (parse(s) for s in (specs or ["host"]))}
    return [found[name] for name in sorted(found)]


def current_python_is(python: str | None) -> bool:
    return python is None or python == sys.executable
