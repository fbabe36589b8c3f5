"""Typed failures, each carrying the exit code the CLI reports.

Modules raise these; only `cli.py` turns them into a message and an exit status, so a
user's mistake never surfaces as a traceback and scripts can branch on the code.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


_warning_sink: list[Callable[[str], None]] = [_to_stderr]


def warn(message: str) -> None:
    """A warning from deep inside (a lock reader): not an error, but the user should see
    it. It goes through the CLI's one output path (set_warning_sink), so `-q` and `--json`
    silence it like every other human line, and it is escaped like them."""
    _warning_sink[0](printable(f"warning: {message}"))


def note(message: str) -> None:
    """Progress worth a line from deep inside (a build starting): the warning sink's path,
    without the word "warning"."""
    _warning_sink[0](printable(message))


def set_warning_sink(sink: Callable[[str], None]) -> None:
    _warning_sink[0] = sink


def excerpt(text: object, limit: int = 80, *, quote: bool = True) -> str:
    """Text echoed from a user's file, cut to `limit` characters with an ellipsis, so an
    error stays one readable line even for a 200 kB line in a lock. Control characters
    and newlines are escaped as repr() does, quoted or not."""
    shown = str(text)
    shown = repr(shown if len(shown) <= limit else shown[:limit] + "…")
    return shown if quote else shown[1:-1]


def printable(text: str) -> str:
    """`text` escaped for a terminal by bootstrap.printable (the target side's one
    escaping, shipped as install.py). Errors pass through it in cli.main, report lines on
    their way out; bootstrap is imported only when there is something to escape."""
    if text.isprintable():
        return text
    from .standalone.bootstrap import printable as escape

    return escape(text)


def printable_lines(text: str) -> str:
    """`printable` line by line: the line breaks we put in (a selection table, a
    Markdown report) stay; everything else a terminal would act on is escaped."""
    return "\n".join(map(printable, text.split("\n")))


class BundlerError(Exception):
    """Base of every failure we expect and explain; anything else is a bug (exit 1)."""

    exit_code = 1
    kind = "error"


class UsageError(BundlerError):
    """Bad input or usage: a malformed lock, an unknown target, a missing file (exit 2)."""

    exit_code = 2
    kind = "error"


class LockError(UsageError):
    """A lock file that cannot be read exactly as written."""

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class SelectionError(UsageError):
    """The lock cannot be satisfied for a target (no usable wheel, wrong Python)."""


class BuildError(UsageError):
    """An sdist the build box could not turn into a wheel: the input is at fault (exit 2),
    as a wrong pin or a package that does not build is."""


class IntegrityError(BundlerError):
    """Bytes that are not what the lock or the manifest says they are (exit 3)."""

    exit_code = 3
    kind = "integrity error"


class DamagedFile(IntegrityError):
    """Bytes read back from our own disk (a cache entry, mostly) that are not the ones their
    sha256 names. The cache is not fsynced (a crash may leave a short or wrong entry), so
    every reader checks; the build evicts the entry and fetches it again, or, --offline,
    names it (exit 3)."""

    def __init__(self, message: str, sha256: str) -> None:
        super().__init__(message)
        self.sha256 = sha256

    @classmethod
    def wrong_hash(cls, name: str, got: str, want: str, where: str = "on disk"
                   ) -> DamagedFile:
        """The one wording of "these bytes are not the ones their hash names"."""
        return cls(f"{name}: the copy {where} has sha256 {got}, not {want}", want)


class NetworkError(BundlerError):
    """An index or file that could not be reached or read (exit 4)."""

    exit_code = 4
    kind = "network error"


class InstallError(BundlerError):
    """The offline install on the target failed; the old environment is untouched (exit 5)."""

    exit_code = 5
    kind = "install error"


def name_user_path(exc: OSError, shown: object, *private: object) -> OSError:
    """Make `exc` name `shown`, the path the user gave, when it names one of our private
    temporary files, or no path at all for a full disk: the one line the CLI prints must
    say which of the user's files failed (`app.tar: No space left on device`), not
    `.app.tar.x1y2.part`, nor "a file". (A pathless error of another kind, such as a
    dropped connection, is left alone: it is not about `shown`.)"""
    private_name = exc.filename is not None and str(exc.filename) in {str(p) for p in private}
    if private_name or (exc.filename is None and exc.errno in _DISK_FULL):
        exc.filename = str(shown)
        exc.filename2 = None
    return exc


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
