"""TOML lock files read into dicts, with the broken line named when they are not TOML.

Every TOML-based lock (poetry.lock, uv.lock, pylock.toml, pdm.lock) fails the same way
when truncated or hand-edited badly; one reader keeps the message (file:line: what) the
same for all of them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import LockError

_LINE = re.compile(r"at line (\d+)")


def read_toml(path: Path, data: bytes) -> dict[str, Any]:
    """`data` (the bytes of `path`) as TOML, or a LockError naming file and line."""
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LockError(path, "not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        match = _LINE.search(str(exc))
        line = int(match[1]) if match else None
        if line is None and "end of document" in str(exc):
            line = data.count(b"\n") + 1
        raise LockError(path, f"invalid TOML: {exc}", line) from exc
