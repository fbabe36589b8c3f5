"""install.py: restore a bundle with nothing but Python 3.8+ (stdlib only, one file).

Every bundle carries this file's text as `<top>/install.py`, so a bastion without
wheelhouse-bundler restores with `tar xf app.tar && python3 app/install.py --venv PATH`.
It does what `wheelhouse-bundler install` does, in the same layout, so either tool can
roll back what the other installed:

  verify   every file against SHA256SUMS, the wheels against the manifest's sizes and
           hashes, nothing unlisted in the folder;
  choose   the bundle target whose wheels this interpreter accepts (a small tag matcher);
  create   a fresh venv `<venv>.releases/<top>-<UTC stamp>`: without pip when the bundle
           carries a uv that starts here (tools/uv-*.whl), else with ensurepip;
  install  with that uv (`uv pip install --offline --no-index --require-hashes`), else with
           the venv's own pip (`--isolated --no-index --no-deps --require-hashes`), both
           deaf to the machine's configuration; then `pip check` (or uv's);
  smoke    load the roots of the environment through the modules they install (the rule
           above SMOKE_SCRIPT), then --smoke CMD;
  switch   `<venv>` (a symlink) to the new release in one rename.

A failure at any step removes the new release and leaves `<venv>` as it was.
wheelhouse-bundler's own install imports the release helpers from here, so both share one
definition of "release", "previous" and "prune".

Exit codes: 0 ok, 2 usage, 3 integrity, 5 install failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import time

STAMP = "%Y%m%dT%H%M%SZ"
_RELEASE_NAME = re.compile(r"-(\d{8}T\d{6}Z)(?:-(\d+))?$")
_SAME_INTERPRETER = ("python_version", "sys_platform", "implementation_name")


# ---- the bundle's layout, declared here once. This file ships inside every bundle and
# may import nothing from wheelhouse_bundler, so the tool's manifest.py imports these
# names from here instead (manifest.layout lists a bundle's members with them).
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SELF = "install.py"
SBOM = "sbom.cdx.json"
WHEELS = "wheels"
TOOLS = "tools"


def wheel_path(filename: str) -> str:
    return f"{WHEELS}/{filename}"


def tool_path(filename: str) -> str:
    """A tool's wheel (uv): recorded by hash, installed into nothing."""
    return f"{TOOLS}/{filename}"


def requirements_path(target: str) -> str:
    return f"targets/{target}/requirements.txt"


def own_path(target: str) -> str:
    """The project's own wheels for a target, installed after requirements.txt."""
    return f"targets/{target}/own.txt"


def pylock_path(target: str) -> str:
    return f"targets/{target}/pylock.toml"


def printable(text: str) -> str:
    """`text` with each character a terminal would act on escaped the way repr() does.

    The one escaping for whatever reaches a terminal from a file (a lock, a manifest, a
    sidecar, an advisory database, a member name): an escape sequence hidden in a
    package name must not recolour, retitle or rewrite the operator's terminal. Here for
    install.py's own messages; the tool reaches it through errors.printable.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Failure(Exception):
    """An expected failure: one line for the operator and the exit code to leave with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def usage(message: str) -> Failure:
    return Failure(2, message)


def integrity(message: str) -> Failure:
    return Failure(3, message)


def install_failed(message: str) -> Failure:
    return Failure(5, message)


# ---- environment for child processes


def clean_env() -> dict:
    """The environment for pip and the venv's python: none of the machine's PIP_*, UV_* or
    PYTHON* settings, and no pip config file, so the bundle alone decides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def run(cmd: list, what: str, env: dict | None = None, cwd: str | None = None):
    """Run a step; a non-zero exit becomes one line with the last lines of its output."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    except OSError as exc:
        raise install_failed(f"{what}: cannot run {cmd[0]}: {exc.strerror}") \
            from exc
    if proc.returncode != 0:
        raise _failed(what, proc)
    return proc


def _failed(what: str, proc: subprocess.CompletedProcess) -> Failure:
    tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
    return install_failed("{} failed (exit {}): {}".format(what, proc.returncode,
                                                           " | ".join(tail)))


def pip_install(python: str, wheels: str, listing: str) -> list:
    """The one pip command line that installs a bundle listing: offline, hash-checked, no
    resolver, and deaf to the machine's pip configuration (the bundle alone decides)."""
    return [python, "-m", "pip", "install", "--isolated", "--no-index", "--no-deps",
            "--require-hashes", "--only-binary=:all:", "--no-input", "--quiet",
            "--find-links", wheels, "-r", listing]


# ---- uv: the fast installer a bundle carries under tools/ (one wheel per platform)
#
# The binary is copied out of the wheel that fits the interpreter into a scratch folder
# and used only if it starts (`uv --version`); otherwise pip installs, as it always could.
# uv runs with --no-config, --offline, --no-index, no UV_* variables and its cache in the
# scratch folder: as with pip, the bundle alone decides.

INSTALLERS = ("auto", "pip", "uv")


def uv_env(cache: str) -> dict:
    env = clean_env()
    env.update(UV_CACHE_DIR=cache, UV_NO_PROGRESS="1")
    return env


