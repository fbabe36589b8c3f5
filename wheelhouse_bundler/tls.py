"""Which certificates a connection trusts and presents, decided once per process.

The CA choice: `--cert`, else PIP_CERT, else SSL_CERT_FILE, else SSL_CERT_DIR, else
certifi's bundle (the order httpx itself follows when trusting the environment);
`--client-cert` adds a client certificate to whichever it is. Loading a CA bundle costs
some 50 ms, so a context is made once per set of options and can be made ahead of need
(`preload`), on a thread, while a command's imports run.

The module imports nothing heavy (no httpx) so that a preload starts at once; it also
holds the one tweak to how httpx is imported, since it is imported before net.py.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import sys
import threading

from .errors import UsageError

# httpx's __init__ imports its own command line (httpx._main), which loads rich, click and
# pygments when they are installed, as they are here beside typer and pip-tools: a large
# share of the start-up, for a CLI this tool never runs. A None entry makes that one
# import fail the way httpx expects when its CLI extras are absent (it defines a stub).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

_contexts: dict[tuple[str | None, ...], ssl.SSLContext] = {}
_lock = threading.Lock()


def context(cert: str | None = None, client_cert: str | None = None) -> ssl.SSLContext:
    """The context for these options (a preload under way finishes first, then is shared)."""
    cafile = cert or os.environ.get("PIP_CERT")
    key = (cafile, client_cert, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _lock:
        if key not in _contexts:
            _contexts[key] = _new(cafile, client_cert)
        return _contexts[key]


def _new(cafile: str | None, client_cert: str | None) -> ssl.SSLContext:
    capath = None
    if not cafile:
        cafile = os.environ.get("SSL_CERT_FILE") or None
        capath = None if cafile else os.environ.get("SSL_CERT_DIR") or None
    if not (cafile or capath):
        import certifi

        cafile = certifi.where()
    try:
        made = ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"{cafile or capath}: cannot load certificate: {exc}") from exc
    if client_cert:
        try:
            made.load_cert_chain(client_cert)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"{client_cert}: cannot load certificate: {exc}") from exc
    return made


def check_files(cert: str | None, client_cert: str | None) -> None:
    """--cert and --client-cert must name files, even --offline where nothing loads them:
    a mistyped path is the user's mistake however the run goes."""
    for flag, path in (("--cert", cert), ("--client-cert", client_cert)):
        if path is not None and not os.path.isfile(path):
            raise UsageError(f"{path}: no such file (given as {flag})")


def preload(cert: str | None = None, client_cert: str | None = None) -> None:
    """Make the context on a thread now, for a command about to use the network.

    OpenSSL loads the CA bundle without holding the GIL, so it runs beside the
    command's own imports instead of delaying its first request. A failure is left for
    the real use to raise, in context. Not a daemon thread: a daemon thread still at work
    while the interpreter shuts down (a command that fails at once) can crash the
    process, so the exit waits its few ms instead.
    """
    def load() -> None:
        with contextlib.suppress(Exception):
            context(cert, client_cert)

    threading.Thread(target=load, name="preload-tls").start()
