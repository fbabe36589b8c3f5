"""Raw facts about a Python interpreter, for choosing its wheels on another machine.

This module is also a standalone script: `wheelhouse-bundler target-info --script > probe.py`
writes it out, and `python3 probe.py > target.json` on a bastion prints the facts as JSON.
It therefore uses the standard library only and runs on Python 3.8 and later, with nothing
installed. It reports facts, not tags: the build box expands them into the tag priority
list with `packaging` (targets.from_probe), so a bastion's old Python never needs a recent
packaging, and the expansion rules live in one place.

Every fact is what `packaging` itself would read on that machine: the marker environment
as `default_environment()` computes it, the sysconfig variables behind the ABI tag, the
glibc version (os.confstr, else gnu_get_libc_version), the musl version (asked of the
dynamic loader named in the interpreter's ELF header), the macOS release, the ELF header
fields that decide 32-bit ARM and i686 manylinux support, any `_manylinux` override module,
and the version of `packaging` vendored in the interpreter's pip (its tag order changed in
26.3).
"""

from __future__ import annotations

import json
import os
import platform
import re
import struct
import subprocess
import sys
import sysconfig

FORMAT = 1
"""Bumped when a fact changes meaning; from_probe refuses formats it does not know."""

MARK = "wheelhouse_bundler_probe"
"""The key that tells a probe's JSON from any other document."""

_PT_INTERP = 3
_CONFIG_VARS = ("EXT_SUFFIX", "SOABI", "Py_DEBUG", "Py_GIL_DISABLED", "WITH_PYMALLOC",
                "Py_UNICODE_SIZE", "py_version_nodot", "MULTIARCH")


def _full_version(info) -> str:
    """sys.implementation.version as the `implementation_version` marker spells it."""
    text = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        text += info.releaselevel[0] + str(info.serial)
    return text


def marker_environment() -> dict:
    """The PEP 508 marker environment, computed as packaging's default_environment()."""
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": _full_version(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _read_elf(path: str):
    """Class, byte order, machine, flags and PT_INTERP of an ELF file; None if not ELF."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) \
                    or ident[5] not in (1, 2):
                return None
            bits = 32 if ident[4] == 1 else 64
            order = "<" if ident[5] == 1 else ">"
            addr = "I" if bits == 32 else "Q"
            head_fmt = order + "HHI" + addr * 3 + "IHHH"
            head = struct.unpack(head_fmt, f.read(struct.calcsize(head_fmt)))
            machine, phoff, flags, phentsize, phnum = head[1], head[4], head[6], head[8], head[9]
            if bits == 32:
                ph_fmt, type_at, offset_at, size_at = order + "IIIIIIII", 0, 1, 4
            else:
                ph_fmt, type_at, offset_at, size_at = order + "IIQQQQQQ", 0, 2, 5
            interpreter = None
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                ph = struct.unpack(ph_fmt, f.read(struct.calcsize(ph_fmt)))
                if ph[type_at] == _PT_INTERP:
                    f.seek(ph[offset_at])
                    interpreter = f.read(ph[size_at]).split(b"\0", 1)[0].decode("ascii",
                                                                                "replace")
                    break
    except (OSError, struct.error, ValueError):
        return None
    return {"class": bits, "byteorder": "little" if order == "<" else "big",
            "machine": machine, "flags": flags, "interpreter": interpreter}


def _glibc_version():
    """glibc's version string ("2.36"), or None when the interpreter does not use glibc."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
        if value:
            return value.rsplit(None, 1)[1]
    except (AttributeError, OSError, ValueError):
        pass
    try:
        import ctypes
        gnu_get_libc_version = ctypes.CDLL(None).gnu_get_libc_version
    except (ImportError, OSError, AttributeError):
        return None
    gnu_get_libc_version.restype = ctypes.c_char_p
    version = gnu_get_libc_version()
    return version.decode("ascii") if isinstance(version, bytes) else version


def _musl_version(loader):
    """musl's version ("1.2.4"): its dynamic loader prints it when run without arguments."""
    if not loader or "musl" not in loader:
        return None
    try:
        proc = subprocess.run([loader], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"^Version (\d+\.\d+[^\s]*)", proc.stderr, re.MULTILINE)
    return match.group(1) if match else None


