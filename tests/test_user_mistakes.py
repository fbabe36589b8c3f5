"""Bad input tried as a new user would: one line on stderr, the exit code of its kind,
and nothing half-written at an output path.

Every case runs the CLI as its own process (clirun.run_cli), because what is under test is
what the user sees: the exit status and the one line, not an exception object.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import run_cli
from locktext import Pin, hashed_requirements, poetry_lock, pyproject


def one_error_line(done, code: int) -> str:
    """The single stderr line of a failed run, after checking its exit code."""
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("wheelhouse-bundler: "), lines[0]
    return lines[0]


@pytest.fixture
def reqs(tmp_path: Path, index_server, wheel_factory, clean_environ) -> Path:
    """A hashed requirements.txt pinning one wheel the test index serves."""
    alpha = wheel_factory("alpha", "1.0")
    index_server.add(alpha)
    path = tmp_path / "requirements.txt"
    path.write_text(hashed_requirements([Pin("alpha", "1.0", [alpha])]))
    return path


@pytest.fixture
def project(tmp_path: Path, index_server, wheel_factory, clean_environ) -> Path:
    """A poetry project: alpha in main, devtool in the dev group, both served."""
    alpha = wheel_factory("alpha", "1.0")
    devtool = wheel_factory("devtool", "3.0")
    for w in (alpha, devtool):
        index_server.add(w)
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject())
    (root / "poetry.lock").write_text(poetry_lock([
        Pin("alpha", "1.0", [alpha]), Pin("devtool", "3.0", [devtool], groups=["dev"])]))
    return root


def test_sidecar_path_a_folder_leaves_no_bundle(reqs, index_server, tmp_path) -> None:
    out = tmp_path / "out" / "side.tar"
    (tmp_path / "out" / "side.tar.sha256").mkdir(parents=True)
    done = run_cli("bundle", reqs, "-o", out, "--index-url", index_server.url,
                   "--cache-dir", tmp_path / "cache")
    line = one_error_line(done, 2)
    assert f"{out}.sha256" in line and ".part" not in line
    assert sorted(p.name for p in out.parent.iterdir()) == ["side.tar.sha256"]


def test_cache_dir_a_file_is_bad_input_even_offline(reqs, index_server, tmp_path) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("I am a file\n")
    for offline in ((), ("--offline",)):
        done = run_cli("bundle", reqs, "-o", tmp_path / "app.tar", "--cache-dir",
                       not_a_folder, "--index-url", index_server.url, *offline)
        line = one_error_line(done, 2)
        assert str(not_a_folder) in line and "network" not in line
    assert not (tmp_path / "app.tar").exists()


@pytest.mark.parametrize("flags", [("--with", "dev", "--only", "main"),
                                   ("--without", "dev", "--only", "main")])
def test_only_beside_with_or_without_is_refused(project, flags, tmp_path) -> None:
    # No --index-url: the refusal comes before any index is asked.
    done = run_cli("export", project, "-t", "host", *flags)
    line = one_error_line(done, 2)
    assert f"{flags[0]} cannot be combined with --only" in line


NOWHERE = "http://127.0.0.1:9/simple/"  # nothing listens: a request would fail (exit 4)


@pytest.mark.parametrize(("args", "says"), [
    (("bundle", "{lock}", "-o", "{out}", "--osv-db", "{tmp}/osv.zip"),
     "--osv-db is for --audit (or the audit command)"),
    (("bundle", "{lock}", "-o", "{out}", "--audit"),
     "--audit needs --osv-db PATH (an OSV dump: zip or folder)"),
    (("bundle", "{lock}", "-o", "{out}", "--no-uv", "--uv-version", "0.1.0"),
     "--uv-version chooses the uv to carry; --no-uv carries none"),
    (("download", "{lock}", "-d", "{out}", "--offline", "--cert", "{tmp}/ca.pem"),
     "{tmp}/ca.pem: no such file (given as --cert)"),
    (("bundle", "{lock}", "-o", "{out}", "--client-cert", "{tmp}/me.pem"),
     "{tmp}/me.pem: no such file (given as --client-cert)"),
    (("export", "{lock}", "-o", "{out}", "--index-url", "http://me:hunter2@127.0.0.1:9/simple/"),
     "credentials do not belong on the command line"),
    (("verify", "{tmp}/app.tar", "--identity", "me@example.com"),
     "--identity needs --allowed-signers FILE"),
    (("install", "{tmp}/app.tar", "--venv", "{out}", "--require-signature"),
     "--require-signature needs --allowed-signers FILE"),
])
def test_flags_that_go_together_are_refused_first(reqs, args, says, tmp_path) -> None:
    """Each option group's own rule (options.py), before the lock is read or an index
    asked: exit 2, one line, nothing written, and no password echoed."""
    out = tmp_path / "out" / "app.tar"
    fill = {"lock": reqs, "out": out, "tmp": tmp_path}
    argv = [a.format(**fill) for a in args]
    argv += ["--index-url", NOWHERE] if args[0] in ("bundle", "download") else []
    line = one_error_line(run_cli(*argv), 2)
    assert says.format(**fill) in line and "hunter2" not in line, line
    assert not out.parent.exists()


def test_an_empty_selection_is_refused_naming_why(project, index_server, tmp_path) -> None:
    out = tmp_path / "out" / "app.tar"
    done = run_cli("bundle", project / "poetry.lock", "-o", out, "--without", "main",
                   "--index-url", index_server.url, "--cache-dir", tmp_path / "cache")
    line = one_error_line(done, 2)
    assert "no package of poetry.lock is selected" in line and "groups: none of dev, main" \
        in line
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    # --with dev alone is a selection: nothing to refuse.
    done = run_cli("export", project / "poetry.lock", "-t", "host", "--only", "dev",
                   "--index-url", index_server.url)
    assert done.returncode == 0 and "devtool==3.0" in done.stdout, done.stderr


def test_an_empty_requirements_file_is_refused(index_server, tmp_path, clean_environ) -> None:
    empty = tmp_path / "requirements.txt"
    empty.write_text("# nothing pinned yet\n")
    dest = tmp_path / "new" / "wheels"
    for args in (("export", empty, "-t", "host"),
                 ("bundle", empty, "-o", tmp_path / "app.tar"),
                 ("download", empty, "-d", dest)):
        done = run_cli(*args, "--index-url", index_server.url)
        line = one_error_line(done, 2)
        assert "requirements.txt pins no packages" in line, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "index-log",
                                                           "requirements.txt", "xdg"]


def test_download_makes_its_folder_only_for_wheels(reqs, index_server, tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("alpha==1.0 --frob\n")  # an unknown option: the file is refused
    dest = tmp_path / "new" / "wheels"
    done = run_cli("download", bad, "-d", dest, "--index-url", index_server.url)
    assert "alpha" in one_error_line(done, 2)
    assert not (tmp_path / "new").exists()  # neither the folder nor its parent
    done = run_cli("download", reqs, "-d", dest, "--index-url", index_server.url,
                   "--cache-dir", tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in dest.iterdir()] == ["alpha-1.0-py3-none-any.whl"]


def test_echoes_from_a_file_are_short_and_placed(tmp_path, clean_environ) -> None:
    """A 200 kB line is shown cut, with an ellipsis, and the file and line named."""
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# first\n" + "alpha " + "x" * 200_000 + "\n")
    line = one_error_line(run_cli("export", reqs, "-t", "host"), 2)
    assert line.startswith(f"wheelhouse-bundler: error: {reqs}:2: not a requirement: 'alpha x")
    assert "…" in line and len(line) < len(str(reqs)) + 250
    reqs.write_text("alpha==1.0 --hash=sha256:abc\n")
    line = one_error_line(run_cli("export", reqs, "-t", "host"), 2)
    assert line.endswith(f"{reqs}:1: alpha: --hash sha256:abc: the digest is not 64 hex "
                         "characters")


def test_export_of_several_targets_needs_a_folder(reqs, index_server, tmp_path) -> None:
    two = ("-t", "cp311-manylinux_2_28_x86_64", "-t", "cp312-win_amd64")
    file_like = tmp_path / "e2.txt"
    done = run_cli("export", reqs, *two, "-o", file_like, "--index-url", index_server.url)
    line = one_error_line(done, 2)
    assert f"{file_like}: 2 targets need a folder for -o" in line
    assert not file_like.exists()
    folder = tmp_path / "reqs"  # no suffix: made as the folder
    done = run_cli("export", reqs, *two, "-o", folder, "--index-url", index_server.url)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["cp311-manylinux_2_28_x86_64.txt",
                                                       "cp312-win_amd64.txt"]
    # One target's file cannot be written: the others are not left looking complete.
    blocked = tmp_path / "blocked"
    (blocked / "cp312-win_amd64.txt").mkdir(parents=True)
    done = run_cli("export", reqs, *two, "-o", blocked, "--index-url", index_server.url)
    assert f"{blocked / 'cp312-win_amd64.txt'}: Is a directory" in one_error_line(done, 2)
    assert [p.name for p in blocked.iterdir()] == ["cp312-win_amd64.txt"]


def test_a_missing_cert_is_named_even_offline(reqs, index_server, tmp_path) -> None:
    missing = tmp_path / "missing.pem"
    for offline in ((), ("--offline",)):
        done = run_cli("bundle", reqs, "-o", tmp_path / "app.tar", "--cert", missing,
                       "--index-url", index_server.url, "--cache-dir", tmp_path / "cache",
                       *offline)
        assert one_error_line(done, 2) == (f"wheelhouse-bundler: error: {missing}: no such "
                                           "file (given as --cert)")
    assert not (tmp_path / "app.tar").exists()
