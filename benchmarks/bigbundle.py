"""A bundle around one big wheel, built by our own `bundle` command, with its peak memory.

The download section wants the peak RSS of fetching a 1 GB file; the verify section wants
a 1 GB bundle to check. One run of `bundle` against a local index gives both, so a bench
run that has both sections builds it once.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .common import PY, WORK, Index, isolated_env, ours

SMALL = 3
"""Small wheels beside the big one, so the bundle has more than one member to stream."""


@dataclass(frozen=True)
class BigBundle:
    path: Path
    peak_rss_mb: float

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def wheels(megabytes: int) -> Path:
    """A folder with a `megabytes` MB random-content wheel and a few small ones (built once)."""
    from wheelfactory import build_wheel

    folder = WORK / ("big" if megabytes == 1024 else f"big-{megabytes}m")
    if not any(folder.glob("bigwheel-*.whl")):
        print(f"building a {megabytes} MB wheel (once)...", file=sys.stderr)
        build_wheel(folder, "bigwheel", "1.0", payload_size=megabytes * 1024 ** 2)
    for n in range(SMALL):
        if not any(folder.glob(f"small{n}-*.whl")):
            build_wheel(folder, f"small{n}", "1.0", payload_size=256 * 1024)
    return folder


def peak_rss_mb(cmd: list[str], env: dict[str, str]) -> float:
    """Peak RSS of a command, read by a wrapper process whose only child it is."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage("
            "resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([PY, "-c", code, *cmd], env=env, check=True, capture_output=True,
                         text=True).stdout
    return int(out.split()[-1]) / 1024


@functools.cache
def build(megabytes: int, tmp: Path) -> BigBundle:
    """Fetch the wheels from a local pypiserver with a cold cache and pack them, once per run."""
    from wheelfactory import sha256_of

    folder = wheels(megabytes)
    lock = tmp / f"big-{megabytes}.txt"
    lock.write_text("".join(f"{w.name.split('-')[0]}=={w.name.split('-')[1]} "
                            f"--hash=sha256:{sha256_of(w)}\n"
                            for w in sorted(folder.glob("*.whl"))))
    out = tmp / f"big-{megabytes}.tar"
    with Index(folder) as index:
        rss = peak_rss_mb(ours("bundle", str(lock), "-o", str(out), "--cache-dir",
                               str(tmp / f"bigcache-{megabytes}"), "--index-url", index.url,
                               "-q"), isolated_env())
    return BigBundle(out, rss)
