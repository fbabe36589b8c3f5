"""An index password given inside a URL never leaves the process that uses it.

The password-protected test index is reached through every place a URL with `user:pw@`
can come from (pip's environment and config file, and each lock format's own source URL),
and the CLI runs as its own process, as an operator runs it. Whatever the outcome (a
bundle, a 403 for a wrong password, a 404 for a project the index does not have), the
password is in none of: stdout, stderr, the `--json` output, the tarball's bytes (so
neither manifest.json nor sbom.cdx.json inside it), the sidecar, and any file of the
cache. A message changed to print a raw URL fails here.
"""

from __future__ import annotations

import base64
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from clirun import run_cli
from conftest import AUTH
from indexserver import IndexServer
from locktext import Pin, hashed_requirements, poetry_lock, pyproject
from venvs import clean_env
from wheelfactory import WheelFactory, sha256_of

WRONG = "wr0ng-pw-5150"
"""The wrong password of the 403 case: as secret as the right one."""


def _with_user(url: str, password: str) -> str:
    return url.replace("http://", f"http://{AUTH[0]}:{password}@", 1)


def _secrets(password: str) -> list[bytes]:
    """The password as it could leak: itself, and inside a basic Authorization header."""
    header = base64.b64encode(f"{AUTH[0]}:{password}".encode())
    return [password.encode(), header]


def _file_url(server: IndexServer, index_url: str, wheel: Path) -> str:
    """A wheel's URL in a lock that records one, with the index URL's user info."""
    return server.file_url(wheel.name).replace(server.base_url, index_url.split("simple/")[0])


# Each writer makes the project for one URL source: (lock path, extra environment).
Writer = Callable[[Path, IndexServer, str, list[Pin]], tuple[Path, dict[str, str]]]


def _pip_env(root: Path, server: IndexServer, url: str, pins: list[Pin]
             ) -> tuple[Path, dict[str, str]]:
    lock = root / "requirements.txt"
    lock.write_text(hashed_requirements(pins))
    return lock, {"PIP_INDEX_URL": url}


def _pip_conf(root: Path, server: IndexServer, url: str, pins: list[Pin]
              ) -> tuple[Path, dict[str, str]]:
    lock = root / "requirements.txt"
    lock.write_text(hashed_requirements(pins))
    conf = root / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {url}\n")
    return lock, {"PIP_CONFIG_FILE": str(conf)}


def _requirements(root: Path, server: IndexServer, url: str, pins: list[Pin]
                  ) -> tuple[Path, dict[str, str]]:
    lock = root / "requirements.txt"
    lock.write_text(f"--index-url {url}\n" + hashed_requirements(pins))
    return lock, {}


def _poetry(root: Path, server: IndexServer, url: str, pins: list[Pin]
            ) -> tuple[Path, dict[str, str]]:
    (root / "pyproject.toml").write_text(pyproject(sources=[("corp", url)]))
    lock = root / "poetry.lock"
    lock.write_text(poetry_lock([Pin(p.name, p.version, p.wheels, source=("corp", url))
                                 for p in pins]))
    return lock, {}


def _pipfile(root: Path, server: IndexServer, url: str, pins: list[Pin]
             ) -> tuple[Path, dict[str, str]]:
    doc = {"_meta": {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6, "requires": {},
                     "sources": [{"name": "corp", "url": url, "verify_ssl": False}]},
           "default": {p.name: {"hashes": [f"sha256:{sha256_of(w)}" for w in p.wheels],
                                "index": "corp", "version": f"=={p.version}"} for p in pins},
           "develop": {}}
    lock = root / "Pipfile.lock"
    lock.write_text(json.dumps(doc, indent=4))
    return lock, {}


def _uv(root: Path, server: IndexServer, url: str, pins: list[Pin]
        ) -> tuple[Path, dict[str, str]]:
    out = ['version = 1', 'requires-python = ">=3.11"', "", "[[package]]", 'name = "app"',
           'version = "0.1.0"', 'source = { virtual = "." }',
           "dependencies = [" + ", ".join(f'{{ name = "{p.name}" }}' for p in pins) + "]", ""]
    for p in pins:
        out += ["[[package]]", f'name = "{p.name}"', f'version = "{p.version}"',
                f'source = {{ registry = "{url}" }}', "wheels = ["]
        out += [f'    {{ url = "{_file_url(server, url, w)}", hash = "sha256:{sha256_of(w)}" }},'
                for w in p.wheels]
        out += ["]", ""]
    lock = root / "uv.lock"
    lock.write_text("\n".join(out))
    return lock, {}


def _pylock(root: Path, server: IndexServer, url: str, pins: list[Pin]
            ) -> tuple[Path, dict[str, str]]:
    out = ['lock-version = "1.0"', 'created-by = "pip"', ""]
    for p in pins:
        out += ["[[packages]]", f'name = "{p.name}"', f'version = "{p.version}"',
                f'index = "{url}"', ""]
        for w in p.wheels:
            out += ["[[packages.wheels]]", f'name = "{w.name}"',
                    f'url = "{_file_url(server, url, w)}"', "",
                    "[packages.wheels.hashes]", f'sha256 = "{sha256_of(w)}"', ""]
    lock = root / "pylock.toml"
    lock.write_text("\n".join(out))
    return lock, {}


