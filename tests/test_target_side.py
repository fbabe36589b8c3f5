"""The target side (verify, install, rehearse, merge) must run where there is no network: a
guard that importing it loads no network code, as uv's crate split guarantees for its
installer. A new import that drags httpx into install fails here, not on a bastion."""

from __future__ import annotations

import json
import subprocess
import sys

TARGET_SIDE = ("wheelhouse_bundler.verify", "wheelhouse_bundler.install",
               "wheelhouse_bundler.rehearse", "wheelhouse_bundler.delta",
               "wheelhouse_bundler.standalone.bootstrap", "wheelhouse_bundler.standalone.probe")
NETWORK = ("httpx", "httpcore", "h11", "h2", "certifi", "ssl", "wheelhouse_bundler.net",
           "wheelhouse_bundler.fetch", "wheelhouse_bundler.index", "wheelhouse_bundler.tls",
           "wheelhouse_bundler.pipeline")


def loaded_after(*modules: str) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for m in {list(modules)!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out))


def test_the_target_side_imports_no_network_code() -> None:
    loaded = loaded_after(*TARGET_SIDE)
    assert set(TARGET_SIDE) <= loaded
    assert sorted(m for m in loaded if m in NETWORK or m.split(".")[0] in NETWORK) == []


def test_the_guard_sees_network_code_when_it_is_imported() -> None:
    """The check above can fail: the build side does load it (httpx itself lazily)."""
    loaded = loaded_after("wheelhouse_bundler.fetch")
    assert {"ssl", "wheelhouse_bundler.net"} <= loaded


def test_the_standalone_modules_import_the_standard_library_alone() -> None:
    """bootstrap.py ships as a bundle's install.py and probe.py as target-info's script:
    each runs as one file on a bare Python 3.8, so neither may import the package or any
    third-party module."""
    import ast
    from pathlib import Path

    from wheelhouse_bundler import standalone

    folder = Path(standalone.__file__).parent
    found = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        found[path.name] = sorted(n for n in names
                                  if n.startswith(".") or n.split(".")[0]
                                  not in sys.stdlib_module_names)
    assert found == {"__init__.py": [], "bootstrap.py": [], "probe.py": []}
