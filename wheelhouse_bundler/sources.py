"""Where packages come from: the default index, per-source credentials, safe display.

The default index is the user's (``--index-url``, then pip's own configuration, then pip's
built-in default), so this code names no registry. Credentials never come from argv: only
from the environment, netrc, or the URL in pip's configuration files, and every URL we
show passes through `redact` first.
"""

from __future__ import annotations

import functools
import netrc
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .errors import UsageError
from .model import Source

DEFAULT_SOURCE_NAME = "default"


def redact(url: str) -> str:
    """Hide the password (and user) in a URL before it is shown anywhere.

    Also for a URL too broken to parse (`http://u:p@[::1/`): a secret in a typo is
    still a secret, so the user info is cut by its shape alone.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\1***@", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_USERINFO_ANYWHERE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@'\"]*@")


def redact_text(text: str) -> str:
    """Every URL's user info in a message hidden, wherever the URL came from: the last
    guard before a line reaches the terminal (a lock's reason text may quote a URL)."""
    return _USERINFO_ANYWHERE.sub(r"\1***@", text)


def strip_credentials(url: str) -> str:
    """The URL as it may be stored: no user info at all."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """Separate `user:pass@` from a URL so the secret travels only as an auth header."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


def join_credentials(url: str, creds: tuple[str, str] | None) -> str:
    """`url` with `user:pass@` (quoted) in its netloc, in place of any it had: the inverse
    of split_credentials, for a child pip's environment or a Source that carries them
    (never argv, never shown: `redact` first)."""
    if creds is None:
        return url
    parts = urlsplit(split_credentials(url)[0])
    user, password = (quote(c, safe="") for c in creds)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


_PIP_PASS_THROUGH = ("PIP_CERT", "PIP_CLIENT_CERT", "PIP_TIMEOUT", "PIP_RETRIES")


def pip_child_env(index: str | None) -> dict[str, str]:
    """os.environ for a pip we start (pip-compile, a build environment's pip): none of
    the machine's pip or uv configuration but its TLS and network settings, and `index`
    (credentials in it) as the one index it may use."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_")) or k in _PIP_PASS_THROUGH}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    if index is not None:
        env["PIP_INDEX_URL"] = index
    return env


def check_url(url: str, where: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """`url` (stripped) if a request can be made to it, else a UsageError naming `where`.

    The one check for every URL the user gives: the option, PIP_INDEX_URL, pip's
    configuration, a source in any lock format, a requirements file's --index-url line.
    Without it a typo reaches httpx (a traceback for `http://host:PORT/`) or is retried
    four times and reported as a network fault (`not a url`). `where` says where the
    URL came from (`--index-url`, `poetry.lock: source 'corp'`, `reqs.txt:3`).
    """
    text = url.strip()

    def bad(why: str) -> UsageError:
        shown = redact(text) if len(text) <= 200 else redact(text)[:200] + "..."
        return UsageError(f"{where}: {shown!r} is not a valid URL: {why}")

    if any(not c.isprintable() or c.isspace() for c in text):
        raise bad("it holds spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError for `:PORT` or a port over 65535
    except ValueError as exc:
        raise bad(_url_reason(exc)) from None
    if parts.scheme.lower() not in schemes:
        raise bad(f"it must start with {' or '.join(s + '://' for s in schemes)}")
    host = parts.hostname or ""
    if parts.scheme.lower() != "file" and not host:
        raise bad("it names no host")
    if host and not (_HOST.fullmatch(host) or _is_ip_literal(parts.netloc)):
        raise bad(f"{host!r} is not a host name")
    if port == 0:
        raise bad("port 0 is not a port")
    return text


_HOST = re.compile(r"[\w%-]+(\.[\w%-]+)*\.?")  # IDN hosts too (\w is Unicode)


def _is_ip_literal(netloc: str) -> bool:
    """`[v6]` hosts: urlsplit accepted the brackets; the address inside must be one."""
    import ipaddress

    inside = netloc.rsplit("@", 1)[-1]
    if not inside.startswith("["):
        return False
    try:
        ipaddress.IPv6Address(inside[1:inside.index("]")].split("%", 1)[0])
    except ValueError:
        return False
    return True


def _url_reason(exc: ValueError) -> str:
    text = str(exc)
    if "Port" in text or "port" in text:
        return "the port is not a number from 1 to 65535"
    if "IPv6" in text:
        return "an unclosed or malformed [IPv6] address"
    return text


def check_file_url(url: str, where: str) -> str:
    """A lock's URL for one file (a wheel): `check_url`, with local `file:` URLs too."""
    return check_url(url, where, schemes=("http", "https", "file"))


def normalise_index_url(url: str) -> str:
    """Simple API base URLs are joined with project names, so they must end in a slash."""
    return url if url.endswith("/") else url + "/"


def checked_index_url(url: str, where: str) -> str:
    """A Simple API base URL from anywhere (option, env, lock, requirements line):
    checked by `check_url` and given its trailing slash, the same way for all of them."""
    return normalise_index_url(check_url(url, where))


def index_source(name: str, url: str, where: str) -> Source:
    """A lock's named index as a Source, its URL checked and normalised (see index_url)."""
    return Source(name, checked_index_url(url, where))


def check_not_in_argv(url: str, option: str) -> None:
    """A URL given on the command line: valid (check_url), and without a password."""
    if "@" in urlsplit(check_url(url, option)).netloc:
        raise UsageError(
            f"{option} {redact(url)}: credentials do not belong on the command line; "
            "use netrc or WHEELHOUSE_BUNDLER_HTTP_BASIC_<SOURCE>_USERNAME/_PASSWORD"
        )


def _pip_configured_index() -> tuple[str, str] | None:
    """pip's index-url and where it was set (for an error about a bad one)."""
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        return env.split()[0], "PIP_INDEX_URL"
    config = _from_pip("configuration")
    if config is None:
        return None
    # pip's own precedence for `pip download`: environment, command section, global.
    for key in (":env:.index-url", "download.index-url", "install.index-url",
                "global.index-url"):
        try:
            value = config.get_value(key)
        except Exception:
            continue
        if value:
            return str(value).split()[0], f"pip's configuration ({key.strip(':')})"
    return None


def pip_default_index() -> str:
    """The index pip uses when nothing is configured; we ask pip rather than name a host."""
    url = _from_pip("default index")
    if url is None:
        raise UsageError(
            "no package index configured and pip's default could not be read: pass --index-url")
    return str(url)


def _from_pip(what: str) -> Any:
    """The one door into pip's internals (`pip._internal`), for the two things pip offers
    no public API for: its loaded configuration (its files and their precedence: reading
    the files ourselves would be a second copy that drifts from pip's) and its default
    index (which this project must not name). None when pip is absent or its internals
    moved; the callers then fall back or say what to pass. tests/test_sources.py checks
    both against pip's own command line, so a move shows up there first."""
    try:
        if what == "configuration":
            from pip._internal.configuration import Configuration  # type: ignore[import-not-found]

            config = Configuration(isolated=False)
            config.load()
            return config
        from pip._internal.models.index import PyPI  # type: ignore[import-not-found]

        return PyPI.simple_url
    except Exception:
        return None


def default_source(index_url: str | None = None) -> Source:
    """The source for packages the lock does not pin to a named index."""
    if index_url:
        return index_source(DEFAULT_SOURCE_NAME, index_url, "--index-url")
    configured = _pip_configured_index()
    if configured:
        return index_source(DEFAULT_SOURCE_NAME, *configured)
    return Source(DEFAULT_SOURCE_NAME, normalise_index_url(pip_default_index()))


def _env_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def credentials_for(source: Source, url: str) -> tuple[str, str] | None:
    """Credentials for a request to `url` on behalf of `source`, if any are configured.

    Only requests to the source's own host get them, as pip does: a file served from
    another host never sees the index's password.
    """
    source_url, url_creds = split_credentials(source.url)
    if urlsplit(source_url).hostname != urlsplit(url).hostname:
        return None
    key = _env_key(source.name)
    for prefix in ("WHEELHOUSE_BUNDLER_HTTP_BASIC_", "POETRY_HTTP_BASIC_"):
        user = os.environ.get(f"{prefix}{key}_USERNAME")
        if user is not None:
            return user, os.environ.get(f"{prefix}{key}_PASSWORD", "")
    if url_creds:
        return url_creds
    return _netrc_credentials(urlsplit(url).hostname or "")


def _netrc_credentials(host: str) -> tuple[str, str] | None:
    path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        st = os.stat(path)
        entry = _parsed_netrc(path, st.st_mtime_ns, st.st_size).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    if not entry:
        return None
    login, _, password = entry
    return login, password or ""


@functools.lru_cache(maxsize=4)
def _parsed_netrc(path: str, mtime_ns: int, size: int) -> netrc.netrc:
    """Parsed once per version of the file, not once per request (a cold build makes
    hundreds); the stat in the key notices an edit."""
    return netrc.netrc(path)