SOURCES: dict[str, Writer] = {
    "PIP_INDEX_URL": _pip_env, "pip.conf": _pip_conf, "requirements --index-url":
    _requirements, "poetry.lock": _poetry, "Pipfile.lock": _pipfile, "uv.lock": _uv,
    "pylock.toml": _pylock,
}
OUTCOMES = {  # outcome -> (password in the URL, pin a project the index lacks, exit code)
    "bundled": (AUTH[1], False, 0),
    "403 wrong password": (WRONG, False, 4),
    "404 missing project": (AUTH[1], True, 4),
}


def _files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("outcome", list(OUTCOMES))
@pytest.mark.parametrize("source", list(SOURCES))
def test_password_in_an_index_url_is_never_shown_or_stored(
        source: str, outcome: str, tmp_path: Path, auth_index_server: IndexServer,
        wheel_factory: WheelFactory) -> None:
    password, with_ghost, code = OUTCOMES[outcome]
    alpha = wheel_factory("alpha", "1.0")
    auth_index_server.add(alpha)
    pins = [Pin("alpha", "1.0", [alpha])]
    if with_ghost:  # built, locked, never published
        pins.append(Pin("ghost", "1.0", [wheel_factory(tmp_path / "unpublished", "ghost",
                                                       "1.0")]))
    root = tmp_path / "project"
    root.mkdir()
    url = _with_user(auth_index_server.url, password)
    lock, extra = SOURCES[source](root, auth_index_server, url, pins)
    given = [lock, *(Path(v) for v in extra.values() if v.startswith("/"))]
    assert any(password in p.read_text() for p in given) or password in str(extra)
    out_dir, cache, xdg = tmp_path / "out", tmp_path / "cache", tmp_path / "xdg"
    out = out_dir / "app.tar"
    env = clean_env(XDG_CACHE_HOME=str(xdg), NETRC=str(tmp_path / "no-netrc"), **extra)

    done = run_cli("bundle", lock, "-o", out, "--cache-dir", cache, "--json", env=env)

    assert done.returncode == code, done.stderr
    shown = (done.stdout + done.stderr).encode()
    for secret in _secrets(password):
        assert secret not in shown, (source, outcome)
        for path in _files_under(out_dir, cache, xdg):
            assert secret not in path.read_bytes(), path
    if code == 0:
        summary = json.loads(done.stdout)
        assert summary["files"] == 1
        digest = sha256_of(alpha)
        origin = cache / "sha256" / digest[:2] / f"{digest}.json"  # where the cache keeps URLs
        assert auth_index_server.base_url in origin.read_text()
        with tarfile.open(out) as tar:
            names = tar.getnames()
            inner = {n.rsplit("/", 1)[-1]: tar.extractfile(n).read()  # type: ignore[union-attr]
                     for n in names if n.endswith(("/manifest.json", "/sbom.cdx.json"))}
        assert set(inner) == {"manifest.json", "sbom.cdx.json"}
        # The origin is recorded (so there was a URL to leak), without its user info.
        manifest = json.loads(inner["manifest.json"])
        origins = [f["origin"] for f in manifest["files"]]
        assert origins and all(str(o).startswith(auth_index_server.base_url) for o in origins)
        for data in inner.values():
            assert AUTH[0].encode() + b":" not in data
    else:
        assert not out.exists() and not out.with_name("app.tar.sha256").exists()
        said = done.stderr.strip().splitlines()
        assert len(said) == 1 and "network error" in said[0], done.stderr
        assert "ghost" in said[0] if with_ghost else "403 Forbidden" in said[0], said


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_password_in_pips_index_url_stays_out_of_lock_output(
        outcome: str, tmp_path: Path, auth_index_server: IndexServer,
        wheel_factory: WheelFactory) -> None:
    """`lock` hands the URL to pip-compile (in its environment, never its argv): the
    lock it writes, and what either process says, hold no password."""
    password, with_ghost, _ = OUTCOMES[outcome]
    auth_index_server.add(wheel_factory("alpha", "1.0"))
    source = tmp_path / "requirements.in"
    source.write_text("alpha\n" + ("ghost==1.0\n" if with_ghost else ""))
    output = tmp_path / "out" / "requirements.txt"
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "xdg"), NETRC=str(tmp_path / "no-netrc"),
                    PIP_INDEX_URL=_with_user(auth_index_server.url, password))

    done = run_cli("lock", source, "-o", output, env=env)

    shown = (done.stdout + done.stderr).encode()
    for secret in _secrets(password):
        assert secret not in shown
        for path in _files_under(output.parent, tmp_path / "xdg"):
            assert secret not in path.read_bytes(), path
    if outcome == "bundled":
        assert done.returncode == 0, done.stderr
        assert "alpha==1.0" in output.read_text()
    else:
        assert done.returncode == (2 if with_ghost else 4) and not output.exists(), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert ("ghost" if with_ghost else "403") in done.stderr, done.stderr


def test_a_reason_that_quotes_a_url_hides_its_password(tmp_path: Path) -> None:
    """A lock's own text reaches messages too: a direct-URL requirement is refused (it
    cannot be bundled), and the refusal quotes the URL, never its user info."""
    lock = tmp_path / "requirements.txt"
    lock.write_text("private @ https://bob:t0p-s3cret@files.example.com/private-1.0.tar.gz\n")
    done = run_cli("export", lock, "-t", "cp311-manylinux_2_28_x86_64", "--index-url",
                   "http://127.0.0.1:9/simple/", env=clean_env())
    assert done.returncode == 2, done.stderr
    assert "https://***@files.example.com/private-1.0.tar.gz" in done.stderr
    assert "t0p-s3cret" not in done.stderr + done.stdout and "bob" not in done.stderr
