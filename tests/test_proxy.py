"""The downloader through a real forward proxy on 127.0.0.1, chosen by the usual env variables.

Behind a corporate proxy, HTTP_PROXY (or http_proxy) is the only way out, NO_PROXY names the
hosts to reach directly, and the proxy often wants credentials in its URL. The client reads
all of that from the environment (httpx with trust_env=True), so nothing in the tool's own
code says so; these tests pin it down end to end: every index page and every wheel goes
through the proxy, NO_PROXY is honoured, the proxy's password never lands in output, manifest
or cache, and a proxy that is down gives one clean line and exit 4, not a traceback.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import os
import socket
import tarfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from clirun import run_cli
from faultserver import FaultServer
from locktext import Pin, poetry_lock, pyproject

from wheelhouse_bundler.cli import main

PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
              "all_proxy", "NO_PROXY", "no_proxy")
USER, PASSWORD = "user", "s3cret-proxy-pw"
PROXY_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
# Hop-by-hop headers belong to one connection; a proxy neither forwards nor relays them.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
                        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"})


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        given = self.headers.get("Proxy-Authorization")
        self.server.record(self.path, given)
        if self.server.auth is not None and given != self.server.auth:
            self._answer(407, [("Proxy-Authenticate", 'Basic realm="test"')], b"")
            return
        url = urlsplit(self.path)  # absolute form: http://127.0.0.1:PORT/simple/x/
        ask = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        origin = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        try:
            origin.request("GET", url.path + (f"?{url.query}" if url.query else ""),
                           headers=ask)
            reply = origin.getresponse()
            body = reply.read()
        finally:
            origin.close()
        self._answer(reply.status, [(k, v) for k, v in reply.getheaders()
                                    if k.lower() not in HOP_BY_HOP | {"content-length"}], body)

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ForwardProxy(http.server.ThreadingHTTPServer):
    """A plain-HTTP forward proxy that records each absolute-form target it is asked for.

    With `auth` (a whole Proxy-Authorization value) it answers 407 to any request without it.
    """

    daemon_threads = True
    request_queue_size = 64  # the tool opens up to 16 connections at once

    def __init__(self, auth: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.auth = auth
        self.targets: list[str] = []
        self.auth_seen: list[str | None] = []
        self._lock = threading.Lock()

    def record(self, target: str, auth: str | None) -> None:
        with self._lock:
            self.targets.append(target)
            self.auth_seen.append(auth)

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> ForwardProxy:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()



def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def project(tmp_path: Path, wheel_factory, clean_environ, monkeypatch: pytest.MonkeyPatch):
    """A three-package Poetry lock and a FaultServer index serving its wheels; no proxy set."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    wheels = [wheel_factory("alpha", "1.0"), wheel_factory("beta", "2.0"),
              wheel_factory("gamma", "3.0", payload_size=256 * 1024)]
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock(
        [Pin(w.name.split("-")[0], w.name.split("-")[1], [w]) for w in wheels]))
    with FaultServer(wheels[0].parent) as server:
        yield server, root, wheels


def bundle(root: Path, server: FaultServer, tmp_path: Path, *extra: object) -> int:
    return cli("bundle", root, "-o", tmp_path / "app.tar", "--index-url", server.url,
               "--cache-dir", tmp_path / "cache", *extra)


def wanted(server: FaultServer, wheels: list[Path]) -> set[str]:
    """The absolute URLs of every index page and wheel file the lock needs, and uv's page
    (bundles carry uv by default; this index has none)."""
    origin = server.url.removesuffix("/simple/")
    return ({f"{server.url}{w.name.split('-')[0]}/" for w in wheels}
            | {f"{origin}/files/{w.name}" for w in wheels} | {f"{server.url}uv/"})


def test_http_proxy_carries_every_page_and_file(project, tmp_path, monkeypatch) -> None:
    server, root, wheels = project
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        assert bundle(root, server, tmp_path, "-q") == 0
    assert set(proxy.targets) == wanted(server, wheels)
    assert len(server.seen) == len(proxy.targets)  # nothing went around the proxy
    assert cli("verify", tmp_path / "app.tar") == 0


@pytest.mark.parametrize("spelling", ["NO_PROXY", "no_proxy"])
def test_no_proxy_exception_goes_direct(spelling, project, tmp_path, monkeypatch) -> None:
    server, root, wheels = project
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv(spelling, "127.0.0.1")
        assert bundle(root, server, tmp_path, "-q") == 0
    assert proxy.targets == []
    assert {s.path for s in server.seen} >= {urlsplit(u).path for u in wanted(server, wheels)}
    assert cli("verify", tmp_path / "app.tar") == 0


def test_proxy_credentials_are_sent_and_never_kept(project, tmp_path, monkeypatch,
                                                   capsys) -> None:
    server, root, wheels = project
    with ForwardProxy(auth=PROXY_AUTH) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url(f"{USER}:{PASSWORD}@"))
        assert bundle(root, server, tmp_path) == 0  # not -q: let it print what it prints
    out, err = capsys.readouterr()
    assert set(proxy.targets) == wanted(server, wheels)
    assert proxy.auth_seen == [PROXY_AUTH] * len(proxy.targets)  # so no 407 was answered
    assert PASSWORD not in out and PASSWORD not in err
    with tarfile.open(tmp_path / "app.tar") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("manifest.json"))
        manifest = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert PASSWORD.encode() not in manifest
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(cached) >= len(wheels)  # the walk below looks at something
    leaks = [p for p in cached if PASSWORD.encode() in p.read_bytes()]
    assert leaks == []


def test_wrong_proxy_password_names_the_proxy_not_the_index(project, tmp_path, monkeypatch,
                                                            capsys) -> None:
    server, root, _ = project
    with ForwardProxy(auth=PROXY_AUTH) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url(f"{USER}:not-{PASSWORD}@"))
        assert bundle(root, server, tmp_path, "-q") == 4
        port = proxy.server_address[1]
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "407" in err
    assert f"from the proxy http://***@127.0.0.1:{port}" in err and "HTTP_PROXY" in err
    assert PASSWORD not in err
    assert server.seen == []
    assert not (tmp_path / "app.tar").exists()


def test_dead_proxy_is_one_clean_line_and_exit_4(project, tmp_path, monkeypatch) -> None:
    server, root, _ = project
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://{USER}:{PASSWORD}@127.0.0.1:{dead}")
    started = time.monotonic()
    done = run_cli("bundle", root, "-o", tmp_path / "app.tar", "--index-url", server.url,
                   "--cache-dir", tmp_path / "cache", "--timeout", "2", "-q",
                   env=dict(os.environ))
    took = time.monotonic() - started
    assert done.returncode == 4, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wheelhouse-bundler: network error: ")
    assert f"through proxy http://***@127.0.0.1:{dead}" in lines[0]  # not the index's fault
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert not (tmp_path / "app.tar").exists()
    assert server.seen == []  # it did not go around the dead proxy either
    assert took < 15