def uv_install(uv: str, python: str, wheels: str, listing: str) -> list:
    """The one uv command line that installs a bundle listing (pip_install's twin).

    No bytecode is compiled here: compiling every module of a large environment is most
    of pip's time, while the smoke check and the first start compile only what they load."""
    return [uv, "pip", "install", "--no-config", "--offline", "--no-index", "--require-hashes",
            "--no-deps", "--no-build", "--quiet", "--python", python, "--find-links", wheels,
            "-r", listing]


def uv_check(uv: str, python: str) -> list:
    return [uv, "pip", "check", "--no-config", "--offline", "--quiet", "--python", python]


SEEDED = ("pip", "setuptools", "wheel")
"""What a venv made with pip holds without any lock asking: ensurepip's packages."""

_NOT_INSTALLED = re.compile(r"requires `([^`]+)`, but it's not installed")


def check_with_uv(uv: str, python: str, env: dict) -> None:
    """`uv pip check` of a venv uv filled, which was made without pip.

    pip-compile leaves pip and setuptools out of a lock on purpose (they come with every
    venv pip makes), so a healthy package that requires one of them (httpie requires
    pip) fails the check in a venv without them. When those are all the check misses,
    they are seeded offline from the interpreter's own ensurepip, as `python -m venv`
    would have done, and the venv is checked again; anything else fails as it is."""
    proc = subprocess.run(uv_check(uv, python), capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode == 0:
        return
    said = (proc.stderr + proc.stdout).splitlines()
    problems = [line for line in said if line.strip().startswith("The package")]
    found = [_NOT_INSTALLED.search(line) for line in problems]
    missing = {m.group(1) for m in found if m}
    if not (problems and all(found) and missing <= set(SEEDED)):
        raise _failed("uv pip check", proc)
    run([python, "-m", "ensurepip", "--default-pip"], "seeding pip into the venv",
        clean_env())
    run(uv_check(uv, python), "uv pip check", env)


def fill_release(release: str, python: str, root: str, chosen: str, count: int,
                 uv: tuple | None, log, clock: Clock) -> str:
    """Make the release venv with `python`, install the bundle's listings for `chosen`
    into it offline (requirements.txt, then the project's own wheels when there are any)
    and check it; its python. The one sequence for this file and for wheelhouse-bundler's
    install, so the two cannot drift. `uv` is (binary, cache) or None for pip; a venv uv
    fills is made without pip (ensurepip is most of a venv's time)."""
    log(f"creating venv {release}")
    run([python, "-m", "venv", release] + (["--without-pip"] if uv else []),
        "creating the venv", clean_env())
    clock.lap("venv")
    py = venv_python(release)
    log("installing {} wheels offline with {}".format(count, "uv" if uv else "pip"))
    for rel in (requirements_path(chosen), own_path(chosen)):
        listing = os.path.join(root, *rel.split("/"))
        if rel == own_path(chosen) and not os.path.isfile(listing):
            continue
        what = "{} install ({})".format("uv pip" if uv else "pip", rel.rsplit("/", 1)[1])
        if uv:
            run(uv_install(uv[0], py, os.path.join(root, WHEELS), listing), what,
                uv_env(uv[1]))
        else:
            run(pip_install(py, os.path.join(root, WHEELS), listing), what, clean_env())
    clock.lap("install")
    if uv:
        check_with_uv(uv[0], py, uv_env(uv[1]))
    else:
        run([py, "-m", "pip", "check"], "pip check", clean_env())
    clock.lap("check")
    return py


def fitting_uv(root: str, tags: list) -> str | None:
    """The bundle's uv wheel that ranks best for these (interpreter, abi, platform) tags."""
    folder = os.path.join(root, TOOLS)
    rank = {tuple(tag): i for i, tag in enumerate(tags)}
    best = None
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
        if not (name.startswith("uv-") and name.endswith(".whl")):
            continue
        ranks = [rank[t] for t in wheel_tags(name) if t in rank]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), os.path.join(folder, name))
    return best[1] if best else None


