"""scripts/corpus: lock, bundle, install and cross-check real projects' dependency sets.

Opt-in and online: every project in benchmarks/corpus-projects.toml is locked with pip-tools
(a hashed requirements.txt) and with uv (a uv.lock), each lock is bundled for every target,
the host bundle is installed offline into a fresh venv and the project's roots imported,
and each target's choice of wheel is compared with pip's own (`pip download --platform`).
It reaches the configured index (``--index-url``, else pip's configuration, else pip's
default, as the tool itself resolves it); CI never runs it and no test calls it.

Locks are kept in .corpus/<project>/<locker>/ and reused unless ``--relock``; bundles,
venvs and pip's downloads are made anew on every run. One stage failing never stops the
run: every stage's outcome is a cell in the table. Every child process is bounded by a
timeout and runs isolated from the machine's pip configuration (PIP_CONFIG_FILE=/dev/null,
no PIP_* variable but the index URL), so the results say what a clean machine would see.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".corpus"
DATA = Path(__file__).resolve().parent / "corpus-projects.toml"
PY = sys.executable
BIN = Path(PY).parent
TOOL = [PY, "-m", "wheelhouse_bundler"]

DEFAULT_TARGETS = ("host", "cp311-manylinux_2_28_aarch64", "cp312-win_amd64",
                   "cp311-macosx_14_0_arm64")
LOCKERS = ("pip-tools", "uv")
TIMEOUTS = {"lock": 900, "bundle": 1200, "install": 900, "import": 180, "pip": 900}
"""Seconds per child process: generous for a slow index, but a hang never stalls the run."""

OK = "ok"
REFUSAL = "cannot be installed from"  # the head line of select's refusal table
BUILD_FAILED = re.compile(r"(^|error: )building \S+==\S+ from ")  # an sdist's failed build
SKIP = "-"
_SPEC = re.compile(r"^cp3(?P<minor>\d+)-(?P<platform>.+)$")
_GAP = re.compile(r"^\s+(?P<pin>\S+==\S+) on (?P<target>\S+): (?P<reason>.*)$")
_PRINT_LOCK = threading.Lock()
_TOOL_PREFIX = re.compile(r"^wheelhouse-bundler: (\w+ )?error: ")
"""Said in every cell of the table; the failure list and the JSON keep whole lines."""


@dataclass(frozen=True)
class Project:
    """One dependency set from the data file."""

    name: str
    requires: tuple[str, ...]
    imports: tuple[str, ...]
    domain: str = ""
    expect: str = "ok"
    why: str = ""
    known: tuple[tuple[str, str], ...] = ()
    """(lock tool, target) pairs whose refusal is correct, e.g. a host-resolved lock
    holding a package that has no wheel for that target."""
    needs: tuple[str, ...] = ()
    """Files (C headers) an sdist's build needs: with all of them on this machine the
    project is expected to bundle ("ok"), else `expect` holds (a clear refusal)."""


@dataclass
class Outcome:
    """What one stage did: `ok`, `-` (not run, and why in `detail`) or the one error line."""

    status: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in (OK, SKIP)


@dataclass
class Result:
    """Every stage of one project locked by one tool."""

    project: str
    locker: str
    expect: str
    known: list[str] = field(default_factory=list)  # targets whose refusal is expected
    seconds: float = 0.0
    lock: Outcome = field(default_factory=lambda: Outcome(SKIP))
    bundle: Outcome = field(default_factory=lambda: Outcome(SKIP))
    targets: dict[str, Outcome] = field(default_factory=dict)
    install: Outcome = field(default_factory=lambda: Outcome(SKIP))
    imports: Outcome = field(default_factory=lambda: Outcome(SKIP))
    pip: dict[str, Outcome] = field(default_factory=dict)

    def failures(self) -> list[tuple[str, str, Outcome]]:
        """(stage, target, outcome) for every stage that did not succeed.

        The multi-target bundle's refusal counts only when no single target explains it.
        """
        per_target = [("bundle", t, o) for t, o in self.targets.items()
                      if o.failed and not (t in self.known and o.status.startswith("refused"))]
        explained = per_target or any(t in self.known and o.failed
                                      for t, o in self.targets.items())
        whole = [("bundle", "all", self.bundle)] if self.bundle.failed and not explained \
            else []
        out = [("lock", "", self.lock)] if self.lock.failed else []
        out += whole + per_target
        out += [(stage, "host", o) for stage, o in (("install", self.install),
                                                    ("import", self.imports)) if o.failed]
        out += [("pip-compare", t, o) for t, o in self.pip.items() if o.failed]
        if self.expect == "refused" and not self.bundle.failed and not self.lock.failed:
            out.append(("bundle", "all", Outcome("expected a refusal (an sdist that cannot "
                                                 "build here), but the bundle was built")))
        return out

    @property
    def verdict(self) -> str:
        """ok, refused as expected, or FAIL (anything the corpus should not see)."""
        if self.failures() == [] and any(self.targets.get(t, Outcome(OK)).failed
                                         for t in self.known):
            return "ok, known refusal"
        if self.expect == "refused":
            refused = self.bundle.failed and (REFUSAL in self.bundle.status
                                              or BUILD_FAILED.search(self.bundle.status))
            others = self.lock.failed or any(o.failed for o in self.pip.values())
            return "refused as expected" if refused and not others else "FAIL"
        return "FAIL" if self.failures() else OK


# ---- child processes


def clean_env(index_url: str) -> dict[str, str]:
    """The environment of every child: no PIP_* but the index, no pip config, no uv config.

    This machine's pip.conf adds a constraints file, extra file:// indexes and find-links;
    none of that is the corpus, and a clean machine would not have it.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=index_url,
               PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1",
               UV_DEFAULT_INDEX=index_url, UV_PYTHON=PY, UV_PYTHON_DOWNLOADS="never",
               PYTHONDONTWRITEBYTECODE="1")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def run(cmd: Sequence[str], env: dict[str, str], timeout: int, cwd: Path | None = None,
        log: Path | None = None) -> Ran:
    """Run a child to completion or its timeout; its output goes to `log` for later reading."""
    try:
        done = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True,
                              errors="replace", timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)
        ran = Ran(done.returncode, done.stdout, done.stderr)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        ran = Ran(-1, out, f"timed out after {timeout} s: {' '.join(cmd[:4])} ...")
    except OSError as exc:
        ran = Ran(-1, "", f"could not run {cmd[0]}: {exc}")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as f:
            f.write(f"$ {' '.join(cmd)}\n[exit {ran.code}]\n--- stdout\n{ran.out}\n"
                    f"--- stderr\n{ran.err}\n\n")
    return ran


