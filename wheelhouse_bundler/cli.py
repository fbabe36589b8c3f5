"""The command line: the one place that prints and turns errors into exit codes.

Exit codes: 0 ok, 1 internal bug, 2 bad input or usage, 3 integrity failure,
4 network or index, 5 install failed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import json
import math
import sys
import threading
import traceback
from collections.abc import Callable
from inspect import Parameter
from inspect import signature as _signature
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .errors import BundlerError, UsageError, printable, printable_lines, set_warning_sink, warn
from .options import Build, Network, Selection, Trust

app = typer.Typer(
    name="wheelhouse-bundler",
    help="Move a locked Python environment across an air gap, exactly and verifiably.\n\n"
         "Build box: export, bundle.  Offline target: verify, install, inspect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help is plain text, as written: rich markup would swallow `[tool.wheelhouse-bundler]`
    # (and any other [word]) in a help string.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the tool's version and exit.")] = False,
) -> None:
    """Move a locked Python environment across an air gap, exactly and verifiably.

    Build box: export, bundle.  Offline target: verify, install, inspect.
    """


LockArg = Annotated[Path, typer.Argument(
    metavar="LOCK",
    help="A lock file: poetry.lock, pylock.toml, uv.lock, Pipfile.lock, pdm.lock or a hashed "
    "requirements.txt (make one from a requirements.in with `lock`); or a project folder "
    "holding one.")]
BundleArg = Annotated[Path, typer.Argument(
    metavar="BUNDLE", help="The bundle tarball (.tar or .tar.gz).")]
TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", "-t", help="Target spec, repeatable: host, cp311-manylinux_2_28_x86_64, "
    "cp312-win_amd64, ... Default: `targets` in [tool.wheelhouse-bundler] of the project's "
    "pyproject.toml, else host.")]
TargetFileOpt = Annotated[list[Path] | None, typer.Option(
    "--target-file", help="A target described by JSON from `python3 probe.py` or "
    "`target-info` run on the target machine (repeatable).")]
WithOpt = Annotated[list[str] | None, typer.Option(
    "--with", help="Add an optional dependency group (repeatable).")]
WithoutOpt = Annotated[list[str] | None, typer.Option(
    "--without", help="Leave out a dependency group (repeatable).")]
OnlyOpt = Annotated[list[str] | None, typer.Option(
    "--only", help="Only these dependency groups (repeatable).")]
ExtrasOpt = Annotated[list[str] | None, typer.Option(
    "--extras", "-E", help="Include an extra (repeatable).")]
AllExtrasOpt = Annotated[bool, typer.Option("--all-extras", help="Include every extra.")]
FormatOpt = Annotated[str | None, typer.Option(
    "--format", help="Lock format when the file name does not tell: poetry, pylock, uv, "
    "pdm, pipfile, requirements.")]
IndexOpt = Annotated[str | None, typer.Option(
    "--index-url", help="Default index (Simple API URL) for packages the lock does not pin "
    "to a source. Default: pip's configuration, else pip's default (PyPI). No credentials "
    "here: use netrc or WHEELHOUSE_BUNDLER_HTTP_BASIC_<SOURCE>_USERNAME/_PASSWORD.")]
CacheOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Content-addressed download cache. Default: "
    "$XDG_CACHE_HOME/wheelhouse-bundler.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, max=128,
                                      help="Files downloaded at once.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
AllowUnhashedOpt = Annotated[bool, typer.Option(
    "--allow-unhashed", help="Accept packages the lock pins without a sha256: take every "
    "wheel of the pinned version with the hash its index lists (marked in the manifest). "
    "Hashes are the point of a lock; use only for a lock you cannot regenerate.")]
NoBuildOpt = Annotated[bool, typer.Option(
    "--no-build", help="Refuse packages that publish only an sdist instead of building "
    "their wheels on this machine (for shops that forbid building).")]
NoBuildPackageOpt = Annotated[list[str] | None, typer.Option(
    "--no-build-package", metavar="NAME", help="Refuse to build this package from its "
    "sdist (repeatable).")]
BuildPythonOpt = Annotated[list[Path] | None, typer.Option(
    "--build-python", metavar="PATH", help="An interpreter to build sdists with "
    "(repeatable); pythonX.Y on PATH and pyenv's versions are found without it.")]
OfflineOpt = Annotated[bool, typer.Option(
    "--offline", help="Use the download cache only; name every file it lacks.")]


def _output_path(value: str) -> Path:
    """An output path as typed: Path('') is '.', so an empty -o or -d (an unset shell
    variable) would quietly write into the current folder."""
    if not value.strip():
        raise typer.BadParameter("an empty path; name a file or folder")
    return Path(value)


_output_path.__name__ = "path"  # click names the type after the parser: `<path>` in help


def _finite_timeout(value: float) -> float:
    """click's range lets nan (every comparison false) and inf through: refuse them."""
    if not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of seconds")
    return value


TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0.1, callback=_finite_timeout,
    help="Seconds to wait on a stalled connection before retrying.")]
CertOpt = Annotated[Path | None, typer.Option(
    "--cert", help="CA bundle to trust for the index (else PIP_CERT / SSL_CERT_FILE).")]
ClientCertOpt = Annotated[Path | None, typer.Option(
    "--client-cert", help="PEM file with the client certificate and its key.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or info lines.")]
AllowedSignersOpt = Annotated[Path | None, typer.Option(
    "--allowed-signers", help="An ssh allowed_signers file: the bundle's <bundle>.sig must "
    "verify against it (ssh-keygen -Y verify) before anything else is read.")]
IdentityOpt = Annotated[str | None, typer.Option(
    "--identity", help="The principal that must have signed. Default: the principal in "
    "--allowed-signers that holds the signing key.")]
RequireSigOpt = Annotated[bool, typer.Option(
    "--require-signature", help="Refuse a bundle with no .sig (exit 3); needs "
    "--allowed-signers.")]


