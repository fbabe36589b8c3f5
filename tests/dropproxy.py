"""A TCP proxy on 127.0.0.1 that breaks uploads, in front of a real index.

faultserver.py fakes an index to break downloads; an upload needs the real server
behind (its answers, its storage), so this one forwards bytes to it and only breaks the
first `drops` POST requests, as a proxy or a flaky link would:

* `mode="cut"`: it reads `after` bytes of the body, then resets the connection; nothing
  reaches the server.
* `mode="lose-answer"`: the whole request reaches the server (which stores the file),
  and the connection is reset instead of the answer coming back.

GET requests under a `hide` prefix get a 404, as from a server without that page.
Meant for pypiserver, which closes every connection after one answer, so each request
arrives on a connection of its own and is seen here.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass, field


@dataclass
class DropProxy:
    upstream_port: int
    drops: int = 1
    after: int = 64 * 1024
    mode: str = "cut"
    hide: tuple[str, ...] = ()
    seen: list[tuple[str, bool]] = field(default_factory=list)  # (request line, dropped)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/"

    def posts(self) -> list[tuple[str, bool]]:
        with self._lock:
            return [s for s in self.seen if s[0].startswith("POST ")]

    def __enter__(self) -> DropProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._sock.close()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            buffered = b""
            while b"\r\n\r\n" not in buffered:
                data = conn.recv(65536)
                if not data:
                    return
                buffered += data
            line = buffered.split(b"\r\n", 1)[0].decode("latin-1")
            with self._lock:
                drop = line.startswith("POST ") and self.drops > 0
                if drop:
                    self.drops -= 1
                self.seen.append((line, drop))
            method, path = ([*line.split(" "), "", ""])[:2]
            if method == "GET" and path.startswith(self.hide):
                conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            if drop and self.mode == "cut":
                self._cut(conn, len(buffered) - buffered.index(b"\r\n\r\n") - 4)
                return
            with socket.create_connection(("127.0.0.1", self.upstream_port)) as up:
                up.sendall(buffered)
                if drop:  # lose-answer: the request goes through, the answer does not
                    _pump(conn, up, until_answer=up)
                    _reset(conn)
                    return
                back = threading.Thread(target=_pump, args=(up, conn), daemon=True)
                back.start()
                _pump(conn, up)
                back.join(timeout=60)

    def _cut(self, conn: socket.socket, body_read: int) -> None:
        while body_read < self.after:
            data = conn.recv(65536)
            if not data:
                return
            body_read += len(data)
        _reset(conn)


def _reset(conn: socket.socket) -> None:
    """SO_LINGER 0: the close sends a reset, not an orderly end; the client sees its
    connection broken in the middle of a request."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _pump(src: socket.socket, dst: socket.socket,
          until_answer: socket.socket | None = None) -> None:
    """Copy src to dst until src ends, or (with `until_answer`) until that socket has
    an answer ready: the request is then wholly sent."""
    try:
        while True:
            if until_answer is not None:
                ready, _, _ = select.select([src, until_answer], [], [], 30)
                if until_answer in ready:
                    return
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        if until_answer is None:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