def error_line(ran: Ran, width: int = 0) -> str:
    """The one line that says what went wrong, as the failing tool worded it."""
    lines = [ln.strip() for ln in (ran.err + "\n" + ran.out).splitlines() if ln.strip()]
    keys = ("wheelhouse-bundler:", "ERROR:", "error:", "\u00d7", "Traceback", "Error", "timed out",
            "could not run")
    line = next((ln for key in keys for ln in lines if ln.startswith(key)), None)
    if line is None:
        line = next((ln for ln in reversed(lines) if "Error" in ln),
                    lines[-1] if lines else f"exit {ran.code}, no output")
    return shorten(line, width) if width else line


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---- locking


def write_inputs(project: Project, folder: Path, locker: str) -> Path:
    """The input a user would write for this locker; returns the lock file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    if locker == "pip-tools":
        (folder / "requirements.in").write_text("\n".join(project.requires) + "\n")
        return folder / "requirements.txt"
    deps = ",\n".join(f"    {json.dumps(r)}" for r in project.requires)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "corpus-{canonicalize_name(project.name)}"\nversion = "0"\n'
        f'requires-python = ">=3.11"\ndependencies = [\n{deps},\n]\n\n'
        "[tool.uv]\npackage = false\n")
    return folder / "uv.lock"


def lock(project: Project, locker: str, folder: Path, env: dict[str, str],
         relock: bool) -> tuple[Outcome, Path]:
    lockfile = write_inputs(project, folder, locker)
    if lockfile.exists() and not relock:
        return Outcome(OK, "reused"), lockfile
    lockfile.unlink(missing_ok=True)
    log = folder / "lock.log"
    log.unlink(missing_ok=True)
    if locker == "pip-tools":
        cmd = [PY, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
               "--no-emit-index-url", "--no-emit-trusted-host", "--no-emit-find-links",
               "--no-header", "--output-file", str(lockfile), str(folder / "requirements.in")]
    else:
        cmd = [str(BIN / "uv"), "lock", "--no-progress", "--directory", str(folder)]
    ran = run(cmd, env, TIMEOUTS["lock"], cwd=folder, log=log)
    if not ran.ok or not lockfile.exists():
        lockfile.unlink(missing_ok=True)  # a half-written lock must not be reused
        return Outcome(error_line(ran)), lockfile
    return Outcome(OK, "locked"), lockfile


# ---- bundling


@dataclass
class Bundled:
    """A bundle that was built, and what each of its targets picked: name -> filename."""

    path: Path
    picks: dict[str, dict[str, str]]  # target spec -> {canonical name: wheel filename}
    built: dict[str, dict[str, str]] = field(default_factory=dict)  # the same, built here


def bundle(lockfile: Path, targets: Sequence[str], out: Path, env: dict[str, str],
           cache: Path, log: Path, host_name: str
           ) -> tuple[Outcome, Bundled | None, list[dict[str, str]]]:
    """One `bundle` run; on a refusal also the refusal table's rows (pin, target, reason)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*TOOL, "bundle", str(lockfile), "-o", str(out), "--cache-dir", str(cache), "--json"]
    for t in targets:
        cmd += ["-t", t]
    ran = run(cmd, env, TIMEOUTS["bundle"], log=log)
    if not ran.ok:
        gaps = [m.groupdict() for m in map(_GAP.match, ran.err.splitlines()) if m]
        return Outcome(error_line(ran)), None, gaps
    try:
        built = json.loads(ran.out)
    except ValueError as exc:
        return Outcome(f"bundle --json printed no summary: {exc}"), None, []
    # A spec names its own target; `host` comes back under its concrete name.
    spec_of = {t: t for t in targets if t != "host"}
    if "host" in targets:
        spec_of[host_name] = "host"
    picks, made = read_picks(out, spec_of)
    return Outcome(OK, f"{built.get('files')} files, {built.get('bytes', 0) / 1e6:.1f} MB"), \
        Bundled(out, picks, made), []


