"""Restore: the same bundle restored offline into fresh venvs with pip and with the bundled uv.

The corpus is bundled once from the local index, with the default options: uv's wheel
for this host (the version we pin, fetched once into .bench/tools/) is on that index, so
the bundle carries it as every default bundle does where uv has a wheel. Each restore is
the real one an operator runs, `wheelhouse-bundler rehearse` (no network, a fresh venv
every time): `--installer auto` (what the operator gets: the bundle's uv) against
`--installer pip`; runs alternate between them. Reported: the whole command's wall time
(what the operator waits for, start-up and clean-up included), the restore's own total,
and each step's seconds from the rehearsal's report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from wheelhouse_bundler.install import STEPS
from wheelhouse_bundler.uvtool import UV_VERSION

from .common import PY, WORK, Corpus, Index, Row, isolated_env, ours, seconds, speedup, verdict

INSTALLER_STEPS = ("venv", "install", "check")
"""The steps that depend on the installer: the fresh venv (uv needs no pip in it), the
install itself, and the dependency check."""
GOAL_SECONDS = 5.0
"""`rehearse` of the bench bundle, default options, whole command (issue 18)."""
INSTALLERS = {"uv": "auto", "pip": "pip"}
"""The report's installer -> the --installer that asks for it (uv: the default path)."""


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
    """The corpus bundled with the default options (no uv flag) from a local index."""
    index_root = tmp / "install-index"
    index_root.mkdir()
    for wheel in [*corpus.wheels, uv_wheel()]:
        shutil.copy(wheel, index_root / wheel.name)
    out = tmp / "install.tar"
    with Index(index_root) as index:
        subprocess.run(ours("bundle", str(corpus.lock), "-o", str(out),
                            "--index-url", index.url, "--cache-dir", str(tmp / "install-cache"),
                            "-q"), check=True, env=isolated_env())
    return out


def rehearse(bundle: Path, installer: str) -> dict:
    """One drill with the report's `wall_seconds` added: the command as a user times it."""
    start = time.perf_counter()
    proc = subprocess.run(ours("rehearse", str(bundle), "--json",
                               "--installer", INSTALLERS[installer]),
                          capture_output=True, text=True, env=isolated_env(), check=False)
    wall = time.perf_counter() - start
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"rehearsal with {installer} printed no report: "
                         f"{proc.stderr.strip()[-300:]}") from None
    if not report["ok"] or report["installer"] != installer:
        raise SystemExit(f"rehearsal with {installer} failed or used "
                         f"{report['installer']}: {report.get('error')}")
    report["wall_seconds"] = wall
    steps = ", ".join(f"{s['name']} {s['seconds']:.2f}" for s in report["steps"])
    print(f"  rehearse --installer {INSTALLERS[installer]}: {wall:.2f} s wall, "
          f"{report['total_seconds']:.2f} s restore ({steps})", file=sys.stderr)
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
    walls = {i: sorted(r["wall_seconds"] for r in reports[i]) for i in reports}
    u, p = walls["uv"][0], walls["pip"][0]
    spread = " to ".join(f"{w:.2f}" for w in (walls["uv"][0], walls["uv"][-1])) \
        if runs > 1 else f"{u:.2f}"
    met = sum(w <= GOAL_SECONDS for w in walls["uv"])
    rows = [Row(f"restore {n} packages: `rehearse`, default bundle (uv) vs `--installer "
                f"pip`, whole command (uv runs: {spread} s; {met} of {runs} within goal)",
                seconds(u), seconds(p), speedup(p, u), f"<= {GOAL_SECONDS:g} s",
                verdict(met == runs))]
    cases: tuple[tuple[str, tuple[str, ...] | None, float | None], ...] = (
        (f"install {n} packages: fresh venv + install + check, uv vs pip", INSTALLER_STEPS, 5.0),
        ("(restore as the report times it: verify ... cleanup)", None, None),
        *((f"(restore step: {step})", (step,), None) for step in STEPS))
    for case, names, goal in cases:
        u, p = fastest("uv", names), fastest("pip", names)
        rows.append(Row(case, seconds(u), seconds(p), speedup(p, u) if u > 0 else "-",
                        f">= {goal:g}x" if goal else "-",
                        verdict(p / u >= goal) if goal else "-"))
    return rows
