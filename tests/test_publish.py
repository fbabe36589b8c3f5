"""`publish`: a verified bundle's wheels into a real index, and pip installing from it.

pypiserver with htpasswd upload auth (`-a update`) and a real devpi-server take the
uploads; real pip then installs the bundle's requirements from them with
`--require-hashes`, isolated from this machine's pip configuration. The CLI runs as its
own process, with credentials only in its environment, ~/.pypirc or netrc.
"""

from __future__ import annotations

import base64
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import venvs
from bundles import make_bundle
from clirun import run_cli
from conftest import AUTH
from devpiserver import DevpiServer, devpi_available
from dropproxy import DropProxy
from indexserver import IndexServer
from venvs import clean_env, make_venv, pip_freeze, run_pip
from wheelfactory import build_wheel, sha256_of

WRONG = "wr0ng-upload-pw-7"

GAMMA_METADATA = b"""Metadata-Version: 2.1
Name: gamma
Version: 3.0
Summary: A package with the metadata an index shows
Keywords: air,gap
Classifier: Programming Language :: Python :: 3
Classifier: Topic :: System :: Archiving
Project-URL: Source, https://example.invalid/gamma
Requires-Python: >=3.8

Long description.
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Bundles built once, with the wheels they hold and a same-named impostor."""
    root = tmp_path_factory.mktemp("publish")
    wheels = root / "wheels"
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp, root)
        alpha = build_wheel(wheels, "alpha", "1.0")
        beta = build_wheel(wheels, "beta", "2.0", requires=["alpha"])
        gamma = build_wheel(wheels, "gamma", "3.0", extra_files={
            "gamma-3.0.dist-info/METADATA": GAMMA_METADATA})
        bulky = build_wheel(wheels, "bulky", "1.0", payload_size=3_000_000)
        impostor = build_wheel(root / "impostor", "alpha", "1.0",
                               extra_files={"alpha/other.py": b"x = 1\n"})
        with IndexServer(root / "index", log_dir=root / "index-log") as index:
            yield {
                "app": make_bundle(root / "app.tar", [alpha, beta, gamma], index,
                                   root / "cache"),
                "bulky": make_bundle(root / "bulky.tar", [alpha, bulky], index, root / "cache"),
                "alpha": alpha, "beta": beta, "gamma": gamma, "bulky.whl": bulky,
                "impostor": impostor,
            }


@pytest.fixture
def upload_index(tmp_path: Path) -> Iterator[IndexServer]:
    """pypiserver that anyone may read and only AUTH may upload to (`-a update`)."""
    with IndexServer(tmp_path / "upload", auth=AUTH, protect="update",
                     log_dir=tmp_path / "upload-log") as server:
        yield server


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment: the machine's pip and twine settings gone, a HOME (and so a
    ~/.pypirc) and netrc of the test's own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in clean_env().items() if not k.startswith("TWINE_")}
    return env | {"HOME": str(home), "NETRC": str(tmp_path / "no-netrc"),
                  "XDG_CACHE_HOME": str(tmp_path / "xdg")} | extra


def twine_env(tmp_path: Path, password: str = AUTH[1]) -> dict[str, str]:
    return env_for(tmp_path, TWINE_USERNAME=AUTH[0], TWINE_PASSWORD=password)


def publish(bundle: Path, url: str, env: dict[str, str], *extra: str
            ) -> tuple[int, dict, str]:
    done = run_cli("publish", bundle, "--repository-url", url, "--json", *extra, env=env)
    doc = json.loads(done.stdout) if done.returncode == 0 else {}
    return done.returncode, doc, done.stdout + done.stderr


def requirements_of(bundle: Path, dest: Path) -> Path:
    """The bundle's (one) targets/<t>/requirements.txt, copied out."""
    with tarfile.open(bundle) as tar:
        member = next(m for m in tar.getmembers()
                      if m.name.endswith("/requirements.txt") and "/targets/" in m.name)
        reqs = dest / "requirements.txt"
        reqs.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    return reqs


def posts(server: IndexServer) -> list[str]:
    return server.requests("POST")