def _trust(allowed_signers: AllowedSignersOpt = None, identity: IdentityOpt = None,
           require_signature: RequireSigOpt = False) -> Trust:
    trust = Trust(allowed_signers, identity, require_signature)
    trust.validate()
    return trust


class _Out:
    """Human lines go to stderr so stdout stays clean for JSON and exported files."""

    quiet = False

    @classmethod
    def info(cls, message: str) -> None:
        if not cls.quiet:
            typer.echo(printable_lines(message), err=True)


def _echo(line: str) -> None:
    """A human report line on stdout, escaped: its names come from files (printable)."""
    typer.echo(printable(line))


def _emit_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, sort_keys=True))


class _Group:
    """Options declared once: the parameters of `make`, which turns them into one group.

    A command takes a group as a parameter whose default is the _Group; `_grouped` puts
    the group's options in its place (same order, help and defaults in every command) and
    hands the command the group made, and validated, from them.
    """

    def __init__(self, make: Callable[..., Any]) -> None:
        self.make = make
        self.params = tuple(_signature(make, eval_str=True).parameters.values())


def _grouped(command: Callable[..., None]) -> Callable[..., None]:
    """The command as typer sees it: each _Group parameter replaced by the group's options.

    Every parameter becomes keyword-only (typer passes them all by name), so a group's
    options, which all have defaults, may stand before a required one.
    """
    sig = _signature(command, eval_str=True)
    groups = {p.name: p.default for p in sig.parameters.values()
              if isinstance(p.default, _Group)}
    params = [q.replace(kind=Parameter.KEYWORD_ONLY)
              for p in sig.parameters.values()
              for q in (groups[p.name].params if p.name in groups else (p,))]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        for name, group in groups.items():
            given[name] = group.make(**{p.name: given.pop(p.name) for p in group.params})
        command(**given)

    run.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


def _select(lock: LockArg, target: TargetOpt = None, target_file: TargetFileOpt = None,
            with_: WithOpt = None, without: WithoutOpt = None, only: OnlyOpt = None,
            extras: ExtrasOpt = None, all_extras: AllExtrasOpt = False,
            fmt: FormatOpt = None, allow_unhashed: AllowUnhashedOpt = False,
            no_build: NoBuildOpt = False, no_build_package: NoBuildPackageOpt = None,
            build_python: BuildPythonOpt = None) -> Selection:
    selection = Selection(
        lock=lock, fmt=fmt, targets=tuple(target or ()), target_files=tuple(target_file or ()),
        with_groups=tuple(with_ or ()), without_groups=tuple(without or ()),
        only_groups=tuple(only or ()), extras=tuple(extras or ()), all_extras=all_extras,
        allow_unhashed=allow_unhashed, build_sdists=not no_build,
        no_build_packages=tuple(no_build_package or ()),
        build_pythons=tuple(build_python or ()))
    selection.validate()
    return selection


def _network(index_url: IndexOpt = None, cache_dir: CacheOpt = None, jobs: JobsOpt = 16,
             offline: OfflineOpt = False, timeout: TimeoutOpt = 30.0, cert: CertOpt = None,
             client_cert: ClientCertOpt = None) -> Network:
    network = Network(index_url=index_url, cache_dir=cache_dir, jobs=jobs, offline=offline,
                      timeout=timeout, cert=str(cert) if cert else None,
                      client_cert=str(client_cert) if client_cert else None)
    network.validate()
    return network


def _index_only(index_url: IndexOpt = None) -> Network:
    return _network(index_url)


# What to select and how to reach the network: the same options in export, bundle and
# download (export reaches only the index, with the default client settings).
SELECT = _Group(_select)
NETWORK = _Group(_network)
INDEX_ONLY = _Group(_index_only)
# What a bundle's signature must verify against: verify, inspect, diff, install, rehearse.
TRUST = _Group(_trust)


def _fetch_line(f: Any) -> str:
    """The one-line summary of a fetch: files, bytes, how many came from the cache, speed."""
    speed = f.bytes / f.seconds / 1e6 if f.seconds else 0.0
    return (f"fetched {f.files} files, {f.bytes / 1e6:.1f} MB ({f.from_cache} from cache) "
            f"in {f.seconds:.2f}s, {speed:.1f} MB/s")


class _Bar:
    """tqdm on stderr for bytes, with files done in the postfix; silent off a terminal."""

    def __init__(self, quiet: bool, desc: str = "download") -> None:
        self._bar: Any = None
        if not quiet and sys.stderr.isatty():
            # Imported only for a terminal: even disabled, a tqdm starts its monitor thread.
            from tqdm import tqdm

            self._bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                             leave=False, file=sys.stderr)
        self._files = 0
        self._lock = threading.Lock()

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(nbytes)

    def finished(self) -> None:
        if self._bar is not None:
            with self._lock:
                self._files += 1
                self._bar.set_postfix_str(f"{self._files} files", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@app.command(epilog="Examples:\n\n"
             "wheelhouse-bundler export poetry.lock --with dev -o requirements.txt\n\n"
             "wheelhouse-bundler export . -t host -t cp312-win_amd64 -o reqs/\n\n"
             "wheelhouse-bundler export . --target-file bastion.json -o requirements.txt")
@_grouped
def export(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", parser=_output_path,
        help="File to write (one target) or folder (one <target>.txt each). "
        "Default: stdout.")] = None,
    selection: Selection = SELECT, network: Network = INDEX_ONLY,
    quiet: QuietOpt = False,
) -> None:
    """Write pinned, hashed requirements for each target (markers evaluated)."""
    from .bundle import refuse_overwriting
    from .files import atomic_output
    from .pipeline import export as run_export
    from .pipeline import inputs_of

    _Out.quiet = quiet
    texts = run_export(selection, network)
    if output is None:
        if len(texts) > 1:
            raise UsageError("several targets: give -o FOLDER to write one file per target")
        typer.echo(next(iter(texts.values())), nl=False)
        return
    if len(texts) > 1 and not output.is_dir() and (output.exists() or output.suffix):
        raise UsageError(f"{output}: {len(texts)} targets need a folder for -o (one "
                         "<target>.txt each): give an existing folder or a name without a "
                         "suffix")
    one = len(texts) == 1 and not output.is_dir()
    refuse_overwriting([output] if one else [output / f"{n}.txt" for n in texts],
                       inputs_of(selection, network))
    if one:
        with atomic_output(output) as fh:
            fh.write(next(iter(texts.values())).encode())
        _Out.info(f"wrote {output}")
        return
    made = not output.exists()
    written: list[Path] = []
    try:  # every target's file or none: a half-exported folder would look complete
        for name, text in texts.items():
            with atomic_output(output / f"{name}.txt") as fh:
                fh.write(text.encode())
            written.append(output / f"{name}.txt")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                output.rmdir()
        raise
    for path in written:
        _Out.info(f"wrote {path}")


