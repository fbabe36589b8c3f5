"""The CLI as an operator runs it: its own process, exit code and stderr, and on the
target with no network where the kernel lets a test take it away (`unshare -n`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HAS_UNSHARE = shutil.which("unshare") is not None and subprocess.run(
    ["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0


def run_cli(*args: object, env: dict[str, str] | None = None,
            preexec_fn: Callable[[], object] | None = None,
            offline: bool = False, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    prefix = ["unshare", "-n"] if offline and HAS_UNSHARE else []
    return subprocess.run([*prefix, sys.executable, "-m", "wheelhouse_bundler",
                           *map(str, args)], capture_output=True, text=True, env=env,
                          preexec_fn=preexec_fn, cwd=cwd, check=False)


def cli_offline(*args: object, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    """`run_cli` in a network namespace of its own (plain, where there is none)."""
    return run_cli(*args, env=env, offline=True)
