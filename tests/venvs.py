"""Real venvs and pip subprocesses, isolated from this machine's pip configuration.

The machine sets PIP_FIND_LINKS, PIP_CERT and global/user pip.conf files (a constraints
file, extra index URLs pointing at local folders). A test that let pip see any of that would
pass or fail for reasons outside the code under test, so every subprocess here runs with
`clean_env()`: no PIP_*/UV_* variables, and PIP_CONFIG_FILE=os.devnull, which makes pip
skip *all* config files (global, user and site), not just the one named.

Subprocesses run with cwd set to the venv folder: `python -c` puts the cwd on sys.path, and
from the repo root that would make `import wheelhouse_bundler` succeed in any venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

__all__ = [
    "BOOTSTRAP_PACKAGES",
    "CLEAN_DEFAULTS",
    "clean_env",
    "clean_os_environ",
    "has_own_pip",
    "is_polluting",
    "make_venv",
    "pip_freeze",
    "run_in_venv",
    "run_pip",
    "venv_python",
]

CLEAN_DEFAULTS: Mapping[str, str] = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
}
"""Set in every clean environment: no config files, no version check, never prompt."""

BOOTSTRAP_PACKAGES = frozenset({"pip", "setuptools", "wheel", "distribute"})
"""What a fresh venv may already hold; pip_freeze leaves these out unless asked."""

_LOCAL = "127.0.0.1,localhost"


def is_polluting(key: str) -> bool:
    """Whether an environment variable can change what pip/uv/python do in a subprocess."""
    return key.startswith(("PIP_", "UV_")) or key in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without PIP_*, UV_*, VIRTUAL_ENV, PYTHONPATH, PYTHONHOME, plus CLEAN_DEFAULTS.

    `no_proxy`/`NO_PROXY` gain 127.0.0.1 and localhost so that a proxy variable can never
    route a test's local index traffic elsewhere. `extra` is applied last and wins.
    """
    env = {k: v for k, v in os.environ.items() if not is_polluting(k)}
    env.update(CLEAN_DEFAULTS)
    for key in ("no_proxy", "NO_PROXY"):
        env[key] = f"{env[key]},{_LOCAL}" if env.get(key) else _LOCAL
    env.update(extra)
    return env


def clean_os_environ(mp: pytest.MonkeyPatch, root: Path | None = None) -> None:
    """Make os.environ what clean_env() returns, for code under test that runs in-process.

    With `root`, caches go under it and the machine's ~/.netrc is hidden, so a test neither
    reads nor leaves anything outside its own folder.
    """
    for key in [k for k in os.environ if is_polluting(k)]:
        mp.delenv(key)
    for key, value in CLEAN_DEFAULTS.items():
        mp.setenv(key, value)
    if root is not None:
        mp.setenv("XDG_CACHE_HOME", str(root / "xdg"))
        mp.setenv("NETRC", str(root / "no-netrc"))


def venv_python(venv: Path) -> Path:
    """The interpreter inside a venv folder."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str], what: str, *, cwd: Path, env: Mapping[str, str] | None = None,
         check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise with its full output, which CalledProcessError hides."""
    proc = subprocess.run(cmd, cwd=cwd, env=dict(env) if env is not None else clean_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{what} failed (exit {proc.returncode}): {cmd}\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def _venv_dir(python: Path) -> Path:
    return python.parent.parent


def make_venv(path: Path, python: str = sys.executable, *, with_pip: bool = True) -> Path:
    """Create a venv at `path` with `python -m venv`; return the venv's python.

    with_pip=True runs ensurepip, which costs ~6 s on this machine. with_pip=False takes
    ~0.1 s; run_pip and pip_freeze then drive it with the test runner's pip (`--python`).
    """
    cmd = [python, "-m", "venv", str(path)]
    if not with_pip:
        cmd.append("--without-pip")
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(cmd, "creating a venv", cwd=path.parent)  # clean env: ensurepip runs pip too
    return venv_python(path)


def has_own_pip(venv_python: Path) -> bool:
    """Whether the venv has pip installed in it (made with with_pip=True)."""
    venv = _venv_dir(Path(venv_python))
    patterns = ("Lib/site-packages/pip",) if os.name == "nt" else ("lib/python*/site-packages/pip",)
    return any(any(venv.glob(p)) for p in patterns)


def run_pip(venv_python: Path, *args: str, env: Mapping[str, str] | None = None,
            check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run pip against the venv: its own pip if it has one, else ours with `--python`.

    `env` defaults to clean_env(); pass clean_env(...) with extras to add variables.
    """
    venv_python = Path(venv_python)
    if has_own_pip(venv_python):
        cmd = [str(venv_python), "-m", "pip", *args]
    else:
        cmd = [sys.executable, "-m", "pip", "--python", str(venv_python), *args]
    return _run(cmd, "pip", cwd=_venv_dir(venv_python), env=env, check=check, timeout=timeout)


def pip_freeze(venv_python: Path, *, include_bootstrap: bool = False) -> dict[str, str]:
    """Canonical project name -> version of what is installed in the venv.

    Like `pip freeze`, leaves out pip/setuptools/wheel unless include_bootstrap, so tests can
    compare the result with exactly what a bundle should have installed.
    """
    out = run_pip(venv_python, "list", "--format=json").stdout
    found = {canonicalize_name(d["name"]): d["version"] for d in json.loads(out)}
    if not include_bootstrap:
        found = {k: v for k, v in found.items() if k not in BOOTSTRAP_PACKAGES}
    return found


def run_in_venv(venv_python: Path, code: str, *, env: Mapping[str, str] | None = None) -> str:
    """Run `python -c code` in the venv (clean env, cwd = venv folder); return its stdout."""
    venv_python = Path(venv_python)
    return _run([str(venv_python), "-c", code], "python -c", cwd=_venv_dir(venv_python),
                env=env).stdout
