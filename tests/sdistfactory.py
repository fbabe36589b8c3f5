"""Small, real sdists for the build tests, byte for byte the same on every run.

Each is a PEP 517 source tree packed as `<name>-<version>.tar.gz` with one top folder, as
`python -m build --sdist` makes it: fixed mtimes, owners and order, and a gzip header
without a time, so the lock's hash of it never changes. The kinds are the shapes a real
index holds: pure Python with setuptools, a C extension, an in-tree backend that needs
a build dependency only the test index has, a build that fails, and an optional C
extension with a pure fallback.
"""

from __future__ import annotations

import gzip
import io
import shutil
import sys
import tarfile
from pathlib import Path

SETUPTOOLS_PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
requires-python = ">=3.8"
"""

C_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *args) {{ return PyLong_FromLong({value}); }}
static PyMethodDef methods[] = {{{{"answer", answer, METH_NOARGS, NULL}}, {{NULL, NULL, 0, NULL}}}};
static struct PyModuleDef module = {{PyModuleDef_HEAD_INIT, "{module}", NULL, -1, methods}};
PyMODINIT_FUNC PyInit_{module}(void) {{ return PyModule_Create(&module); }}
"""


def _pack(dest: Path, name: str, version: str, files: dict[str, str]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    top = f"{name.replace('-', '_')}-{version}"
    out = dest / f"{top}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted({f"{top}/{p}" for p in files} | {top}):
            info = tarfile.TarInfo(path)
            info.mtime = 315532800
            info.uid = info.gid = 0
            if path == top:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
                continue
            data = files[path[len(top) + 1:]].encode()
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
    with open(out, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh,
                                              mtime=0) as gz:
        gz.write(raw.getvalue())
    return out


def pure(dest: Path, name: str, version: str, value: str = "pure") -> Path:
    """A pure-Python setuptools project: module `<name>` with VALUE."""
    module = name.replace("-", "_")
    return _pack(dest, name, version, {
        "pyproject.toml": SETUPTOOLS_PYPROJECT.format(name=name, version=version),
        f"{module}.py": f"VALUE = {value!r}\n",
    })


def native(dest: Path, name: str, version: str, value: int = 42) -> Path:
    """A setuptools project whose module `<name>` is a C extension with answer()."""
    module = name.replace("-", "_")
    return _pack(dest, name, version, {
        "pyproject.toml": SETUPTOOLS_PYPROJECT.format(name=name, version=version),
        "setup.py": ("from setuptools import Extension, setup\n"
                     f"setup(ext_modules=[Extension({module!r}, [{module + '.c'!r}])])\n"),
        f"{module}.c": C_SOURCE.format(module=module, value=value),
    })


def optional_native(dest: Path, name: str, version: str) -> Path:
    """A package `<name>` with a C speed-up `<name>._speedups` that is optional: when it
    does not compile, the build still gives a working (pure) package."""
    module = name.replace("-", "_")
    return _pack(dest, name, version, {
        "pyproject.toml": SETUPTOOLS_PYPROJECT.format(name=name, version=version),
        "setup.py": (
            "from setuptools import Extension, setup\n"
            f"setup(packages=[{module!r}], ext_modules=[Extension("
            f"{module + '._speedups'!r}, [{module + '/_speedups.c'!r}], optional=True)])\n"),
        f"{module}/__init__.py": ("try:\n    from ._speedups import answer\n"
                                  "    HAVE_C = True\nexcept ImportError:\n"
                                  "    def answer():\n        return 42\n"
                                  "    HAVE_C = False\n"),
        f"{module}/_speedups.c": C_SOURCE.format(module="_speedups", value=42),
    })


def failing(dest: Path, name: str, version: str, marker: str) -> Path:
    """A project whose setup.py fails, saying `marker` last."""
    return _pack(dest, name, version, {
        "pyproject.toml": SETUPTOOLS_PYPROJECT.format(name=name, version=version),
        "setup.py": f"import sys\nsys.exit({marker!r})\n",
    })


def needs_helper(dest: Path, name: str, version: str, helper: str) -> Path:
    """A project built by an in-tree backend that imports `helper` (a build dependency
    published only on the test index) and wraps setuptools."""
    module = name.replace("-", "_")
    return _pack(dest, name, version, {
        "pyproject.toml": (
            "[build-system]\n"
            f'requires = ["setuptools", "{helper}"]\n'
            'build-backend = "inhouse"\n'
            'backend-path = ["_build"]\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'),
        "_build/inhouse.py": (
            f"import {helper.replace('-', '_')}  # fails unless the index gave it\n"
            "from setuptools.build_meta import *  # noqa: F403\n"),
        f"{module}.py": "VALUE = 'built with the helper'\n",
    })


def setuptools_wheel() -> Path | None:
    """The setuptools wheel scripts/test downloads beside the uv one (None: not there)."""
    folder = Path(sys.prefix) / "share" / "test-wheels"
    found = sorted(folder.glob("setuptools-*.whl"))
    return found[-1] if found else None


def copy_to(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, folder / path.name))
