"""What the user asked for, in small groups, each with the rules that tie its flags.

`Selection` says what to take from the lock, `Network` how to reach the indexes, `Build`
what else goes into a bundle, `Trust` what a bundle's signature must verify against.
The CLI fills them from flags and validates each once; every step takes only the groups
it uses, so a new flag lands in one group and its rules beside it instead of in a bag
every step carries. Plain values, no I/O at import: the CLI builds them before its
heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from .select import BuildPolicy

Inputs = list[tuple[str, Path | None]]
"""Files a run reads, by role (bundle.refuse_overwriting names the role)."""


@dataclass(frozen=True)
class Selection:
    """What to select: the lock, how to read it, for which targets, which groups/extras."""

    lock: Path
    fmt: str | None = None
    targets: tuple[str, ...] = ()
    target_files: tuple[Path, ...] = ()
    with_groups: tuple[str, ...] = ()
    without_groups: tuple[str, ...] = ()
    only_groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    all_extras: bool = False
    allow_unhashed: bool = False  # take the index's sha256 where the lock records none
    build_sdists: bool = True  # --no-build: an sdist-only package is refused, not built
    no_build_packages: tuple[str, ...] = ()  # --no-build-package
    build_pythons: tuple[Path, ...] = ()  # --build-python

    def validate(self) -> None:
        """--only names every group to take: it cannot stand beside --with/--without;
        a --build-python must be a file (it is probed only when a build needs it)."""
        from .select import check_group_flags

        check_group_flags(self.with_groups, self.without_groups, self.only_groups)
        for python in self.build_pythons:
            if not python.is_file():
                raise UsageError(f"--build-python {python}: no such file")

    def build_policy(self) -> BuildPolicy:
        """What --no-build and --no-build-package allow (select imported late: the CLI
        builds these groups before its heavy imports)."""
        from packaging.utils import canonicalize_name

        from .select import BuildPolicy

        return BuildPolicy(self.build_sdists,
                           frozenset(canonicalize_name(n) for n in self.no_build_packages))

    def inputs(self) -> Inputs:
        from .locks import find_lock

        lock = find_lock(self.lock) if self.lock.exists() else None
        return [("lock", lock), ("project's pyproject.toml",
                                 lock.with_name("pyproject.toml") if lock is not None else None)]


@dataclass(frozen=True)
class Network:
    """How to reach the network: the default index, the cache, and the client's settings."""

    index_url: str | None = None
    cache_dir: Path | None = None
    jobs: int = 16
    offline: bool = False
    timeout: float = 30.0
    cert: str | None = None
    client_cert: str | None = None

    def validate(self) -> None:
        """No credentials in --index-url (argv is visible to every user of the machine);
        --cert and --client-cert name files, even --offline where nothing loads them."""
        from .sources import check_not_in_argv
        from .tls import check_files

        check_files(self.cert, self.client_cert)
        if self.index_url:
            check_not_in_argv(self.index_url, "--index-url")

    def inputs(self) -> Inputs:
        return [("CA bundle", Path(self.cert) if self.cert else None),
                ("client certificate", Path(self.client_cert) if self.client_cert else None)]


@dataclass(frozen=True)
class Build:
    """What to build beside the locked wheels: own wheels, the audit, uv, the signature."""

    own: bool = True  # bundle the project's own wheels when it is a package
    dist: Path | None = None  # take own wheels from here instead of building them
    build_isolation: bool = True
    audit: bool = False  # refuse a bundle that an advisory in osv_db matches
    osv_db: Path | None = None
    ignore_vulns: tuple[str, ...] = ()
    # uv's wheel per target under tools/ (fast install): None carries it where uv has a
    # wheel for every target (the default), True insists (--with-uv), False: --no-uv
    with_uv: bool | None = None
    uv_version: str | None = None  # None: the pinned one (uvtool.UV_VERSION)
    sign_key: Path | None = None  # SSH key (or its .pub, held by ssh-agent): write <out>.sig

    def validate(self) -> None:
        """--osv-db and --audit go together; --uv-version means nothing with --no-uv."""
        if self.osv_db is not None and not self.audit:
            raise UsageError("--osv-db is for --audit (or the audit command)")
        if self.uv_version and self.with_uv is False:
            raise UsageError("--uv-version chooses the uv to carry; --no-uv carries none")
        if self.audit and self.osv_db is None:
            raise UsageError("--audit needs --osv-db PATH (an OSV dump: zip or folder)")

    @property
    def uv_insisted(self) -> bool:
        """uv asked for by name (--with-uv or --uv-version): missing, it is an error."""
        return self.with_uv is True or self.uv_version is not None

    def inputs(self) -> Inputs:
        return [("OSV database", self.osv_db), ("signing key", self.sign_key),
                ("--dist folder", self.dist)]


@dataclass(frozen=True)
class Trust:
    """What a bundle's signature is checked against (verify/install/rehearse flags)."""

    allowed_signers: Path | None = None
    identity: str | None = None
    require: bool = False

    def validate(self) -> None:
        """Flag combinations that cannot mean what the user wants are usage errors."""
        if self.allowed_signers is None:
            if self.require:
                raise UsageError("--require-signature needs --allowed-signers FILE")
            if self.identity is not None:
                raise UsageError("--identity needs --allowed-signers FILE")
        elif not self.allowed_signers.is_file():
            raise UsageError(f"{self.allowed_signers}: no such allowed_signers file")