def _manylinux_overrides(glibc, archs):
    """Answers of an installed `_manylinux` module (PEP 600), which may veto manylinux.

    Only the questions packaging would ask are recorded: every glibc level from the
    running one down to 2.5, per architecture, plus the legacy PEP 513/571/599 flags.
    """
    try:
        module = __import__("_manylinux")
    except ImportError:
        return None
    found = {}
    ask = getattr(module, "manylinux_compatible", None)
    if ask is not None and glibc:
        major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", glibc).groups())
        for arch in archs:
            for level in range(minor, 4, -1):
                found[f"{major}_{level}_{arch}"] = ask(major, level, arch)
    legacy = {}
    for flag in ("manylinux1_compatible", "manylinux2010_compatible", "manylinux2014_compatible"):
        if hasattr(module, flag):
            legacy[flag] = bool(getattr(module, flag))
    return {"manylinux_compatible": found if ask is not None else None, "legacy": legacy}


def linux_archs(plat, bits):
    """The `linux_<arch>` architectures packaging derives from sysconfig's platform."""
    arch = plat.split("_", 1)[1]
    if bits == 32:
        arch = {"x86_64": "i686", "aarch64": "armv8l"}.get(arch, arch)
    return ["armv8l", "armv7l"] if arch == "armv8l" else [arch]


def _mac_release():
    """macOS release as "14.2"; asks again without the 10.16 compatibility shim."""
    release = platform.mac_ver()[0]
    if release.split(".")[:2] == ["10", "16"]:
        proc = subprocess.run(
            [sys.executable, "-sS", "-c", "import platform; print(platform.mac_ver()[0])"],
            stdout=subprocess.PIPE, text=True, check=False,
            env={"SYSTEM_VERSION_COMPAT": "0"})
        release = proc.stdout.strip() or release
    return release


def _pip():
    """The interpreter's pip and the packaging it vendors, found without importing pip."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("pip")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = next(iter(spec.submodule_search_locations))
    found = {"version": None, "packaging": None}
    try:
        with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as f:
            match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", f.read(), re.M)
            found["version"] = match.group(1) if match else None
        with open(os.path.join(folder, "_vendor", "vendor.txt"), encoding="utf-8") as f:
            match = re.search(r"^packaging==(\S+)", f.read(), re.M)
            found["packaging"] = match.group(1) if match else None
    except OSError:
        pass
    return found


def collect() -> dict:
    """Every fact the build box needs to compute this interpreter's tags and markers."""
    info = sys.version_info
    bits = struct.calcsize("P") * 8
    plat = sysconfig.get_platform()
    system = platform.system()
    facts = {
        MARK: FORMAT,
        "executable": sys.executable,
        "implementation": {
            "name": sys.implementation.name,
            "version": [sys.implementation.version.major, sys.implementation.version.minor,
                        sys.implementation.version.micro],
            "cache_tag": sys.implementation.cache_tag,
            "multiarch": getattr(sys.implementation, "_multiarch", None),
        },
        "python_version": [info.major, info.minor, info.micro, info.releaselevel, info.serial],
        "abiflags": getattr(sys, "abiflags", None),
        "config_vars": {name: sysconfig.get_config_var(name) for name in _CONFIG_VARS},
        "extension_suffixes": _extension_suffixes(),
        "has_gettotalrefcount": hasattr(sys, "gettotalrefcount"),
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "pointer_bits": bits,
        "sysconfig_platform": plat,
        "system": system,
        "machine": platform.machine(),
        "environment": marker_environment(),
        "libc": {"glibc": None, "musl": None, "libc_ver": list(platform.libc_ver())},
        "elf": None,
        "manylinux_module": None,
        "macos": None,
        "pip": _pip(),
    }
    if system == "Linux":
        elf = _read_elf(sys.executable)
        glibc = _glibc_version()
        normalized = re.sub(r"[.\- ]", "_", plat)
        archs = linux_archs(normalized, bits) if normalized.startswith("linux_") else []
        facts["elf"] = elf
        facts["libc"]["glibc"] = glibc
        facts["libc"]["musl"] = _musl_version(elf and elf["interpreter"])
        facts["manylinux_module"] = _manylinux_overrides(glibc, archs)
    elif system == "Darwin":
        facts["macos"] = {"release": _mac_release(), "machine": platform.mac_ver()[2]}
    return facts


def _extension_suffixes():
    import importlib.machinery
    return list(importlib.machinery.EXTENSION_SUFFIXES)


def main() -> int:
    sys.stdout.write(json.dumps(collect(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
