"""requirements.in (or a pyproject.toml) -> a hashed requirements.txt, with pip-tools.

We never resolve ourselves: `pip-compile --generate-hashes` does, against the index the
user configured, and its output is then an ordinary hashed lock. pip-tools resolves for
the interpreter running it (markers, wheels, Requires-Python of *this* host), so the lock
is exact for the host only; other targets bundle from it but may want a different lock.

pip runs with the machine's pip configuration neutralised (PIP_CONFIG_FILE=/dev/null, no
PIP_* variables) except for the index, which travels as PIP_INDEX_URL in the child's
environment only: credentials (from the environment, netrc or pip's config) may be in
that URL but never in argv, where `ps` and the lock's header would show them. Transport
settings that do not change what gets resolved (CA bundle, client certificate, timeout,
retries) pass through, so a private index behind a custom CA keeps working.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .bundle import refuse_overwriting
from .errors import NetworkError, UsageError
from .files import atomic_output
from .net import describe, make_client
from .sources import (
    check_not_in_argv,
    credentials_for,
    default_source,
    join_credentials,
    pip_child_env,
    redact,
    split_credentials,
)

_NETWORK = re.compile(r"NewConnectionError|Failed to establish|Max retries exceeded|"
                      r"ConnectTimeout|ReadTimeout|Connection refused|Name or service not "
                      r"known|ProxyError|SSLError|HTTP error 40[13]|403 Client Error|"
                      r"401 Client Error")


@dataclass(frozen=True)
class Compiled:
    output: Path
    packages: int
    index: str  # redacted


def default_output(source: Path) -> Path:
    return source.with_name("requirements.txt")


def _index_with_credentials(index_url: str | None) -> tuple[str, str]:
    """The index URL for the child's environment (with credentials) and for display."""
    if index_url:
        check_not_in_argv(index_url, "--index-url")
    source = default_source(index_url)
    url = source.url
    if "@" not in urlsplit(url).netloc:
        url = join_credentials(url, credentials_for(source, url))
    return url, redact(url)


def _failure(stderr: str, source: Path, shown_index: str) -> Exception:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if _NETWORK.search(stderr):
        return NetworkError(f"pip-compile {source.name}: cannot reach the index "
                            f"{shown_index}")
    # pip's own last error line says what could not be resolved; keep it to one line.
    tell = next((ln for ln in reversed(lines) if ln.startswith(("ERROR:", "Error:"))),
                lines[-1] if lines else "pip-compile failed")
    tell = re.sub(r"^(ERROR|Error):\s*", "", tell)
    return UsageError(f"pip-compile {source.name}: cannot resolve against {shown_index}: "
                      f"{tell}")


def _unreachable(index_url: str | None) -> str | None:
    """Why the index cannot be reached (one GET of its root, its credentials sent), or
    None when it answers; any answer but an auth refusal counts as reachable."""
    import httpx

    source = default_source(index_url)
    base, _ = split_credentials(source.url)
    creds = credentials_for(source, source.url)
    try:
        with make_client(jobs=1, timeout=15.0) as client:
            response = client.get(base, auth=httpx.BasicAuth(*creds) if creds else None)
    except httpx.HTTPError as exc:
        return describe(exc)
    if response.status_code in (401, 403, 407):
        return f"{response.status_code} {response.reason_phrase}; check its credentials"
    return None


def compile_lock(source: Path, output: Path | None = None, *, index_url: str | None = None
                 ) -> Compiled:
    """Run pip-compile on `source` and write the hashed lock to `output` atomically."""
    if not source.is_file():
        raise UsageError(f"{source}: no such file")
    output = output or default_output(source)
    refuse_overwriting([output], [("input", source)])
    index, shown = _index_with_credentials(index_url)
    # Not fsynced: pip-compile writes the file by path, not through the handle. It starts
    # from the old lock, so it keeps the pins it already wrote, as it does alone.
    with atomic_output(output, durable=False) as fh:
        tmp = Path(fh.name)
        if output.is_file():
            shutil.copyfile(output, tmp)
        env = pip_child_env(index)
        env["CUSTOM_COMPILE_COMMAND"] = f"wheelhouse-bundler lock {source.name}"
        # pip-compile runs in the input's folder (its relative `-r`/`-c`/`-e` lines mean
        # that folder), so it gets the input by name and the output by absolute path: the
        # user's paths are relative to where they ran us, not to that folder.
        cmd = [sys.executable, "-m", "piptools", "compile", "--generate-hashes",
               "--no-emit-index-url", "--no-emit-trusted-host", "--strip-extras", "--quiet",
               "--output-file", str(tmp.resolve()), source.name]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                              cwd=source.parent, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            error = _failure(done.stderr, source, shown)
            # pip-tools silences pip's connection warnings, so a dead index reads as
            # "no version of X": ask the index ourselves before blaming the input.
            if not isinstance(error, NetworkError) and (why := _unreachable(index_url)):
                error = NetworkError(f"pip-compile {source.name}: cannot reach the index "
                                     f"{shown}: {why}")
            raise error
        text = tmp.read_text()
        if "--hash=sha256:" not in text and re.search(r"^\S+==", text, re.M):
            raise UsageError(f"pip-compile {source.name}: wrote no hashes")
        if output.is_file():  # a lock made before keeps its mode
            shutil.copymode(output, tmp)
    packages = len(re.findall(r"^[A-Za-z0-9][^\s;]*==", output.read_text(), re.M))
    return Compiled(output, packages, shown)