DistOpt = Annotated[Path | None, typer.Option(
    "--dist", help="Bundle the project's own wheels from this folder (e.g. made by "
    "`poetry build`) instead of building them.")]
NoOwnOpt = Annotated[bool, typer.Option(
    "--no-own", help="Do not bundle the project's own wheel, even when it is a package.")]
NoIsolationOpt = Annotated[bool, typer.Option(
    "--no-isolation", help="Build the own wheel with the build backend installed beside this "
    "tool (`python -m build --no-isolation`) instead of fetching it into a fresh env.")]
_OSV_DB_HELP = ("OSV advisory dump: a zip of <ID>.json records (the PyPI all.zip OSV "
                "publishes) or a folder of OSV JSON files. Read offline.")
OsvDbOpt = Annotated[Path | None, typer.Option("--osv-db", help=_OSV_DB_HELP)]
IgnoreVulnOpt = Annotated[list[str] | None, typer.Option(
    "--ignore-vuln", metavar="ID", help="Accept an advisory (its ID or an alias), "
    "repeatable; bundle records each acceptance in the manifest.")]


def _build(dist: DistOpt = None, no_own: NoOwnOpt = False,
           no_isolation: NoIsolationOpt = False,
           audit: Annotated[bool, typer.Option(
               "--audit", help="Refuse to write the bundle when an advisory in --osv-db "
               "matches a bundled version (exit 3).")] = False,
           osv_db: OsvDbOpt = None, ignore_vuln: IgnoreVulnOpt = None,
           with_uv: Annotated[bool | None, typer.Option(
               "--with-uv/--no-uv", help="Carry uv's wheel for each target (from the index, "
               "listed in the manifest and SBOM) so `install` restores with it offline, much "
               "faster than pip. Default: carried when uv has a wheel for every target, "
               "else left out with one warning; --with-uv makes that an error, --no-uv "
               "leaves uv out.", show_default=False)] = None,
           uv_version: Annotated[str | None, typer.Option(
               "--uv-version", help="The uv version to carry (default: the pinned "
               "one); like --with-uv, an error when it has no wheel for a target.")] = None,
           sign: Annotated[Path | None, typer.Option(
               "--sign", metavar="KEY", help="Sign the tarball with this SSH private key (or "
               "the .pub of a key held by ssh-agent): writes <out>.sig, an SSHSIG signature "
               "made with `ssh-keygen -Y sign -n wheelhouse-bundler`. Never prompts for a "
               "passphrase.")] = None) -> Build:
    what = Build(own=not no_own, dist=dist, build_isolation=not no_isolation, audit=audit,
                 osv_db=osv_db, ignore_vulns=tuple(ignore_vuln or ()), with_uv=with_uv,
                 uv_version=uv_version, sign_key=sign)
    what.validate()
    return what


BUILD = _Group(_build)


@app.command(epilog="Examples:\n\n"
             "wheelhouse-bundler bundle poetry.lock -t cp311-manylinux_2_28_x86_64 -o app.tar\n\n"
             "wheelhouse-bundler bundle . -t host -t cp312-musllinux_1_2_aarch64 "
             "-t cp313-win_amd64 -o app.tar\n\n"
             "wheelhouse-bundler bundle . --target-file bastion.json -o app.tar   "
             "(bastion.json: `python3 probe.py` run on the bastion; see target-info)")
@_grouped
def bundle(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", parser=_output_path,
        help="The bundle to write: .tar (fast, wheels are compressed) or "
        ".tar.gz; or a folder. Default name: <project>-<version>-<lock sha256 prefix>.tar "
        "in the current (or given) folder.")] = None,
    selection: Selection = SELECT, network: Network = NETWORK, what: Build = BUILD,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Export, download every wheel (hash-checked) and pack one deterministic tarball."""
    _preload_tls(network)
    from .pipeline import build_signed, default_output

    _Out.quiet = quiet
    if output is None or output.is_dir():
        output = default_output(selection.lock, output or Path.cwd())
    if not output.name.endswith((".tar", ".tar.gz", ".tgz")):
        raise UsageError(f"{output}: the bundle name must end in .tar, .tar.gz or .tgz")
    bar = _Bar(quiet)
    try:
        built, signature = build_signed(selection, network, what, output, progress=bar)
    finally:
        bar.close()
    f = built.fetch
    if json_out:
        _emit_json({"output": str(built.output), "sha256": built.sha256,
                    "targets": [p.target.name for p in built.plans], "files": built.files,
                    "bytes": built.size, "downloaded": f.downloaded, "from_cache": f.from_cache,
                    "seconds": round(f.seconds, 3),
                    "network_seconds": round(built.network_seconds, 3), "own": built.own,
                    "built_from_sdist": built.built,
                    "accepted_vulns": sorted({v.id for v in built.audit.accepted})
                    if built.audit else [],
                    "osv_newest_modified": built.audit.newest_modified if built.audit
                    else None,
                    "signature": str(signature.path) if signature else None,
                    "warnings": list(built.warnings)})
        for line in built.warnings:
            warn(line)
        return
    for line in built.warnings:
        warn(line)
    _Out.info(_fetch_line(f))
    if built.own:
        _Out.info(f"added {built.own} own wheel(s) of the project")
    if built.built:
        _Out.info(f"{built.built} wheel(s) built here from sdists (see inspect)")
    if built.audit:
        _Out.info(f"audited against {built.audit.records} advisory records, newest modified "
                  f"{built.audit.newest_modified or 'unknown'}")
    for finding in built.audit.accepted if built.audit else ():
        _Out.info(f"accepted {finding.id}: {finding.package} {finding.version}")
    _Out.info(f"wrote {built.output} for {', '.join(p.target.name for p in built.plans)}: "
              f"{built.files} wheels, sha256 {built.sha256}")
    if signature:
        _Out.info(f"signed {signature.path.name} with key {signature.fingerprint}")


@app.command(epilog="Example: wheelhouse-bundler download poetry.lock -t cp312-win_amd64 -d whl/")
@_grouped
def download(
    dest: Annotated[Path, typer.Option("--dest", "-d", parser=_output_path,
                                       help="Folder for the wheels (on the cache's "
                                       "filesystem, hard links into the cache).")],
    selection: Selection = SELECT, network: Network = NETWORK,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Download each target's wheels (hash-checked) into a folder, without bundling."""
    _preload_tls(network)
    from .pipeline import download as run_download

    _Out.quiet = quiet
    bar = _Bar(quiet)
    try:
        got = run_download(selection, network, dest, progress=bar)
    finally:
        bar.close()
    files = sorted({p.file.filename for plan in got.plans for p in plan.picks
                    if p.file.filename})
    if json_out:
        _emit_json({"dest": str(dest), "files": files,
                    "targets": [p.target.name for p in got.plans],
                    "downloaded": got.summary.downloaded,
                    "from_cache": got.summary.from_cache})
        return
    _Out.info(_fetch_line(got.summary))
    _Out.info(f"{len(files)} wheels in {dest}")


