"""The test infrastructure itself, checked with real parts: real pip, real venvs, real pypiserver.

If these fail, every end-to-end test would fail for reasons that have nothing to do with
wheelhouse-bundler, so they also pin the pypiserver behaviour the other tests rely on.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from indexserver import IndexServer
from packaging.tags import sys_tags
from venvs import clean_env, pip_freeze, run_in_venv, run_pip
from wheelfactory import WheelFactory, build_wheel, sha256_of


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """No proxies, no netrc: only what the test says goes to 127.0.0.1."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def _check_record(wheel: Path) -> list[str]:
    """Verify every RECORD hash and size against the zip; return the entry names."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
        assert sorted(row[0] for row in rows) == sorted(names)
        for path, digest, size in rows:
            if path == record_name:
                assert (digest, size) == ("", "")
                continue
            data = zf.read(path)
            b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={b64}" and int(size) == len(data), path
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr == 0o100644 << 16
    return names


def test_wheels_are_deterministic_and_well_formed(tmp_path: Path) -> None:
    kwargs = {"requires": ["dep-a>=1", "dep-b; python_version < '3'"],
              "requires_python": ">=3.8", "extra_files": {"Demo_Pkg/data.txt": b"hi\n"},
              "payload_size": 3 * 1024 * 1024 + 7}
    first = build_wheel(tmp_path / "a", "Demo.Pkg", "1.0", "py2.py3-none-any", **kwargs)
    second = build_wheel(tmp_path / "b", "Demo.Pkg", "1.0", "py2.py3-none-any", **kwargs)
    other = build_wheel(tmp_path / "c", "Demo.Pkg", "1.1", "py2.py3-none-any", **kwargs)

    assert first.name == "demo_pkg-1.0-py2.py3-none-any.whl"
    assert sha256_of(first) == sha256_of(second) != sha256_of(other)
    names = _check_record(first)
    assert names[-1] == "demo_pkg-1.0.dist-info/RECORD"
    assert "demo_pkg/payload.bin" in names and "Demo_Pkg/data.txt" in names
    with zipfile.ZipFile(first) as zf:
        assert zf.getinfo("demo_pkg/payload.bin").file_size == 3 * 1024 * 1024 + 7
        wheel = zf.read("demo_pkg-1.0.dist-info/WHEEL").decode()
        meta = zf.read("demo_pkg-1.0.dist-info/METADATA").decode()
    assert "Root-Is-Purelib: true" in wheel
    assert "Tag: py2-none-any\nTag: py3-none-any\n" in wheel
    assert "Name: Demo.Pkg\nVersion: 1.0\nRequires-Python: >=3.8\n" in meta
    assert "Requires-Dist: dep-b; python_version < '3'\n" in meta

    plat = build_wheel(tmp_path / "a", "demo-pkg", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
    _check_record(plat)
    with zipfile.ZipFile(plat) as zf:
        assert "Root-Is-Purelib: false" in zf.read("demo_pkg-1.0.dist-info/WHEEL").decode()


def test_clean_env_hides_the_machine_pip_configuration() -> None:
    env = clean_env(EXTRA="1")
    assert not [k for k in env if k.startswith(("PIP_", "UV_")) and k not in {
        "PIP_CONFIG_FILE", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT"}]
    assert env["EXTRA"] == "1" and "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env
    out = run_pip(Path(sys.executable), "config", "list").stdout  # our own venv
    # Only our own variables: no constraint, find-links, extra-index-url or cert left.
    assert sorted(out.splitlines()) == [":env:.config-file='/dev/null'",
                                        ":env:.disable-pip-version-check='1'",
                                        ":env:.no-input='1'"]


def test_built_wheels_install_with_real_pip(wheel_factory: WheelFactory,
                                            make_venv: Callable[..., Path]) -> None:
    """The default venv (with its own pip, as the product makes them) takes our wheels."""
    wheel_factory("dep-a", "1.0")
    main = wheel_factory("Demo-Pkg", "2.0", requires=["dep-a>=1"])
    best_tag = str(next(iter(sys_tags())))  # the most specific platform tag pip accepts here
    wheel_factory("plat-pkg", "1.0", best_tag)

    python = make_venv()
    run_pip(python, "install", "--no-index", "--no-cache-dir", "--find-links",
            str(main.parent), "demo-pkg==2.0", "plat-pkg==1.0")

    assert pip_freeze(python) == {"demo-pkg": "2.0", "dep-a": "1.0", "plat-pkg": "1.0"}
    out = run_in_venv(python, "import demo_pkg, dep_a, plat_pkg, sys\n"
                              "print(demo_pkg.__version__, dep_a.__version__, sys.prefix)")
    assert out.split()[:2] == ["2.0", "1.0"]
    assert Path(out.split()[2]) == python.parent.parent


def test_pip_installs_from_the_index_server(index_server: IndexServer,
                                            wheel_factory: WheelFactory,
                                            make_venv: Callable[..., Path]) -> None:
    wheel = index_server.add(wheel_factory("Foo-Bar", "1.5"))
    python = make_venv(with_pip=False)  # pip then runs from this venv with --python

    run_pip(python, "install", "--no-cache-dir", "--index-url", index_server.url,
            "foo-bar==1.5")

    assert run_in_venv(python, "import foo_bar; print(foo_bar.__version__)").strip() == "1.5"
    assert pip_freeze(python) == {"foo-bar": "1.5"}
    seen = index_server.requests()
    assert "/simple/foo-bar/" in seen and f"/packages/{wheel.name}" in seen


def test_index_server_pages(index_server: IndexServer, wheel_factory: WheelFactory,
                            http: httpx.Client) -> None:
    """PEP 503 HTML with #sha256 fragments, no PEP 691 JSON, files seen without a restart."""
    first = index_server.add(wheel_factory("foo-bar", "1.0"))
    page = http.get(index_server.url + "foo-bar/",
                    headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")  # no JSON API
    assert f'href="/packages/{first.name}#sha256={sha256_of(first)}"' in page.text

    second = index_server.add(wheel_factory("foo-bar", "2.0"))  # live, no restart
    assert second.name in http.get(index_server.url + "foo-bar/").text

    assert http.get(index_server.url + "Foo.Bar/").status_code == 301
    assert http.get(index_server.url + "nothing-here/").status_code == 404
    body = http.get(index_server.file_url(second.name)).content
    assert hashlib.sha256(body).hexdigest() == sha256_of(second)


def test_auth_server_needs_credentials(auth_index_server: IndexServer,
                                       wheel_factory: WheelFactory, http: httpx.Client,
                                       tmp_path: Path) -> None:
    wheel = auth_index_server.add(wheel_factory("secret-pkg", "1.0"))
    page_url = auth_index_server.url + "secret-pkg/"
    file_url = auth_index_server.file_url(wheel.name)

    for url in (auth_index_server.url, page_url, file_url):
        anonymous = http.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["www-authenticate"].lower().startswith("basic")
        assert http.get(url, auth=("alice", "wrong")).status_code == 403, url
    assert auth_index_server.auth == ("alice", "s3cret-pw")
    assert wheel.name in http.get(page_url, auth=auth_index_server.auth).text
    assert http.get(file_url, auth=auth_index_server.auth).content == wheel.read_bytes()

    # pip takes the credentials from the URL (our own pip; no venv needed to download)
    out = tmp_path / "downloaded"
    run_pip(Path(sys.executable), "download", "--no-deps", "--no-cache-dir", "-d", str(out),
            "--index-url", auth_index_server.url_with_auth, "secret-pkg==1.0")
    assert sha256_of(out / wheel.name) == sha256_of(wheel)


def test_requests_are_logged(index_server: IndexServer, wheel_factory: WheelFactory,
                             http: httpx.Client) -> None:
    wheel = index_server.add(wheel_factory("counted", "1.0"))
    assert index_server.requests() == []  # the start-up health probes are not counted

    http.get(index_server.url + "counted/")
    http.get(index_server.file_url(wheel.name))
    http.head(index_server.file_url(wheel.name))
    assert index_server.requests() == ["/simple/counted/", f"/packages/{wheel.name}",
                                       f"/packages/{wheel.name}"]
    assert index_server.requests(method="HEAD") == [f"/packages/{wheel.name}"]

    index_server.reset_requests()
    http.get(index_server.url + "missing/")
    assert index_server.requests() == ["/simple/missing/"]


def test_index_server_reports_a_failed_start(tmp_path: Path) -> None:
    server = IndexServer(tmp_path / "root", python=sys.executable,
                         log_dir=tmp_path / "log")
    server.hash_algo = "no-such-hash-algorithm"
    with pytest.raises(RuntimeError, match="pypiserver exited"):
        server.start()
    assert not server.running
    assert "no-such-hash-algorithm" in server.log_text()


def test_clean_environ_fixture(clean_environ: Path, tmp_path: Path) -> None:
    assert not [k for k in os.environ if k.startswith("UV_")]
    assert "PIP_FIND_LINKS" not in os.environ and "PIP_CERT" not in os.environ
    assert os.environ["PIP_CONFIG_FILE"] == os.devnull
    assert Path(os.environ["XDG_CACHE_HOME"]) == clean_environ
    assert clean_environ.is_relative_to(tmp_path) and clean_environ.is_dir()


def test_wheel_factory_takes_an_optional_destination(wheel_factory: WheelFactory,
                                                     tmp_path: Path) -> None:
    default = wheel_factory("one", "1.0")
    chosen = wheel_factory(tmp_path / "elsewhere", "one", "1.0", tag="py3-none-any")
    assert default.parent == tmp_path / "wheels" and chosen.parent == tmp_path / "elsewhere"
    assert default.read_bytes() == chosen.read_bytes()
