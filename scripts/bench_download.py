"""Download benchmark: wheelhouse-bundler against `pip download` and parallel curl, same run.

Opt-in and online once: the corpus (benchmarks/corpus.in, 80+ packages when compiled) is
locked with pip-tools and its wheels fetched from your configured index into .bench/, then
everything is measured on 127.0.0.1:

  wan       a real pypiserver (waitress, parallel) behind a proxy that holds every response
            40 ms, like the round trips of a real index; cold caches for every tool
  loopback  the same server without the proxy
  warm      our bundle again with the cache full
  memory    peak RSS of our bundle fetching a 1 GB wheel
  live      (--live) against your configured index, pip download as the baseline

Run: scripts/bench download [--live]   (or .venv/bin/python scripts/bench_download.py)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench"
PY = sys.executable
DELAY = 0.040


def isolated_env() -> dict[str, str]:
    """pip and our tool as a clean machine runs them: no PIP_* settings, no config files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def run(cmd: list[str], env: dict[str, str] | None = None, quiet: bool = True) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True,
                   stdout=subprocess.DEVNULL if quiet else None,
                   stderr=subprocess.DEVNULL if quiet else None)
    return time.perf_counter() - start


def ensure_tools() -> None:
    """waitress lets pypiserver answer in parallel; watchdog lets it cache file hashes."""
    try:
        import waitress  # noqa: F401
        import watchdog  # noqa: F401
    except ImportError:
        subprocess.run([PY, "-m", "pip", "install", "-q", "waitress", "watchdog",
                        "pypiserver"], check=True)


def corpus() -> tuple[Path, Path]:
    """The compiled, hashed corpus lock and a folder holding its wheels for this host."""
    WORK.mkdir(exist_ok=True)
    lock = WORK / "corpus.txt"
    wheels = WORK / "wheels"
    if not lock.exists():
        print("compiling benchmarks/corpus.in with pip-tools (online, once)...")
        subprocess.run([PY, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
                        "--no-emit-index-url", "--no-emit-trusted-host", "--strip-extras",
                        "--output-file", str(lock), str(ROOT / "benchmarks" / "corpus.in")],
                       check=True)
    if not wheels.is_dir() or not any(wheels.iterdir()):
        print("fetching the corpus wheels (online, once)...")
        subprocess.run([PY, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--require-hashes", "-r", str(lock), "-d", str(wheels)], check=True)
    return local_lock(lock, wheels), wheels


def local_lock(lock: Path, wheels: Path) -> Path:
    """The lock with only the hashes the local index serves, as if it were complete.

    The compiled lock lists every platform's files; the bench index holds only this host's,
    and a hash no index lists would send every tool looking on every run.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from wheelfactory import sha256_of

    served = {sha256_of(w) for w in wheels.iterdir()}
    out = []
    for line in lock.read_text().splitlines():
        stripped = line.strip().rstrip("\\").strip()
        if stripped.startswith("--hash=sha256:") and stripped[14:] not in served:
            continue
        out.append(line)
    text = "\n".join(out) + "\n"
    # Drop continuation backslashes left dangling by removed hash lines.
    lines = text.splitlines()
    fixed = [ln.rstrip(" \\") if (i + 1 == len(lines) or not lines[i + 1].startswith("    --hash"))
             and ln.rstrip().endswith("\\") else ln for i, ln in enumerate(lines)]
    local = WORK / "corpus-local.txt"
    local.write_text("\n".join(fixed) + "\n")
    return local


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Index:
    """pypiserver on waitress over a folder, started for the bench and stopped after it."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [PY, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(self.port),
             "-a", ".", "-P", ".", "--disable-fallback", "--server", "auto",
             "--backend", "cached-dir", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pypiserver did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class DelayProxy:
    """Holds every response DELAY seconds, then streams it from the upstream (keep-alive)."""

    def __init__(self, upstream_port: int) -> None:
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                time.sleep(DELAY)
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream_port)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "range", "accept-encoding")}
                try:
                    conn.request("GET", self.path, headers=headers)
                    resp = conn.getresponse()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    local.conn = conn = http.client.HTTPConnection("127.0.0.1", upstream_port)
                    conn.request("GET", self.path, headers=headers)
                    resp = conn.getresponse()
                body_len = resp.getheader("Content-Length")
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                        self.send_header(k, v)
                if body_len is None:
                    data = resp.read()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.end_headers()
                while chunk := resp.read(256 * 1024):
                    self.wfile.write(chunk)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"

    def stop(self) -> None:
        self.httpd.shutdown()


def urls_for(lock: Path, wheels: Path, simple_url: str) -> list[str]:
    """The page and file URLs a downloader needs: what parallel curl fetches."""
    base = simple_url.rsplit("/simple/", 1)[0]
    names = set()
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line:
            names.add(line.split("==")[0].strip().lower())
    pages = [f"{simple_url}{n}/" for n in sorted(names)]
    files = [f"{base}/packages/{w.name}" for w in sorted(wheels.iterdir())]
    return pages + files


