"""One DNS answer per host per run, asked again at once when it is slow to come.

Sixteen connections opened at once each asked the system resolver for the same host.
This project's build machine resolves through a server that, given sixteen questions at
once, leaves one unanswered more often than not (in a fresh process, 6 bursts of 10
waited 5 s), so that connection sat out glibc's 5 s retry and the run waited for its
file. The whole `download` command has not shown it (its connections open a few
milliseconds apart, spaced by the work between them), but a transfer-only script that
opens them as fast as curl does waited 5 s in 4 runs of 12. curl's parallel mode shares
one answer per host, and so does a client made here: the first connection to a host
asks, the others wait for its answer, and a question not answered within HEDGE seconds
is asked again beside the first (the first answer wins), so a lost packet costs half a
second, not five. Answers live as long as the client (one run); an answer none of whose
addresses connects is forgotten, so a retry asks afresh.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpcore
    import httpx

HEDGE = 0.5
MAX_ASKS = 4

AddrInfo = tuple[Any, ...]


def lookup(host: str, port: int, timeout: float | None = None) -> list[AddrInfo]:
    """`socket.getaddrinfo(host, port, 0, SOCK_STREAM)`, asked again every HEDGE
    seconds while no answer has come (at most MAX_ASKS at once); the first answer wins.

    A failure is final once every question asked has failed: a name that does not
    exist fails at once on every question, so a second one would only repeat it.
    """
    answers: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

    def ask() -> None:
        try:
            answers.put((True, socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)))
        except OSError as exc:
            answers.put((False, exc))

    deadline = None if timeout is None else time.monotonic() + timeout
    asked = failed = 0
    while True:
        if failed == 0 and asked < MAX_ASKS:
            threading.Thread(target=ask, daemon=True, name="wheelhouse-dns").start()
            asked += 1
        wait = HEDGE if failed == 0 and asked < MAX_ASKS else None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no DNS answer for {host} within {timeout:g} s")
            wait = left if wait is None else min(wait, left)
        try:
            ok, value = answers.get(timeout=wait)
        except queue.Empty:
            continue
        if ok:
            return list(value)
        failed += 1
        if failed == asked:
            raise value


class Lookups:
    """The answers of one run, each asked for once however many connections want it."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, int], list[AddrInfo]] = {}
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def addresses(self, host: str, port: int, timeout: float | None) -> list[AddrInfo]:
        key = (host, port)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._answers:
                self._answers[key] = lookup(host, port, timeout)
            return self._answers[key]

    def forget(self, host: str, port: int) -> None:
        self._answers.pop((host, port), None)

    def known(self, host: str, port: int) -> bool:
        return (host, port) in self._answers


def backend(lookups: Lookups) -> httpcore.NetworkBackend:
    """httpcore's blocking backend, connecting to the addresses `lookups` gives.

    TLS still names and checks the host itself: httpcore passes the origin's host name
    to the handshake, not the address connected to.
    """
    import httpcore

    class SharedLookups(httpcore.SyncBackend):
        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None,
                        socket_options: Any = None) -> httpcore.NetworkStream:
            try:
                infos = lookups.addresses(host, port, timeout)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(str(exc)) from exc
            except OSError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
            last: Exception | None = None
            for *_, sockaddr in infos:
                try:
                    return super().connect_tcp(sockaddr[0], port, timeout, local_address,
                                               socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            lookups.forget(host, port)
            assert last is not None  # getaddrinfo answers with one address or more
            raise last

    return SharedLookups()


def share_lookups(client: httpx.Client, lookups: Lookups) -> int:
    """Make the client's connection pools (direct, and to each proxy the environment
    names) resolve through `lookups`; how many it changed.

    httpx takes no network backend for the transports it makes from the environment,
    and one it is given stops it from reading proxies there; so this sets the backend
    that each transport's httpcore pool keeps (`_network_backend`). A release that keeps
    them elsewhere changes nothing (0), and tests/test_resolver.py fails to say so.
    """
    transports = [getattr(client, "_transport", None),
                  *getattr(client, "_mounts", {}).values()]
    changed = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = backend(lookups)
            changed += 1
    return changed
