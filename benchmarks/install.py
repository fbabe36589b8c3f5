"""Install: the same bundle restored offline into fresh venvs with pip and with the bundled uv.

The corpus is bundled once with `--with-uv` from the local index (uv's wheel for this
host, the version we pin, fetched once into .bench/tools/). Each restore is the real one
an operator runs, `wheelhouse-bundler rehearse` (no network, a fresh venv every time), so
pip and uv differ only in `--installer`; runs alternate between them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from wheelhouse_bundler.uvtool import UV_VERSION

from .common import PY, WORK, Corpus, Index, Row, isolated_env, ours, seconds, speedup, verdict

INSTALLER_STEPS = ("venv", "install", "check")
"""The steps that depend on the installer: the fresh venv (uv needs no pip in it), the
install itself, and the dependency check."""


def uv_wheel() -> Path:
    """uv's wheel for this host, fetched from the configured index once."""
    tools = WORK / "tools"
    found = sorted(tools.glob(f"uv-{UV_VERSION}-*.whl"))
    if not found:
        print(f"fetching uv {UV_VERSION} for this host (online, once)...", file=sys.stderr)
        subprocess.run([PY, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", str(tools), f"uv=={UV_VERSION}"], check=True)
        found = sorted(tools.glob(f"uv-{UV_VERSION}-*.whl"))
    return found[0]


def build_bundle(corpus: Corpus, tmp: Path) -> Path:
    index_root = tmp / "install-index"
    index_root.mkdir()
    for wheel in [*corpus.wheels, uv_wheel()]:
        shutil.copy(wheel, index_root / wheel.name)
    out = tmp / "install.tar"
    with Index(index_root) as index:
        subprocess.run(ours("bundle", str(corpus.lock), "-o", str(out), "--with-uv",
                            "--index-url", index.url, "--cache-dir", str(tmp / "install-cache"),
                            "-q"), check=True, env=isolated_env())
    return out


def rehearse(bundle: Path, installer: str) -> dict:
    proc = subprocess.run(ours("rehearse", str(bundle), "--json", "--installer", installer),
                          capture_output=True, text=True, env=isolated_env(), check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"rehearsal with {installer} printed no report: "
                         f"{proc.stderr.strip()[-300:]}") from None
    if not report["ok"] or report["installer"] != installer:
        raise SystemExit(f"rehearsal with {installer} failed: {report.get('error')}")
    return report


def step_seconds(report: dict, names: tuple[str, ...] | None) -> float:
    """The named steps' seconds, or with None the whole restore's."""
    if names is None:
        return float(report["total_seconds"])
    return sum(s["seconds"] for s in report["steps"] if s["name"] in names)


def run(corpus: Corpus, tmp: Path, runs: int) -> list[Row]:
    bundle = build_bundle(corpus, tmp)
    reports: dict[str, list[dict]] = {"pip": [], "uv": []}
    for _ in range(runs):
        for installer in reports:
            reports[installer].append(rehearse(bundle, installer))

    def fastest(installer: str, names: tuple[str, ...] | None) -> float:
        return min(step_seconds(r, names) for r in reports[installer])

    n = reports["pip"][0]["packages"]
    rows = []
    cases: tuple[tuple[str, tuple[str, ...] | None, float | None], ...] = (
        (f"install {n} packages: fresh venv + install + check, uv vs pip", INSTALLER_STEPS, 5.0),
        ("install step alone (`uv pip install` vs `pip install`)", ("install",), None),
        ("whole offline restore (`rehearse`: verify ... smoke imports)", None, None))
    for case, names, goal in cases:
        u, p = fastest("uv", names), fastest("pip", names)
        rows.append(Row(case, seconds(u), seconds(p), speedup(p, u),
                        f">= {goal:g}x" if goal else "-",
                        verdict(p / u >= goal) if goal else "-"))
    return rows
