"""scripts/bench: every speed goal of the project, measured side by side in one run.

Sections (all by default): download (vs pip download and 16 parallel curls, through a
40 ms proxy and on loopback; warm rebuild; peak RSS on a 1 GB wheel), install (pip vs the
bundled uv, offline, fresh venvs), verify (a 1 GB bundle vs sha256sum). --live (or
--only live, for that case alone) adds ours vs 16 parallel curls and pip download against
the default index. Prints one Markdown table.

The first run is online: it compiles benchmarks/corpus.in and fetches its wheels (and uv's)
into .bench/. Everything after that runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import download, install, verify
from .common import WORK, Row, check_tools, compile_bytecode, corpus, table

SECTIONS = ("download", "install", "verify")
ONLINE = ("live",)  # reaches the default index: only when asked for


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections out of "
                             f"{','.join(SECTIONS + ONLINE)}")
    parser.add_argument("--quick", action="store_true",
                        help="a ~20-package corpus, a 200 MB file instead of 1 GB, one run each")
    parser.add_argument("--live", action="store_true",
                        help="also pip download vs ours against the default index (online)")
    parser.add_argument("--runs", type=int, default=None,
                        help="measurements per case, the fastest counts (default 3, quick 1)")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS + ONLINE))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(SECTIONS + ONLINE)}")
    if args.live and "live" not in args.sections:
        args.sections.append("live")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    check_tools()
    compile_bytecode()
    big_mb = 200 if args.quick else 1024
    started = time.perf_counter()
    needs_corpus = bool({"download", "install", "live"} & set(args.sections))
    body = corpus(args.quick) if needs_corpus else None
    rows: list[Row] = []
    WORK.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    try:
        for section in SECTIONS + ONLINE:
            if section not in args.sections:
                continue
            print(f"running {section}...", file=sys.stderr)
            if section == "download":
                assert body is not None
                rows += download.run(body, tmp, args.runs, big_mb)
            elif section == "live":
                assert body is not None
                rows += download.live(body, tmp, args.runs)
            elif section == "install":
                assert body is not None
                rows += install.run(body, tmp, args.runs)
            else:
                rows += verify.run(tmp, args.runs, big_mb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    what = (f"corpus: {len(body.wheels)} wheels, {body.megabytes:.0f} MB; " if body else "")
    print(f"\n{what}cores: {os.cpu_count()}; load average at the end: {load:.2f}; "
          f"best of {args.runs}; {time.perf_counter() - started:.0f} s in all\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
