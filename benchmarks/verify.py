"""Verify: `wheelhouse-bundler verify` of a 1 GB bundle against `sha256sum` of the same file.

verify reads the tar once and checks the sidecar, every member's size and sha256 and every
name, so sha256sum (one hash over the bytes, in C) is the floor it is compared with, and
`openssl dgst -sha256` the faster floor where coreutils does not use the CPU's SHA
instructions. The file is read once first so all run from the page cache; each is timed as
a whole command, ours including Python's start-up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import bigbundle
from .common import Row, ours, timed, verdict

GOAL_MB_S = 500


def run(tmp: Path, runs: int, big_mb: int) -> list[Row]:
    bundle = bigbundle.build(big_mb, tmp).path
    size = bundle.stat().st_size
    with open(bundle, "rb") as fh:  # into the page cache, for both tools alike
        while fh.read(1 << 24):
            pass
    baselines = {"sha256sum": ["sha256sum", str(bundle)]}
    if shutil.which("openssl"):  # OpenSSL's SHA-256 uses the CPU's SHA extensions
        baselines["openssl dgst -sha256"] = ["openssl", "dgst", "-sha256", str(bundle)]
    mine: list[float] = []
    base: dict[str, list[float]] = {name: [] for name in baselines}
    for _ in range(runs):  # interleaved, so load on the machine hits every tool alike
        for name, cmd in baselines.items():
            base[name].append(timed(cmd))
        mine.append(timed(ours("verify", str(bundle), "-q")))
    t = min(mine)
    rate = size / 1e6 / t
    rows = []
    for name, times in base.items():
        b = min(times)
        b_rate = size / 1e6 / b
        goal = name == "sha256sum"
        rows.append(Row(f"verify a {size / 1e6:.0f} MB bundle vs `{name}` ({t:.2f} s vs "
                        f"{b:.2f} s)", f"{rate:.0f} MB/s", f"{b_rate:.0f} MB/s",
                        f"{rate / b_rate:.2f}x", f">= {GOAL_MB_S} MB/s" if goal else "-",
                        verdict(rate >= GOAL_MB_S) if goal else "-"))
    return rows