def read_picks(path: Path, spec_of: dict[str, str]
               ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Each target's wheel per package, from the bundle's manifest (its first member);
    the wheels built here from sdists apart (pip download has nothing to compare them to)."""
    with tarfile.open(path) as tar:
        for member in tar:
            if member.name.endswith("/manifest.json") or member.name == "manifest.json":
                handle = tar.extractfile(member)
                doc = json.load(handle) if handle else {}
                break
        else:
            return {}, {}
    picks: dict[str, dict[str, str]] = {spec_of.get(t["name"], t["name"]): {}
                                        for t in doc.get("targets", [])}
    built: dict[str, dict[str, str]] = {}
    for f in doc.get("files", []):
        if f.get("own"):
            continue
        for t in f.get("targets", []):
            into = built if f.get("built_from") else picks
            into.setdefault(spec_of.get(t, t), {})[canonicalize_name(f["name"])] = \
                f["filename"]
    return picks, built


def refusal_cell(gaps: Iterable[dict[str, str]], target: str, host_name: str) -> str | None:
    """The refusal table's rows for one target, said briefly; None if it names none."""
    mine = [g for g in gaps if g["target"] in (target, host_name if target == "host" else "")]
    if not mine:
        return None
    pins = ", ".join(g["pin"] for g in mine[:3]) + (", …" if len(mine) > 3 else "")
    reason = "no wheel" if all("no wheel" in g["reason"] for g in mine) else mine[0]["reason"]
    return f"refused: {pins}: {reason}"


# ---- install and import


def install(bundle_path: Path, venv: Path, env: dict[str, str], log: Path,
            smoke: bool = True) -> Outcome:
    """Offline install of the host bundle: no network at all (unshare -n), smoke on."""
    for old in (venv, venv.with_name(venv.name + ".releases")):
        if old.is_symlink() or old.is_file():
            old.unlink()
        elif old.exists():
            shutil.rmtree(old)
    cmd = [*TOOL, "install", str(bundle_path), "--venv", str(venv), "--json"]
    if not smoke:
        cmd.append("--no-smoke")
    env = dict(env)
    if shutil.which("unshare") and run(["unshare", "-n", "true"], env, 30).ok:
        cmd = ["unshare", "-n", *cmd]
    else:  # no namespaces here: point every proxy at a closed port instead
        dead = "http://127.0.0.1:9"
        env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead, http_proxy=dead,
                   https_proxy=dead, all_proxy=dead, NO_PROXY="", no_proxy="")
    ran = run(cmd, env, TIMEOUTS["install"], log=log)
    return Outcome(OK) if ran.ok else Outcome(error_line(ran))