def extract_uv(wheel: str, dest: str) -> str:
    """Copy `uv-*.data/scripts/uv` (uv.exe on Windows) out of the wheel into `dest`."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.split("/")[0].endswith(".data")
                 and n.split("/")[1:] in (["scripts", "uv"], ["scripts", "uv.exe"])]
        if not names:
            name = os.path.basename(wheel)
            raise install_failed(f"{name}: no uv binary inside (uv-*.data/scripts/uv)")
        os.makedirs(dest, exist_ok=True)
        out = os.path.join(dest, names[0].rsplit("/", 1)[1])
        with zf.open(names[0]) as src, open(out, "wb") as fh:
            shutil.copyfileobj(src, fh, 1024 * 1024)
    os.chmod(out, os.stat(out).st_mode | 0o111)
    return out


def uv_starts(binary: str, cache: str) -> bool:
    try:
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True,
                              env=uv_env(cache), check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def find_uv(root: str, installer: str, scratch: str, tags: list) -> tuple | None:
    """(uv binary, its cache folder) to install with, or None for pip.

    auto: the bundle's uv for these tags when it starts, else pip; pip: pip; uv: the
    bundle's, else a uv on PATH, else a usage error (nothing was tried, let alone failed).
    """
    if installer not in INSTALLERS:
        raise usage("--installer {!r}: choose one of {}".format(installer,
                                                              ", ".join(INSTALLERS)))
    if installer == "pip":
        return None
    cache = os.path.join(scratch, "cache")
    wheel = fitting_uv(root, tags)
    if wheel is not None:
        binary = extract_uv(wheel, scratch)
        if uv_starts(binary, cache):
            return binary, cache
        if installer == "uv":
            name = os.path.basename(wheel)
            raise install_failed(f"--installer uv: the uv from {name} does not start here")
        return None
    if installer == "uv":
        on_path = shutil.which("uv")
        if on_path and uv_starts(on_path, cache):
            return on_path, cache
        raise usage("--installer uv: the bundle carries no uv for this platform "
                    "(bundle it without --no-uv) and there is none on PATH")
    return None


class Clock:
    """Each step's seconds under its name, in order: what --json reports as `timings`."""

    def __init__(self, heard=lambda _step, _seconds: None) -> None:
        self.timings = {}
        self._heard = heard
        self._last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        seconds = now - self._last
        self.timings[step] = round(self.timings.get(step, 0.0) + seconds, 3)
        self._heard(step, seconds)
        self._last = now


def venv_python(venv: str) -> str:
    return os.path.join(venv, "Scripts", "python.exe") if os.name == "nt" \
        else os.path.join(venv, "bin", "python")


# ---- releases: the folder beside the venv, ordered by the stamp in their names


def releases_dir(venv: str) -> str:
    return venv + ".releases"


def current_release(venv: str) -> str | None:
    """The release `venv` links to, or None; refuse to touch anything we did not make."""
    if os.path.islink(venv):
        target = os.readlink(venv)
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(venv), target)
        if os.path.realpath(os.path.dirname(target)) != os.path.realpath(releases_dir(venv)):
            raise usage(f"{venv} is a symlink to {target}, not to a release made by "
                        "wheelhouse-bundler; refusing to replace it")
        return target
    if os.path.lexists(venv):
        raise usage(f"{venv} exists and is not a wheelhouse-bundler release link; move it away "
                    "or choose another --venv")
    return None


def _order(path: str) -> tuple:
    """Oldest first: the UTC stamp in the name, its counter, then the folder's mtime."""
    match = _RELEASE_NAME.search(os.path.basename(path))
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = 0.0
    if match is None:
        return ("", 0, mtime, os.path.basename(path))
    return (match.group(1), int(match.group(2) or 0), mtime, os.path.basename(path))


def list_releases(venv: str) -> list:
    """Release folders, oldest first (staging folders and stray files left out)."""
    folder = releases_dir(venv)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    paths = [os.path.join(folder, n) for n in names if not n.startswith(".")]
    return sorted((p for p in paths if os.path.isdir(p) and not os.path.islink(p)), key=_order)


def new_release(venv: str, top: str) -> str:
    """Reserve `<releases>/<top>-<stamp>[-n]`, always ordered after every existing one."""
    folder = releases_dir(venv)
    os.makedirs(folder, exist_ok=True)
    stamp = time.strftime(STAMP, time.gmtime())
    newest = max((_order(p)[:2] for p in list_releases(venv)), default=("", 0))
    stamp = max(stamp, newest[0])  # a clock set back must not sort a new release first
    for n in range(1000):
        if (stamp, n) <= newest:
            continue
        candidate = os.path.join(folder, "{}-{}{}".format(top, stamp, f"-{n}" if n
                                                          else ""))
        try:
            os.mkdir(candidate)  # venv fills an empty folder; mkdir reserves the name
            return candidate
        except FileExistsError:
            continue
    raise install_failed(f"{folder}: cannot find a free release name")


