"""DNS answers shared per host and asked again when slow (wheelhouse_bundler/resolver.py).

The lost query itself is made here by standing in for the system resolver
(socket.getaddrinfo) with one whose first answer never comes in time; the connections
are real, to a real server on 127.0.0.1, by the name "localhost".
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpcore
import pytest
from faultserver import FaultServer

from wheelhouse_bundler import resolver
from wheelhouse_bundler.net import make_client
from wheelhouse_bundler.parallel import run_all
from wheelhouse_bundler.resolver import Lookups, backend, lookup

REAL = socket.getaddrinfo


class Resolver:
    """socket.getaddrinfo as the test scripts it; counts the questions per host."""

    def __init__(self, first_lost: bool = False) -> None:
        self.asked: list[str] = []
        self.first_lost = first_lost
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, host: str, port: object, *args: object) -> list:
        with self._lock:
            self.asked.append(host)
            first = len(self.asked) == 1
        if self.first_lost and first:
            self.release.wait(30)  # a query lost on the way: the answer waits for the retry
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 9))]
        return REAL(host, port, *args)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[Resolver]:
    fake = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield fake
    fake.release.set()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FaultServer]:
    (tmp_path / "demo-1.0-py3-none-any.whl").write_bytes(b"x" * 1000)
    with FaultServer(tmp_path) as served:
        yield served


def test_a_slow_answer_is_asked_again_and_the_first_answer_wins(dns: Resolver) -> None:
    dns.first_lost = True
    got = lookup("localhost", 80, timeout=20)
    assert [info[4][0] for info in got] != ["127.0.0.2"]  # the second question's answer
    assert dns.asked == ["localhost", "localhost"]


def test_a_name_that_does_not_exist_fails_without_more_questions(dns: Resolver) -> None:
    with pytest.raises(socket.gaierror):
        lookup("no-such-host.invalid", 80, timeout=20)
    assert dns.asked == ["no-such-host.invalid"]


def test_no_answer_within_the_timeout(dns: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolver, "HEDGE", 0.05)
    monkeypatch.setattr(resolver, "MAX_ASKS", 1)
    dns.first_lost = True
    with pytest.raises(TimeoutError, match="no DNS answer for localhost"):
        lookup("localhost", 80, timeout=0.2)


def test_sixteen_transfers_ask_once_per_host(dns: Resolver, server: FaultServer) -> None:
    url = server.url.replace("127.0.0.1", "localhost") + "demo/"
    with make_client(jobs=16) as client:

        def get(_: int) -> int:
            return client.get(url, headers={"Connection": "close"}).status_code

        assert run_all(get, list(range(32)), 16) == [200] * 32
    assert dns.asked.count("localhost") == 1


def test_an_answer_that_does_not_connect_is_forgotten(dns: Resolver) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lookups = Lookups()
    with pytest.raises(httpcore.ConnectError):
        backend(lookups).connect_tcp("localhost", port, timeout=5)
    assert not lookups.known("localhost", port)
    with pytest.raises(httpcore.ConnectError):
        backend(lookups).connect_tcp("localhost", port, timeout=5)
    assert dns.asked.count("localhost") == 2  # asked afresh on the retry


def test_a_proxy_from_the_environment_is_still_used_and_asked_for_once(
        dns: Resolver, server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_proxy import ForwardProxy

    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url().replace("127.0.0.1", "localhost"))
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        with make_client(jobs=16) as client:
            gate = threading.Barrier(16)

            def get(_: int) -> int:
                gate.wait(10)  # sixteen requests at once: sixteen connections to the proxy
                return client.get(server.url + "demo/").status_code

            assert run_all(get, list(range(16)), 16) == [200] * 16
        assert len(proxy.targets) == 16
    assert dns.asked.count("localhost") == 1
