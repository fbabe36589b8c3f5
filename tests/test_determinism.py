"""The same lock and targets give the same bytes, whatever the machine around the build.

Each build is a separate `python -m wheelhouse_bundler bundle` process, as an operator runs
it, with a different umask, time zone, locale, working directory, order of --target flags
and download cache (one filled by downloading, one copied from it in reverse order and used
--offline). The tarballs and sidecars must match byte for byte; SOURCE_DATE_EPOCH may
change the member times and the SBOM's timestamp (as the README documents), nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import venvs
from indexserver import IndexServer
from locktext import Pin, poetry_lock, pyproject
from wheelfactory import build_wheel

LINUX = "cp311-manylinux_2_28_x86_64"
WINDOWS = "cp311-win_amd64"
EPOCH = 1_700_000_000


def build(project: Path, out: Path, cwd: Path, targets: list[str], cache: Path, url: str, *,
          umask: str, tz: str, locale: str, extra: tuple[str, ...] = (),
          epoch: int | None = None) -> None:
    """One bundle build in its own process; the lock is given relative to `cwd`."""
    env = venvs.clean_env(TZ=tz, LC_ALL=locale, LANG=locale, XDG_CACHE_HOME=str(cache.parent))
    env.pop("SOURCE_DATE_EPOCH", None)
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    lock = os.path.relpath(project / "poetry.lock", cwd)
    flags = [arg for t in targets for arg in ("--target", t)]
    cmd = [sys.executable, "-m", "wheelhouse_bundler", "bundle", lock, "-o", str(out),
           *flags, "--index-url", url, "--cache-dir", str(cache), "-q", *extra]
    shell = f"umask {umask} && exec \"$@\""
    done = subprocess.run(["sh", "-c", shell, "sh", *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def copy_reversed(src: Path, dest: Path) -> None:
    """The cache's files written into a new folder in the opposite order."""
    files = sorted((p for p in src.rglob("*") if p.is_file()), reverse=True)
    for path in files:
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def members(bundle: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(bundle) as tar:
        return {m.name: (m, tar.extractfile(m).read()) for m in tar.getmembers()}  # type: ignore[union-attr]


def header(info: tarfile.TarInfo, *ignore: str) -> dict:
    """A member's header fields, without its checksum (which follows from the rest)."""
    return {k: v for k, v in info.get_info().items() if k not in ("chksum", *ignore)}


def first_difference(a: Path, b: Path) -> str:
    """Which member differs, so a failure says where the nondeterminism is."""
    ma, mb = members(a), members(b)
    if list(ma) != list(mb):
        return f"member order/names differ: {list(ma)} vs {list(mb)}"
    for name in ma:
        (ia, da), (ib, db) = ma[name], mb[name]
        if da != db:
            return f"{name}: content differs"
        if header(ia) != header(ib):
            return f"{name}: header differs: {header(ia)} vs {header(ib)}"
    return "members equal; the tar or gzip framing differs"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("determinism")
    wheels = root / "wheels"
    alpha = build_wheel(wheels, "alpha", "1.0")
    beta = build_wheel(wheels, "beta", "2.0", requires=["alpha"])
    plat_linux = build_wheel(wheels, "plat", "1.0", f"cp311-cp311-{LINUX.split('-', 1)[1]}")
    plat_win = build_wheel(wheels, "plat", "1.0", "cp311-cp311-win_amd64")
    winonly = build_wheel(wheels, "winonly", "1.0")
    project = root / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(pyproject(name="shop"))
    (project / "poetry.lock").write_text(poetry_lock([
        Pin("alpha", "1.0", [alpha]), Pin("beta", "2.0", [beta]),
        Pin("plat", "1.0", [plat_linux, plat_win]),
        Pin("winonly", "1.0", [winonly], markers='sys_platform == "win32"')]))
    for name in ("a", "b", "c", "gz-a", "gz-b", "work-a", "work-b/deeper"):
        (root / name).mkdir(parents=True)
    out = {k: root / k / "shop.tar" for k in ("a", "b", "c")}
    out |= {k: root / k / "shop.tar.gz" for k in ("gz-a", "gz-b")}
    with IndexServer(root / "index", log_dir=root / "index-log") as server:
        for w in (alpha, beta, plat_linux, plat_win, winonly):
            server.add(w)
        build(project, out["a"], root / "work-a", [LINUX, WINDOWS], root / "cache-a" / "c",
              server.url, umask="022", tz="UTC", locale="C")
        copy_reversed(root / "cache-a" / "c", root / "cache-b" / "c")
        build(project, out["b"], root / "work-b" / "deeper", [WINDOWS, LINUX],
              root / "cache-b" / "c", server.url, umask="077", tz="NPT-5:45",
              locale="C.utf8", extra=("--offline", "--jobs", "1"))
        build(project, out["gz-a"], root / "work-a", [LINUX, WINDOWS], root / "cache-a" / "c",
              server.url, umask="022", tz="UTC", locale="C")
        build(project, out["gz-b"], root / "work-b" / "deeper", [WINDOWS, LINUX],
              root / "cache-b" / "c", server.url, umask="077", tz="NPT-5:45",
              locale="C.utf8", extra=("--offline",))
        build(project, out["c"], root / "work-a", [LINUX, WINDOWS], root / "cache-a" / "c",
              server.url, umask="022", tz="UTC", locale="C", epoch=EPOCH)
    return out


def test_same_bytes_whatever_the_machine_around_the_build(builds: dict[str, Path]) -> None:
    for a, b in ((builds["a"], builds["b"]), (builds["gz-a"], builds["gz-b"])):
        assert a.read_bytes() == b.read_bytes(), first_difference(a, b)
        sidecar = a.with_name(a.name + ".sha256").read_bytes()
        assert sidecar == b.with_name(b.name + ".sha256").read_bytes()
        assert sidecar.split()[0].decode() == hashlib.sha256(a.read_bytes()).hexdigest()
    a = builds["a"]
    assert builds["gz-a"].read_bytes()[4:8] == bytes(4)  # no time in the gzip header
    infos = [info for info, _ in members(a).values()]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
        (0, 0, 0, "", "", 0o644)}
    names = [i.name for i in infos]
    assert names[:2] == ["shop/manifest.json", "shop/SHA256SUMS"]
    manifest = json.loads(members(a)["shop/manifest.json"][1])
    assert [t["name"] for t in manifest["targets"]] == sorted([LINUX, WINDOWS])


def test_source_date_epoch_changes_member_times_and_sbom_timestamp_only(
        builds: dict[str, Path]) -> None:
    plain, dated = members(builds["a"]), members(builds["c"])
    assert list(plain) == list(dated)
    for name, (info, data) in dated.items():
        base_info, base_data = plain[name]
        assert info.mtime == EPOCH and base_info.mtime == 0
        base_info.mtime = info.mtime
        rel = name.split("/", 1)[1]
        if rel == "sbom.cdx.json":
            doc, base = json.loads(data), json.loads(base_data)
            assert doc["metadata"].pop("timestamp").startswith("2023-11-14T22:13:20")
            assert doc == base
        elif rel == "SHA256SUMS":
            changed = set(data.decode().splitlines()) ^ set(base_data.decode().splitlines())
            assert {line.split()[1] for line in changed} == {"sbom.cdx.json"}
        else:
            assert data == base_data, name
        assert header(info, "size") == header(base_info, "size"), name
