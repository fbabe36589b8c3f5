"""Requirements text reduced to what a differential test compares: name -> (version, hashes).

Every lock tool's export (and ours) writes pinned lines with --hash options, but each
adds its own option lines and comments; what must agree is only which version of each
project a target installs and which files may satisfy it.
"""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def pins(text: str, env: dict[str, str] | None) -> dict[str, tuple[str, frozenset[str]]]:
    """Markers evaluated with `env` (None keeps every line); option lines such as
    --index-url / --trusted-host / -i are left out; a name twice is a failure."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in text.replace("\\\n", " ").splitlines():
        entry = entry.split("#", 1)[0].strip()
        if not entry or entry.startswith("-"):
            continue
        spec, *opts = entry.split(" --hash=")
        req = Requirement(spec)
        if req.marker is not None and env is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name not in out, f"{name} twice"
        out[name] = (next(iter(req.specifier)).version,
                     frozenset(h.strip().removeprefix("sha256:") for h in opts))
    return out
