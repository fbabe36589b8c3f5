"""publish's pure parts: the upload form, its multipart framing, the plan, the repository.

The end-to-end behaviour is in test_publish.py against real servers; here each rule is
pinned where a server would not show which part broke.
"""

from __future__ import annotations

import email.parser
import email.policy
from pathlib import Path

import pytest
from packaging.metadata import parse_email

from wheelhouse_bundler.errors import IntegrityError, UsageError
from wheelhouse_bundler.index import IndexFile
from wheelhouse_bundler.model import Manifest, ManifestFile, ManifestTarget
from wheelhouse_bundler.publish import (
    check_metadata,
    choose,
    form_fields,
    frame,
    plan,
    python_tag,
    resolve_repository,
    simple_root,
)

SHA_A = "a" * 64
SHA_B = "b" * 64


def wheel(filename: str, sha256: str = SHA_A, size: int = 10,
          targets: tuple[str, ...] = ("t1",)) -> ManifestFile:
    name, version = filename.split("-")[:2]
    return ManifestFile(filename=filename, sha256=sha256, size=size, name=name,
                        version=version, origin="", targets=targets)


def listed(filename: str, sha256: str | None) -> IndexFile:
    return IndexFile(filename, f"http://index.invalid/packages/{filename}", sha256)


META = b"""Metadata-Version: 2.3
Name: Gamma_Pkg
Version: 3.0
Summary: One line
Keywords: air,gap
Classifier: A :: B
Classifier: C :: D
Requires-Dist: alpha>=1
Requires-Dist: beta; extra == "x"
Provides-Extra: x
Project-URL: Source, https://example.invalid/src
Requires-Python: >=3.8
Platform: any

The long description.
"""


def test_the_form_carries_what_twine_sends() -> None:
    raw, _ = parse_email(META)
    fields = form_fields(raw, wheel("gamma_pkg-3.0-py2.py3-none-any.whl"))
    as_dict: dict[str, list[str]] = {}
    for key, value in fields:
        as_dict.setdefault(key, []).append(value)
    assert fields[:2] == [(":action", "file_upload"), ("protocol_version", "1")]
    assert as_dict["name"] == ["Gamma_Pkg"] and as_dict["version"] == ["3.0"]
    assert as_dict["filetype"] == ["bdist_wheel"] and as_dict["pyversion"] == ["py2.py3"]
    assert as_dict["sha256_digest"] == [SHA_A]
    assert as_dict["metadata_version"] == ["2.3"] and as_dict["summary"] == ["One line"]
    assert as_dict["classifiers"] == ["A :: B", "C :: D"]
    assert as_dict["requires_dist"] == ["alpha>=1", 'beta; extra == "x"']
    assert as_dict["provides_extra"] == ["x"] and as_dict["platform"] == ["any"]
    assert as_dict["keywords"] == ["air,gap"]
    assert as_dict["project_urls"] == ["Source, https://example.invalid/src"]
    assert as_dict["description"] == ["The long description.\n"]
    assert as_dict["requires_python"] == [">=3.8"]


def test_the_framing_parses_back_into_the_same_fields_and_file() -> None:
    fields = [(":action", "file_upload"), ("classifiers", "A"), ("classifiers", "B"),
              ("description", "line one\r\nline two ünï")]
    head, tail = frame(fields, 'odd"name-1.0-py3-none-any.whl', "BOUNDARY42")
    content = bytes(range(256)) * 5
    body = head + content + tail
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: multipart/form-data; boundary=BOUNDARY42\r\n\r\n" + body)
    parts = list(message.iter_parts())
    got = [(p.get_param("name", header="content-disposition"), p.get_payload(decode=True))
           for p in parts]
    assert got[:-1] == [(k, v.encode()) for k, v in fields]
    assert got[-1] == ("content", content)
    assert parts[-1].get_param("filename", header="content-disposition") \
        == "odd%22name-1.0-py3-none-any.whl"


def test_python_tag_is_the_wheels_own_spelling() -> None:
    assert python_tag("a-1.0-cp312-cp312-manylinux_2_28_x86_64.whl") == "cp312"
    assert python_tag("a-1.0-1build-py3-none-any.whl") == "py3"


def test_metadata_must_name_the_wheels_project_and_version() -> None:
    raw, _ = parse_email(META)
    check_metadata(raw, wheel("gamma_pkg-3.0-py3-none-any.whl"))  # names normalise
    check_metadata(raw, wheel("gamma_pkg-3.0.0-py3-none-any.whl"))  # so do versions
    with pytest.raises(IntegrityError, match="not the file name's"):
        check_metadata(raw, wheel("gamma_pkg-3.1-py3-none-any.whl"))
    with pytest.raises(IntegrityError, match="no Name or Version"):
        check_metadata(parse_email(b"Metadata-Version: 2.1\n")[0],
                       wheel("gamma_pkg-3.0-py3-none-any.whl"))