def check_imports(project: Project, venv: Path, env: dict[str, str], log: Path) -> Outcome:
    """Import every root in the new venv; the first that fails is the error."""
    python = venv / "bin" / "python"
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except Exception as exc:\n"
            "        sys.exit(f'import {name}: {type(exc).__name__}: {exc}')\n")
    ran = run([str(python), "-c", code, *project.imports], env, TIMEOUTS["import"], log=log)
    return Outcome(OK) if ran.ok else Outcome(error_line(ran))


# ---- pip's own choice


def pip_platform_args(target: str) -> list[str]:
    """pip download's options for a target spec; none for the host (pip's own tags)."""
    if target == "host":
        return []
    m = _SPEC.match(target)
    if not m:
        raise ValueError(f"cannot map target {target!r} to pip options")
    minor = m["minor"]
    platforms = [f"--platform={p}" for p in pip_platforms(m["platform"])]
    return [*platforms, "--python-version", f"3.{minor}", "--implementation", "cp",
            "--abi", f"cp3{minor}"]


_LEGACY = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}


def pip_platforms(platform: str) -> list[str]:
    """The --platform values that make pip accept what a machine of that platform would.

    pip expands a macOS platform to the older releases itself, but takes a
    manylinux_2_X platform literally; a glibc 2.X machine runs every older manylinux too.
    """
    m = re.match(r"^manylinux_2_(?P<minor>\d+)_(?P<arch>.+)$", platform)
    if not m:
        return [platform]
    arch = m["arch"]
    out = []
    for minor in range(int(m["minor"]), (5 if arch in ("x86_64", "i686") else 17) - 1, -1):
        out.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY:
            out.append(f"{_LEGACY[minor]}_{arch}")
    return out


def marker_env(target: str) -> dict[str, str] | None:
    """Markers of a target spec, worked out here (not by the tool) so a bug there shows.

    None for the host: packaging's default environment is the running interpreter's.
    """
    if target == "host":
        return None
    m = _SPEC.match(target)
    if not m:
        return None
    version, platform = f"3.{m['minor']}", m["platform"]
    base = {"implementation_name": "cpython", "platform_python_implementation": "CPython",
            "python_version": version, "python_full_version": f"{version}.0",
            "implementation_version": f"{version}.0", "platform_release": "",
            "platform_version": ""}
    if platform.startswith(("manylinux", "musllinux")):
        machine = platform.split("_", 3)[-1]
        base.update(os_name="posix", sys_platform="linux", platform_system="Linux",
                    platform_machine=machine)
    elif platform.startswith("macosx"):
        base.update(os_name="posix", sys_platform="darwin", platform_system="Darwin",
                    platform_machine="arm64" if platform.endswith("arm64") else "x86_64")
    else:
        machine = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}.get(platform, "")
        base.update(os_name="nt", sys_platform="win32", platform_system="Windows",
                    platform_machine=machine)
    return base