def test_publish_then_pip_installs_the_bundles_files_and_a_second_run_uploads_nothing(
        made, upload_index, tmp_path) -> None:
    rc, doc, out = publish(made["app"], upload_index.base_url, twine_env(tmp_path))
    assert rc == 0, out
    names = sorted(made[n].name for n in ("alpha", "beta", "gamma"))
    assert sorted(doc["uploaded"]) == names and doc["present"] == []
    assert doc["index"] == upload_index.url and doc["dry_run"] is False
    assert doc["bytes"] == sum(made[n].stat().st_size for n in ("alpha", "beta", "gamma"))
    for n in ("alpha", "beta", "gamma"):  # the very bytes of the bundle
        assert sha256_of(upload_index.root / made[n].name) == sha256_of(made[n])
    assert len(posts(upload_index)) == 3

    python = make_venv(tmp_path / "venv", with_pip=False)
    run_pip(python, "install", "--index-url", upload_index.url, "--require-hashes",
            "-r", str(requirements_of(made["app"], tmp_path)))
    assert pip_freeze(python) == {"alpha": "1.0", "beta": "2.0", "gamma": "3.0"}

    upload_index.reset_requests()
    rc, doc, out = publish(made["app"], upload_index.base_url, twine_env(tmp_path))
    assert rc == 0, out
    assert doc["uploaded"] == [] and sorted(doc["present"]) == names and doc["bytes"] == 0
    assert posts(upload_index) == []