def switch(venv: str, release: str) -> None:
    """Point `venv` at `release` in one atomic rename of a fresh symlink."""
    tmp = os.path.join(os.path.dirname(venv),
                       f".{os.path.basename(venv)}.switch-{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(release, tmp)
    try:
        os.replace(tmp, venv)
    except BaseException:
        os.unlink(tmp)
        raise


def previous_release(venv: str, current: str | None) -> str | None:
    """The release a rollback goes to: the newest one older than `current`."""
    found = list_releases(venv)
    if current is None:
        return None
    names = [os.path.basename(p) for p in found]
    here = os.path.basename(current)
    if here not in names:
        return found[-1] if found else None
    at = names.index(here)
    return found[at - 1] if at > 0 else None


def rollback(venv: str, to: str | None = None) -> tuple:
    """Switch `venv` back to the previous release (or the one named `to`): (old, new)."""
    venv = os.path.abspath(venv)
    current = current_release(venv)
    if current is None:
        raise usage(f"{venv} is not a release link: nothing to roll back")
    if to is not None:
        chosen = os.path.join(releases_dir(venv), os.path.basename(to))
        # "." and ".." are their own basenames but name the releases folder or its parent.
        if to in ("", ".", "..") or os.path.basename(to) != to or not os.path.isdir(chosen):
            names = [os.path.basename(p) for p in list_releases(venv)]
            raise usage("no release {!r} in {} (there are: {})".format(
                to, releases_dir(venv), ", ".join(names) or "none"))
    else:
        chosen = previous_release(venv, current)
        if chosen is None:
            raise usage(f"{releases_dir(venv)}: no release older than "
                        f"{os.path.basename(current)} to roll back to")
    if not os.path.exists(venv_python(chosen)):
        raise install_failed(f"{chosen}: not a complete venv (no python in it); "
                             "choose another with --to")
    switch(venv, chosen)
    return current, chosen


def prune(venv: str, keep: int, protect: tuple = ()) -> list:
    """Remove releases beyond the `keep` newest; never the current one, the previous one
    (a rollback's target) nor any in `protect`. Returns what was removed."""
    if keep < 1:
        raise usage("--keep must be at least 1 (the current release)")
    found = list_releases(venv)
    current = current_release(venv)
    spared = {os.path.basename(p) for p in found[-keep:]}
    spared.update(os.path.basename(p) for p in protect if p)
    if current is not None:
        spared.add(os.path.basename(current))
        before = previous_release(venv, current)
        if before is not None:
            spared.add(os.path.basename(before))
    removed = []
    for path in found:
        if os.path.basename(path) not in spared:
            remove_tree(path)
            removed.append(path)
    return removed


def remove_tree(path: str, workers: int = 4) -> None:
    """`shutil.rmtree(path, ignore_errors=True)`, several subtrees at a time.

    A venv or uv's cache is thousands of folders and files; removing them is filesystem
    work the kernel does for each thread that asks, on as many cores as there are (about
    half the time of one rmtree here for the bench's 85-package venv). The subtrees are
    the folders found going down until there are enough to share out (a venv's packages
    are four levels down); symlinks are removed, never followed."""
    frontier = [path]
    for _ in range(4):
        below = []
        for folder in frontier:
            try:
                with os.scandir(folder) as entries:
                    below += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
        if not below:
            break
        frontier = below
        if len(frontier) >= 2 * workers:
            break
    if len(frontier) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda p: shutil.rmtree(p, ignore_errors=True), frontier))
    shutil.rmtree(path, ignore_errors=True)


# ---- smoke test: prove that the roots of the environment load
#
# The rule (README, "What install does"): import the *root* distributions, those that no
# other installed distribution of the target requires (a requirement behind an extra does not
# count), through the modules they really install (their RECORD, not top_level.txt, which
# also names private extension modules and data folders). A root's module whose dotted name
# is the project's name is its face and the only one tried; without one, each public module
# is tried and one must load. ImportError and SyntaxError refuse the install (code or a
# library it needs is missing); any other exception means the code loaded and wants
# configuration, so it is reported and does not refuse. Dependencies are not imported on
# their own: their roots load them as the application will. A root that fails is tried
# again after the other roots, then alone (order between roots is not the packages' fault).

