"""The CLI against a real HTTPS index: which CAs it trusts, client certificates, failures.

tls.py picks the CA bundle (--cert, else PIP_CERT, else httpx's choice: SSL_CERT_FILE,
else SSL_CERT_DIR, else certifi) and loads --client-cert. A mistake there shows only over
real TLS, so these tests run `bundle` against FaultServer speaking HTTPS on 127.0.0.1, with
certificates made here by the openssl command line. Nothing reaches the internet.

tls.context keeps one TLS context per process for each (CA file, client cert, SSL_CERT_FILE,
SSL_CERT_DIR). Every test therefore trusts its own copies of the CA files, under its own
tmp_path, so no test can pass on a context another test made.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clirun import run_cli
from faultserver import FaultServer
from locktext import Pin, poetry_lock, pyproject

from wheelhouse_bundler.cli import main

OPENSSL = shutil.which("openssl")
if OPENSSL is None:
    pytest.skip("needs the openssl command line", allow_module_level=True)

# Our own config, so the machine's openssl.cnf adds nothing (it may make every cert a CA).
REQ_CONFIG = "[req]\ndistinguished_name = dn\n[dn]\n"


@dataclass(frozen=True)
class Pki:
    ca: Path  # signed the three below
    server: Path  # for 127.0.0.1
    server_key: Path
    client: Path  # client certificate and its key in one PEM, as --client-cert takes it
    other_ca: Path  # a valid CA that signed nothing here


def _openssl(folder: Path, name: str, *extra: str | Path) -> tuple[Path, Path]:
    """A new EC key and a certificate for it, valid two days: (cert, key)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run([OPENSSL, "req", "-x509", "-config", folder / "req.cnf", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-keyout", key, "-out", cert, *extra],
                   check=True, capture_output=True)
    return cert, key


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    return _openssl(folder, name, "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    (folder / "req.cnf").write_text(REQ_CONFIG)
    ca, ca_key = _ca(folder, "test-ca")
    signed_by_ca = ("-CA", ca, "-CAkey", ca_key)
    server, server_key = _openssl(folder, "server", *signed_by_ca,
                                  "-addext", "subjectAltName=IP:127.0.0.1",
                                  "-addext", "extendedKeyUsage=serverAuth")
    client, client_key = _openssl(folder, "client", *signed_by_ca,
                                  "-addext", "extendedKeyUsage=clientAuth")
    (folder / "client-bundle.pem").write_text(client.read_text() + client_key.read_text())
    return Pki(ca, server, server_key, folder / "client-bundle.pem", _ca(folder, "other-ca")[0])


def server_tls(pki: Pki, client_ca: Path | None = None) -> ssl.SSLContext:
    """The server's side; with `client_ca`, a client certificate it signed is required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server, pki.server_key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


@dataclass
class Case:
    """One test's project, its wheel and its own folder."""

    root: Path
    wheel: Path
    tmp: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out" / "app.tar"

    def copy(self, pem: Path) -> Path:
        """`pem` at a path of this test's own (see the module docstring)."""
        mine = self.tmp / "trust" / pem.name
        mine.parent.mkdir(exist_ok=True)
        shutil.copyfile(pem, mine)
        return mine

    def args(self, server: FaultServer, *extra: object) -> list[str]:
        return [str(a) for a in ("bundle", self.root, "-o", self.out, "--index-url",
                                 server.url, "--cache-dir", self.tmp / "cache", "-q", *extra)]


@pytest.fixture
def case(tmp_path: Path, wheel_factory, clean_environ,
         monkeypatch: pytest.MonkeyPatch) -> Case:
    # clean_environ drops PIP_*; the machine also sets SSL_CERT_*: each test sets its own.
    for var in ("PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)
    wheel = wheel_factory("tlspkg", "1.0")
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock([Pin("tlspkg", "1.0", [wheel])]))
    (tmp_path / "out").mkdir()
    return Case(root, wheel, tmp_path)


@pytest.fixture
def https(case: Case, pki: Pki) -> Iterator[FaultServer]:
    with FaultServer(case.wheel.parent, tls=server_tls(pki)) as server:
        yield server


@pytest.fixture
def mutual_tls(case: Case, pki: Pki) -> Iterator[FaultServer]:
    with FaultServer(case.wheel.parent, tls=server_tls(pki, client_ca=pki.ca)) as server:
        yield server


def assert_bundled(case: Case, server: FaultServer, *extra: object) -> None:
    """`bundle` succeeds, the wheel came over this server's TLS, and the bundle verifies."""
    assert main(case.args(server, *extra)) == 0
    assert server.files_requested(case.wheel.name)
    assert main(["verify", str(case.out)]) == 0


def one_line_failure(case: Case, server: FaultServer, code: int, *extra: object) -> str:
    """Run the CLI as its own process; it must fail with `code`, one line, no bundle."""
    proc = run_cli(*case.args(server, *extra))
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert list(case.out.parent.iterdir()) == []
    return proc.stderr.strip()


def test_cert_option_wins_over_pip_cert_and_ssl_cert_file(case, pki, https,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("PIP_CERT", str(case.copy(pki.other_ca)))
    monkeypatch.setenv("SSL_CERT_FILE", str(case.copy(pki.other_ca)))
    assert_bundled(case, https, "--cert", case.copy(pki.ca))


def test_pip_cert_wins_over_ssl_cert_file(case, pki, https, monkeypatch) -> None:
    monkeypatch.setenv("PIP_CERT", str(case.copy(pki.ca)))
    monkeypatch.setenv("SSL_CERT_FILE", str(case.copy(pki.other_ca)))
    assert_bundled(case, https)


def test_ssl_cert_file_is_trusted_without_cert_or_pip_cert(case, pki, https,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(case.copy(pki.ca)))
    assert_bundled(case, https)


def test_ssl_cert_dir_is_trusted_without_any_file(case, pki, https, monkeypatch) -> None:
    folder = case.copy(pki.ca).parent
    subprocess.run([OPENSSL, "rehash", folder], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    assert_bundled(case, https)


def test_a_passing_tls_alert_is_retried(case, pki, monkeypatch) -> None:
    """A decode_error alert (seen from a middlebox on a live run) is not a verdict on any
    certificate: the next connection may well succeed, so it is retried like a reset."""
    monkeypatch.setenv("SSL_CERT_FILE", str(case.copy(pki.ca)))
    with FaultServer(case.wheel.parent, tls=server_tls(pki), tls_alerts=2) as server:
        assert_bundled(case, server)
        assert server.tls_alerts == 0  # both alerts were sent, and the run got past them


def test_untrusted_server_fails_in_one_line(case, pki, https, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(case.copy(pki.other_ca)))
    line = one_line_failure(case, https, 4)
    assert line.startswith("wheelhouse-bundler: network error: ")
    assert https.url in line and "TLS certificate is not trusted" in line
    assert "after" not in line  # refused at once: a retry cannot change a certificate


def test_client_cert_is_presented_when_the_server_requires_one(case, pki,
                                                               mutual_tls) -> None:
    assert_bundled(case, mutual_tls, "--cert", case.copy(pki.ca),
                   "--client-cert", case.copy(pki.client))


def test_server_requiring_a_client_cert_refuses_one_without(case, pki, mutual_tls) -> None:
    line = one_line_failure(case, mutual_tls, 4, "--cert", case.copy(pki.ca))
    assert line.startswith("wheelhouse-bundler: network error: ")
    assert mutual_tls.url in line and "--client-cert" in line


@pytest.mark.parametrize(("option", "content"), [
    ("--cert", None), ("--cert", "not a certificate\n"), ("--client-cert", None)])
def test_unusable_certificate_file_is_a_usage_error(case, pki, https, option,
                                                    content) -> None:
    bad = case.tmp / "bad.pem"
    if content is not None:
        bad.write_text(content)
    extra = () if option == "--cert" else ("--cert", case.copy(pki.ca))
    line = one_line_failure(case, https, 2, option, bad, *extra)
    assert str(bad) in line


CA_SOURCES = ("--cert", "PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR")
"""Where the trusted CAs come from, highest priority first (tls.py's docstring)."""


def trust(case: Case, monkeypatch: pytest.MonkeyPatch, where: str, pem: Path) -> list[object]:
    """Put `pem` in `where`; returns the CLI arguments that takes (for --cert)."""
    if where == "--cert":
        return ["--cert", case.copy(pem)]
    if where == "SSL_CERT_DIR":
        folder = case.tmp / "cert-dir"
        folder.mkdir()
        shutil.copyfile(pem, folder / pem.name)
        subprocess.run([OPENSSL, "rehash", folder], check=True, capture_output=True)
        monkeypatch.setenv(where, str(folder))
    else:
        monkeypatch.setenv(where, str(case.copy(pem)))
    return []


@pytest.mark.parametrize(("higher", "lower"), [
    (h, low) for i, h in enumerate(CA_SOURCES) for low in CA_SOURCES[i + 1:]])
def test_the_higher_ca_source_alone_decides_even_when_it_is_wrong(
        case, pki, https, monkeypatch, higher: str, lower: str) -> None:
    """The reverse of the precedence tests above: the right CA one step lower must not
    rescue a wrong CA one step higher (a merge or a fallback would pass those)."""
    extra = trust(case, monkeypatch, higher, pki.other_ca)
    extra += trust(case, monkeypatch, lower, pki.ca)
    line = one_line_failure(case, https, 4, *extra)
    assert line.startswith("wheelhouse-bundler: network error: ")
    assert https.url in line and "TLS certificate is not trusted" in line
    assert not https.files_requested(case.wheel.name)