def split_requirements(text: str) -> list[tuple[str, list[str]]]:
    """A hashed requirements file as (requirement line, hashes) pairs."""
    joined = re.sub(r"\\\s*\n", " ", text)
    out: list[tuple[str, list[str]]] = []
    for raw in joined.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        parts = line.split()
        hashes = [p for p in parts if p.startswith("--hash=")]
        req = " ".join(p for p in parts if not p.startswith("--hash="))
        out.append((req, hashes))
    return out


def pip_input(lockfile: Path, locker: str, target: str, folder: Path, env: dict[str, str],
              log: Path) -> tuple[dict[str, tuple[str, list[str]]], str | None]:
    """name -> (name==version, every hash the lock has) for this target, or an error.

    pip-tools locks are resolved for the host, so every line applies; a uv.lock is exported
    with its markers, which are evaluated here for the target.
    """
    if locker == "pip-tools":
        text = lockfile.read_text()
    else:
        ran = run([str(BIN / "uv"), "export", "--frozen", "--format", "requirements-txt",
                   "--no-emit-project", "--no-header", "--no-annotate", "--directory",
                   str(folder)], env, TIMEOUTS["lock"], cwd=folder, log=log)
        if not ran.ok:
            return {}, f"uv export: {error_line(ran)}"
        text = ran.out
    reqs: dict[str, tuple[str, list[str]]] = {}
    markers = marker_env(target)
    for line, hashes in split_requirements(text):
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            return {}, f"cannot read {line!r}: {exc}"
        if req.marker is not None and not req.marker.evaluate(markers):
            continue
        pin = next((str(s.version) for s in req.specifier if s.operator == "=="), None)
        if pin is None:
            return {}, f"not pinned: {line!r}"
        reqs[canonicalize_name(req.name)] = (f"{req.name}=={pin}", hashes)
    return reqs, None


_NO_MATCH = re.compile(r"No matching distribution found for (?P<req>\S+)")


def pip_download(reqs: dict[str, tuple[str, list[str]]], target: str, scratch: Path,
                 env: dict[str, str], log: Path) -> tuple[dict[str, str], list[str], str]:
    """pip's wheel per package for a target, the pins pip found nothing for, and any error.

    pip stops at the first requirement it cannot meet, so that one is set aside and pip
    run again (a bounded number of times) to learn its choice for all the others.
    """
    pending = dict(reqs)
    missing: list[str] = []
    for _ in range(12):
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        if not pending:
            return {}, missing, ""
        req_file = scratch / "requirements.txt"
        req_file.write_text("".join(f"{pin} {' '.join(h)}\n" for pin, h in pending.values()))
        dest = scratch / "d"
        ran = run([PY, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--no-cache-dir", "--progress-bar", "off", "-q", *pip_platform_args(target),
                   "-r", str(req_file), "-d", str(dest)], env, TIMEOUTS["pip"], log=log)
        if ran.ok:
            files = sorted(p.name for p in dest.iterdir()) if dest.exists() else []
            return {_wheel_name(f): f for f in files}, missing, ""
        m = _NO_MATCH.search(ran.err)
        name = canonicalize_name(re.split(r"[=<>!~\[; ]", m["req"])[0]) if m else None
        if name is None or name not in pending:
            return {}, missing, f"pip: {error_line(ran)}"
        missing.append(pending.pop(name)[0])
    return {}, missing, "pip: gave up after 12 packages without a wheel"


def _wheel_name(filename: str) -> str:
    return canonicalize_name(filename.split("-", 1)[0])