def test_the_plan_sorts_each_wheel_by_what_the_index_lists() -> None:
    new, same, clash, nohash, spelt = (
        wheel("new-1.0-py3-none-any.whl", size=1),
        wheel("same-1.0-py3-none-any.whl", size=2),
        wheel("clash-1.0-py3-none-any.whl", size=3),
        wheel("nohash-1.0-py3-none-any.whl", size=4),
        wheel("spelt-1.0-py3-none-any.whl", size=5))
    listings = {
        "same": [listed("same-1.0-py3-none-any.whl", SHA_A),
                 listed("same-0.9-py3-none-any.whl", SHA_B)],
        "clash": [listed("clash-1.0-py3-none-any.whl", SHA_B)],
        "nohash": [listed("nohash-1.0-py3-none-any.whl", None)],
        # The same wheel to any installer, its name spelt otherwise: still a clash.
        "spelt": [listed("Spelt-1.0-py3-none-any.whl", SHA_B)],
    }
    got = plan([new, same, clash, nohash, spelt], listings)
    assert got.upload == (new,) and got.present == (same,)
    assert [f for f, _ in got.conflicts] == [spelt, clash]  # largest first
    assert [f for f, _ in got.unhashed] == [nohash]


def test_without_an_index_page_everything_is_tried_largest_first() -> None:
    small, big = wheel("s-1.0-py3-none-any.whl", size=1), wheel("b-1.0-py3-none-any.whl",
                                                                  size=9)
    assert plan([small, big], None).upload == (big, small)


def test_choose_takes_the_targets_wheels_or_all() -> None:
    one, two, both = (wheel("one-1-py3-none-any.whl", targets=("t1",)),
                      wheel("two-1-py3-none-any.whl", targets=("t2",)),
                      wheel("both-1-py3-none-any.whl", targets=("t1", "t2")))
    manifest = Manifest(1, "0", "lock", "pylock", SHA_A, (), (),
                        (ManifestTarget("t1", {}), ManifestTarget("t2", {})), (one, two, both))
    assert choose(manifest, ()) == [one, two, both]
    assert choose(manifest, ("t2",)) == [two, both]
    with pytest.raises(UsageError, match="no target 't3'; it has: t1, t2"):
        choose(manifest, ("t3",))


def test_simple_root_per_layout() -> None:
    assert simple_root("http://h:8080", devpi=False) == "http://h:8080/simple/"
    assert simple_root("http://h/root/dev/", devpi=True) == "http://h/root/dev/+simple/"
    assert simple_root("http://h/repository/pypi-internal/", devpi=False) \
        == "http://h/repository/pypi-internal/simple/"


def test_credentials_come_in_twines_order(tmp_path: Path, monkeypatch) -> None:
    pypirc = tmp_path / "pypirc"
    pypirc.write_text("[distutils]\nindex-servers = internal\n\n[internal]\n"
                      "repository = http://h/up/\nusername = file-user\npassword = p%w\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    repo = resolve_repository(None, "internal", pypirc, {})
    assert repo.url == "http://h/up/" and repo.auth == ("file-user", "p%w")
    assert "p%w" not in repr(repo)
    env = {"TWINE_USERNAME": "env-user", "TWINE_PASSWORD": "env-pw"}
    assert resolve_repository(None, "internal", pypirc, env).auth == ("env-user", "env-pw")
    assert resolve_repository(None, None, pypirc, env | {"TWINE_REPOSITORY": "internal"}
                              ).url == "http://h/up/"
    assert resolve_repository(None, None, None, env | {"TWINE_REPOSITORY_URL": "http://e/"}
                              ).url == "http://e/"

    netrc = tmp_path / "netrc"
    netrc.write_text("machine h login net-user password net-pw\n")
    monkeypatch.setenv("NETRC", str(netrc))  # read where net.py reads it: os.environ
    assert resolve_repository("http://h/up/", None, None, {}).auth == ("net-user", "net-pw")
    assert resolve_repository("http://other/", None, None, {}).auth is None
    assert resolve_repository("http://h/up/", None, None, env).auth == ("env-user", "env-pw")


@pytest.mark.parametrize(("url", "name", "env", "says"), [
    ("http://u:secret@h/", None, {}, "command line"),
    ("http://h/", "internal", {}, "not both"),
    (None, None, {}, "--repository-url URL or --repository NAME"),
    ("http://h/", None, {"TWINE_USERNAME": "u"}, r"password \(TWINE_PASSWORD\) is missing"),
    ("h:8080", None, {}, "not a valid URL"),
    (None, "internal", {}, "cannot read it"),
])
def test_repository_mistakes_are_usage_errors(tmp_path: Path, monkeypatch, url, name, env,
                                             says) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    with pytest.raises(UsageError, match=says) as caught:
        resolve_repository(url, name, tmp_path / "missing-pypirc", env)
    assert "secret" not in str(caught.value)
