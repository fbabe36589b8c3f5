"""sbom.cdx.json: CycloneDX 1.6, valid by the library's own schema validator, one
component per wheel with purl, sha256, licence and targets, a dependency graph, and the
same bytes on every build.

One two-target bundle is built once for the module (real pypiserver, real CLI) and read
by every test.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import venvs
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from indexserver import IndexServer
from locktext import Pin, hashed_requirements, poetry_lock, pyproject
from wheelfactory import build_wheel, sha256_of

from wheelhouse_bundler.cli import main
from wheelhouse_bundler.sbom import read_metadata

LINUX = "cp311-manylinux_2_28_x86_64"
WINDOWS = "cp311-win_amd64"


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def metadata(name: str, version: str, *headers: str) -> dict[str, bytes]:
    """A METADATA replacing the factory's, with the given extra header lines."""
    dist = name.replace("-", "_")
    text = "\n".join(["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}",
                      *headers]) + "\n\nA long description body.\n"
    return {f"{dist}-{version}.dist-info/METADATA": text.encode()}


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as mp:
        venvs.clean_os_environ(mp)
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        yield mp


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, env):
    tmp = tmp_path_factory.mktemp("sbom")
    env.setenv("XDG_CACHE_HOME", str(tmp / "xdg"))
    env.setenv("NETRC", str(tmp / "no-netrc"))
    wheels = tmp / "wheels"
    alpha = build_wheel(wheels, "alpha", "1.0", extra_files=metadata(
        "alpha", "1.0", "License-Expression: MIT OR Apache-2.0", "License: ignored",
        "Requires-Dist: beta>=2", 'Requires-Dist: winonly; sys_platform == "win32"',
        'Requires-Dist: gamma; python_version < "3"', "Requires-Dist: notbundled",
        'Requires-Dist: plat; extra == "fast"', "Provides-Extra: fast"))
    beta = build_wheel(wheels, "beta", "2.0", extra_files=metadata(
        "beta", "2.0", "License: BSD-3-Clause"))
    gamma = build_wheel(wheels, "gamma", "3.0", extra_files=metadata(
        "gamma", "3.0", "License: Copyright (c) someone\n        Permission is hereby granted",
        "Classifier: License :: OSI Approved :: MIT License",
        "Classifier: Programming Language :: Python :: 3"))
    plat_linux = build_wheel(wheels, "plat", "1.0", "cp311-cp311-manylinux_2_28_x86_64",
                             requires=["beta"])
    plat_win = build_wheel(wheels, "plat", "1.0", "cp311-cp311-win_amd64", requires=["beta"])
    winonly = build_wheel(wheels, "winonly", "1.0")
    root = tmp / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject(name="shop"))
    (root / "poetry.lock").write_text(poetry_lock([
        Pin("alpha", "1.0", [alpha]), Pin("beta", "2.0", [beta]),
        Pin("gamma", "3.0", [gamma]), Pin("plat", "1.0", [plat_linux, plat_win]),
        Pin("winonly", "1.0", [winonly], markers='sys_platform == "win32"')]))
    with IndexServer(tmp / "index", log_dir=tmp / "index-log") as server:
        for w in (alpha, beta, gamma, plat_linux, plat_win, winonly):
            server.add(w)
        out = tmp / "out" / "shop.tar"
        args = [root, "-t", LINUX, "-t", WINDOWS, "--index-url", server.url,
                "--cache-dir", tmp / "cache", "-q"]
        assert cli("bundle", *args, "-o", out) == 0
        again = tmp / "again" / "shop.tar"
        assert cli("bundle", *args, "-o", again) == 0
        env.setenv("SOURCE_DATE_EPOCH", "1700000000")
        dated = tmp / "dated" / "shop.tar"
        assert cli("bundle", *args, "-o", dated) == 0
        env.delenv("SOURCE_DATE_EPOCH")
    return {"out": out, "again": again, "dated": dated,
            "wheels": {w.name: w for w in (alpha, beta, gamma, plat_linux, plat_win, winonly)}}