@app.command(epilog="Examples:\n\n"
             "wheelhouse-bundler verify app.tar\n\n"
             "wheelhouse-bundler verify app.tar --allowed-signers allowed_signers "
             "--require-signature")
@_grouped
def verify(bundle: BundleArg, trust: Trust = TRUST, json_out: JsonOpt = False,
           quiet: QuietOpt = False) -> None:
    """Check the tarball: signature, sidecar, every member's size and sha256, safe names."""
    from .verify import verify_signed

    _Out.quiet = quiet
    v = verify_signed(bundle, trust=trust)
    if json_out:
        _emit_json({"bundle": str(bundle), "ok": True, "sha256": v.sha256, "sidecar": v.sidecar,
                    "targets": [t.name for t in v.manifest.targets],
                    "files": len(v.manifest.files), "bytes": v.size,
                    "signature": v.signature.to_json() if v.signature else None})
        return
    if v.sidecar == "missing":
        _Out.info(f"warning: no {bundle.name}.sha256 beside the bundle; checked its contents only")
    _echo(f"OK {bundle}: {len(v.manifest.files)} wheels, {v.size / 1e6:.1f} MB, targets "
          f"{', '.join(t.name for t in v.manifest.targets)}; "
          + (v.signature.describe() if v.signature else "unsigned"))


@app.command(epilog="Example: wheelhouse-bundler inspect app.tar --json")
@_grouped
def inspect(bundle: BundleArg, json_out: JsonOpt = False,
            sbom: Annotated[bool, typer.Option(
                "--sbom", help="Print the bundle's CycloneDX SBOM (sbom.cdx.json) instead.")
            ] = False, trust: Trust = TRUST) -> None:
    """List the bundle's signer, targets, packages, versions and sizes (after verifying it)."""
    from . import manifest as manifest_mod
    from .verify import verify_signed

    v = verify_signed(bundle, trust=trust)
    m = v.manifest
    if sbom:
        from .sbom import from_bundle

        typer.echo(from_bundle(bundle).decode(), nl=False)
        return
    if json_out:
        _emit_json({
            "bundle": str(bundle), "sha256": v.sha256, "tool_version": m.tool_version,
            "lock": {"name": m.lock_name, "format": m.lock_format, "sha256": m.lock_sha256},
            "groups": list(m.groups), "extras": list(m.extras),
            "targets": [t.name for t in m.targets],
            "packages": [{"name": f.name, "version": f.version, "filename": f.filename,
                          "size": f.size, "sha256": f.sha256, "targets": list(f.targets),
                          "yanked": f.yanked, "own": f.own,
                          "hash_from_index": f.hash_from_index,
                          "built_from": manifest_mod.built_json(f.built_from)}
                         for f in m.files],
            "accepted_vulns": [{"id": a.id, "package": a.package, "version": a.version,
                                "aliases": list(a.aliases)} for a in m.accepted_vulns],
            "signature": v.signature.to_json() if v.signature else None})
        return
    _echo(f"{bundle}  sha256 {v.sha256}")
    _echo(f"signer   {v.signature.describe() if v.signature else 'unsigned'}")
    _echo(f"lock     {m.lock_name} ({m.lock_format}) sha256 {m.lock_sha256}")
    _echo(f"groups   {', '.join(m.groups) or '-'}   extras {', '.join(m.extras) or '-'}")
    _echo(f"targets  {', '.join(t.name for t in m.targets)}")
    width = max((len(f.name) for f in m.files), default=4)
    for f in m.files:
        flag = ("  (yanked)" if f.yanked else "") + ("  (own)" if f.own else "") + (
            "  (hash from index)" if f.hash_from_index else "") + (
            f"  (built here from {f.built_from.sdist} with {f.built_from.backend_version}, "
            f"{f.built_from.python} {f.built_from.platform})" if f.built_from else "")
        _echo(f"  {f.name:<{width}}  {f.version:<12} {f.size / 1e3:>9.1f} kB  "
              f"{f.filename}{flag}")
    for a in m.accepted_vulns:
        _echo(f"accepted {a.id} for {a.package} {a.version}")
    _echo(f"{len(m.files)} wheels, {v.size / 1e6:.1f} MB")


