"""One HTTP policy for index pages and files: auth per source, retries, clear errors.

httpx does the transfer; this module decides what to retry (connection faults, timeouts,
5xx, 429 with Retry-After; not a refused certificate), which credentials a request may carry
(its source's, on its source's host only) and how a failure reads: the URL redacted, the
source named, and the proxy when the environment routes the request through one.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import tls
from .errors import NetworkError
from .model import Source
from .sources import credentials_for, redact

if TYPE_CHECKING:  # httpx costs a tenth of a second to import: only when the network is used
    import httpx


RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 4
USER_AGENT = "wheelhouse-bundler"


def make_client(jobs: int = 16, cert: str | None = None, client_cert: str | None = None,
                timeout: float = 30.0) -> httpx.Client:
    """A pooled client sized for `jobs` parallel transfers; proxies and CA from the env.

    `cert` is a CA bundle and `client_cert` a PEM holding the client certificate and its
    key, as pip's --client-cert takes it; tls.py decides what is trusted without them.
    """
    import httpx

    return httpx.Client(
        http2=False,
        verify=tls.context(cert, client_cert),
        trust_env=True,
        follow_redirects=True,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        limits=httpx.Limits(max_connections=jobs, max_keepalive_connections=jobs),
        headers={"User-Agent": USER_AGENT},
    )


class LazyClient:
    """The pooled client, made on first use: a warm or offline build never opens it."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        with self._lock:  # sixteen workers start at once; they must share one pool
            if self._client is None:
                self._client = make_client(**self._options)
            return self._client

    def __enter__(self) -> LazyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()


def _auth(source: Source | None, url: str) -> httpx.BasicAuth | None:
    import httpx

    if source is None:
        return None
    creds = credentials_for(source, url)
    return httpx.BasicAuth(*creds) if creds else None


def _delay(attempt: int, response: httpx.Response | None) -> float:
    if response is not None and (after := response.headers.get("Retry-After")):
        try:
            return min(float(after), 30.0)
        except ValueError:
            pass
    return min(0.25 * 2 ** attempt, 4.0) * (0.5 + random.random())


def check_status(response: httpx.Response, source: Source | None, what: str) -> None:
    """Turn a final non-2xx answer into a NetworkError that names source, not secret."""
    if response.is_success:
        return
    where = f"source {source.name!r} ({redact(source.url)})" if source else "the server"
    code = response.status_code
    if code == 407:
        proxy = proxy_for(str(response.url)) or "on the way"
        raise NetworkError(f"{what}: 407 {response.reason_phrase} from the proxy {proxy}; "
                           "check the credentials in its URL (HTTP_PROXY / HTTPS_PROXY)")
    if code in (401, 403):
        raise NetworkError(f"{what}: {code} {response.reason_phrase} from {where}; "
                           "check the credentials configured for it")
    raise NetworkError(f"{what}: HTTP {code} {response.reason_phrase} from "
                       f"{redact(str(response.url))}")


@contextmanager
def stream(client: LazyClient | httpx.Client, url: str, source: Source | None,
           headers: dict[str, str] | None = None, *, method: str = "GET",
           body: Callable[[], Iterable[bytes]] | None = None) -> Iterator[httpx.Response]:
    """GET with retries until a response that is not worth retrying; yields it open.

    The caller reads the body; faults while reading are the caller's to retry because
    only it knows how much it already has. Another `method` sends `body()`, a fresh
    iterator per attempt (an upload streamed from its file, started over after a dropped
    connection); such a request follows no redirect, since one would turn a POST into a
    GET that drops the body.
    """
    import httpx

    last: Exception | None = None
    for attempt in range(ATTEMPTS):
        response: httpx.Response | None = None
        try:
            http = client.get() if isinstance(client, LazyClient) else client
            try:
                request = http.build_request(method, url, headers=headers,
                                             content=body() if body is not None else None)
            except (httpx.InvalidURL, ValueError):
                # User input is checked before (sources.check_url); this is a URL that
                # an index page or a redirect gave, not worth a retry or a traceback.
                raise NetworkError(f"{redact(url)!r}: not a valid URL (from "
                                   f"{f'source {source.name!r}' if source else 'the lock'})"
                                   ) from None
            response = http.send(request, stream=True, auth=_auth(source, url),
                                 follow_redirects=method == "GET")
        except httpx.TransportError as exc:
            if _certificate_refused(exc):  # a certificate does not change on a retry
                raise NetworkError(f"{redact(url)}: {describe(exc)}") from exc
            last = exc
        else:
            if response.status_code not in RETRY_STATUS or attempt == ATTEMPTS - 1:
                try:
                    yield response
                finally:
                    response.close()
                return
            response.close()
        if attempt < ATTEMPTS - 1:
            time.sleep(_delay(attempt, response))
    proxy = proxy_for(url)
    via = f" through proxy {proxy}" if proxy else ""
    raise NetworkError(f"{redact(url)}: {describe(last)}{via} (after {ATTEMPTS} attempts)")


def proxy_for(url: str) -> str | None:
    """The (redacted) proxy the environment routes `url` through, as httpx trusting the
    environment does; named in errors so a dead proxy is not taken for a dead index."""
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxies = getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return redact(proxy)


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a transport error, if that is what it was (httpx wraps it)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _wants_client_cert(err: ssl.SSLError) -> bool:
    return "CERTIFICATE_REQUIRED" in (err.reason or "").upper()


def _certificate_refused(exc: BaseException) -> bool:
    """The server's certificate is not trusted, or the server wants ours: settled facts.

    Other TLS errors (a decode error, an unexpected EOF from a middlebox) come and go,
    and are retried like any connection fault.
    """
    err = _tls_failure(exc)
    return isinstance(err, ssl.SSLCertVerificationError) or (
        err is not None and _wants_client_cert(err))


def describe(exc: Exception | None) -> str:
    """A short human reason for a transport failure, free of any URL credentials."""
    import httpx

    err = _tls_failure(exc) if exc is not None else None
    if isinstance(err, ssl.SSLCertVerificationError):
        return (f"the server's TLS certificate is not trusted ({err.verify_message}); "
                "give its CA with --cert, PIP_CERT or SSL_CERT_FILE")
    if err is not None:
        hint = "; the server wants a client certificate (--client-cert)" \
            if _wants_client_cert(err) else ""
        reason = err.reason or str(err)
        return f"TLS failed: {reason.lower().replace('_', ' ')}{hint}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    if exc is None:
        return "failed"
    return type(exc).__name__
