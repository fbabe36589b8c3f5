"""A broken URL is the user's typo, wherever it was written: exit 2, one line naming where.

Each case runs the CLI as its own process, as a user meets it: no traceback from httpx
(`http://host:PORT/`), no four retries reported as a network fault (`not a url`), and the
message names the option, the variable, the lock and its source, or the file and line.
A requirements file's `--index-url` without a trailing slash works like the option does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import run_cli
from locktext import Pin, hashed_requirements, poetry_lock

LINUX = "cp311-manylinux_2_28_x86_64"
HASH = "a" * 64
BAD = ["http://host:PORT/simple/", "http://[::1/simple/", "not a url", "ftp://host/simple/",
       "http://exa mple.com/simple/"]
DATA = Path(__file__).parent / "data" / "locks"


def requirements(tmp_path: Path, head: str = "") -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(f"{head}alpha==1.0 --hash=sha256:{HASH}\n")
    return path


def assert_bad_input(done, *names: str) -> str:
    """Exit 2, one line on stderr, no trace, and the line names each of `names`."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "network error" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert "is not a valid URL" in lines[0]
    return lines[0]


@pytest.mark.parametrize("url", BAD)
def test_bad_index_url_option_is_bad_input(url, tmp_path, clean_environ) -> None:
    done = run_cli("export", requirements(tmp_path), "-t", LINUX, "--index-url", url)
    assert_bad_input(done, "--index-url", repr(url))


@pytest.mark.parametrize("url", BAD[:3])
def test_bad_pip_index_url_variable_is_named(url, tmp_path, clean_environ, monkeypatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", url)
    done = run_cli("export", requirements(tmp_path), "-t", LINUX)
    assert_bad_input(done, "PIP_INDEX_URL")


@pytest.mark.parametrize("url", BAD)
def test_bad_index_url_line_names_file_and_line(url, tmp_path, clean_environ) -> None:
    reqs = requirements(tmp_path, f"# pinned\n--index-url {url}\n")
    done = run_cli("export", reqs, "-t", LINUX, "--index-url", "http://127.0.0.1:9/simple/")
    assert_bad_input(done, f"{reqs}:2", "--index-url")


def test_password_in_a_broken_url_is_not_shown(tmp_path, clean_environ) -> None:
    done = run_cli("export", requirements(tmp_path), "-t", LINUX,
                   "--index-url", "http://alice:s3cret@[::1/simple/")
    line = assert_bad_input(done, "--index-url")
    assert "s3cret" not in line and "alice" not in line


def test_project_pipfile_lock_with_placeholders_is_bad_input(tmp_path, clean_environ) -> None:
    """The shipped test lock keeps `PORT` placeholders: exporting it as it stands used to
    end in httpx's traceback; it names the lock and the source instead."""
    lock = DATA / "pipfile" / "Pipfile.lock"
    done = run_cli("export", lock, "-t", LINUX, "--index-url", "http://127.0.0.1:9/simple/")
    assert_bad_input(done, str(lock), "'testindex'", "PORT")


def _poetry(tmp_path: Path, url: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "app"\nversion = "1.0"\n\n'
        f'[[tool.poetry.source]]\nname = "corp"\nurl = "{url}"\npriority = "supplemental"\n')
    lock = tmp_path / "poetry.lock"
    lock.write_text(poetry_lock([Pin("alpha", "1.0", [], source=("corp", url),
                                     extra_files={"alpha-1.0-py3-none-any.whl": HASH})]))
    return lock


def _pipfile(tmp_path: Path, url: str) -> Path:
    lock = tmp_path / "Pipfile.lock"
    lock.write_text(json.dumps({
        "_meta": {"pipfile-spec": 6,
                  "sources": [{"name": "corp", "url": url, "verify_ssl": True}]},
        "default": {"alpha": {"hashes": [f"sha256:{HASH}"], "index": "corp",
                              "version": "==1.0"}}, "develop": {}}))
    return lock


def _uv_lock(tmp_path: Path, registry: str, wheel_url: str) -> Path:
    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\nrequires-python = ">=3.8"\n\n[[package]]\nname = "alpha"\n'
        f'version = "1.0"\nsource = {{ registry = "{registry}" }}\nwheels = [\n'
        f'    {{ url = "{wheel_url}", hash = "sha256:{HASH}" }},\n]\n')
    return lock


def _uv(tmp_path: Path, url: str) -> Path:
    """The bad URL as the package's registry."""
    return _uv_lock(tmp_path, url, "http://127.0.0.1:9/alpha-1.0-py3-none-any.whl")