@app.command("diff", epilog="Examples:\n\n"
             "wheelhouse-bundler diff app-1.4.tar app-1.5.tar\n\n"
             "wheelhouse-bundler diff old.tar new.tar --json --allowed-signers allowed_signers")
@_grouped
def diff_cmd(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="The bundle in use now.")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The bundle proposed to replace it.")],
    trust: Trust = TRUST, json_out: JsonOpt = False,
) -> None:
    """Per target, the packages added, removed and changed (version or file hash).

    Both bundles are verified first. A report: exit 0 whatever differs.
    """
    from . import diff as diff_mod
    from .verify import verify_signed

    checked = []
    for role, path in (("old", old), ("new", new)):
        try:
            checked.append(verify_signed(path, trust=trust))
        except BundlerError as exc:  # say which of the two bundles is at fault
            if str(path) not in str(exc):
                exc.args = (f"{role} bundle {path}: {exc}",)
            raise
    a, b = checked
    diffs = diff_mod.compare(a.manifest, b.manifest)
    if json_out:
        sides = {name: {"bundle": str(path), "sha256": v.sha256,
                        "lock_sha256": v.manifest.lock_sha256,
                        "signature": v.signature.to_json() if v.signature else None}
                 for name, path, v in (("old", old, a), ("new", new, b))}
        _emit_json({**sides, **diff_mod.to_json(diffs)})
        return
    _echo(f"--- {old}  sha256 {a.sha256}")
    _echo(f"+++ {new}  sha256 {b.sha256}")
    for line in diff_mod.to_lines(diffs, old.name, new.name):
        _echo(line)


OutputOpt = Annotated[Path, typer.Option("--output", "-o", parser=_output_path,
                                          help="The file to write (.tar or .tar.gz).")]


@app.command("delta", epilog="Examples:\n\n"
             "wheelhouse-bundler delta app-1.4.tar app-1.5.tar -o app-1.5.delta.tar\n\n"
             "wheelhouse-bundler delta app-1.4.tar app-1.5.tar -o d.tar "
             "--allowed-signers allowed_signers --require-signature --json")
