"""The offline vulnerability gate: OSV semantics, the audit command, bundle --audit.

The advisories are tests/data/osv/*.json: real-format OSV records with invented IDs
(PYSEC-0000-TESTn, GHSA-aaaa-bbbb-c00n), one per matching rule.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from clirun import run_cli
from locktext import Pin, hashed_requirements, poetry_lock, pyproject

from wheelhouse_bundler import audit
from wheelhouse_bundler.cli import main

OSV = Path(__file__).parent / "data" / "osv"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def osv_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture records as OSV publishes them: one zip of <ID>.json at its root."""
    path = tmp_path_factory.mktemp("osv") / "all.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for record in sorted(OSV.glob("*.json")):
            zf.write(record, record.name)
    return path


@pytest.mark.parametrize(("package", "version", "ids"), [
    ("alpha-pkg", "1.0", ["PYSEC-0000-TEST1"]),   # versions list, name normalized
    ("alpha_pkg", "0.9", ["PYSEC-0000-TEST1"]),
    ("alpha-pkg", "1.0.0", ["PYSEC-0000-TEST1"]),  # PEP 440 equality, not string equality
    ("alpha-pkg", "1.1", []),
    ("beta", "0.0.1", ["PYSEC-0000-TEST2"]),       # introduced 0
    ("beta", "2.0", ["PYSEC-0000-TEST2"]),
    ("beta", "2.1", []),                           # fixed is exclusive
    ("beta", "2.1rc1", ["PYSEC-0000-TEST2"]),      # a pre-release sorts before the fix
    ("gamma", "0.9", []),
    ("gamma", "1.0", ["PYSEC-0000-TEST3"]),        # introduced is inclusive
    ("gamma", "1.5", ["PYSEC-0000-TEST3"]),        # last_affected is inclusive
    ("gamma", "1.5.1", []),
    ("delta", "2.9", ["PYSEC-0000-TEST4"]),        # below the limit
    ("delta", "3.0", []),                          # limit is exclusive
    ("delta", "10.0", []),
    ("epsilon", "1.0", []),                        # withdrawn record
    ("zeta", "1.3", ["PYSEC-0000-TEST7"]),         # SEMVER range
    ("zeta", "1.10", []),                          # compared as versions, not strings
    ("eta", "1.5", []),                            # between two intervals
    ("eta", "2.1", ["PYSEC-0000-TEST8"]),
    ("unrelated", "1.0", []),
])
def test_osv_matching_rules(package: str, version: str, ids: list[str]) -> None:
    db = audit.load(OSV)
    assert [f.id for f in audit.check(db, [(package, version)])] == ids


def test_zip_dump_reads_like_the_folder(osv_zip: Path) -> None:
    from_zip, from_dir = audit.load(osv_zip), audit.load(OSV)
    assert from_zip.records == from_dir.records == 8
    assert from_zip.withdrawn == 1
    pins = [("alpha-pkg", "1.0"), ("beta", "2.0"), ("eta", "2.1")]
    assert audit.check(from_zip, pins) == audit.check(from_dir, pins)
    # the npm record with the same package name is not a PyPI advisory
    assert "GHSA-aaaa-bbbb-c006" not in {a.id for advs in from_zip.by_name.values()
                                          for a in advs}


