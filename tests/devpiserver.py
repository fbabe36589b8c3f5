"""A real devpi-server on 127.0.0.1, for the publish tests: the other index layout.

What devpi-server (6.x) does, as the publish tests rely on it:

* Uploads go to `<root>/<user>/<index>/` (twine's form, basic auth with the user's
  password); its Simple API is at `<root>/<user>/<index>/+simple/<project>/`, links with
  `#sha256=` fragments. Every answer carries `X-Devpi-*` headers.
* Users and indexes are made over its JSON API: `PUT /<user>` with a password (open to
  anyone by default), `PUT /<user>/<index>` as that user.
* `devpi-init --no-root-pypi` makes no mirror of PyPI, and `--offline-mode` keeps the
  server off the network: nothing here can reach outside the machine.
* Start-up takes some seconds (pyramid, waitress): start one per test module and make a
  fresh index per test.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from venvs import clean_env

_START_TIMEOUT = 90.0


def devpi_available() -> bool:
    return all(_script(name).exists() for name in ("devpi-init", "devpi-server"))


def _script(name: str) -> Path:
    return Path(sys.executable).with_name(name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevpiServer:
    """devpi-server over a fresh `serverdir`; log in `serverdir/../devpi.log`."""

    def __init__(self, serverdir: Path) -> None:
        self.serverdir = Path(serverdir)
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log_path(self) -> Path:
        return self.serverdir.with_name(self.serverdir.name + ".log")

    def start(self) -> Self:
        env = clean_env(PYTHONWARNINGS="ignore")
        init = subprocess.run([str(_script("devpi-init")), "--serverdir", str(self.serverdir),
                               "--no-root-pypi", "--root-passwd", "root-pw"],
                              capture_output=True, text=True, env=env, check=False)
        if init.returncode != 0:
            raise RuntimeError(f"devpi-init failed:\n{init.stdout}\n{init.stderr}")
        self.port = _free_port()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [str(_script("devpi-server")), "--serverdir", str(self.serverdir),
             "--host", "127.0.0.1", "--port", str(self.port), "--offline-mode"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                self._request("GET", "")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"devpi-server did not start; its log:\n{self.log_text()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self.serverdir, ignore_errors=True)

    # ---- its JSON API

    def _request(self, method: str, path: str, doc: dict | None = None,
                 auth: tuple[str, str] | None = None) -> dict:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        data = json.dumps(doc).encode() if doc is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers,
                                         method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    def make_index(self, user: str, password: str, index: str) -> str:
        """A user (made once) with a non-volatile index (no overwrites): its upload URL."""
        try:
            self._request("PUT", user, {"password": password,
                                        "email": f"{user}@example.invalid"})
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # the user exists: made by an earlier test
                raise
        self._request("PUT", f"{user}/{index}", {"bases": [], "volatile": False},
                      auth=(user, password))
        return f"{self.base_url}{user}/{index}/"

    def listed(self, user: str, index: str, project: str) -> list[str]:
        """The file names its Simple page lists for a project ([] when it has none)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.base_url}{user}/{index}/+simple/{project}/",
                             timeout=30) as answer:
                page = answer.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        return sorted(part.split("</a>")[0].rsplit(">", 1)[-1]
                      for part in page.split("<a ")[1:])