SMOKE_SCRIPT = r"""
import importlib, json, re, sys
from importlib import metadata

EXT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z0-9_-]+)*\.(so|pyd)$")
SKIP_TOP = (".dist-info", ".data", ".egg-info")

def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def module_paths(dist):
    mods, folders = set(), set()
    for f in dist.files or ():
        parts = tuple(f.parts)
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(SKIP_TOP):
            continue
        folders.update(parts[:i] for i in range(1, len(parts)))
        stem = parts[-1][:-3] if parts[-1].endswith(".py") else None
        if stem is None:
            match = EXT.match(parts[-1])
            stem = match.group(1) if match else None
        if stem is None:
            continue
        path = parts[:-1] if stem == "__init__" else parts[:-1] + (stem,)
        if path and all(p.isidentifier() for p in path):
            mods.add(path)
    return mods, folders

def import_names(dist):
    mods, folders = module_paths(dist)
    def under(prefix):
        return any(m[:len(prefix)] == prefix and len(m) > len(prefix) for m in mods)
    tops, todo = [], sorted({m[:1] for m in mods})
    while todo:
        path = todo.pop(0)
        if path in mods:
            tops.append(path)
        elif path in folders and under(path) and len(path) < 4:
            todo += sorted({m[:len(path) + 1] for m in mods if m[:len(path)] == path})
    own = canon(dist.metadata["Name"] or "")
    # google.cloud._storage spells the same name as google.cloud.storage: public first.
    face = [m for m in sorted(mods, key=lambda m: (any(p.startswith("_") for p in m), len(m),
                                                   m))
            if canon(".".join(m)) == own]
    if face:
        return [".".join(face[0])]
    public = [t for t in tops if not t[-1].startswith("_")] or tops
    return [".".join(t) for t in public]

def requirement_names(dist):
    names = set()
    for req in dist.requires or ():
        head, _, marker = req.partition(";")
        if "extra" in marker:
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", head)
        if match:
            names.add(canon(match.group(1)))
    return names

def source_bytes(dist):
    return sum(f.size or 0 for f in dist.files or () if f.name.endswith(".py"))

def closure(name, requires):
    seen, todo = set(), [name]
    while todo:
        here = todo.pop()
        if here not in seen and here in requires:
            seen.add(here)
            todo += requires[here]
    return seen

def load(module):
    try:
        importlib.import_module(module)
    except (ImportError, SyntaxError) as exc:
        return "fail", exc
    except BaseException as exc:
        return "warn", exc
    return "ok", None

def why(exc):
    text = str(exc).splitlines()[0] if str(exc) else ""
    return "{}: {}".format(type(exc).__name__, text)

args = sys.argv[1:]
mode, progress = "check", None
if args[:1] in (["--progress"], ["--warm"]):
    mode, progress, args = args[0][2:], args[1], args[2:]
wanted = {canon(n) for n in args}
dists = {}
for dist in metadata.distributions():
    name = canon(dist.metadata["Name"] or "")
    if name in wanted and name not in dists:
        dists[name] = dist
requires = {name: requirement_names(dist) for name, dist in dists.items()}
required = set()
for name in dists:
    required |= requires[name] - {name}
roots = sorted(set(dists) - required) or sorted(dists)
# Loaded cheapest first, by the Python source of each root's dependencies (a guess at
# what compiling them costs); the helper takes them from the costly end, so that the
# two meet where the work, not the alphabet, is split. Each RECORD is read once.
py_bytes = {name: source_bytes(dist) for name, dist in dists.items()}
cost = {name: sum(py_bytes[d] for d in closure(name, requires)) for name in roots}
order = sorted(roots, key=lambda name: (cost[name], name))
if mode == "warm":
    # Only to write bytecode ahead of the checking run: the roots from the other end,
    # until one the checking run has reached. Its outcome is not the verdict.
    for name in reversed(order):
        with open(progress) as fh:
            if name in fh.read().split():
                break
        for module in import_names(dists[name]):
            load(module)
    sys.exit(0)
imported, failed, warnings = [], {}, {}

def check(name):
    outcomes = [(m,) + load(m) for m in import_names(dists[name])]
    imported.extend(m for m, kind, _ in outcomes if kind == "ok")
    warnings.update((m, why(exc)) for m, kind, exc in outcomes if kind == "warn")
    if outcomes and all(kind == "fail" for _, kind, _ in outcomes):
        failed[name] = {m: why(exc) for m, _, exc in outcomes}
    else:
        failed.pop(name, None)

for name in order:
    if progress:
        with open(progress, "a") as fh:
            fh.write(name + "\n")
    check(name)
# A root may refuse to load before a sibling root (psycopg-binary before psycopg, as
# the application never imports it): each one that failed is tried again once all the
# others are loaded, whatever the order was.
for name in [name for name in order if name in failed]:
    check(name)
sys.stdout.write("\n")
print(json.dumps({"roots": roots, "imported": imported, "failed": failed,
                  "warnings": warnings, "missing": sorted(wanted - set(dists))}))
sys.exit(1 if failed or wanted - set(dists) else 0)
"""


def _load_roots(python: str, distributions: list, env: dict, cwd: str,
                warm: bool = False) -> dict:
    """One run of SMOKE_SCRIPT in `python` over these distributions: its JSON verdict.

    With `warm` (a venv installed without bytecode, as uv installs), a second run starts
    from the other end of the roots to compile modules ahead of this one, which then
    finds them compiled: compiling is most of a first import, and it is done on a second
    core while this run loads. It stops at the first root this run has reached, so it
    never waits long; only this run's outcome counts."""
    helper, progress = None, None
    if warm and len(distributions) > 1 and (os.cpu_count() or 1) > 1:
        import tempfile

        try:  # only a speed-up: where it cannot start (a full /tmp), the check runs alone
            fd, progress = tempfile.mkstemp(prefix="smoke-", suffix=".txt")
            os.close(fd)
            helper = subprocess.Popen([python, "-I", "-c", SMOKE_SCRIPT, "--warm", progress,
                                       *distributions], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env, cwd=cwd)
        except OSError:
            if progress is not None:
                os.unlink(progress)
            progress = None
    try:
        proc = subprocess.run([python, "-I", "-c", SMOKE_SCRIPT]
                              + (["--progress", progress] if progress else [])
                              + list(distributions),
                              capture_output=True, text=True, env=env, cwd=cwd, check=False)
    except BaseException:
        if helper is not None:  # interrupted: the helper's work is moot
            helper.kill()
        raise
    finally:
        if helper is not None:
            try:
                helper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
            os.unlink(progress)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise install_failed(f"smoke imports failed (exit {proc.returncode}): {tail}") from None


