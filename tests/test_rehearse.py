"""The DR drill through the real CLI: a restore with no network, timed, reported."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from bundles import alpha_beta, make_bundle
from clirun import HAS_UNSHARE, run_cli


@pytest.fixture
def bundle(index_server, wheel_factory, tmp_path: Path, clean_environ) -> Path:
    return make_bundle(tmp_path / "app.tar", alpha_beta(wheel_factory), index_server,
                       tmp_path / "cache")


def test_rehearsal_restores_and_reports_each_step(bundle: Path, tmp_path: Path) -> None:
    report = tmp_path / "drill.md"
    done = run_cli("rehearse", bundle, "--json", "--report", report, "--smoke",
                   "python -c 'import alpha'")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["error"] is None
    assert [s["name"] for s in result["steps"]] == ["verify", "prepare", "venv", "install",
                                                    "check", "smoke", "switch", "cleanup"]
    assert all(s["ok"] for s in result["steps"])
    assert result["imported"] == ["beta"] and result["packages"] == 2
    assert result["total_seconds"] >= sum(s["seconds"] for s in result["steps"]) - 0.01
    text = report.read_text()
    assert text.startswith("# Restore rehearsal: PASS")
    assert "| install |" in text and "total time to restore" in text


def test_rehearsal_runs_with_no_network_at_all(bundle: Path, index_server,
                                               tmp_path: Path) -> None:
    if not HAS_UNSHARE:
        pytest.skip("`unshare -n` is not available here: the drill cannot take the "
                    "network away, so there is no offline restore to check")
    host, port = index_server.url.split("//")[1].split("/")[0].split(":")
    # Passes only where the index (up and reachable from here) cannot be reached.
    unreachable = (f"python -c \"import socket, sys; s = socket.socket(); s.settimeout(5); "
                   f"sys.exit(s.connect_ex(('{host}', {port})) == 0)\"")
    reachable = subprocess.run(unreachable, shell=True, check=False)
    assert reachable.returncode == 1  # from here the index answers: the probe can fail
    done = run_cli("rehearse", bundle, "--json", "--smoke", unreachable)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["isolation"] == "network namespace (unshare -n)"
    assert [s["name"] for s in result["steps"] if s["name"] == "smoke" and s["ok"]] == ["smoke"]


def test_a_failed_drill_exits_non_zero_and_says_where(bundle: Path, tmp_path: Path) -> None:
    data = bytearray(bundle.read_bytes())
    data[-20_000] ^= 0xFF  # inside a wheel, near the end of the tar
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    report = tmp_path / "drill.md"
    done = run_cli("rehearse", bad, "--report", report)
    assert done.returncode == 3, done.stderr
    text = report.read_text()
    assert text.startswith("# Restore rehearsal: FAIL")
    assert "| verify |" in text and "FAILED" in text and "Error (exit 3)" in text
    assert done.stdout == text
    lines = done.stderr.strip().splitlines()  # the failure where errors go, once
    assert len(lines) == 1 and lines[0].startswith(
        f"wheelhouse-bundler: integrity error: rehearsal of {bad} failed: "), done.stderr
    assert lines[0].split(" failed: ", 1)[1] in text


def test_a_failed_drill_with_json_also_says_it_on_stderr(tmp_path: Path,
                                                         clean_environ) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    done = run_cli("rehearse", bad, "--json")
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["error_kind"] == "integrity error"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"rehearsal of {bad} failed" in lines[0]


@pytest.mark.parametrize("where", ["under a file", "a folder"])
def test_an_unwritable_report_is_refused_before_the_drill(where, tmp_path: Path,
                                                          clean_environ) -> None:
    """Found out after a long drill, it would lose the report: refused first, exit 2."""
    bundle = tmp_path / "app.tar"
    bundle.write_bytes(b"never read: the report is checked first")
    blocker = tmp_path / "blocker"
    if where == "under a file":
        blocker.write_text("a file, not a folder")
        report = blocker / "sub" / "drill.md"
    else:
        blocker.mkdir()
        report = blocker
    done = run_cli("rehearse", bundle, "--report", report)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # no drill ran, so no report either
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--report {report}" in lines[0], done.stderr
