"""An output path that is one of the run's inputs is refused before anything is written.

`export LOCK -o LOCK` replaced the lock with requirements text. The same file under
another name (a symlink, a hard link) is the same file: each command with an output
refuses it with exit 2 and one line, and the input is left byte for byte as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clirun import run_cli

LINUX = "cp311-manylinux_2_28_x86_64"
HASH = "a" * 64


def uv_lock(folder: Path) -> Path:
    """A uv.lock (the project and the wheel it needs) whose wheel has its URL: export
    needs no index."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "uv.lock"
    lock.write_text(
        'version = 1\nrequires-python = ">=3.8"\n\n'
        '[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { editable = "." }\n'
        'dependencies = [{ name = "alpha" }]\n\n[[package]]\nname = "alpha"\n'
        'version = "1.0"\nsource = { registry = "http://127.0.0.1:9/simple" }\nwheels = [\n'
        '    { url = "http://127.0.0.1:9/alpha-1.0-py3-none-any.whl", '
        f'hash = "sha256:{HASH}" }},\n]\n')
    return lock


def refused(done, *says: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "that is the" in lines[0] and "choose another output" in lines[0], lines[0]
    for text in says:
        assert text in lines[0], (text, lines[0])


def alias(kind: str, original: Path, name: Path) -> Path:
    if kind == "symlink":
        name.symlink_to(original)
    elif kind == "hardlink":
        os.link(original, name)
    else:
        return original
    return name


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_export_onto_its_lock_is_refused(kind, tmp_path, clean_environ) -> None:
    lock = uv_lock(tmp_path / "project")
    before = lock.read_bytes()
    out = alias(kind, lock, tmp_path / "requirements.txt")
    refused(run_cli("export", lock, "-t", LINUX, "-o", out), str(out), "the lock")
    assert lock.read_bytes() == before
    assert sorted(p.name for p in lock.parent.iterdir()) == ["uv.lock"]  # no temp file left


def test_export_into_a_folder_holding_the_lock_under_a_target_name(tmp_path,
                                                                   clean_environ) -> None:
    """-o FOLDER writes FOLDER/<target>.txt: refused when that file is the lock."""
    lock = uv_lock(tmp_path / "project")
    before = lock.read_bytes()
    out = tmp_path / "reqs"
    out.mkdir()
    (out / f"{LINUX}.txt").symlink_to(lock)
    done = run_cli("export", lock, "-t", LINUX, "-t", "cp312-win_amd64", "-o", out)
    refused(done, f"{LINUX}.txt")
    assert lock.read_bytes() == before and not (out / "cp312-win_amd64.txt").exists()


def test_export_onto_its_target_file_or_pyproject_is_refused(tmp_path, clean_environ) -> None:
    lock = uv_lock(tmp_path / "project")
    pyproject = lock.with_name("pyproject.toml")
    pyproject.write_text('[project]\nname = "app"\nversion = "1.0"\n')
    refused(run_cli("export", lock, "-t", LINUX, "-o", pyproject), "pyproject.toml")
    assert pyproject.read_text().startswith("[project]")


def test_bundle_onto_its_lock_through_a_link_is_refused(tmp_path, clean_environ) -> None:
    lock = uv_lock(tmp_path / "project")
    before = lock.read_bytes()
    out = alias("symlink", lock, tmp_path / "app.tar")
    done = run_cli("bundle", lock, "-t", LINUX, "-o", out, "--cache-dir", tmp_path / "cache")
    refused(done, "app.tar", "the lock")
    assert lock.read_bytes() == before and not (tmp_path / "app.tar.sha256").exists()


def test_bundle_whose_sidecar_is_the_lock_is_refused(tmp_path, clean_environ) -> None:
    lock = uv_lock(tmp_path / "project")
    before = lock.read_bytes()
    (tmp_path / "app.tar.sha256").symlink_to(lock)
    done = run_cli("bundle", lock, "-t", LINUX, "-o", tmp_path / "app.tar",
                   "--cache-dir", tmp_path / "cache")
    refused(done, "app.tar.sha256")
    assert lock.read_bytes() == before and not (tmp_path / "app.tar").exists()


def test_download_into_its_lock_is_refused(tmp_path, clean_environ) -> None:
    lock = uv_lock(tmp_path / "project")
    before = lock.read_bytes()
    done = run_cli("download", lock, "-t", LINUX, "-d", lock, "--cache-dir", tmp_path / "c")
    refused(done, "the lock")
    assert lock.read_bytes() == before


@pytest.mark.parametrize("kind", ["same", "hardlink"])
def test_lock_onto_its_own_input_is_refused(kind, tmp_path, clean_environ) -> None:
    source = tmp_path / "requirements.in"
    source.write_text("alpha\n")
    out = alias(kind, source, tmp_path / "requirements.txt")
    refused(run_cli("lock", source, "-o", out), "the input")
    assert source.read_text() == "alpha\n"


def test_lock_of_a_requirements_txt_defaults_onto_itself(tmp_path, clean_environ) -> None:
    """The default output is requirements.txt beside the input: here the input itself."""
    source = tmp_path / "requirements.txt"
    source.write_text("alpha\n")
    refused(run_cli("lock", source), "the input")
    assert source.read_text() == "alpha\n"


def test_rehearse_report_onto_the_bundle_is_refused(tmp_path, clean_environ) -> None:
    bundle = tmp_path / "app.tar"
    bundle.write_bytes(b"not checked: the refusal comes first")
    report = alias("symlink", bundle, tmp_path / "drill.md")
    refused(run_cli("rehearse", bundle, "--report", report), "the bundle")
    assert bundle.read_bytes() == b"not checked: the refusal comes first"