def member(bundle: Path, rel: str) -> bytes:
    with tarfile.open(bundle) as tar:
        return tar.extractfile(f"{bundle.name[:-4]}/{rel}").read()


def sbom(bundle: Path) -> dict:
    return json.loads(member(bundle, "sbom.cdx.json"))


def by_file(doc: dict) -> dict[str, dict]:
    out = {}
    for c in doc["components"]:
        qualifier = c["purl"].split("?file_name=", 1)[1]
        out[qualifier] = c
    return out


def test_sbom_is_valid_cyclonedx_1_6(built) -> None:
    text = member(built["out"], "sbom.cdx.json").decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"]["name"] == "shop"
    tools = {t["name"] for t in doc["metadata"]["tools"]["components"]}
    assert "wheelhouse-bundler" in tools
    dated = member(built["dated"], "sbom.cdx.json").decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(dated) is None


def test_one_component_per_wheel_with_purl_hash_and_targets(built) -> None:
    doc = sbom(built["out"])
    manifest = json.loads(member(built["out"], "manifest.json"))
    components = by_file(doc)
    assert sorted(components) == sorted(f["filename"] for f in manifest["files"])
    for f in manifest["files"]:
        c = components[f["filename"]]
        assert c["purl"] == f"pkg:pypi/{f['name']}@{f['version']}?file_name={f['filename']}"
        assert c["bom-ref"] == c["purl"]
        assert c["hashes"] == [{"alg": "SHA-256", "content": f["sha256"]}]
        assert f["sha256"] == sha256_of(built["wheels"][f["filename"]])
        targets = sorted(p["value"] for p in c["properties"]
                         if p["name"] == "wheelhouse-bundler:target")
        assert targets == f["targets"]
    linux = components["plat-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"]
    assert [p["value"] for p in linux["properties"]] == [LINUX]
    assert [p["value"] for p in components["winonly-1.0-py3-none-any.whl"]["properties"]] \
        == [WINDOWS]


def test_licences_come_from_each_wheels_metadata(built) -> None:
    components = by_file(sbom(built["out"]))

    def licences(filename: str) -> list[dict]:
        return components[filename].get("licenses", [])

    assert licences("alpha-1.0-py3-none-any.whl") == [{"expression": "MIT OR Apache-2.0"}]
    assert licences("beta-2.0-py3-none-any.whl") == [{"license": {"id": "BSD-3-Clause"}}]
    # a multi-line License field is the text, not a name: the classifier names it
    assert licences("gamma-3.0-py3-none-any.whl") == [{"license": {"name": "MIT License"}}]
    assert licences("winonly-1.0-py3-none-any.whl") == []


def test_dependency_graph_from_requires_dist_between_bundled_wheels(built) -> None:
    doc = sbom(built["out"])
    ref = {name: c["bom-ref"] for name, c in by_file(doc).items()}
    graph = {d["ref"]: sorted(d.get("dependsOn", [])) for d in doc["dependencies"]}
    # beta always; winonly where both serve (win) and its marker holds; not gamma
    # (python_version < 3), not notbundled, not plat (only for an extra nobody asked for)
    assert graph[ref["alpha-1.0-py3-none-any.whl"]] == sorted(
        [ref["beta-2.0-py3-none-any.whl"], ref["winonly-1.0-py3-none-any.whl"]])
    assert graph[ref["plat-1.0-cp311-cp311-win_amd64.whl"]] == [ref["beta-2.0-py3-none-any.whl"]]
    assert graph[ref["beta-2.0-py3-none-any.whl"]] == []
    root = doc["metadata"]["component"]["bom-ref"]
    # the project depends on what nothing else in the bundle requires
    assert graph[root] == sorted([ref["alpha-1.0-py3-none-any.whl"],
                                  ref["gamma-3.0-py3-none-any.whl"],
                                  ref["plat-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"],
                                  ref["plat-1.0-cp311-cp311-win_amd64.whl"]])


