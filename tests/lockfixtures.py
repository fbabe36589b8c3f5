"""The wheels a committed fixture lock was made against, rebuilt byte for byte.

tests/data/locks/<format>/wheels.json lists them; scripts/regen-lock-fixtures builds them
to lock the fixture project with the real tool, and the tests build them again to serve
the same bytes (so the same hashes) from their own index.
"""

from __future__ import annotations

import json
from pathlib import Path

from venvs import pip_freeze
from wheelfactory import build_wheel, dist_name, sha256_of

from wheelhouse_bundler.cli import main


def _metadata(w: dict) -> bytes:
    """METADATA with the Provides-Extra lines the factory leaves out."""
    lines = ["Metadata-Version: 2.1", f"Name: {w['name']}", f"Version: {w['version']}"]
    lines += [f"Provides-Extra: {x}" for x in w.get("provides_extra", ())]
    lines += [f"Requires-Dist: {r}" for r in w.get("requires", ())]
    return ("\n".join(lines) + "\n").encode()


def build_fixture_wheels(spec: Path, dest: Path) -> dict[str, list[Path]]:
    """Build every wheel of `spec` into `dest/<index>/` (`index` defaults to "default");
    returns the paths per index name."""
    out: dict[str, list[Path]] = {}
    for w in json.loads(spec.read_text())["wheels"]:
        index = w.get("index", "default")
        extra = None
        if w.get("provides_extra"):
            info = f"{dist_name(w['name'])}-{w['version']}.dist-info/METADATA"
            extra = {info: _metadata(w)}
        path = build_wheel(dest / index, w["name"], w["version"], w.get("tag", "py3-none-any"),
                           requires=w.get("requires", ()), extra_files=extra)
        out.setdefault(index, []).append(path)
    return out


def serve_fixture_wheels(spec: Path, dest: Path, index_server) -> list[Path]:
    """Build the wheels of a one-index `spec` into `dest` and publish them on `index_server`."""
    built = build_fixture_wheels(spec, dest)["default"]
    for path in built:
        index_server.add(path)
    return built


def assert_installs_as_bundled(bundle: Path, files: dict[str, dict], servers: list,
                               tmp_path: Path) -> None:
    """Every bundled file (`files`: inspect --json's packages by name) is the one an index
    served; with the indexes stopped, the bundle installs offline to exactly its versions."""
    served = {p.name: sha256_of(p) for s in servers for p in s.root.glob("*.whl")}
    assert all(served[f["filename"]] == f["sha256"] for f in files.values())
    for server in servers:
        server.stop()
    venv = tmp_path / "target" / "venv"
    assert main(["install", str(bundle), "--venv", str(venv), "--no-smoke", "-q"]) == 0
    assert pip_freeze(venv / "bin" / "python") == {n: f["version"] for n, f in files.items()}
