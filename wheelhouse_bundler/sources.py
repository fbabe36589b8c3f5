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
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import UsageError
from .model import Source

DEFAULT_SOURCE_NAME = "default"


def redact(url: str) -> str:
    """Hide the password (and user) in a URL before it is shown anywhere."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


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


def normalise_index_url(url: str) -> str:
    """Simple API base URLs are joined with project names, so they must end in a slash."""
    return url if url.endswith("/") else url + "/"


def check_not_in_argv(url: str, option: str) -> None:
    if "@" in urlsplit(url).netloc:
        raise UsageError(
            f"{option} {redact(url)}: credentials do not belong on the command line; "
            "use netrc or WHEELHOUSE_BUNDLER_HTTP_BASIC_<SOURCE>_USERNAME/_PASSWORD"
        )


def pip_configured_index() -> str | None:
    """pip's index-url as pip itself resolves it (env, config files), or None if unset."""
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        return env.split()[0]
    try:
        from pip._internal.configuration import Configuration  # type: ignore[import-not-found]

        config = Configuration(isolated=False)
        config.load()
    except Exception:  # pip absent or its internals moved: fall back to its default
        return None
    # pip's own precedence for `pip download`: environment, command section, global.
    for key in (":env:.index-url", "download.index-url", "install.index-url",
                "global.index-url"):
        try:
            value = config.get_value(key)
        except Exception:
            continue
        if value:
            return str(value).split()[0]
    return None


def pip_default_index() -> str:
    """The index pip uses when nothing is configured; we ask pip rather than name a host."""
    try:
        from pip._internal.models.index import PyPI  # type: ignore[import-not-found]

        return str(PyPI.simple_url)
    except Exception as exc:
        raise UsageError(
            "no package index configured and pip's default could not be read: pass --index-url"
        ) from exc


def default_source(index_url: str | None = None) -> Source:
    """The source for packages the lock does not pin to a named index."""
    url = index_url or pip_configured_index() or pip_default_index()
    return Source(DEFAULT_SOURCE_NAME, normalise_index_url(url))


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