@_grouped
def delta_cmd(
    old: Annotated[Path, typer.Argument(metavar="OLD",
                                        help="The bundle the other side already has.")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The bundle to send over.")],
    output: OutputOpt, trust: Trust = TRUST, json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build side: NEW without the wheels OLD has, for `merge` to rebuild NEW from OLD.

    Both bundles are verified first; the signature options are for NEW (a .sig beside OLD
    must verify, but OLD need not be signed). The delta carries NEW's manifest,
    SHA256SUMS, per-target files, install.py, SBOM, new wheels, sha256 and .sig.
    """
    from .delta import make

    _Out.quiet = quiet
    made = make(old, new, output, trust)
    reused, carried = made.reused, made.carried
    if json_out:
        _emit_json({"output": str(made.output), "sha256": made.sha256, "bytes": made.size,
                    "new": {"name": made.plan.name, "sha256": made.plan.sha256,
                            "bytes": made.plan.size},
                    "reused": {"files": len(reused), "bytes": sum(e.size for e in reused)},
                    "carried": {"files": len(carried),
                                "bytes": sum(e.size for e in carried)},
                    "saved_bytes": made.saved, "signature": made.plan.signature is not None})
        return
    _Out.info(f"wrote {made.output}: {len(reused)} files reused from {old.name}, "
              f"{len(carried)} files carried, {made.saved / 1e6:.1f} MB saved "
              f"({made.size / 1e6:.1f} MB instead of {made.plan.size / 1e6:.1f} MB)"
              + ("; NEW's signature carried" if made.plan.signature else ""))


@app.command("merge", epilog="Examples:\n\n"
             "wheelhouse-bundler merge app-1.4.tar app-1.5.delta.tar -o app-1.5.tar\n\n"
             "wheelhouse-bundler merge app-1.4.tar d.tar -o app-1.5.tar "
             "--allowed-signers allowed_signers --require-signature")
@_grouped
def merge_cmd(
    old: Annotated[Path, typer.Argument(metavar="OLD",
                                        help="The bundle this side already has.")],
    delta: Annotated[Path, typer.Argument(metavar="DELTA", help="The delta from `delta`.")],
    output: OutputOpt, trust: Trust = TRUST, json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Target side, offline: rebuild NEW byte for byte from OLD and a delta.

    OLD and the delta are verified first. The result must have the sha256 the delta
    records, and its signature must pass the signature options, before it appears at
    --output with its .sha256 and (when the delta carries one) its .sig beside it. A .sig
    beside OLD must verify too, but OLD need not be signed.
    """
    from .delta import merge

    _Out.quiet = quiet
    done = merge(old, delta, output, trust)
    reused = len(done.plan.needs())
    if json_out:
        _emit_json({"output": str(done.output), "sha256": done.sha256, "bytes": done.size,
                    "reused": reused, "carried": len(done.plan.carried()),
                    "signature": done.signature.to_json() if done.signature else None})
        return
    _Out.info(f"rebuilt {done.output} byte for byte ({reused} files from {old.name}, "
          f"{len(done.plan.carried())} from {delta.name}): sha256 {done.sha256}; "
          + (done.signature.describe() if done.signature else "unsigned"))


@app.command(epilog="Examples:\n\n"
             "wheelhouse-bundler audit app.tar --osv-db all.zip\n\n"
             "wheelhouse-bundler audit poetry.lock --osv-db osv/ --ignore-vuln GHSA-xxxx-xxxx-xxxx "
             "--json")
def audit(
    source: Annotated[Path, typer.Argument(
        metavar="SOURCE",
        help="A bundle (.tar, .tar.gz; verified first) or a lock file / project folder.")],
    osv_db: Annotated[Path, typer.Option("--osv-db", help=_OSV_DB_HELP)],
    ignore_vuln: IgnoreVulnOpt = None, fmt: FormatOpt = None, json_out: JsonOpt = False,
) -> None:
    """Match every pinned version against an OSV advisory dump, offline.

    Exit 3 when an advisory matches that neither --ignore-vuln nor the bundle's manifest
    (its accepted_vulns) accepts.
    """
    from . import audit as audit_mod

    db = audit_mod.load(osv_db)
    _Out.info(audit_mod.describe(db))
    ignores = list(ignore_vuln or ())
    if source.is_file() and source.name.endswith((".tar", ".tar.gz", ".tgz")):
        from .verify import verify as run_verify

        man = run_verify(source).manifest
        pins = audit_mod.pins_of_manifest(man)
        ignores += [a.id for a in man.accepted_vulns]
    else:
        pins = audit_mod.pins_of_lock(source, fmt)
    report = audit_mod.audit(db, pins, ignores)
    if json_out:
        _emit_json({"source": str(source), **audit_mod.to_json(report)})
    else:
        for line in audit_mod.to_lines(report):
            _echo(line)
    audit_mod.refuse_if_open(report)


@app.command(epilog="Examples:\n\n"
             "wheelhouse-bundler publish app.tar --repository-url http://index.corp.example:8080/\n\n"
             "wheelhouse-bundler publish app.tar --repository internal -t "
             "cp311-manylinux_2_28_x86_64 --dry-run   (URL and user from ~/.pypirc)\n\n"
             "Credentials: TWINE_USERNAME / TWINE_PASSWORD, the --repository section of "
             "~/.pypirc, or netrc; never on the command line.")
@_grouped
def publish(
    bundle: BundleArg,
    repository_url: Annotated[str | None, typer.Option(
        "--repository-url", help="The index's upload URL, as twine takes it (pypiserver: its "
        "root; devpi: <root>/<user>/<index>/). Default: TWINE_REPOSITORY_URL.")] = None,
    repository: Annotated[str | None, typer.Option(
        "--repository", "-r", help="A section of ~/.pypirc (twine's file) giving the URL "
        "and credentials. Default: TWINE_REPOSITORY.")] = None,
    config_file: Annotated[Path | None, typer.Option(
        "--config-file", help="The .pypirc to read --repository from.")] = None,
    target: Annotated[list[str] | None, typer.Option(
        "--target", "-t", help="Upload only this bundle target's wheels (repeatable). "
        "Default: every wheel of the bundle.")] = None,
    index_url: Annotated[str | None, typer.Option(
        "--index-url", help="The index's Simple API root, to learn what it already has. "
        "Default: derived from the upload URL (pypiserver, Nexus, Artifactory, GitLab: "
        "<url>/simple/; devpi: <url>/+simple/).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Verify and compare with the index; upload nothing.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64,
                                      help="Files uploaded at once.")] = 4,
    timeout: TimeoutOpt = 30.0, cert: CertOpt = None, client_cert: ClientCertOpt = None,
    trust: Trust = TRUST, json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Verify a bundle, then upload its wheels the index lacks (twine's upload API).

    A file the index holds with the same sha256 is skipped; the same file name with
    other bytes stops the run before any upload (exit 3).
    """
    import os

    from .publish import Connection, resolve_repository
    from .publish import publish as run_publish
    from .sources import check_not_in_argv
    from .tls import check_files

    _Out.quiet = quiet or json_out
    check_files(str(cert) if cert else None, str(client_cert) if client_cert else None)
    if index_url is not None:
        check_not_in_argv(index_url, "--index-url")
    repo = resolve_repository(repository_url, repository, config_file, os.environ)
    how = Connection(jobs=jobs, timeout=timeout, cert=str(cert) if cert else None,
                     client_cert=str(client_cert) if client_cert else None)
    bar = _Bar(quiet or json_out, desc="upload")
    try:
        done = run_publish(bundle, repo, targets=tuple(dict.fromkeys(target or ())),
                           index_url=index_url, dry_run=dry_run, connection=how, trust=trust,
                           progress=bar, log=_Out.info)
    finally:
        bar.close()
    if json_out:
        _emit_json({"bundle": str(bundle), "repository": done.repository, "index": done.index,
                    "dry_run": done.dry_run,
                    "uploaded": [f.filename for f in done.uploaded],
                    "present": [f.filename for f in done.present],
                    "unchecked": [f.filename for f in done.unchecked],
                    "bytes": done.bytes, "seconds": round(done.seconds, 3)})
        return
    verb = "would upload" if done.dry_run else "uploaded"
    for f in done.uploaded:
        _Out.info(f"{verb} {f.filename}")
    for f in done.unchecked:
        _Out.info(f"warning: {f.filename}: the index already has this name (not compared: "
                  "no Simple page)")
    _echo(f"{verb} {len(done.uploaded)} files, {done.bytes / 1e6:.1f} MB; already present "
          f"{len(done.present) + len(done.unchecked)}; to {done.repository} "
          f"in {done.seconds:.1f}s")


KeepOpt = Annotated[int | None, typer.Option(
    "--keep", min=1, help="After a good install, keep only the N newest releases (the current "
    "and the previous one, the rollback target, are always kept).")]
NoSmokeOpt = Annotated[bool, typer.Option(
    "--no-smoke", help="Skip importing every top-level module of the installed packages.")]
SmokeOpt = Annotated[str | None, typer.Option(
    "--smoke", metavar="CMD", help="Also run this shell command with the new venv's bin first "
    "on PATH; a non-zero exit fails the install.")]
InstallerOpt = Annotated[str, typer.Option(
    "--installer", help="auto: the bundle's uv when it carries one for this platform, else "
    "pip; pip; uv (the bundle's, else uv on PATH, else fail).")]


@app.command(epilog="Example: wheelhouse-bundler install app.tar --venv /opt/app/venv --keep 3")
@_grouped
def install(
    bundle: BundleArg,
    venv: Annotated[Path, typer.Option("--venv", help="Where the venv appears: a symlink to a "
                                       "fresh release under <venv>.releases/.")],
    python: Annotated[str | None, typer.Option(
        "--python", help="Interpreter for the venv. Default: the one running this tool.")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", "-t", help="Bundle target to install. Default: the best fit for "
        "the interpreter.")] = None,
    keep: KeepOpt = None, no_smoke: NoSmokeOpt = False, smoke: SmokeOpt = None,
    installer: InstallerOpt = "auto", trust: Trust = TRUST,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Verify, then install offline into a fresh venv and switch --venv to it atomically."""
    from .install import Restore
    from .install import install as run_install

    _Out.quiet = quiet or json_out
    how = Restore(python=python, target=target, installer=installer,
                  smoke_imports=not no_smoke, smoke_command=smoke)
    done = run_install(bundle, venv, how, trust=trust, keep=keep, log=_Out.info)
    if json_out:
        _emit_json({"venv": str(done.venv), "release": str(done.release), "target": done.target,
                    "packages": done.packages,
                    "previous": str(done.previous) if done.previous else None,
                    "seconds": round(done.seconds, 3), "installer": done.installer,
                    "imported": list(done.imported), "warnings": list(done.warnings),
                    "pruned": [str(p) for p in done.pruned],
                    "timings": dict(done.timings)})
        return
    for line in done.warnings:
        typer.echo(printable(line), err=True)
    _echo(f"installed {done.packages} packages for {done.target} into {done.venv} "
          f"in {done.seconds:.1f}s")


@app.command(epilog="Examples:\n\n"
             "wheelhouse-bundler rollback --venv /opt/app/venv\n\n"
             "wheelhouse-bundler rollback --venv /opt/app/venv --to app-20260101T000000Z")
def rollback(
    venv: Annotated[Path, typer.Option("--venv", help="The venv link that install made.")],
    to: Annotated[str | None, typer.Option(
        "--to", help="The release folder name (under <venv>.releases/) to switch to. "
        "Default: the one before the current release.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Switch --venv back to the previous release in one atomic rename."""
    from .install import rollback as run_rollback

    old, new = run_rollback(venv, to)
    if json_out:
        _emit_json({"venv": str(venv), "from": str(old), "to": str(new)})
        return
    _echo(f"{venv} -> {new} (was {old.name})")


@app.command(epilog="Examples:\n\n"
             "wheelhouse-bundler rehearse app.tar --report drill.md\n\n"
             "wheelhouse-bundler rehearse app.tar --smoke 'myapp --version' --json")
@_grouped
def rehearse(
    bundle: BundleArg,
    smoke: SmokeOpt = None, no_smoke: NoSmokeOpt = False,
    python: Annotated[str | None, typer.Option(
        "--python", help="Interpreter to restore with. Default: the one running this tool.")
    ] = None,
    installer: InstallerOpt = "auto",
    report_file: Annotated[Path | None, typer.Option(
        "--report", parser=_output_path,
        help="Also write the Markdown report to this file.")] = None,
    trust: Trust = TRUST, json_out: JsonOpt = False,
) -> None:
    """DR drill: restore into a scratch folder with no network; time every step; report.

    Exits with the failure's code (3 integrity, 5 install, ...) when anything failed.
    """
    from .bundle import check_writable, refuse_overwriting, sidecar_path
    from .files import atomic_output
    from .install import Restore
    from .rehearse import reexec_in_namespace, to_json, to_markdown
    from .rehearse import rehearse as run_rehearse

    args = ["rehearse", str(bundle), "--installer", installer]
    args += ["--smoke", smoke] if smoke else []
    args += ["--no-smoke"] if no_smoke else []
    args += ["--python", python] if python else []
    args += ["--report", str(report_file)] if report_file else []
    args += ["--json"] if json_out else []
    if report_file is not None:
        check_writable(report_file, "--report")
        refuse_overwriting([report_file], [
            ("bundle", bundle), ("bundle's sidecar", sidecar_path(bundle)),
            ("--allowed-signers file", trust.allowed_signers)])
    args += ["--allowed-signers", str(trust.allowed_signers)] if trust.allowed_signers else []
    args += ["--identity", trust.identity] if trust.identity else []
    args += ["--require-signature"] if trust.require else []
    code = reexec_in_namespace(args)
    if code is not None:
        raise typer.Exit(code)
    how = Restore(python=python, installer=installer, smoke_imports=not no_smoke,
                  smoke_command=smoke)
    report = run_rehearse(bundle, how, trust=trust)
    markdown = printable_lines(to_markdown(report))
    if report_file is not None:
        with atomic_output(report_file) as fh:
            fh.write(markdown.encode())
    typer.echo(to_json(report) if json_out else markdown, nl=False)
    if not report.ok:  # the report is on stdout; the failure also goes where errors go
        typer.echo(f"wheelhouse-bundler: {report.error_kind or 'error'}: " + printable_lines(
            f"rehearsal of {bundle} failed: {report.error or 'unknown error'}"), err=True)
        raise typer.Exit(report.exit_code or 1)


@app.command("target-info", epilog="Examples:\n\n"
             "wheelhouse-bundler target-info                       (this Python)\n\n"
             "wheelhouse-bundler target-info --python /usr/bin/python3.12 > t312.json\n\n"
             "wheelhouse-bundler target-info --script > probe.py   (copy to the bastion, run "
             "`python3 probe.py > bastion.json` there, then on the build box: "
             "wheelhouse-bundler bundle . --target-file bastion.json -o app.tar)")
def target_info(
    python: Annotated[str | None, typer.Option(
        "--python", help="Describe this interpreter instead of the running one (it needs "
        "nothing installed).")] = None,
    script: Annotated[bool, typer.Option(
        "--script", help="Print the stdlib-only probe script instead, to run on a machine "
        "without wheelhouse-bundler (Python 3.8+).")] = False,
) -> None:
    """Print an interpreter's exact wheel tags and marker environment as JSON.

    The output is a target file: `--target-file` on the build box reads it (or the raw
    output of the probe script) to bundle exactly the wheels that machine's pip picks.
    """
    from . import targets

    if script:
        if python is not None:
            raise UsageError("--script prints the probe itself; it takes no --python")
        typer.echo(targets.probe_source(), nl=False)
        return
    target, facts = targets.interpreter(python)
    _emit_json(targets.describe(target, facts))


_LOCK_HELP = (
    "Compile pinned, hashed requirements with pip-tools (pip-compile --generate-hashes).\n\n"
    "pip-tools resolves for the host only: markers, wheels and Requires-Python are those of "
    "the Python running this command, so the lock is exact for this host. Bundling it for "
    "other targets works when their wheels exist; for a universal lock use uv, poetry or pdm. "
    "pip's own configuration is ignored except the index (--index-url, else pip's configured "
    "or default index).")


@app.command("lock", help=_LOCK_HELP, epilog="Examples:\n\n"
             "wheelhouse-bundler lock requirements.in\n\n"
             "wheelhouse-bundler lock pyproject.toml -o requirements.txt "
             "--index-url http://127.0.0.1:8080/simple/")
def lock_cmd(
    source: Annotated[Path, typer.Argument(
        metavar="SOURCE",
        help="requirements.in, or a pyproject.toml (its project dependencies).")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", parser=_output_path, help="The hashed lock to write (atomically). "
        "Default: requirements.txt beside the input.")] = None,
    index_url: IndexOpt = None, quiet: QuietOpt = False,
) -> None:
    from .pipcompile import compile_lock

    _Out.quiet = quiet
    done = compile_lock(source, output, index_url=index_url)
    _Out.info(f"wrote {done.output}: {done.packages} pinned, hashed packages "
              f"(resolved for this host against {done.index})")


def _preload_tls(network: Network) -> None:
    """Before the heavy imports of a command that will likely fetch: see tls.preload.
    (The certificate files were checked already, even --offline: Network.validate.)"""
    if not network.offline:
        from .tls import preload

        preload(network.cert, network.client_cert)


def _usage_errors() -> tuple[type[Exception], ...]:
    """typer up to 0.27 raises click's exceptions; 0.28 carries its own click, whose
    usage errors all derive from `typer.TyperException`."""
    own = getattr(typer, "TyperException", None)
    if own is not None:
        return (own,)
    import click

    return (click.ClickException,)


_USAGE_ERRORS = _usage_errors()


# The root help lists each command with a summary that fits 80 columns (click cuts a
# docstring's first line with "..." where it does not); the docstrings keep the long form.
_SUMMARIES = {
    "export": "Pinned, hashed requirements for each target",
    "bundle": "Export, download and pack one deterministic tarball",
    "download": "Each target's wheels into a folder, hash-checked",
    "verify": "Check a bundle: signature, sidecar, sizes, hashes, names",
    "inspect": "A bundle's signer, targets, packages and sizes",
    "diff": "Packages added, removed and changed, per target",
    "delta": "NEW less the wheels OLD has, to send across the gap",
    "merge": "Rebuild NEW byte for byte from OLD and a delta, offline",
    "audit": "Pinned versions against an offline OSV dump",
    "install": "Verify, install offline into a fresh venv, switch",
    "rollback": "Switch --venv back to the previous release",
    "rehearse": "DR drill: restore offline into a scratch folder, timed",
    "target-info": "An interpreter's exact wheel tags and markers, as JSON",
    "lock": "Compile requirements.in into a hashed lock (pip-tools)",
    "publish": "Upload a verified bundle's wheels into an index",
}
for _info in app.registered_commands:
    _info.short_help = _SUMMARIES[_info.name or _info.callback.__name__]  # type: ignore[union-attr]


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command being run, when the arguments name one.

    typer turns every command's signature into click parameters on each start, 13
    commands' worth (a sixth of a `--version`'s time); the one being run is enough.
    Anything else (root options, help, a misspelt command) gets the whole app, so its
    help and its "no such command" list every command.
    """
    if not args or args[0].startswith("-"):
        return app
    chosen = [c for c in app.registered_commands
              if (c.name or (c.callback and c.callback.__name__.lower().replace("_", "-")))
              == args[0]]
    if len(chosen) != 1:
        return app
    one = copy.copy(app)
    one.registered_commands = chosen
    return one


def _usage_line(exc: Exception) -> str:
    """click's usage error as one line, like every other error: its message, then where
    to read more (click prints usage, a hint and the message on three lines)."""
    format_message = getattr(exc, "format_message", None)
    message = " ".join(str(format_message() if format_message else exc).split()).rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (try '{ctx.command_path} --help')"
    return message


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, mapping every expected failure to one line and a code."""
    args = sys.argv[1:] if argv is None else argv
    set_warning_sink(_Out.info)
    try:
        result = _app_for(args)(args=args, prog_name="wheelhouse-bundler",
                                standalone_mode=False)
        if result == 130:  # typer turns Ctrl-C into a silent Exit(130)
            typer.echo("wheelhouse-bundler: interrupted", err=True)
        return result if isinstance(result, int) else 0
    except BundlerError as exc:
        from .sources import redact_text

        typer.echo(f"wheelhouse-bundler: {exc.kind}: {printable_lines(redact_text(str(exc)))}",
                   err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except _USAGE_ERRORS as exc:  # an unknown option, a missing argument, a bad value
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command: its help is the answer
            exc.show()  # type: ignore[attr-defined]
        else:
            from .sources import redact_text

            typer.echo(f"wheelhouse-bundler: error: {redact_text(_usage_line(exc))}", err=True)
        return 2
    except OSError as exc:  # a full disk, a read-only folder: the machine, not a bug
        where = exc.filename or "a file"
        typer.echo(printable(f"wheelhouse-bundler: error: {where}: {exc.strerror or exc}"),
                   err=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("wheelhouse-bundler: interrupted", err=True)
        return 130
    except Exception:
        traceback.print_exc()
        typer.echo("wheelhouse-bundler: internal error (a bug): please report the trace above",
                   err=True)
        return 1


def run() -> None:
    code = main()
    # The interpreter's last garbage collections walk every object the imports made
    # (httpx, packaging, typer: a tenth of a second here) only to find nothing to free
    # before the process ends anyway. Frozen objects are skipped; everything is still
    # closed and flushed as usual.
    gc.freeze()
    sys.exit(code)