def curl_parallel(urls: list[str]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".curl", delete=False) as cfg:
        for u in urls:
            cfg.write(f'url = "{u}"\noutput = "/dev/null"\n')
    try:
        return run(["curl", "-sS", "--fail", "--parallel", "--parallel-max", "16",
                    "-K", cfg.name], env=isolated_env())
    finally:
        os.unlink(cfg.name)


def pip_download(lock: Path, index_url: str | None) -> float:
    with tempfile.TemporaryDirectory() as d:
        cmd = [PY, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "--no-cache-dir", "-r", str(lock), "-d", d]
        if index_url:
            cmd += ["--isolated", "--index-url", index_url]
            return run(cmd, env=isolated_env())
        return run(cmd)


def ours(lock: Path, index_url: str | None, cache: Path, out: Path) -> tuple[float, dict]:
    cmd = [PY, "-m", "wheelhouse_bundler", "bundle", str(lock), "-o", str(out),
           "--cache-dir", str(cache), "--json", "-q"]
    env = isolated_env() if index_url else None
    if index_url:
        cmd += ["--index-url", index_url]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def peak_rss_mb(cmd: list[str], env: dict[str, str]) -> float:
    """Peak RSS of a child process, via a wrapper whose only child it is."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage("
            "resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([PY, "-c", code, *cmd], env=env, check=True, capture_output=True,
                         text=True).stdout
    return int(out.split()[-1]) / 1024


def bench_memory(tmp: Path) -> float:
    sys.path.insert(0, str(ROOT / "tests"))
    from wheelfactory import build_wheel, sha256_of

    big_dir = WORK / "big"
    big = next(big_dir.glob("*.whl"), None) if big_dir.is_dir() else None
    if big is None:
        print("building a 1 GB wheel (once)...")
        big = build_wheel(big_dir, "bigwheel", "1.0", payload_size=1024 ** 3)
    lock = tmp / "big.txt"
    lock.write_text(f"bigwheel==1.0 --hash=sha256:{sha256_of(big)}\n")
    index = Index(big_dir)
    try:
        return peak_rss_mb([PY, "-m", "wheelhouse_bundler", "bundle", str(lock), "-o",
                            str(tmp / "big.tar"), "--cache-dir", str(tmp / "bigcache"),
                            "--index-url", index.url, "-q"], isolated_env())
    finally:
        index.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", action="store_true", help="also measure against your index")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    ensure_tools()
    lock, wheels = corpus()
    count = sum(1 for _ in wheels.iterdir())
    size = sum(w.stat().st_size for w in wheels.iterdir()) / 1e6
    rows: list[tuple[str, ...]] = []
    index = Index(wheels)
    proxy = DelayProxy(index.port)
    try:
        with tempfile.TemporaryDirectory(dir=WORK) as d:
            tmp = Path(d)
            for label, url in (("wan (40 ms)", proxy.url), ("loopback", index.url)):
                curl_urls = urls_for(lock, wheels, url)
                pip_s = pip_download(lock, url)
                curl_s = curl_parallel(curl_urls)
                cache = tmp / f"cache-{label.split()[0]}"
                wall, summary = ours(lock, url, cache, tmp / "cold.tar")
                fetch_s = summary["network_seconds"]
                rows.append((label, f"{fetch_s:.2f}", f"{wall:.2f}", f"{pip_s:.2f}",
                             f"{curl_s:.2f}", f"{pip_s / fetch_s:.1f}x",
                             f"{fetch_s / curl_s:.2f}x"))
                if label == "loopback":
                    warm, _ = ours(lock, url, cache, tmp / "warm.tar")
                    rows.append(("warm rebuild", "-", f"{warm:.2f}", "-", "-", "-", "-"))
            if args.live:
                pip_s = pip_download(lock, None)
                wall, summary = ours(lock, None, tmp / "cache-live", tmp / "live.tar")
                net_s = summary["network_seconds"]
                rows.append(("live", f"{net_s:.2f}", f"{wall:.2f}", f"{pip_s:.2f}", "-",
                             f"{pip_s / net_s:.1f}x", "-"))
            memory = None if args.skip_memory else bench_memory(tmp)
    finally:
        proxy.stop()
        index.stop()
    print(f"\ncorpus: {count} wheels, {size:.0f} MB; cores: {os.cpu_count()}; "
          f"jobs: 16; proxy delay {DELAY * 1000:.0f} ms per response")
    head = ("scenario", "ours pages+files s", "ours total s", "pip download s", "curl x16 s",
            "pip/ours", "ours/curl")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    if memory is not None:
        print(f"peak RSS fetching and bundling a 1 GB wheel: {memory:.0f} MB")
    print("goals: ours/curl <= 1.25 (wan, loopback); pip/ours >= 7 (wan), >= 15 (live); "
          "warm < 1 s; RSS < 150 MB")
    shutil.rmtree(WORK / "tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
