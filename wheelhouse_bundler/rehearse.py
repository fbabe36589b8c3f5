"""A DR drill: restore a bundle into a scratch folder with no network, time it, report.

The rehearsal runs the very install an operator would run (install.install), so a pass
means the real restore works on this machine: the bundle verifies, a target fits, the
wheels install offline, `pip check` and the smoke imports pass. The network is cut with
a network namespace (`unshare -n`, re-executing this command inside it) where the kernel
allows; otherwise proxies point at a closed local port and installs use `--no-index`, and
the report says which. A failed drill still writes its report, and the exit code is the
failure's own, so a scheduled job can alert on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import BundlerError
from .install import STEPS, Restore, install
from .options import Trust
from .standalone import bootstrap
from .verify import Verified

MARK = "WHEELHOUSE_BUNDLER_REHEARSAL"
"""Set in the re-executed child: the isolation it runs under ("network namespace")."""
DEAD_PROXY = "http://127.0.0.1:9"
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
               "ALL_PROXY")


@dataclass
class Step:
    name: str
    seconds: float
    ok: bool


@dataclass
class Report:
    bundle: str
    isolation: str
    ok: bool = False
    sha256: str | None = None
    target: str | None = None
    installer: str | None = None
    packages: int = 0
    imported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    smoke_command: str | None = None
    steps: list[Step] = field(default_factory=list)
    total_seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None  # the failure's kind ("integrity error", ...)
    exit_code: int = 0
    signature: str | None = None  # who signed it, as checked (or "unsigned")


def can_unshare() -> bool:
    """Whether this kernel and user may make a network namespace (`unshare -n true`)."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True,
                               check=False, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def reexec_in_namespace(args: Sequence[str]) -> int | None:
    """Run `wheelhouse-bundler <args>` again inside a fresh network namespace.

    Returns the child's exit code, or None when we are the child already or the kernel
    refuses (the caller then isolates with dead proxies instead).
    """
    if os.environ.get(MARK) or not can_unshare():
        return None
    env = {**os.environ, MARK: "network namespace (unshare -n)"}
    cmd = ["unshare", "-n", sys.executable, "-m", "wheelhouse_bundler", *args]
    return subprocess.run(cmd, env=env, check=False).returncode


def _cut_network() -> str:
    """Inside a namespace there is nothing to do; elsewhere point proxies nowhere."""
    if os.environ.get(MARK):
        return os.environ[MARK]
    for name in _PROXY_VARS:
        os.environ[name] = DEAD_PROXY
    os.environ.pop("no_proxy", None)
    os.environ.pop("NO_PROXY", None)
    return f"proxies pointed at {DEAD_PROXY} and --no-index (unshare -n not allowed here)"


def rehearse(bundle: Path, how: Restore, *, keep_scratch: Path | None = None,
             trust: Trust | None = None) -> Report:
    """The whole restore into a scratch folder; never raises for a failed drill."""
    report = Report(bundle=str(bundle), isolation=_cut_network(),
                    smoke_command=how.smoke_command)
    scratch = Path(tempfile.mkdtemp(prefix="wheelhouse-rehearse-",
                                    dir=keep_scratch if keep_scratch else None))
    timings: dict[str, float] = {}

    def verified(checked: Verified) -> None:
        report.sha256 = checked.sha256
        report.signature = checked.signature.describe() if checked.signature else "unsigned"

    started = time.monotonic()
    try:
        done = install(bundle, scratch / "venv", how, trust=trust,
                       timed=timings.__setitem__, verified=verified)
        report.ok = True
        report.target, report.packages = done.target, done.packages
        report.installer, report.imported = done.installer, list(done.imported)
        report.warnings = list(done.warnings)
    except BundlerError as exc:
        report.error, report.exit_code = str(exc), exc.exit_code
        report.error_kind = exc.kind
    except OSError as exc:
        report.error = f"{exc.filename or 'a file'}: {exc.strerror or exc}"
        report.exit_code, report.error_kind = 2, "error"
    finally:
        report.total_seconds = time.monotonic() - started
        if keep_scratch is None:
            bootstrap.remove_tree(str(scratch))
    report.steps = _steps(timings, report.total_seconds, report.ok)
    return report


def _steps(timings: dict[str, float], total: float, ok: bool) -> list[Step]:
    steps = [Step(name, round(timings[name], 3), True) for name in STEPS if name in timings]
    if not ok:
        failed = next((name for name in STEPS if name not in timings), STEPS[-1])
        steps.append(Step(failed, round(max(total - sum(timings.values()), 0.0), 3), False))
    return steps


def to_json(report: Report) -> str:
    doc = asdict(report)
    doc["total_seconds"] = round(report.total_seconds, 3)
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def to_markdown(report: Report) -> str:
    verdict = "PASS" if report.ok else "FAIL"
    lines = [f"# Restore rehearsal: {verdict}", "",
             f"- bundle: `{report.bundle}`" + (f" (sha256 `{report.sha256}`)"
                                                if report.sha256 else ""),
             f"- network: {report.isolation}",
             f"- signature: {report.signature or '-'}",
             f"- target: {report.target or '-'}; installer: {report.installer or '-'}; "
             f"packages: {report.packages}",
             f"- smoke: {len(report.imported)} modules imported"
             + (f"; command `{report.smoke_command}`" if report.smoke_command else ""),
             *(f"- {line}" for line in report.warnings),
             f"- total time to restore: {report.total_seconds:.1f} s", "",
             "| step | seconds | result |", "| --- | ---: | --- |"]
    lines += [f"| {s.name} | {s.seconds:.2f} | {'ok' if s.ok else 'FAILED'} |"
              for s in report.steps]
    if report.error:
        lines += ["", f"Error (exit {report.exit_code}): {report.error}"]
    return "\n".join(lines) + "\n"