def _uv_wheel(tmp_path: Path, url: str) -> Path:
    """The bad URL as the base of the wheel's own URL."""
    return _uv_lock(tmp_path, "http://127.0.0.1:9/simple", f"{url}alpha-1.0-py3-none-any.whl")


def _pdm(tmp_path: Path, url: str) -> Path:
    lock = tmp_path / "pdm.lock"
    lock.write_text(
        '[metadata]\ngroups = ["default"]\nstrategy = ["inherit_metadata", "static_urls"]\n'
        'lock_version = "4.5.0"\n'
        'content_hash = "sha256:x"\n\n[[metadata.targets]]\nrequires_python = ">=3.8"\n\n'
        '[[package]]\nname = "alpha"\nversion = "1.0"\ngroups = ["default"]\nfiles = [\n'
        f'    {{url = "{url}alpha-1.0-py3-none-any.whl", hash = "sha256:{HASH}"}},\n]\n')
    return lock


def _pylock(tmp_path: Path, url: str) -> Path:
    lock = tmp_path / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "test"\n\n[[packages]]\nname = "alpha"\n'
        f'version = "1.0"\nindex = "{url}"\n\n[[packages.wheels]]\n'
        'url = "http://127.0.0.1:9/alpha-1.0-py3-none-any.whl"\n'
        f'hashes = {{sha256 = "{HASH}"}}\n')
    return lock


def _poetry_lock_only(tmp_path: Path, url: str) -> Path:
    """The bad URL in the lock's [package.source], the pyproject declaring no source."""
    lock = _poetry(tmp_path, url)
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\nname = "app"\nversion = "1.0"\n')
    return lock


@pytest.mark.parametrize(("make", "names"), [
    (_poetry, ("pyproject.toml", "[[tool.poetry.source]] 'corp'")),
    (_poetry_lock_only, ("poetry.lock", "package alpha", "source 'corp'")),
    (_pipfile, ("Pipfile.lock", "'corp'")),
    (_uv, ("uv.lock", "alpha", "registry")),
    (_uv_wheel, ("uv.lock", "alpha", "wheel url")),
    (_pdm, ("pdm.lock", "alpha", "url")),
    (_pylock, ("pylock.toml", "alpha", "index")),
])
@pytest.mark.parametrize("url", ["http://127.0.0.1:PORT/simple/", "http://[::1/simple/"])
def test_bad_source_url_in_each_lock_format(make, names, url, tmp_path, clean_environ) -> None:
    lock = make(tmp_path, url)
    done = run_cli("export", lock, "-t", LINUX, "--index-url", "http://127.0.0.1:9/simple/")
    assert_bad_input(done, *names)


def test_index_url_line_without_slash_works_like_the_option(
        index_server, wheel_factory, tmp_path, clean_environ) -> None:
    """`--index-url http://host/simple` in the file asked http://host/gamma/ for names."""
    gamma = wheel_factory("gamma", "0.3")
    index_server.add(gamma)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--index-url {index_server.url.rstrip('/')}\n"
                    + hashed_requirements([Pin("gamma", "0.3", [gamma])]))
    done = run_cli("export", reqs, "-t", LINUX)
    assert done.returncode == 0, done.stderr
    assert "gamma==0.3" in done.stdout
    asked = index_server.requests("GET")
    assert "/simple/gamma/" in asked and "/gamma/" not in asked, asked


@pytest.mark.parametrize("url", ["http://[::1/x.whl", "http://127.0.0.1:PORT/x.whl"])
def test_a_bad_url_from_a_page_is_a_network_error_not_a_trace(url) -> None:
    """URLs an index page or a redirect gives skip the user-input check: the one place
    that requests them still turns a broken one into an error naming the source."""
    from wheelhouse_bundler.errors import NetworkError
    from wheelhouse_bundler.model import Source
    from wheelhouse_bundler.net import LazyClient, stream

    source = Source("corp", "http://127.0.0.1:9/simple/")
    with (LazyClient() as client, pytest.raises(NetworkError, match="not a valid URL") as info,
          stream(client, url, source)):
        pass
    assert "'corp'" in str(info.value)


def test_bad_index_in_pip_configuration_is_named(tmp_path, clean_environ, monkeypatch) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = http://127.0.0.1:PORT/simple/\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    done = run_cli("export", requirements(tmp_path), "-t", LINUX)
    assert_bad_input(done, "pip's configuration (global.index-url)")


def test_lock_command_refuses_a_bad_index_url(tmp_path, clean_environ) -> None:
    source = tmp_path / "requirements.in"
    source.write_text("alpha\n")
    done = run_cli("lock", source, "--index-url", "http://[::1/simple/")
    assert_bad_input(done, "--index-url")
    assert not (tmp_path / "requirements.txt").exists()