def compare(ours: dict[str, str] | None, refused: bool, theirs: dict[str, str],
            missing: list[str], error: str, built: dict[str, str] | None = None) -> Outcome:
    """One target's verdict: pip and the tool picked the same file for every package,
    but for those the tool built from an sdist, where pip must have found no wheel."""
    if error:
        return Outcome(error)
    built = built or {}
    wrongly_built = sorted(name for name in built if name in theirs)
    if wrongly_built:
        return Outcome(f"built {wrongly_built[0]} from its sdist, but pip finds a wheel "
                       f"{theirs[wrongly_built[0]]}")
    missing = [p for p in missing if _pin_name(p) not in built]
    if ours is None:  # the tool refused this target (or failed): does pip agree?
        if refused and missing:
            return Outcome(OK, f"pip agrees: no wheel for {', '.join(missing)}")
        if refused:
            return Outcome(f"tool refused, but pip finds a wheel for every package "
                           f"({len(theirs)})")
        return Outcome(SKIP, "no bundle for this target")
    diffs = []
    for name in sorted(set(ours) | set(theirs) | {_pin_name(p) for p in missing}):
        a, b = ours.get(name), theirs.get(name)
        if a != b:
            diffs.append(f"{name}: ours {a or 'none'}, pip {b or 'none'}")
    if diffs:
        more = f" (+{len(diffs) - 1} more)" if len(diffs) > 1 else ""
        return Outcome(f"differs: {diffs[0]}{more}", "; ".join(diffs))
    also = f", {len(built)} built here where pip finds no wheel" if built else ""
    return Outcome(OK, f"{len(ours)} wheels identical{also}")


def _pin_name(pin: str) -> str:
    return canonicalize_name(pin.split("==", 1)[0])


# ---- one project


def run_project(project: Project, locker: str, targets: Sequence[str], env: dict[str, str],
                relock: bool, host_name: str, compare_pip: bool, smoke: bool = True
                ) -> Result:
    start = time.monotonic()
    result = Result(project.name, locker, project.expect,
                    [t for lk, t in project.known if lk == locker])
    folder = WORK / "projects" / project.name / locker
    out = folder / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = out / "log.txt"
    cache = WORK / "cache"

    result.lock, lockfile = lock(project, locker, folder, env, relock)
    if result.lock.failed:
        result.seconds = time.monotonic() - start
        return result

    # One bundle for every target, as a user would make it; if it is refused, each target
    # alone, so that a foreign target's refusal cannot hide how the host fares.
    result.bundle, whole, gaps = bundle(lockfile, targets, out / "all.tar", env, cache, log,
                                       host_name)
    per_target: dict[str, Bundled | None] = {}
    if whole is not None:
        for t in targets:
            result.targets[t] = Outcome(OK)
            per_target[t] = Bundled(whole.path, {t: whole.picks.get(t, {})},
                                    {t: whole.built.get(t, {})})
    else:
        for t in targets:
            got, one, one_gaps = (
                bundle(lockfile, [t], out / f"{_safe(t)}.tar", env, cache, log, host_name)
                if len(targets) > 1 else (result.bundle, None, gaps))
            said = refusal_cell(one_gaps or gaps, t, host_name)
            result.targets[t] = Outcome(OK, got.detail) if got.status == OK else \
                Outcome(said or got.status, got.status)
            per_target[t] = one

    host = per_target.get("host")
    if host is not None:
        venv = out / "venv"
        result.install = install(host.path, venv, env, log, smoke)
        if not result.install.failed:
            result.imports = check_imports(project, venv, env, log)
    elif "host" in targets:
        result.install = Outcome(SKIP, "no host bundle")

    if compare_pip:
        for t in targets:
            reqs, problem = pip_input(lockfile, locker, t, folder, env, log)
            if problem:
                result.pip[t] = Outcome(problem)
                continue
            theirs, missing, error = pip_download(reqs, t, out / "pip" / _safe(t), env, log)
            got = per_target.get(t)
            ours = got.picks.get(t, {}) if got is not None else None
            refused = result.targets[t].status.startswith("refused") or (
                REFUSAL in result.targets[t].detail)
            result.pip[t] = compare(ours, refused, theirs, missing, error,
                                    got.built.get(t, {}) if got is not None else None)
        if (out / "pip").exists():
            shutil.rmtree(out / "pip")
    for tar in out.glob("*.tar"):  # bundles are large and rebuilt from the cache in seconds
        tar.unlink()
    result.seconds = time.monotonic() - start
    return result