def test_a_malformed_record_is_an_error_not_a_silent_pass(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "osv"
    bad.mkdir()
    (bad / "PYSEC-0000-BAD.json").write_text("{not json")
    (tmp_path / "requirements.txt").write_text("beta==2.0 --hash=sha256:" + "a" * 64 + "\n")
    assert cli("audit", tmp_path / "requirements.txt", "--osv-db", bad) == 2
    err = capsys.readouterr().err
    assert "PYSEC-0000-BAD.json" in err and len(err.strip().splitlines()) == 1


def _lock(tmp_path: Path) -> Path:
    """A hashed requirements lock pinning two vulnerable versions and a clean one."""
    text = "".join(f"{n}=={v} --hash=sha256:{c * 64}\n"
                   for n, v, c in (("beta", "2.0", "a"), ("gamma", "1.5", "b"),
                                   ("delta", "3.0", "c")))
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    return path


def test_audit_lock_reports_package_version_advisory_aliases_fixed(tmp_path: Path, osv_zip,
                                                                   capsys) -> None:
    lock = _lock(tmp_path)
    assert cli("audit", lock, "--osv-db", osv_zip, "--json") == 3
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False
    assert report["findings"] == [
        {"package": "beta", "version": "2.0", "id": "PYSEC-0000-TEST2",
         "aliases": ["GHSA-aaaa-bbbb-c002", "CVE-0000-0002"],
         "summary": "introduced 0, fixed 2.1", "fixed": ["2.1"]},
        {"package": "gamma", "version": "1.5", "id": "PYSEC-0000-TEST3",
         "aliases": ["GHSA-aaaa-bbbb-c003"], "summary": "last_affected 1.5", "fixed": []},
    ]
    assert "vulnerable" in captured.err and "beta 2.0" in captured.err

    assert cli("audit", lock, "--osv-db", OSV) == 3
    text = capsys.readouterr().out
    assert "beta 2.0  PYSEC-0000-TEST2 (GHSA-aaaa-bbbb-c002, CVE-0000-0002)  fixed in 2.1" \
        in text


def test_ignore_vuln_by_id_or_alias_accepts(tmp_path: Path, capsys) -> None:
    lock = _lock(tmp_path)
    assert cli("audit", lock, "--osv-db", OSV, "--json", "--ignore-vuln", "PYSEC-0000-TEST2",
               "--ignore-vuln", "GHSA-aaaa-bbbb-c003", "--ignore-vuln", "GHSA-none") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["findings"] == []
    assert [f["id"] for f in report["accepted"]] == ["PYSEC-0000-TEST2", "PYSEC-0000-TEST3"]
    assert report["unused_ignores"] == ["GHSA-none"]


@pytest.fixture
def vulnerable_project(tmp_path: Path, index_server, wheel_factory, clean_environ) -> Path:
    beta = wheel_factory("beta", "2.0")
    delta = wheel_factory("delta", "3.0")
    for w in (beta, delta):
        index_server.add(w)
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock([Pin("beta", "2.0", [beta]),
                                                   Pin("delta", "3.0", [delta])]))
    return root


