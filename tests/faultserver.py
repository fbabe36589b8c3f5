"""A small Simple API server on 127.0.0.1 whose faults the test scripts, request by request.

pypiserver answers honestly; this one can drop a connection mid-file, answer 500 or 429,
stall, or send other bytes, so the downloader's recovery is tested against real sockets.
It serves PEP 691 JSON when asked for it (pypiserver serves only HTML) and honours Range.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class Seen:
    path: str
    range: str | None
    accept: str
    content_type: str = ""
    at: float = field(default_factory=time.monotonic)  # when the request arrived


DECODE_ERROR_ALERT = bytes([21, 3, 3, 0, 2, 2, 50])  # TLS record: alert, fatal, decode_error


@dataclass
class FaultServer:
    """Serves the wheels in `root`; `faults[filename]` is a list of actions, one per request.

    Actions: "ok", "drop:N" (send N bytes then close), "500", "429:S" (Retry-After S),
    "stall:S" (sleep S seconds before answering), "wrong" (other bytes, same length).
    When a file's list runs out, it is served normally. A project's index page takes
    "stall:S" too, under the key "page:<project>".

    With `tls` (a server-side SSLContext) it speaks HTTPS instead, and `url` says so;
    the first `tls_alerts` connections then get a fatal TLS alert (decode_error) instead
    of a handshake, as a flaky middlebox sends now and then.
    """

    root: Path
    faults: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    seen: list[Seen] = field(default_factory=list)
    ranges: bool = True
    tls: ssl.SSLContext | None = None
    tls_alerts: int = 0

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients hanging up on a stalled or dropped answer is the point

            def get_request(self) -> tuple[socket.socket, object]:
                conn, addr = super().get_request()
                if server.tls is None:
                    return conn, addr
                if server.tls_alerts > 0:  # read the ClientHello, answer with an alert
                    server.tls_alerts -= 1
                    with conn:
                        conn.recv(4096)
                        conn.sendall(DECODE_ERROR_ALERT)
                    raise OSError("alert sent")  # socketserver drops this request
                # The handshake runs here, on the serving thread, one at a time.
                return server.tls.wrap_socket(conn, server_side=True), addr

        self._httpd = Quiet(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}/simple/"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def files_requested(self, name: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith("/" + name)]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        seen = Seen(h.path, h.headers.get("Range"), h.headers.get("Accept", ""))
        with self._lock:
            self.seen.append(seen)
        if h.path.startswith("/simple/"):
            self._page(h, h.path.split("/")[2], seen)
        elif h.path.startswith("/files/"):
            self._file(h, h.path.split("/", 2)[2])
        else:
            self._send(h, 404, b"not found")

    def _page(self, h: BaseHTTPRequestHandler, project: str, seen: Seen) -> None:
        with self._lock:
            queued = self.faults[f"page:{project}"]
            action = queued.pop(0) if queued else "ok"
        if action.startswith("stall:"):
            time.sleep(float(action.partition(":")[2]))
        files = sorted(p for p in self.root.glob("*.whl")
                       if p.name.split("-")[0].replace("_", "-").lower() == project)
        if not files:
            self._send(h, 404, b"no such project")
            return
        entries = [(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]
        if JSON_TYPE in seen.accept:
            body = json.dumps({"meta": {"api-version": "1.0"}, "name": project, "files": [
                {"filename": n, "url": f"../../files/{n}", "hashes": {"sha256": d}}
                for n, d in entries]}).encode()
            seen.content_type = JSON_TYPE
        else:
            body = "".join(f'<a href="/files/{n}#sha256={d}">{n}</a>\n'
                           for n, d in entries).encode()
            seen.content_type = "text/html"
        self._send(h, 200, body, seen.content_type)

    def _file(self, h: BaseHTTPRequestHandler, name: str) -> None:
        path = self.root / name
        if not path.is_file():
            self._send(h, 404, b"no such file")
            return
        with self._lock:
            action = self.faults[name].pop(0) if self.faults[name] else "ok"
        data = path.read_bytes()
        kind, _, arg = action.partition(":")
        if kind == "500":
            self._send(h, 500, b"boom")
            return
        if kind == "429":
            self._send(h, 429, b"slow down", headers={"Retry-After": arg})
            return
        if kind == "stall":
            time.sleep(float(arg))
        if kind == "wrong":
            data = bytes(b ^ 0xFF for b in data)
        start = 0
        rng = h.headers.get("Range")
        if rng and self.ranges and rng.startswith("bytes=") and kind != "wrong":
            start = int(rng[6:].split("-")[0])
        body = data[start:]
        h.send_response(206 if start else 200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        if self.ranges:
            h.send_header("Accept-Ranges", "bytes")
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if kind == "drop":
            h.wfile.write(body[: int(arg)])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.wfile.write(body)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, body: bytes,
              ctype: str = "text/plain", headers: dict[str, str] | None = None) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
