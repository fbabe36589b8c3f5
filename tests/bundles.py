"""Bundles for the target-side tests, built by the real `bundle` command.

One way to make them, so the install, rehearse, bootstrap and smoke tests exercise the
same kind of bundle a user gets, not each its own hand-made variant.
"""

from __future__ import annotations

from pathlib import Path

from indexserver import IndexServer
from locktext import Pin, hashed_requirements
from packaging.utils import parse_wheel_filename
from wheelfactory import WheelFactory

from wheelhouse_bundler.cli import main


def make_bundle(out: Path, wheels: list[Path], index: IndexServer, cache: Path,
                *extra: str) -> Path:
    """A bundle of exactly these wheels (published on `index` first); `extra` are more
    `bundle` arguments (targets, --with-uv...)."""
    pins = []
    for wheel in wheels:
        index.add(wheel)
        name, version, _, _ = parse_wheel_filename(wheel.name)
        pins.append(Pin(str(name), str(version), [wheel]))
    reqs = out.with_suffix(".txt")
    reqs.write_text(hashed_requirements(pins))
    assert main(["bundle", str(reqs), "-o", str(out), "--index-url", index.url,
                 "--cache-dir", str(cache), "-q", *extra]) == 0
    return out


def alpha_beta(factory: WheelFactory) -> list[Path]:
    """alpha 1.0 and beta 2.0, which requires alpha: the smallest bundle with a root and
    a dependency, the shape most restore tests need."""
    return [factory("alpha", "1.0"), factory("beta", "2.0", requires=["alpha"])]
