"""A real pypiserver (2.4.2) on 127.0.0.1, run as a subprocess, for end-to-end tests.

What pypiserver 2.4.2 does, checked by hand and pinned in tests/test_infra.py:

* Simple API: PEP 503 HTML only. An `Accept: application/vnd.pypi.simple.v1+json` request
  still gets `text/html`, so clients must fall back to HTML. (It also has a legacy,
  PyPI-JSON-like `/<project>/json` route with only versions and URLs; that is not PEP 691.)
* Links are root-relative (`/packages/<file>#sha256=<hex>`) and carry a `#sha256=` fragment
  (`--hash-algo`, default sha256; `hash_algo=None` here turns it off). Files in subfolders
  of the root are served as `/packages/<sub>/<file>`.
* `/simple/<name>/` with a non-normalised name answers 301 to the normalised one; an unknown
  project answers 404 (with `--disable-fallback`; without it, a redirect to PyPI).
* Live refresh: yes. With the `simple-dir` backend (forced here; `auto` would pick the
  watchdog-based `cached-dir` if watchdog were installed) every request re-lists the folder
  and re-hashes every file of the project, so files added, replaced or removed while the
  server runs are seen at once. The price: each index page hashes every listed file, so
  huge payload wheels make listings slow (use hash_algo=None for those).
* Files whose name (or any folder) starts with "." are never listed: add() copies to a
  hidden name and renames, so the server never sees a half-written file.
* Server: bottle on wsgiref (`--server wsgiref`: `auto` would pick waitress, which the dev
  extras bring in with devpi-server), single-threaded, HTTP/1.0 responses (no keep-alive),
  so concurrent downloads are served one after another.
* Auth: with `-a download,list,update -P htpasswd`, no credentials -> 401 with
  `WWW-Authenticate: Basic realm="pypi"`; wrong credentials -> 403. `/health` is never
  protected. `protect="update"` guards uploads only (`-a update`), as a team index that
  anyone may install from but only CI may fill.
* Uploads: `POST /` with twine's form; a file name already there answers 409 (no
  `--overwrite`).
* Request log: with `-v`, pypiserver logs each request at INFO. The format is ours via
  `--log-req-frmt` (a %-format over the WSGI environ), written *before* the request is
  handled, so a request's line is in the log by the time the client has its answer. The
  wsgiref access line (`127.0.0.1 - - [date] "GET /path HTTP/1.1" 200 615`) comes *after*
  the response is sent, so it can lag behind the client; requests() does not use it.
  Lines here look like `WHB-REQUEST GET /simple/foo-bar/`.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

from venvs import clean_env

__all__ = ["HEALTH_PATH", "REQUEST_MARK", "IndexServer"]

REQUEST_MARK = "WHB-REQUEST"
HEALTH_PATH = "/health"
_START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class IndexServer:
    """pypiserver serving `root` on a free 127.0.0.1 port; optional htpasswd basic auth.

    `auth=(user, password)` protects downloads, listings and uploads (`protect` names
    which: pypiserver's `-a` list). The log (stdout and
    stderr) goes to a file, not a pipe, so a chatty server can never block on a full pipe;
    it lives in `log_dir` (a fresh temp dir, removed at stop(), if not given).
    """

    def __init__(self, root: Path, auth: tuple[str, str] | None = None, *,
                 log_dir: Path | None = None, hash_algo: str | None = "sha256",
                 python: str = sys.executable, protect: str = "download,list,update"
                 ) -> None:
        self.root = Path(root)
        self.auth = auth
        self.protect = protect
        self.hash_algo = hash_algo
        self.python = python
        self.port: int | None = None
        self._given_log_dir = Path(log_dir) if log_dir is not None else None
        self._log_dir: Path | None = None
        self._log_handle: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # requests() ignores the log before this byte offset
        self._final_log: bytes | None = None  # the log, kept once a temp log dir is removed

    # ---- addresses

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/`."""
        if self.port is None:
            raise RuntimeError("IndexServer is not started")
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """The simple index: `http://127.0.0.1:PORT/simple/`."""
        return self.base_url + "simple/"

    @property
    def url_with_auth(self) -> str:
        """The simple index with `user:password@` in it (what pip accepts); url if no auth."""
        if self.auth is None:
            return self.url
        user, password = (quote(part, safe="") for part in self.auth)
        return self.url.replace("http://", f"http://{user}:{password}@", 1)

    def file_url(self, filename: str) -> str:
        """Where the server serves a file from its root."""
        return f"{self.base_url}packages/{filename}"

    @property
    def log_path(self) -> Path:
        if self._log_dir is None:
            raise RuntimeError("IndexServer was never started")
        return self._log_dir / "pypiserver.log"

    # ---- content

    def add(self, path: Path) -> Path:
        """Copy a file into the root; it appears atomically (hidden name, then rename)."""
        path = Path(path)
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / path.name
        hidden = self.root / f".{path.name}.part"
        shutil.copyfile(path, hidden)
        os.replace(hidden, target)
        return target

    # ---- lifecycle

    def _command(self, port: int) -> list[str]:
        cmd = [self.python, "-m", "pypiserver", "run", "-v",
               "-i", "127.0.0.1", "-p", str(port), "--disable-fallback",
               "--server", "wsgiref",
               "--backend", "simple-dir",
               "--hash-algo", self.hash_algo or "off",
               "--log-frmt", "%(message)s",
               "--log-req-frmt", f"{REQUEST_MARK} %(REQUEST_METHOD)s %(PATH_INFO)s",
               "--health-endpoint", HEALTH_PATH]
        if self.auth is None:
            cmd += ["-a", ".", "-P", "."]
        else:
            cmd += ["-a", self.protect, "-P", str(self._write_htpasswd())]
        return [*cmd, str(self.root)]

    def _write_htpasswd(self) -> Path:
        assert self.auth is not None and self._log_dir is not None
        path = self._log_dir / "htpasswd"
        with warnings.catch_warnings():  # passlib 1.7.4 imports the deprecated `crypt`
            warnings.simplefilter("ignore", DeprecationWarning)
            from passlib.apache import HtpasswdFile  # only auth servers need passlib

            htpasswd = HtpasswdFile(str(path), new=True)
            htpasswd.set_password(*self.auth)
            htpasswd.save()
        return path

    def start(self) -> Self:
        """Start the server and wait until it answers; raise with its log if it cannot."""
        if self._proc is not None:
            raise RuntimeError("IndexServer is already running")
        self.root.mkdir(parents=True, exist_ok=True)
        if self._given_log_dir is not None:
            self._given_log_dir.mkdir(parents=True, exist_ok=True)
            self._log_dir = self._given_log_dir
        else:
            self._log_dir = Path(tempfile.mkdtemp(prefix="indexserver-"))
        self._final_log = None
        try:
            for _ in range(3):  # another process may take the free port before the server does
                if self._launch(_free_port()):
                    return self
                if "Address already in use" not in self.log_text():
                    break
            problem = "pypiserver exited during start-up"
        except TimeoutError:
            problem = f"pypiserver did not answer within {_START_TIMEOUT:.0f} s"
        log = self.log_text()
        self.stop()
        raise RuntimeError(f"{problem}; its log:\n{log}")

    def _launch(self, port: int) -> bool:
        """Start one process on `port`: True once healthy, False if it died."""
        self._log_handle = open(self.log_path, "wb")  # noqa: SIM115 - closed in _reap()
        env = clean_env(PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
        self._proc = subprocess.Popen(self._command(port), stdin=subprocess.DEVNULL,
                                      stdout=self._log_handle, stderr=subprocess.STDOUT,
                                      cwd=self._log_dir, env=env)
        self.port = port
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._reap()
                return False
            if self._healthy(port):
                self.reset_requests()
                return True
            time.sleep(0.05)
        self._reap()
        raise TimeoutError

    @staticmethod
    def _healthy(port: int) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", HEALTH_PATH)
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def _reap(self) -> None:
        """Terminate (then kill) the process and close the log; keeps the log file."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def stop(self) -> None:
        """Stop the server. Safe to call twice. requests() and log_text() still work after."""
        self._reap()
        if self._given_log_dir is None and self._log_dir is not None:
            self._final_log = self._log_bytes()
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- the log

    def _log_bytes(self) -> bytes:
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_bytes()
        except (FileNotFoundError, RuntimeError):
            return b""

    def log_text(self) -> str:
        """Everything the server has written so far (stdout and stderr)."""
        return self._log_bytes().decode("utf-8", "replace")

    def reset_requests(self) -> None:
        """Forget the requests seen so far: requests() then counts from here."""
        self._log_offset = len(self._log_bytes())

    def requests(self, method: str | None = None) -> list[str]:
        """Paths requested since start (or reset_requests()), in order; health probes left out.

        Paths are as the server saw them: `/simple/foo-bar/`, `/packages/foo_bar-1.0-...whl`,
        no query string. `method="GET"` keeps only that method.
        """
        text = self._log_bytes()[self._log_offset:].decode("utf-8", "replace")
        seen = []
        for line in text.splitlines():
            parts = line.split(" ", 2)
            if len(parts) != 3 or parts[0] != REQUEST_MARK or parts[2] == HEALTH_PATH:
                continue
            if method is None or parts[1] == method:
                seen.append(parts[2])
        return seen

    def __repr__(self) -> str:
        state = f"port {self.port}" if self.running else "stopped"
        return f"IndexServer({str(self.root)!r}, auth={self.auth is not None}, {state})"