def test_bundle_audit_refuses_then_records_the_acceptance(vulnerable_project, index_server,
                                                          tmp_path, capsys) -> None:
    out = tmp_path / "app.tar"
    common = ["--index-url", index_server.url, "--cache-dir", tmp_path / "cache", "-q"]
    assert cli("bundle", vulnerable_project, "-o", out, *common, "--audit",
               "--osv-db", OSV) == 3
    err = capsys.readouterr().err
    assert "PYSEC-0000-TEST2" in err and "beta 2.0" in err
    assert not out.exists() and not (tmp_path / "app.tar.sha256").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".app.tar")] == []

    assert cli("bundle", vulnerable_project, "-o", out, *common, "--audit", "--osv-db", OSV,
               "--ignore-vuln", "GHSA-aaaa-bbbb-c002", "--json") == 0
    built = json.loads(capsys.readouterr().out)
    assert built["osv_newest_modified"] == "2026-01-02T03:04:05Z"  # a stale dump shows
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("app/manifest.json").read())
    assert manifest["accepted_vulns"] == [
        {"id": "PYSEC-0000-TEST2", "package": "beta", "version": "2.0",
         "aliases": ["GHSA-aaaa-bbbb-c002", "CVE-0000-0002"]}]
    assert manifest["format_version"] == 1

    # Re-audit on the far side: the manifest's acceptance stands, nothing else matches.
    capsys.readouterr()
    assert cli("audit", out, "--osv-db", OSV, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == [] and [f["id"] for f in report["accepted"]] == \
        ["PYSEC-0000-TEST2"]
    assert cli("inspect", out, "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert [a["id"] for a in listing["accepted_vulns"]] == ["PYSEC-0000-TEST2"]


def test_bundle_without_acceptance_field_when_not_audited(vulnerable_project, index_server,
                                                          tmp_path) -> None:
    out = tmp_path / "plain.tar"
    assert cli("bundle", vulnerable_project, "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("plain/manifest.json").read())
    assert "accepted_vulns" not in manifest


def test_audit_needs_a_database(vulnerable_project, tmp_path, capsys) -> None:
    assert cli("bundle", vulnerable_project, "-o", tmp_path / "x.tar", "--audit") == 2
    assert "--osv-db" in capsys.readouterr().err
    assert cli("audit", vulnerable_project, "--osv-db", tmp_path / "missing.zip") == 2


def test_hashed_requirements_helper_locks_are_audited_too(tmp_path: Path, wheel_factory,
                                                         capsys) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text(hashed_requirements([Pin("eta", "2.1", [wheel_factory("eta", "2.1")])]))
    assert cli("audit", lock, "--osv-db", OSV) == 3
    assert "PYSEC-0000-TEST8" in capsys.readouterr().out


def test_audit_as_its_own_process(tmp_path: Path, osv_zip: Path) -> None:
    """Exit 3 with the findings while anything is vulnerable, exit 0 once each is
    accepted by id or alias; the JSON on stdout, the verdict on stderr."""
    lock = _lock(tmp_path)
    done = run_cli("audit", lock, "--osv-db", osv_zip, "--json")
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert [(f["package"], f["id"]) for f in report["findings"]] == [
        ("beta", "PYSEC-0000-TEST2"), ("gamma", "PYSEC-0000-TEST3")]
    assert "vulnerable" in done.stderr and "Traceback" not in done.stderr
    accepted = run_cli("audit", lock, "--osv-db", osv_zip, "--json", "--ignore-vuln",
                       "PYSEC-0000-TEST2", "--ignore-vuln", "GHSA-aaaa-bbbb-c003")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["findings"] == []


# ---- a database that cannot find anything is refused, and its age is shown -------------

def _one_line(done, code: int, *says: str) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for text in says:
        assert text in lines[0], (text, lines[0])


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def _npm_record() -> str:
    doc = json.loads((OSV / "PYSEC-0000-TEST2.json").read_text())
    for entry in doc["affected"]:
        entry["package"]["ecosystem"] = "npm"
    return json.dumps(doc)


@pytest.mark.parametrize("make", [
    lambda d: d,  # an empty folder
    lambda d: _zip(d / "all.zip", {}),
    lambda d: _zip(d / "all.zip", {"README.txt": "nothing here"}),
    lambda d: _zip(d / "npm.zip", {"GHSA-npm.json": _npm_record()}),
], ids=["empty folder", "empty zip", "zip without records", "another ecosystem"])
def test_a_database_without_pypi_advisories_is_refused(make, tmp_path: Path,
                                                       clean_environ) -> None:
    """It would report every version clean: `0 open`, exit 0, for any lock at all."""
    folder = tmp_path / "osv"
    folder.mkdir()
    db = make(folder)
    done = run_cli("audit", _lock(tmp_path), "--osv-db", db, "--json")
    _one_line(done, 2, f"--osv-db {db}", "would pass every version")
    assert done.stdout == ""


def test_bundle_audit_with_an_empty_database_is_refused_before_any_work(
        tmp_path: Path, clean_environ) -> None:
    empty = tmp_path / "osv"
    empty.mkdir()
    out = tmp_path / "app.tar"
    done = run_cli("bundle", _lock(tmp_path), "-o", out, "--audit", "--osv-db", empty,
                   "--index-url", "http://127.0.0.1:9/simple/", "-t",
                   "cp311-manylinux_2_28_x86_64", "--cache-dir", tmp_path / "cache")
    _one_line(done, 2, "no OSV records")
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_audit_shows_the_newest_modified_date(tmp_path: Path, clean_environ) -> None:
    db = tmp_path / "osv"
    db.mkdir()
    for record in OSV.glob("*.json"):
        (db / record.name).write_text(record.read_text())
    newer = json.loads((db / "PYSEC-0000-TEST5.json").read_text())
    newer["modified"] = "2026-06-30T12:00:00Z"
    (db / "PYSEC-0000-TEST5.json").write_text(json.dumps(newer))
    clean = tmp_path / "requirements.txt"
    clean.write_text("delta==3.0 --hash=sha256:" + "c" * 64 + "\n")
    done = run_cli("audit", clean, "--osv-db", db, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["newest_modified"] == "2026-06-30T12:00:00Z"
    assert "newest modified 2026-06-30T12:00:00Z" in done.stderr


def test_packages_the_lock_cannot_bundle_are_audited_too(tmp_path: Path, capsys) -> None:
    """beta==2.0 has no --hash, so no target could bundle it as locked; the lock still
    installs it somewhere (with --allow-unhashed, or by another tool), so the audit
    must not pass over it."""
    lock = tmp_path / "requirements.txt"
    lock.write_text('beta==2.0 ; sys_platform == "win32"\nwild>=1.0\n')
    assert cli("audit", lock, "--osv-db", OSV, "--json") == 3
    report = json.loads(capsys.readouterr().out)
    assert [(f["package"], f["version"], f["id"]) for f in report["findings"]] == [
        ("beta", "2.0", "PYSEC-0000-TEST2")]
    assert report["packages"] == 1  # `wild>=1.0` pins no version to audit
