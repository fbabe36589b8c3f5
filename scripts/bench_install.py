"""Install benchmark: restoring the 80+ package corpus with pip against the bundled uv.

Opt-in and online once: it reuses the download benchmark's corpus (benchmarks/corpus.in,
compiled and fetched into .bench/ by bench_download.py's helpers) and fetches uv's wheel
for this host (the version wheelhouse-bundler pins) into .bench/tools/. Then, offline on
127.0.0.1, it bundles the corpus with --with-uv from a local pypiserver and runs the real
restore (`wheelhouse-bundler rehearse`, no network, a fresh venv each time) with
--installer pip and --installer uv, printing each step's time and the speed-up.

Run: .venv/bin/python scripts/bench_install.py [--runs N]
Hook it into scripts/bench as a section, e.g. `install) exec .venv/bin/python
scripts/bench_install.py "$@" ;;`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_download as dl  # noqa: E402

from wheelhouse_bundler.uvtool import UV_VERSION  # noqa: E402

WORK = dl.WORK / "install"
PY = sys.executable
STEPS = ("verify", "extract", "venv", "install", "check", "smoke", "switch")


def uv_wheel() -> Path:
    """uv's wheel for this host, fetched from the configured index once."""
    tools = dl.WORK / "tools"
    found = sorted(tools.glob(f"uv-{UV_VERSION}-*.whl"))
    if not found:
        print(f"fetching uv {UV_VERSION} for this host (online, once)...")
        subprocess.run([PY, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", str(tools), f"uv=={UV_VERSION}"], check=True)
        found = sorted(tools.glob(f"uv-{UV_VERSION}-*.whl"))
    return found[0]


def build_bundle(lock: Path, wheels: Path, uv: Path) -> Path:
    index_root = WORK / "index"
    if index_root.exists():
        shutil.rmtree(index_root)
    index_root.mkdir(parents=True)
    for wheel in [*wheels.iterdir(), uv]:
        shutil.copy(wheel, index_root / wheel.name)
    out = WORK / "corpus.tar"
    index = dl.Index(index_root)
    try:
        subprocess.run([PY, "-m", "wheelhouse_bundler", "bundle", str(lock), "-o", str(out),
                        "--with-uv", "--index-url", index.url, "--cache-dir",
                        str(WORK / "cache"), "-q"], check=True, env=dl.isolated_env())
    finally:
        index.stop()
    return out


def rehearse(bundle: Path, installer: str) -> dict:
    proc = subprocess.run([PY, "-m", "wheelhouse_bundler", "rehearse", str(bundle), "--json",
                           "--installer", installer], capture_output=True, text=True,
                          env=dl.isolated_env(), check=False)
    report = json.loads(proc.stdout)
    if not report["ok"]:
        raise SystemExit(f"rehearsal with {installer} failed: {report['error']}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="restores per installer")
    args = parser.parse_args()
    dl.ensure_tools()
    lock, wheels = dl.corpus()
    bundle = build_bundle(lock, wheels, uv_wheel())
    best: dict[str, dict] = {}
    for _ in range(args.runs):
        for installer in ("pip", "uv"):
            report = rehearse(bundle, installer)
            assert report["installer"] == installer, report
            if installer not in best or report["total_seconds"] < \
                    best[installer]["total_seconds"]:
                best[installer] = report
    packages = best["pip"]["packages"]
    print(f"\nrestore of {packages} packages ({bundle.stat().st_size / 1e6:.0f} MB bundle), "
          f"best of {args.runs}, seconds:\n")
    print(f"| step | {' | '.join(best)} |")
    print(f"| --- |{' ---: |' * len(best)}")
    for step in STEPS:
        cells = [next((f"{s['seconds']:.2f}" for s in r["steps"] if s["name"] == step), "-")
                 for r in best.values()]
        print(f"| {step} | {' | '.join(cells)} |")
    totals = [f"{r['total_seconds']:.2f}" for r in best.values()]
    print(f"| **total** | {' | '.join(totals)} |")
    install = {k: sum(s["seconds"] for s in r["steps"] if s["name"] in ("venv", "install",
                                                                        "check"))
               for k, r in best.items()}
    print(f"\nvenv + install + check: pip {install['pip']:.2f}s, uv {install['uv']:.2f}s "
          f"({install['pip'] / install['uv']:.1f}x); whole restore "
          f"{best['pip']['total_seconds'] / best['uv']['total_seconds']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