def test_no_clock_unless_source_date_epoch_and_same_bytes_every_build(built) -> None:
    plain = member(built["out"], "sbom.cdx.json")
    assert plain == member(built["again"], "sbom.cdx.json")
    assert built["out"].read_bytes() == built["again"].read_bytes()
    doc = json.loads(plain)
    assert "timestamp" not in doc["metadata"]
    assert doc["serialNumber"].startswith("urn:uuid:")
    dated = sbom(built["dated"])
    assert dated["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    assert dated["serialNumber"] == doc["serialNumber"]


def test_sbom_is_listed_in_sums_and_checked_by_verify(built, tmp_path, capsys) -> None:
    out = built["out"]
    sums = member(out, "SHA256SUMS").decode()
    digest = hashlib.sha256(member(out, "sbom.cdx.json")).hexdigest()
    assert f"{digest}  sbom.cdx.json" in sums.splitlines()
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert names.index("shop/sbom.cdx.json") < min(i for i, n in enumerate(names)
                                                   if n.startswith("shop/wheels/"))
    # a bundle whose SBOM was edited no longer verifies
    bad = tmp_path / "shop.tar"
    with tarfile.open(out) as tin, tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read()
            if info.name.endswith("sbom.cdx.json"):
                data = data.replace(b"MIT OR Apache-2.0", b"MIT OR Apache-2.1")
            import io

            tout.addfile(info, io.BytesIO(data))
    capsys.readouterr()
    assert cli("verify", bad) == 3
    assert "sbom.cdx.json" in capsys.readouterr().err


def test_inspect_sbom_prints_the_member(built, capsys) -> None:
    capsys.readouterr()
    assert cli("inspect", built["out"], "--sbom") == 0
    assert capsys.readouterr().out.encode() == member(built["out"], "sbom.cdx.json")


def test_metadata_is_read_without_loading_the_wheel(tmp_path: Path) -> None:
    big = build_wheel(tmp_path, "big", "1.0", payload_size=48 * 1024 * 1024,
                      extra_files=metadata("big", "1.0", "License-Expression: MIT"))
    tracemalloc.start()
    try:
        meta = read_metadata(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert meta.licence() == "MIT"
    assert peak < 4 * 1024 * 1024


def test_non_ascii_and_folded_metadata_bundle_and_reach_the_sbom(
        index_server, wheel_factory, tmp_path: Path, clean_environ) -> None:
    """Real wheels carry UTF-8 in License and Author and fold long headers; the email
    module returned those as Header objects and `bundle` died with a traceback."""
    wheel = wheel_factory("cafe", "1.0", extra_files=metadata(
        "cafe", "1.0", "License: Licence libre du café — voir LICENSE",
        "Author: José Müller", "Summary: a summary folded\n   over two lines",
        "Classifier: License :: OSI Approved :: MIT License", "Requires-Dist: beta"))
    beta = wheel_factory("beta", "2.0")
    for w in (wheel, beta):
        index_server.add(w)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(hashed_requirements([Pin("cafe", "1.0", [wheel]),
                                         Pin("beta", "2.0", [beta])]))
    out = tmp_path / "cafe.tar"
    assert cli("bundle", reqs, "-o", out, "--index-url", index_server.url,
               "--cache-dir", tmp_path / "cache", "-q") == 0
    doc = sbom(out)
    components = by_file(doc)
    cafe = components["cafe-1.0-py3-none-any.whl"]
    assert cafe["licenses"] == [{"license": {"name": "Licence libre du café — voir LICENSE"}}]
    assert {"ref": cafe["bom-ref"], "dependsOn": [components["beta-2.0-py3-none-any.whl"][
        "bom-ref"]]} in doc["dependencies"]
    meta = read_metadata(wheel)
    assert meta.license == "Licence libre du café — voir LICENSE"
    assert meta.requires == ("beta",)