def smoke(python: str, distributions: list, command: str | None = None,
          imports: bool = True, warn=lambda _m: None, compiled: bool = True) -> list:
    """Load the roots of `distributions` in `python` (the rule above), then run `command` (a
    shell line, with the release's bin first on PATH). Returns the modules imported; a root
    that loads but raises for want of configuration goes to `warn`, not to a failure.
    `compiled`: the installer wrote bytecode (pip does, uv as we run it does not)."""
    imported = []
    env = clean_env()
    bindir = os.path.dirname(python)
    if imports and distributions:
        result = _load_roots(python, list(distributions), env, bindir, warm=not compiled)
        if result["missing"]:
            raise install_failed("smoke imports: not installed: {}".format(
                ", ".join(result["missing"])))
        imported = result["imported"]
        failed = result["failed"]
        for root in sorted(failed) if len(result["roots"]) > 1 else ():
            # Some packages cannot share one process in a given order (pip's distutils
            # shim, then setuptools): a root that loads on its own is not broken.
            alone = _load_roots(python, [root], env, bindir)
            if not alone["failed"] and not alone["missing"]:
                module, reason = sorted(failed.pop(root).items())[0]
                warn(f"warning: import {module} raised {reason} after the other roots "
                     "were loaded, and loads on its own (packages that do not share one "
                     "process); not counted as a failure")
                imported += alone["imported"]
        if failed:
            first = sorted((m, w) for modules in failed.values() for m, w in modules.items())
            raise install_failed("smoke imports failed: {}".format(
                "; ".join(f"import {m}: {why}" for m, why in first[:3])))
        for module, why in sorted(result["warnings"].items()):
            warn(f"warning: import {module} raised {why} (it loaded, but wants "
                 "configuration this shell lacks; not counted as a failure)")
    if command:
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env["VIRTUAL_ENV"] = os.path.dirname(bindir)
        proc = subprocess.run(command, shell=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env,
                              cwd=bindir, check=False)
        if proc.returncode != 0:
            tail = " | ".join(proc.stdout.strip().splitlines()[-3:])
            raise install_failed(f"smoke command {command!r} failed "
                                 f"(exit {proc.returncode}): {tail}")
    return imported


# ---- verify an extracted bundle folder


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return not rel.startswith("/") and "\\" not in rel and \
        all(p not in ("", ".", "..") for p in parts)


