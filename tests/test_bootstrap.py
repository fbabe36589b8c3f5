"""The bundle's own install.py: `tar xf` and the oldest Python here, nothing else."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import venvs
from bundles import alpha_beta, make_bundle

from wheelhouse_bundler.cli import main
from wheelhouse_bundler.standalone import bootstrap

PY38 = sorted(glob.glob(os.path.expanduser(
    subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()
    + "/versions/3.8.*/bin/python3.8")))
needs_py38 = pytest.mark.skipif(not PY38, reason="no Python 3.8 under $(pyenv root)/versions")


@pytest.fixture
def extracted(index_server, wheel_factory, tmp_path: Path, clean_environ) -> Path:
    """A bundle for Python 3.8 (described by its own probe), unpacked with plain tar."""
    probe = tmp_path / "py38.json"
    probe.write_text(subprocess.run([PY38[-1], "-I", "-c", bootstrap_probe()],
                                    capture_output=True, text=True, check=True).stdout)
    out = make_bundle(tmp_path / "app.tar", alpha_beta(wheel_factory), index_server,
                      tmp_path / "c", "--target-file", str(probe))
    site = tmp_path / "site"
    site.mkdir()
    subprocess.run(["tar", "xf", str(out)], cwd=site, check=True)
    return site / "app"


def bootstrap_probe() -> str:
    from wheelhouse_bundler import targets

    return targets.probe_source()


def run_install_py(root: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """`python3.8 app/install.py ...` with a clean environment, from an unrelated folder."""
    return subprocess.run([PY38[-1], str(root / "install.py"), *map(str, args)],
                          capture_output=True, text=True, check=False, env=venvs.clean_env(),
                          cwd=root.parent)


@needs_py38
def test_install_py_restores_on_python38_with_only_the_stdlib(extracted: Path,
                                                               tmp_path: Path) -> None:
    listed = (extracted / "SHA256SUMS").read_text()
    assert "  install.py\n" in listed
    assert (extracted / "install.py").read_bytes() == Path(bootstrap.__file__).read_bytes()
    venv = tmp_path / "opt" / "venv"
    done = run_install_py(extracted, "--venv", venv, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert venv.is_symlink() and os.readlink(venv) == result["release"]
    assert result["imported"] == ["beta"]
    py = venvs.venv_python(venv)
    out = venvs.run_in_venv(py, "import sys, alpha, beta; "
                                "print(sys.version_info[:2], alpha.__version__)")
    assert out.strip() == "(3, 8) 1.0"
    # The tool rolls back what install.py made: one layout for both.
    again = run_install_py(extracted, "--venv", venv, "--json")
    assert again.returncode == 0, again.stderr
    assert main(["rollback", "--venv", str(venv)]) == 0
    assert os.readlink(venv) == result["release"]


@needs_py38
def test_install_py_refuses_a_tampered_folder_before_making_anything(extracted: Path,
                                                                      tmp_path: Path) -> None:
    wheel = next((extracted / "wheels").glob("alpha-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[100] ^= 0xFF
    wheel.write_bytes(bytes(data))
    venv = tmp_path / "venv"
    done = run_install_py(extracted, "--venv", venv)
    assert done.returncode == 3
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [f"install.py: error: {wheel}: sha256 does not match SHA256SUMS"]
    assert not venv.exists() and not (tmp_path / "venv.releases").exists()


@needs_py38
def test_install_py_refuses_a_file_slipped_into_the_folder(extracted: Path,
                                                           tmp_path: Path) -> None:
    (extracted / "wheels" / "extra.whl").write_bytes(b"not from the build box")
    done = run_install_py(extracted, "--venv", tmp_path / "venv")
    assert done.returncode == 3 and "extra.whl: not listed in SHA256SUMS" in done.stderr


@needs_py38
def test_install_py_shows_what_the_bundle_says_escaped(extracted: Path, tmp_path: Path) -> None:
    """install.py's messages quote the manifest: a terminal escape in it arrives escaped."""
    manifest = extracted / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["targets"].append({**doc["targets"][0], "name": "evil\x1b]0;owned\x07"})
    manifest.write_text(json.dumps(doc))
    sums = extracted / "SHA256SUMS"
    kept = [line for line in sums.read_text().splitlines()
            if not line.endswith("  manifest.json")]
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    sums.write_text("\n".join([*kept, f"{digest}  manifest.json"]) + "\n")
    done = run_install_py(extracted, "--venv", tmp_path / "venv")
    assert done.returncode == 3, done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "evil\\x1b]0;owned\\x07" in done.stderr
