"""What every benchmark section shares: the corpus, a local index, clean tool runs, the table.

The corpus (benchmarks/corpus.in, 80+ packages once compiled) is locked with pip-tools and
its wheels fetched from the configured index into .bench/ on first use; every later
measurement runs on 127.0.0.1 against a pypiserver (on waitress, so it answers in
parallel) serving those wheels, so the numbers depend on this machine, not on a registry.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench"
PY = sys.executable
sys.path.insert(0, str(ROOT / "tests"))  # wheelfactory: reproducible wheels, sha256_of

QUICK_ROOTS = ("requests", "rich", "jinja2", "httpx", "pydantic")
"""The quick corpus: these packages and everything they pull in (about 20 wheels)."""


@dataclass(frozen=True)
class Row:
    """One line of the result table; `met` is "yes", "no" or "-" (no goal for this case)."""

    case: str
    ours: str
    baseline: str
    ratio: str
    goal: str = "-"
    met: str = "-"


@dataclass(frozen=True)
class Corpus:
    lock: Path
    wheels: list[Path]
    # The same pins with every hash pip-compile wrote (all platforms' wheels, sdists),
    # most of which the local index does not hold: an internal index's usual state.
    every_hash_lock: Path | None = None

    @property
    def megabytes(self) -> float:
        return sum(w.stat().st_size for w in self.wheels) / 1e6


def isolated_env() -> dict[str, str]:
    """pip and our tool as a clean machine runs them: no PIP_* settings, no config files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of a whole command, as a user would see it; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"benchmark command failed ({done.returncode}): {' '.join(cmd[:6])}"
                         f" ...\n" + "\n".join(tail))
    return seconds


def best(runs: int, measure: Callable[[], float]) -> float:
    """The fastest of `runs` measurements: on a shared machine the minimum is the least noisy."""
    return min(measure() for _ in range(max(1, runs)))


def compile_bytecode() -> None:
    """Compile our modules once, as installing a wheel does (pip compiles .pyc files).

    The bench runs the checkout's editable install; where PYTHONDONTWRITEBYTECODE is set
    its modules would be compiled from source on every command: a cost that no
    installed copy pays, and that pip (installed, compiled) would not pay either.
    """
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "wheelhouse_bundler")],
                   check=True, stdout=subprocess.DEVNULL)


def check_tools() -> None:
    """waitress makes pypiserver answer in parallel, a fair server for 16 transfers at once."""
    missing = []
    for module in ("pypiserver", "waitress", "watchdog", "piptools"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run scripts/bench (it installs the "
                         f"[dev,bench] extras) rather than this module directly")


def corpus(quick: bool) -> Corpus:
    """The compiled, hashed corpus lock and its wheels for this host (online only once)."""
    WORK.mkdir(exist_ok=True)
    lock = WORK / "corpus.txt"
    wheels = WORK / "wheels"
    if not lock.exists():
        print("compiling benchmarks/corpus.in with pip-tools (online, once)...", file=sys.stderr)
        subprocess.run([PY, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
                        "--no-emit-index-url", "--no-emit-trusted-host", "--strip-extras",
                        "--output-file", str(lock), str(ROOT / "benchmarks" / "corpus.in")],
                       check=True)
    if not wheels.is_dir() or not any(wheels.iterdir()):
        print("fetching the corpus wheels (online, once)...", file=sys.stderr)
        subprocess.run([PY, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--require-hashes", "-r", str(lock), "-d", str(wheels)], check=True)
    from wheelfactory import sha256_of

    served = {sha256_of(w): w for w in wheels.iterdir()}
    blocks = _blocks(lock.read_text())
    if quick:
        blocks = {name: blocks[name] for name in closure(blocks, QUICK_ROOTS)}
    text, used = local_lock(blocks, set(served))
    out = WORK / ("corpus-quick.txt" if quick else "corpus-local.txt")
    out.write_text(text)
    every = WORK / ("corpus-quick-every-hash.txt" if quick else "corpus-every-hash.txt")
    every.write_text("\n".join("\n".join(lines) for lines in blocks.values()) + "\n")
    return Corpus(out, sorted(served[h] for h in used), every)


def _blocks(text: str) -> dict[str, list[str]]:
    """A pip-compile output split per requirement: name -> its lines (hashes, `# via`)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")) and "==" in line:
            current = blocks.setdefault(line.split("==")[0].strip().lower(), [])
        elif not line or not line[0].isspace():
            current = None
        if current is not None:
            current.append(line)
    return blocks


def closure(blocks: dict[str, list[str]], roots: Iterable[str]) -> list[str]:
    """The roots and every requirement pulled in by them, from pip-compile's `# via` notes.

    A package is needed when anything it is "via" is needed; extras make this a slight
    over-approximation, which keeps `pip check` happy in the install section.
    """
    via: dict[str, set[str]] = {}
    for name, lines in blocks.items():
        parents = set()
        for line in lines:
            note = re.sub(r"^\s*#\s*(via\b)?\s*", "", line) if line.lstrip().startswith("#") \
                else ""
            if note and not note.startswith("-r"):
                parents.add(note.strip().lower())
        via[name] = parents
    needed = {r for r in roots if r in blocks}
    grew = True
    while grew:
        grew = False
        for name, parents in via.items():
            if name not in needed and parents & needed:
                needed.add(name)
                grew = True
    return sorted(needed)


def local_lock(blocks: dict[str, list[str]], served: set[str]) -> tuple[str, set[str]]:
    """The lock with only the hashes the local index serves, as if it were complete.

    The compiled lock lists every platform's files; the bench index holds only this host's,
    and a hash no index lists would send every tool looking on every run. Options the
    compiling machine added (--find-links, index URLs) are left out: they are not the
    corpus, and a local folder of wheels would flatter whichever tool read it.
    """
    out: list[str] = []
    used: set[str] = set()
    for lines in blocks.values():
        req = lines[0].rstrip(" \\")
        hashes = [h for h in (ln.strip().rstrip(" \\") for ln in lines[1:])
                  if h.startswith("--hash=sha256:") and h[14:] in served]
        if not hashes:
            raise SystemExit(f"no wheel in .bench/wheels for {req}; delete .bench to refetch")
        used.update(h[14:] for h in hashes)
        out.append(" \\\n".join([req, *(f"    {h}" for h in hashes)]))
    return "\n".join(out) + "\n", used


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Index:
    """pypiserver over a folder (its `auto` server picks waitress), for one section."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [PY, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(self.port),
             "-a", ".", "-P", ".", "--disable-fallback", "--server", "auto",
             "--backend", "cached-dir", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("pypiserver did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ours(*args: str) -> list[str]:
    return [PY, "-m", "wheelhouse_bundler", *args]


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def speedup(baseline: float, ours_value: float) -> str:
    return f"{baseline / ours_value:.2f}x"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def table(rows: list[Row]) -> str:
    head = ("case", "ours", "baseline", "ratio", "goal", "met?")
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join((r.case, r.ours, r.baseline, r.ratio, r.goal, r.met)) + " |"
              for r in rows]
    return "\n".join(lines)