def verify_folder(root: str) -> dict:
    """Check every file against SHA256SUMS and the manifest; return the manifest."""
    try:
        with open(os.path.join(root, SUMS), "rb") as fh:
            sums_text = fh.read().decode("utf-8")
        with open(os.path.join(root, MANIFEST), "rb") as fh:
            manifest_bytes = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise integrity(f"{root}: not a bundle folder ({exc})") from exc
    sums = {}
    for number, line in enumerate(sums_text.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or rel in sums or not _safe_rel(rel):
            raise integrity(f"{SUMS}: malformed line {number}")
        sums[rel] = digest
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
        files = manifest["files"]
        target_names = [t["name"] for t in manifest["targets"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise integrity(f"{MANIFEST}: malformed ({exc})") from exc
    if sums.get(MANIFEST) != hashlib.sha256(manifest_bytes).hexdigest():
        raise integrity(f"{MANIFEST}: sha256 does not match {SUMS}")
    for f in files:
        rel = wheel_path(f["filename"])
        if sums.get(rel) != f["sha256"]:
            raise integrity(f"{rel}: {SUMS} and {MANIFEST} disagree on its sha256")
        size = os.path.getsize(os.path.join(root, rel)) \
            if os.path.isfile(os.path.join(root, rel)) else None
        if size is None:
            raise integrity(f"{os.path.join(root, rel)}: missing")
        if size != f["size"]:
            raise integrity("{}: {} bytes, the manifest says {}".format(rel, size, f["size"]))
    for name in target_names:
        if requirements_path(name) not in sums:
            raise integrity(f"{SUMS} does not list the requirements of target {name}")
    for rel, digest in sorted(sums.items()):
        path = os.path.join(root, *rel.split("/"))
        if os.path.islink(path) or not os.path.isfile(path):
            raise integrity(f"{path}: missing or not a regular file")
        if sha256_file(path) != digest:
            raise integrity(f"{path}: sha256 does not match {SUMS}")
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            if rel not in sums and rel != SUMS:
                raise integrity(f"{os.path.join(folder, name)}: not listed in {SUMS}; "
                                "the folder is not as built")
    return manifest


# ---- which target fits this interpreter: a small tag matcher


def _glibc():
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, OSError, ValueError):
        return None
    match = re.match(r"glibc (\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _musl():
    for loader in sorted(os.listdir("/lib")) if os.path.isdir("/lib") else ():
        if loader.startswith("ld-musl-"):
            proc = subprocess.run([os.path.join("/lib", loader)], capture_output=True,
                                  text=True, check=False)
            match = re.search(r"^Version (\d+)\.(\d+)", proc.stderr, re.MULTILINE)
            if match:
                return int(match.group(1)), int(match.group(2))
    return None


def _native_linux_first() -> bool:
    """Whether this interpreter's pip ranks `linux_<arch>` before manylinux: the packaging
    it vendors (found without importing pip) is 26.3 or later. The build box follows the
    same fact from the probe (targets._NATIVE_LINUX_FIRST_SINCE);
    tests/test_target_choice.py keeps the two choices agreeing."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("pip")
        folder = next(iter(spec.submodule_search_locations or ())) if spec else None
        if folder is None:
            return True  # no pip: a fresh one, which follows today's rules
        with open(os.path.join(folder, "_vendor", "vendor.txt"), encoding="utf-8") as f:
            match = re.search(r"^packaging==(\d+)\.(\d+)", f.read(), re.M)
    except (ImportError, ValueError, OSError, StopIteration):
        return True
    return not match or (int(match.group(1)), int(match.group(2))) >= (26, 3)


def platforms() -> list:
    """This machine's platform tags, best first (as pip would order them)."""
    plat = re.sub(r"[.\- ]", "_", sysconfig.get_platform())
    bits = 64 if sys.maxsize > 2 ** 32 else 32
    if plat.startswith("linux_"):
        arch = plat[len("linux_"):]
        if bits == 32 and arch == "x86_64":
            arch = "i686"
        out = []
        glibc = _glibc()
        if glibc is not None:
            lowest = 4 if arch in ("x86_64", "i686") else 16
            for minor in range(glibc[1], lowest, -1):
                out.append(f"manylinux_2_{minor}_{arch}")
                legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}.get(minor)
                if legacy:
                    out.append(f"{legacy}_{arch}")
        else:
            musl = _musl()
            if musl is not None:
                out += [f"musllinux_{musl[0]}_{m}_{arch}"
                        for m in range(musl[1], -1, -1)]
        return ["linux_" + arch, *out] if _native_linux_first() else [*out, "linux_" + arch]
    if plat.startswith("macosx_"):
        release = platform.mac_ver()[0] or "10.9"
        major, minor = (int(x) for x in ([*release.split("."), "0"])[:2])
        arch = platform.machine()
        formats = [arch, "universal2"] + (["intel", "fat64", "fat32", "universal"]
                                          if arch == "x86_64" else [])
        versions = [(v, 0) for v in range(major, 10, -1)] if major >= 11 else []
        versions += [(10, m) for m in range(minor if major == 10 else 16, 3, -1)]
        return [f"macosx_{a}_{b}_{f}" for a, b in versions for f in formats]
    return [plat]


def interpreter_tags() -> list:
    """(interpreter, abi, platform) triples this interpreter's pip accepts, best first."""
    major, minor = sys.version_info[:2]
    plats = platforms()
    short = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, "py")
    interp = f"{short}{major}{minor}"
    soabi = sysconfig.get_config_var("SOABI") or ""
    abis = []
    if short == "cp":
        debug = "d" if hasattr(sys, "gettotalrefcount") else ""
        thread = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
        abis.append(f"cp{major}{minor}{thread}{debug}")
        if minor < 8:
            abis.append(f"cp{major}{minor}m")
    elif soabi:
        abis.append(re.sub(r"[.\-]", "_", soabi.split("-")[0] + "_" + soabi.split("-")[1])
                    if "-" in soabi else soabi)
    tags = [(interp, abi, p) for abi in abis for p in plats]
    if short == "cp" and not sysconfig.get_config_var("Py_GIL_DISABLED"):
        tags += [(interp, "abi3", p) for p in plats]
    tags += [(interp, "none", p) for p in plats]
    if short == "cp":
        for older in range(minor - 1, 1, -1):
            tags += [(f"cp{major}{older}", "abi3", p) for p in plats]
    pys = [f"py{major}{minor}", f"py{major}"] + \
        [f"py{major}{m}" for m in range(minor - 1, -1, -1)]
    tags += [(py, "none", p) for py in pys for p in plats]
    tags += [(interp, "none", "any")] + [(py, "none", "any") for py in pys]
    return tags


def wheel_tags(filename: str) -> list:
    """The expanded (interpreter, abi, platform) triples of a wheel file name."""
    parts = filename[:-len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return []
    return [(i, a, p) for i in parts[-3].split(".") for a in parts[-2].split(".")
            for p in parts[-1].split(".")]


def marker_env() -> dict:
    return {"python_version": "{}.{}".format(*sys.version_info[:2]),
            "sys_platform": sys.platform, "implementation_name": sys.implementation.name}


def choose_target(manifest: dict, tags: list, environment: dict,
                  wanted: str | None = None) -> str:
    """The bundle target whose every wheel an interpreter accepts, best fit first.

    `tags` are the interpreter's (interpreter, abi, platform) triples, best first, and
    `environment` its markers (empty: not checked). The one implementation for this file
    and for wheelhouse-bundler's install, which passes the tags packaging computes from the
    interpreter's probe. Best fit: the target whose wheels rank best, compared worst
    wheel first (pure wheels shared by all targets tie, the next decides), then by name.
    A target made for another Python version or OS is ruled out even when all its wheels
    are pure: its requirements were chosen by evaluating the lock's markers for it.
    """
    names = [t["name"] for t in manifest["targets"]]
    if wanted is not None and wanted not in names:
        raise usage("target {!r} is not in the bundle (it has: {})".format(
            wanted, ", ".join(names)))
    rank = {tuple(tag): i for i, tag in enumerate(tags)}
    best = None
    why = []
    for target in manifest["targets"]:
        if wanted is not None and target["name"] != wanted:
            continue
        env = target.get("environment", {})
        off = [k for k in _SAME_INTERPRETER
               if k in environment and env.get(k) not in (None, environment[k])]
        if off:
            why.append("{} ({} {})".format(target["name"], off[0], env.get(off[0])))
            continue
        fits = []
        for f in manifest["files"]:
            if target["name"] not in f["targets"]:
                continue
            ranks = [rank[t] for t in wheel_tags(f["filename"]) if t in rank]
            if not ranks:
                why.append("{} ({} does not fit)".format(target["name"], f["filename"]))
                break
            fits.append(min(ranks))
        else:
            key = (sorted(fits, reverse=True), target["name"])
            if best is None or key < best:
                best = key
    if best is None:
        here = ", python_version {}".format(environment["python_version"]) \
            if "python_version" in environment else ""
        which = f"target {wanted} does not fit" if wanted \
            else "no target in the bundle fits"
        raise install_failed("{} this interpreter (best tag {}{}); the bundle has: {}".format(
            which, "-".join(tags[0]) if tags else "none", here, "; ".join(why)))
    return best[1]


def distributions_for(manifest: dict, target: str) -> list:
    return sorted({f["name"] for f in manifest["files"] if target in f["targets"]})


def restore(root: str, venv: str, target: str | None = None, keep: int | None = None,
            smoke_imports: bool = True, smoke_command: str | None = None,
            log=lambda _m: None, installer: str = "auto") -> dict:
    """Verify `root`, install it into a fresh release and switch `venv` to it."""
    started = time.time()
    clock = Clock()
    venv = os.path.abspath(venv)
    previous = current_release(venv)
    log(f"verifying {root}")
    manifest = verify_folder(root)
    clock.lap("verify")
    tags = interpreter_tags()
    chosen = choose_target(manifest, tags, marker_env(), target)
    log(f"target {chosen}")
    os.makedirs(releases_dir(venv), exist_ok=True)
    import tempfile

    scratch = tempfile.mkdtemp(prefix=".uv-", dir=releases_dir(venv))
    release = None
    try:
        uv = find_uv(root, installer, scratch, tags)
        clock.lap("prepare")
        release = new_release(venv, os.path.basename(os.path.abspath(root)))
        py = fill_release(release, sys.executable, root, chosen,
                          len(distributions_for(manifest, chosen)), uv, log, clock)
        imported = smoke(py, distributions_for(manifest, chosen), smoke_command,
                         smoke_imports, log, compiled=uv is None)
        clock.lap("smoke")
        switch(venv, release)
        clock.lap("switch")
        log(f"{venv} -> {release}")
    except BaseException:
        if release is not None:
            remove_tree(release)
        raise
    finally:
        remove_tree(scratch)
        clock.lap("cleanup")
    removed = prune(venv, keep) if keep is not None else []
    return {"venv": venv, "release": release, "target": chosen, "previous": previous,
            "packages": len(distributions_for(manifest, chosen)), "imported": imported,
            "installer": "uv" if uv else "pip", "timings": clock.timings,
            "pruned": removed, "seconds": round(time.time() - started, 3)}


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="install.py", description="Restore this bundle into a venv, offline, with "
        "nothing but Python (3.8+). Exit codes: 2 usage, 3 integrity, 5 install failed.")
    parser.add_argument("--venv", required=True, help="the venv path: a symlink to a fresh "
                        "release under <venv>.releases/")
    parser.add_argument("--target", help="bundle target to install (default: best fit)")
    parser.add_argument("--keep", type=int, help="keep only the N newest releases "
                        "(never the current or previous one)")
    parser.add_argument("--installer", choices=INSTALLERS, default="auto",
                        help="auto (default): the bundle's uv where it starts here, else "
                        "pip; pip; uv (the bundle's, else uv on PATH)")
    parser.add_argument("--no-smoke", action="store_true", help="skip the import check")
    parser.add_argument("--smoke", metavar="CMD", help="also run this shell command with "
                        "the new venv's bin first on PATH; non-zero exit fails the install")
    parser.add_argument("--rollback", action="store_true", help="switch --venv back to the "
                        "previous release instead of installing")
    parser.add_argument("--to", metavar="NAME", help="with --rollback: the release to use")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        if not args.json:
            sys.stderr.write(printable(message) + "\n")

    try:
        if args.rollback:
            old, new = rollback(args.venv, args.to)
            result = {"venv": os.path.abspath(args.venv), "from": old, "to": new}
            text = f"{args.venv} -> {new} (was {os.path.basename(old)})"
        else:
            root = os.path.dirname(os.path.abspath(__file__))
            result = restore(root, args.venv, args.target, args.keep, not args.no_smoke,
                             args.smoke, log, args.installer)
            text = "installed {} packages for {} into {}".format(
                result["packages"], result["target"], result["venv"])
    except Failure as exc:
        sys.stderr.write(f"install.py: error: {printable(str(exc))}\n")
        return exc.code
    except OSError as exc:
        sys.stderr.write(printable("install.py: error: {}: {}".format(
            exc.filename or "a file", exc.strerror or exc)) + "\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"install.py: interrupted; {args.venv} is unchanged\n")
        return 130
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(printable(text) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