def test_the_human_summary_counts_uploads_and_files_already_there(
        made, upload_index, tmp_path) -> None:
    upload_index.add(made["alpha"])
    done = run_cli("publish", made["app"], "--repository-url", upload_index.base_url,
                   env=twine_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("uploaded 2 files, ") and "already present 1" in done.stdout
    assert f"uploaded {made['beta'].name}" in done.stderr


def test_a_wrong_password_fails_without_showing_it(made, upload_index, tmp_path) -> None:
    for extra in ((), ("--json",)):
        done = run_cli("publish", made["app"], "--repository-url", upload_index.base_url,
                       *extra, env=twine_env(tmp_path, WRONG))
        assert done.returncode == 4, done.stderr
        shown = done.stdout + done.stderr
        header = base64.b64encode(f"{AUTH[0]}:{WRONG}".encode()).decode()
        assert WRONG not in shown and header not in shown
        assert "403" in done.stderr and f"repository {upload_index.base_url}" in done.stderr
        assert "Traceback" not in shown and len(done.stderr.strip().splitlines()) == 1
    assert not any(upload_index.root.glob("*.whl"))


def test_a_password_in_the_url_argument_is_refused(made, upload_index, tmp_path) -> None:
    url = upload_index.base_url.replace("http://", f"http://{AUTH[0]}:{AUTH[1]}@")
    done = run_cli("publish", made["app"], "--repository-url", url, env=env_for(tmp_path))
    assert done.returncode == 2
    assert AUTH[1] not in done.stderr and "command line" in done.stderr
    assert posts(upload_index) == []


def test_the_same_name_with_other_bytes_is_refused_before_any_upload(
        made, upload_index, tmp_path) -> None:
    upload_index.add(made["impostor"])
    for extra in ((), ("--dry-run",)):
        done = run_cli("publish", made["app"], "--repository-url", upload_index.base_url,
                       *extra, env=twine_env(tmp_path))
        assert done.returncode == 3, done.stderr
        assert made["alpha"].name in done.stderr and "nothing was uploaded" in done.stderr
        assert sha256_of(made["impostor"]) in done.stderr
    assert posts(upload_index) == []  # not even beta and gamma, which did not clash
    assert sorted(p.name for p in upload_index.root.glob("*.whl")) == [made["alpha"].name]


def test_dry_run_uploads_nothing_and_says_what_it_would(made, upload_index, tmp_path) -> None:
    upload_index.add(made["alpha"])
    rc, doc, out = publish(made["app"], upload_index.base_url, twine_env(tmp_path),
                           "--dry-run")
    assert rc == 0, out
    assert doc["dry_run"] is True
    assert sorted(doc["uploaded"]) == sorted([made["beta"].name, made["gamma"].name])
    assert doc["present"] == [made["alpha"].name]
    assert posts(upload_index) == []
    assert sorted(p.name for p in upload_index.root.glob("*.whl")) == [made["alpha"].name]


def test_a_tampered_bundle_is_refused_before_the_index_is_asked(
        made, upload_index, tmp_path) -> None:
    bundle = tmp_path / "app.tar"
    data = bytearray(made["app"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    sidecar = made["app"].with_name("app.tar.sha256")
    (tmp_path / sidecar.name).write_bytes(sidecar.read_bytes())
    done = run_cli("publish", bundle, "--repository-url", upload_index.base_url,
                   env=twine_env(tmp_path))
    assert done.returncode == 3, done.stderr
    assert upload_index.requests() == []


def test_a_connection_dropped_mid_upload_is_retried(made, upload_index, tmp_path) -> None:
    with DropProxy(upload_index.port or 0, drops=1, after=256 * 1024) as proxy:
        rc, doc, out = publish(made["bulky"], proxy.url, twine_env(tmp_path), "-j", "1")
    assert rc == 0, out
    bulky = made["bulky.whl"]
    assert sorted(doc["uploaded"]) == sorted([made["alpha"].name, bulky.name])
    cut = proxy.posts()
    assert [dropped for _, dropped in cut] == [True, False, False]  # bulky first: largest
    assert sha256_of(upload_index.root / bulky.name) == sha256_of(bulky)
    assert len(posts(upload_index)) == 2  # the cut request never reached the server


def test_an_upload_whose_answer_was_lost_is_found_on_the_index(
        made, upload_index, tmp_path) -> None:
    """The server stored the file, the answer never came: the retry hears 409, and the
    Simple page, read again, shows the bundle's own bytes there."""
    with DropProxy(upload_index.port or 0, drops=1, mode="lose-answer") as proxy:
        rc, doc, out = publish(made["bulky"], proxy.url, twine_env(tmp_path), "-j", "1")
    assert rc == 0, out
    assert doc["uploaded"] == [made["alpha"].name]
    assert doc["present"] == [made["bulky.whl"].name]
    assert len(posts(upload_index)) == 3  # bulky twice (stored, then 409), alpha once


def test_without_a_simple_page_it_learns_from_the_upload_answers(
        made, upload_index, tmp_path) -> None:
    upload_index.add(made["alpha"])
    with DropProxy(upload_index.port or 0, drops=0, hide=("/simple",)) as proxy:
        done = run_cli("publish", made["app"], "--repository-url", proxy.url,
                       env=twine_env(tmp_path))
        assert done.returncode == 0, done.stderr
        assert "no Simple page" in done.stderr and "--index-url" in done.stderr
        assert f"warning: {made['alpha'].name}: the index already has this name" \
            in done.stderr
        assert done.stdout.startswith("uploaded 2 files")
        rc, doc, out = publish(made["app"], proxy.url, twine_env(tmp_path))
    assert rc == 0, out
    assert doc["uploaded"] == [] and doc["index"] is None and len(doc["unchecked"]) == 3


def test_an_index_listing_no_hashes_is_compared_by_downloading(made, tmp_path) -> None:
    with IndexServer(tmp_path / "nohash", auth=AUTH, protect="update", hash_algo=None,
                     log_dir=tmp_path / "nohash-log") as server:
        server.add(made["alpha"])
        rc, doc, out = publish(made["app"], server.base_url, twine_env(tmp_path))
        assert rc == 0, out
        assert doc["present"] == [made["alpha"].name] and len(doc["uploaded"]) == 2
        assert f"/packages/{made['alpha'].name}" in server.requests("GET")

        (server.root / made["alpha"].name).write_bytes(made["impostor"].read_bytes())
        rc, doc, out = publish(made["app"], server.base_url, twine_env(tmp_path))
        assert rc == 3 and made["alpha"].name in out


def test_pypirc_gives_url_and_credentials_and_listings_behind_auth_work(
        made, auth_index_server, tmp_path) -> None:
    """twine's ~/.pypirc (here a server whose pages need the password too)."""
    env = env_for(tmp_path)
    Path(env["HOME"], ".pypirc").write_text(
        f"[distutils]\nindex-servers =\n    internal\n\n[internal]\n"
        f"repository = {auth_index_server.base_url}\nusername = {AUTH[0]}\n"
        f"password = {AUTH[1]}\n")
    for _ in range(2):
        done = run_cli("publish", made["app"], "--repository", "internal", "--json", env=env)
        assert done.returncode == 0, done.stderr
        assert AUTH[1] not in done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["uploaded"] == [] and len(doc["present"]) == 3  # the page was read

    done = run_cli("publish", made["app"], "--repository", "nowhere", env=env)
    assert done.returncode == 2 and "no [nowhere] section" in done.stderr
    assert "internal" in done.stderr


def test_netrc_gives_the_credentials(made, upload_index, tmp_path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {AUTH[0]} password {AUTH[1]}\n")
    netrc.chmod(0o600)
    rc, doc, out = publish(made["app"], upload_index.base_url,
                           env_for(tmp_path, NETRC=str(netrc)), "-t", "nope")
    assert rc == 2 and "no target 'nope'" in out
    rc, doc, out = publish(made["app"], upload_index.base_url,
                           env_for(tmp_path, NETRC=str(netrc)))
    assert rc == 0, out
    assert len(doc["uploaded"]) == 3 and AUTH[1] not in out


# ---- devpi

@pytest.fixture(scope="module")
def devpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevpiServer]:
    if not devpi_available():
        pytest.skip("devpi-server is not installed (it is in the dev extras)")
    with DevpiServer(tmp_path_factory.mktemp("devpi") / "server") as server:
        yield server


def test_devpi_publish_install_and_second_run(made, devpi, tmp_path) -> None:
    url = devpi.make_index(AUTH[0], AUTH[1], "gap")
    rc, doc, out = publish(made["app"], url, twine_env(tmp_path))
    assert rc == 0, out
    assert doc["index"] == url + "+simple/"
    assert len(doc["uploaded"]) == 3
    assert devpi.listed(AUTH[0], "gap", "gamma") == [made["gamma"].name]

    # The form carried METADATA: devpi shows it for the release.
    release = httpx.get(url + "gamma/3.0", headers={"Accept": "application/json"},
                        trust_env=False).json()["result"]
    assert release["summary"] == "A package with the metadata an index shows"
    assert "Topic :: System :: Archiving" in release["classifiers"]
    assert release["requires_python"] == ">=3.8"

    python = make_venv(tmp_path / "venv", with_pip=False)
    run_pip(python, "install", "--index-url", url + "+simple/", "--require-hashes",
            "-r", str(requirements_of(made["app"], tmp_path)))
    assert pip_freeze(python) == {"alpha": "1.0", "beta": "2.0", "gamma": "3.0"}

    rc, doc, out = publish(made["app"], url, twine_env(tmp_path))
    assert rc == 0, out
    assert doc["uploaded"] == [] and len(doc["present"]) == 3


def test_devpi_conflict_and_wrong_password(made, devpi, tmp_path) -> None:
    url = devpi.make_index(AUTH[0], AUTH[1], "clash")
    impostor = made["impostor"]
    with open(impostor, "rb") as fh:  # someone uploaded other bytes under alpha's name
        answer = httpx.post(url, auth=AUTH, trust_env=False, files={"content": (
            impostor.name, fh, "application/octet-stream")}, data={
            ":action": "file_upload", "protocol_version": "1", "name": "alpha",
            "version": "1.0", "filetype": "bdist_wheel", "pyversion": "py3"})
    assert answer.status_code == 200, answer.text

    done = run_cli("publish", made["app"], "--repository-url", url, env=twine_env(tmp_path))
    assert done.returncode == 3 and made["alpha"].name in done.stderr
    assert devpi.listed(AUTH[0], "clash", "beta") == []  # nothing uploaded

    url = devpi.make_index(AUTH[0], AUTH[1], "locked")
    done = run_cli("publish", made["app"], "--repository-url", url,
                   env=twine_env(tmp_path, WRONG))
    assert done.returncode == 4, done.stderr
    assert WRONG not in done.stdout + done.stderr and "401" in done.stderr
    assert devpi.listed(AUTH[0], "locked", "alpha") == []