def _safe(target: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", target)


# ---- reporting


def short_target(target: str) -> str:
    m = _SPEC.match(target)
    if not m:
        return target
    platform = m["platform"]
    os_part = ("linux" if "linux" in platform else "mac" if platform.startswith("macosx")
               else "win")
    arch = platform.rsplit("_", 1)[-1] if os_part != "win" else platform.split("_", 1)[-1]
    return f"{os_part}-{arch}-3{m['minor']}"


def columns(targets: Sequence[str]) -> list[str]:
    return ["project", "lock tool", "lock", *[f"bundle {short_target(t)}" for t in targets],
            "install", "import", *[f"pip {short_target(t)}" for t in targets], "verdict"]


def cells(r: Result, targets: Sequence[str], width: int) -> list[str]:
    def c(o: Outcome | None) -> str:
        if o is None:
            return SKIP
        if o.status in (OK, SKIP):
            return o.status
        return shorten(_TOOL_PREFIX.sub("", o.status), width)

    return [r.project, r.locker, c(r.lock), *[c(r.targets.get(t)) for t in targets],
            c(r.install), c(r.imports), *[c(r.pip.get(t)) for t in targets], r.verdict]


def text_table(results: list[Result], targets: Sequence[str], width: int = 34) -> str:
    rows = [columns(targets), *[cells(r, targets, width) for r in results]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def markdown_table(results: list[Result], targets: Sequence[str]) -> str:
    head = columns(targets)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [v.replace("|", "\\|") for v in cells(r, targets, 64)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def total_line(results: list[Result]) -> str:
    ok = sum(r.verdict in (OK, "ok, known refusal") for r in results)
    refused = sum(r.verdict == "refused as expected" for r in results)
    failed = len(results) - ok - refused
    stages = sum(len(r.failures()) for r in results if r.verdict == "FAIL")
    return (f"total: {len(results)} runs ({len({r.project for r in results})} projects x "
            f"lock tools): {ok} ok, {refused} refused as expected, {failed} failed "
            f"({stages} failing stages)")


def failure_lines(results: list[Result]) -> list[str]:
    out = []
    for r in results:
        if r.verdict != "FAIL":
            continue
        for stage, target, o in r.failures():
            out.append(f"{r.project} / {r.locker} / {target or '-'} / {stage}: {o.status}"
                       + (f"  [{o.detail}]" if o.detail and o.detail != o.status else ""))
    return out


# ---- entry point


def load_results(path: Path) -> tuple[list[str], list[Result]]:
    """A run saved with --save-json, to print again (e.g. --markdown) without running."""
    doc = json.loads(path.read_text())
    results = []
    for r in doc["results"]:
        o = {k: Outcome(**r[k]) for k in ("lock", "bundle", "install", "imports")}
        results.append(Result(
            r["project"], r["locker"], r["expect"], r.get("known", []), r["seconds"], **o,
            targets={t: Outcome(**v) for t, v in r["targets"].items()},
            pip={t: Outcome(**v) for t, v in r["pip"].items()}))
    return list(doc["targets"]), results


def load_projects(path: Path) -> list[Project]:
    doc = tomllib.loads(path.read_text())
    return [Project(name=p["name"], requires=tuple(p["requires"]),
                    imports=tuple(p.get("imports", ())), domain=p.get("domain", ""),
                    expect="ok" if p.get("needs") and all(
                        Path(f).exists() for f in p["needs"]) else p.get("expect", "ok"),
                    why=p.get("why", ""), needs=tuple(p.get("needs", ())),
                    known=tuple((k.split(":", 1)[0], k.split(":", 1)[1])
                                for k in p.get("known", {})))
            for p in doc["project"]]


def resolve_index(url: str | None) -> str:
    """The index as the tool resolves it: --index-url, pip's configuration, pip's default."""
    from wheelhouse_bundler.sources import default_source

    return default_source(url).url


def redact(url: str) -> str:
    from wheelhouse_bundler.sources import redact as tool_redact

    return tool_redact(url)


def host_target_name() -> str:
    from wheelhouse_bundler import targets

    return targets.host().name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/corpus",
        description="Lock, bundle, install and cross-check a corpus of real projects "
                    "(online; opt-in).")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these projects")
    parser.add_argument("--lockers", nargs="+", choices=LOCKERS, default=list(LOCKERS))
    parser.add_argument("--jobs", type=int, default=2, help="projects at once (default 2)")
    parser.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS),
                        help="target specs (default: %(default)s)")
    parser.add_argument("--index-url", help="default: pip's configuration, else pip's default")
    parser.add_argument("--relock", action="store_true", help="lock again, ignoring .corpus/")
    parser.add_argument("--no-pip", action="store_true", help="skip the pip comparison")
    parser.add_argument("--no-smoke", action="store_true",
                        help="install without the tool's smoke imports (the roots are still "
                             "imported)")
    parser.add_argument("--projects", type=Path, default=DATA, help="the data file")
    parser.add_argument("--save-json", type=Path, metavar="FILE",
                        help="also write the JSON results to FILE")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="print a run saved with --save-json instead of running")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the results as JSON")
    out.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)

    if args.from_json:
        targets, saved = load_results(args.from_json)
        print(markdown_table(saved, targets) if args.markdown else text_table(saved, targets))
        print(("\n" if args.markdown else "") + total_line(saved))
        return 0
    projects = load_projects(args.projects)
    if args.only:
        unknown = sorted(set(args.only) - {p.name for p in projects})
        if unknown:
            parser.error(f"unknown project(s): {', '.join(unknown)}")
        projects = [p for p in projects if p.name in args.only]
    for t in args.targets:
        if t != "host" and not _SPEC.match(t):
            parser.error(f"bad target {t!r}: host or cpXY-PLATFORM")
    index = resolve_index(args.index_url)
    env = clean_env(index)
    if "uv" in args.lockers and not (BIN / "uv").exists():
        parser.error(f"no uv in {BIN}: run scripts/corpus, which installs it")
    host_name = host_target_name()
    WORK.mkdir(exist_ok=True)
    (WORK / ".gitignore").write_text("*\n")

    jobs = [(p, lk) for p in projects for lk in args.lockers]
    results: dict[tuple[str, str], Result] = {}

    def one(job: tuple[Project, str]) -> None:
        project, locker = job
        try:
            r = run_project(project, locker, args.targets, env, args.relock, host_name,
                            not args.no_pip, not args.no_smoke)
        except Exception as exc:  # a bug here must not stop the other projects
            r = Result(project.name, locker, project.expect)
            r.lock = Outcome(f"corpus script error: {type(exc).__name__}: {exc}")
        results[job[0].name, locker] = r
        with _PRINT_LOCK:
            print(f"[{len(results)}/{len(jobs)}] {r.project} / {r.locker}: {r.verdict} "
                  f"({r.seconds:.0f} s)", file=sys.stderr, flush=True)

    print(f"corpus: {len(projects)} projects x {len(args.lockers)} lock tools, targets "
          f"{' '.join(args.targets)}, {args.jobs} at a time", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, jobs))
    ordered = [results[p.name, lk] for p, lk in jobs]

    doc = json.dumps({"targets": args.targets, "index": redact(index),
                      "results": [asdict(r) | {"verdict": r.verdict} for r in ordered],
                      "total": total_line(ordered)}, indent=2)
    if args.save_json:
        args.save_json.write_text(doc + "\n")
    if args.json:
        print(doc)
    elif args.markdown:
        print(markdown_table(ordered, args.targets))
        print(f"\n{total_line(ordered)}")
    else:
        print(text_table(ordered, args.targets))
        print(total_line(ordered))
        lines = failure_lines(ordered)
        if lines:
            print("\nfailures (project / lock tool / target / stage: error):")
            print("\n".join(lines))
    return 0 if all(r.verdict != "FAIL" for r in ordered) else 1


if __name__ == "__main__":
    sys.exit(main())

