"""Push a verified bundle's wheels into the index inside the gap, through twine's upload API.

Teams behind the gap run their own index (pypiserver, devpi, Nexus, Artifactory, GitLab);
every one of them takes the legacy upload form twine posts (`:action=file_upload`), so that
is the one protocol spoken here, with no server of our own. The rules:

* The bundle is verified first (signature, sidecar, every hash) and its wheels are read
  from the folder that verification extracted them into, so nothing unverified is sent.
* What the index already has is learnt before anything is sent: its Simple page (from
  `--index-url`, else derived from the upload URL where the server's layout is known),
  else from the upload answers. A file already there with the same sha256 is skipped; the
  same file name with other bytes is a conflict, and a conflict anywhere stops the run
  before the first upload, so an index never ends up half updated with mismatched files.
* Credentials come as twine users keep them: TWINE_USERNAME / TWINE_PASSWORD, a section
  of ~/.pypirc (`--repository NAME`), netrc. They never come from argv and are never shown.
* Uploads stream from the file (a multipart body framed around it, its length known up
  front, so servers that cannot read a chunked body still work), several at once, with
  net.py's retries; a connection dropped mid-upload starts that file again.

The form, the framing and the plan are pure functions; the network is at the edges.
"""

from __future__ import annotations

import configparser
import hashlib
import html
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urljoin, urlsplit

from packaging.metadata import RawMetadata, parse_email
from packaging.utils import canonicalize_name, parse_wheel_filename

from .errors import IntegrityError, NetworkError, UsageError, excerpt
from .fetch import Stopped
from .index import Index, IndexFile, ProjectNotFound
from .manifest import wheel_path
from .model import Manifest, ManifestFile, Source
from .net import LazyClient, check_status, describe, stream
from .parallel import run_all
from .sources import (
    check_not_in_argv,
    check_url,
    credentials_for,
    join_credentials,
    normalise_index_url,
    redact,
    split_credentials,
    strip_credentials,
)
from .verify import verify_signed

if TYPE_CHECKING:
    import httpx

    from .options import Trust

CHUNK = 1024 * 1024
MAX_METADATA = 16 * 1024 * 1024
DEVPI_HEADER = "X-Devpi-Api-Version"
"""Every devpi answer carries it: the one server whose Simple page is not `<url>/simple/`."""


# ---- where to upload, as whom

@dataclass(frozen=True)
class Repository:
    """The upload endpoint; `auth` is kept out of repr so no trace or log can show it."""

    url: str
    name: str | None = None
    auth: tuple[str, str] | None = field(default=None, repr=False)

    def describe(self) -> str:
        shown = redact(self.url)
        return f"repository {self.name!r} ({shown})" if self.name else f"repository {shown}"

    def source(self, url: str | None = None) -> Source:
        """A Source for net.py whose requests to the repository's host carry `auth`
        (net.py sends a source's credentials to its own host only)."""
        return Source(self.name or "repository", join_credentials(url or self.url, self.auth))


def pypirc_path(config_file: Path | None) -> Path:
    return config_file if config_file is not None else Path.home() / ".pypirc"


def read_pypirc(path: Path, name: str) -> tuple[str, str | None, str | None]:
    """(repository URL, username, password) of section `name` in twine's config file.

    Read raw, as twine does: a `%` in a password is a character, not interpolation.
    """
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it for --repository {name!r}: "
                         f"{exc.strerror or exc}") from exc
    except configparser.Error as exc:
        raise UsageError(f"{path}: not a valid .pypirc ({type(exc).__name__})") from exc
    if not parser.has_section(name):
        listed = parser.get("distutils", "index-servers", fallback="").split()
        known = ", ".join(listed or [s for s in parser.sections() if s != "distutils"])
        raise UsageError(f"{path}: no [{name}] section for --repository {name!r}"
                         + (f" (it has: {known})" if known else ""))
    url = parser.get(name, "repository", fallback="").strip()
    if not url:
        raise UsageError(f"{path}: [{name}] has no `repository` URL to upload to")
    return (url, parser.get(name, "username", fallback=None),
            parser.get(name, "password", fallback=None))


def resolve_repository(url: str | None, name: str | None, config_file: Path | None,
                       environ: Mapping[str, str]) -> Repository:
    """Where to upload and with which credentials, in twine's order of precedence.

    The URL: `--repository-url`, else `--repository NAME` from .pypirc, else
    TWINE_REPOSITORY_URL, else TWINE_REPOSITORY (a .pypirc section). The user and the
    password each: TWINE_USERNAME / TWINE_PASSWORD, else the .pypirc section (or user info
    in a URL from a file or the environment), else, for both, netrc for the repository's
    host. Never argv: `--repository-url` with a password in it is refused. `environ` is
    where the TWINE_* variables are read; netrc is found as net.py finds it (NETRC).
    """
    if url is not None and name is not None:
        raise UsageError("give --repository-url or --repository, not both")
    user: str | None = None
    password: str | None = None
    if url is not None:
        check_not_in_argv(url, "--repository-url")
        where = "--repository-url"
    else:
        if name is None and environ.get("TWINE_REPOSITORY_URL"):
            url, where = environ["TWINE_REPOSITORY_URL"], "TWINE_REPOSITORY_URL"
        else:
            name = name or environ.get("TWINE_REPOSITORY") or None
            if name is None:
                raise UsageError("where to? give --repository-url URL or --repository NAME "
                                 "(a section of ~/.pypirc)")
            path = pypirc_path(config_file)
            url, user, password = read_pypirc(path, name)
            where = f"{path}: [{name}] repository"
    url, in_url = split_credentials(check_url(url, where))
    if in_url is not None and user is None and password is None:
        user, password = in_url
    user = environ.get("TWINE_USERNAME") or user
    password = environ.get("TWINE_PASSWORD") or password
    if user is None and password is None:
        auth = credentials_for(Source(name or "repository", url), url)
    elif user is None or password is None:
        missing = "username (TWINE_USERNAME)" if user is None else "password (TWINE_PASSWORD)"
        raise UsageError(f"a {missing} is missing for {Repository(url, name).describe()}; "
                         "set it in the environment or in its ~/.pypirc section")
    else:
        auth = (user, password)
    return Repository(url, name, auth)


def simple_root(upload_url: str, devpi: bool) -> str:
    """The Simple API root that goes with an upload URL on a known layout.

    devpi takes uploads at `<root>/<user>/<index>/` and serves `.../+simple/`; pypiserver
    (and Nexus, Artifactory, GitLab) serve the Simple API at `<upload URL>/simple/`.
    """
    return urljoin(normalise_index_url(upload_url), "+simple/" if devpi else "simple/")


# ---- what to upload

def choose(manifest: Manifest, targets: Sequence[str]) -> list[ManifestFile]:
    """The bundle's wheels for these targets (all of them for none), each once."""
    if not targets:
        return list(manifest.files)
    known = [t.name for t in manifest.targets]
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise UsageError(f"the bundle has no target {unknown[0]!r}; it has: "
                         f"{', '.join(known)}")
    return [f for f in manifest.files if any(t in f.targets for t in targets)]


def _wheel_key(filename: str) -> tuple[str, str, frozenset[object]] | None:
    """What an index treats as the same file: name (normalised), version, tags."""
    try:
        name, version, _, tags = parse_wheel_filename(filename)
    except ValueError:
        return None
    return str(name), str(version), frozenset(tags)


@dataclass(frozen=True)
class Plan:
    """What a run does with each wheel, decided before any byte is sent."""

    upload: tuple[ManifestFile, ...] = ()
    present: tuple[ManifestFile, ...] = ()
    conflicts: tuple[tuple[ManifestFile, IndexFile], ...] = ()
    unhashed: tuple[tuple[ManifestFile, IndexFile], ...] = ()  # listed with no sha256


def plan(files: Iterable[ManifestFile], listings: Mapping[str, list[IndexFile]] | None
         ) -> Plan:
    """Compare each wheel with what the index lists under its project (canonical name).

    `listings` None: the index could not be read, so everything goes to the upload and
    the server's answers tell what it had. A listed file with the wheel's name (or the
    same name, version and tags spelt otherwise) and the same sha256 is present; with
    another sha256, a conflict; with none, it must be hashed first (`unhashed`).
    """
    chosen = sorted(files, key=lambda f: (-f.size, f.filename))
    if listings is None:
        return Plan(upload=tuple(chosen))
    upload, present, conflicts, unhashed = [], [], [], []
    for f in chosen:
        key = _wheel_key(f.filename)
        listed = [i for i in listings.get(canonicalize_name(f.name), [])
                  if i.filename == f.filename or (key and _wheel_key(i.filename) == key)]
        if not listed:
            upload.append(f)
        elif any(i.sha256 is not None and i.sha256 != f.sha256 for i in listed):
            conflicts.append((f, next(i for i in listed if i.sha256 != f.sha256)))
        elif any(i.sha256 is None for i in listed):
            unhashed.append((f, next(i for i in listed if i.sha256 is None)))
        else:
            present.append(f)
    return Plan(tuple(upload), tuple(present), tuple(conflicts), tuple(unhashed))


def refuse_conflicts(conflicts: Sequence[tuple[ManifestFile, IndexFile]], where: str) -> None:
    if not conflicts:
        return
    names = ", ".join(f"{f.filename} (index sha256 {i.sha256}, bundle {f.sha256})"
                      for f, i in conflicts[:3])
    more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
    raise IntegrityError(f"{where} already holds other bytes under the bundle's file "
                         f"name: {names}{more}; nothing was uploaded")


# ---- the upload form

_SINGLE = ("metadata_version", "summary", "description", "description_content_type",
           "home_page", "download_url", "author", "author_email", "maintainer",
           "maintainer_email", "license", "license_expression", "requires_python")
_MULTI = {"classifiers": "classifiers", "platforms": "platform",
          "supported_platforms": "supported_platform", "requires_dist": "requires_dist",
          "provides_dist": "provides_dist", "obsoletes_dist": "obsoletes_dist",
          "requires_external": "requires_external", "provides_extra": "provides_extra",
          "dynamic": "dynamic", "license_files": "license_file", "requires": "requires",
          "provides": "provides", "obsoletes": "obsoletes", "import_names": "import_names",
          "import_namespaces": "import_namespaces"}


def python_tag(filename: str) -> str:
    """The wheel's python tag as its name spells it (`py3`, `cp312`, `py2.py3`): the
    form's `pyversion`."""
    return filename.removesuffix(".whl").split("-")[-3]


def form_fields(meta: RawMetadata, wheel: ManifestFile) -> list[tuple[str, str]]:
    """The fields twine sends for a wheel, from its METADATA, in a fixed order.

    Repeated fields (classifiers, requires_dist, ...) are repeated form fields; keywords
    go back to one comma-separated string and project URLs to `label, url` lines, as they
    are written in METADATA.
    """
    fields = [(":action", "file_upload"), ("protocol_version", "1"),
              ("name", meta.get("name", wheel.name)),
              ("version", meta.get("version", wheel.version)),
              ("filetype", "bdist_wheel"), ("pyversion", python_tag(wheel.filename)),
              ("sha256_digest", wheel.sha256)]
    for key in _SINGLE:
        value = meta.get(key)
        if value:
            fields.append((key, str(value)))
    if meta.get("keywords"):
        fields.append(("keywords", ",".join(meta["keywords"])))
    for key, form_name in _MULTI.items():
        values = meta.get(key) or []
        fields += [(form_name, str(v)) for v in values]  # type: ignore[union-attr]
    for label, url in (meta.get("project_urls") or {}).items():
        fields.append(("project_urls", f"{label}, {url}"))
    return fields


def check_metadata(meta: RawMetadata, wheel: ManifestFile) -> None:
    """The index files the upload under METADATA's name and version: they must be the
    wheel's, or pip would never find it where the bundle's requirements look."""
    name, version = meta.get("name"), meta.get("version")
    if not name or not version:
        raise IntegrityError(f"{wheel.filename}: its METADATA has no Name or Version")
    file_name, file_version, _, _ = parse_wheel_filename(wheel.filename)
    if canonicalize_name(name) != file_name or not _same_version(version, str(file_version)):
        raise IntegrityError(f"{wheel.filename}: its METADATA says {excerpt(name)} "
                             f"{excerpt(version)}, not the file name's")


def _same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def _disposition(name: str, filename: str | None = None) -> bytes:
    def quoted(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace(
            "\n", "")

    line = f'Content-Disposition: form-data; name="{quoted(name)}"'
    if filename is not None:
        line += f'; filename="{quoted(filename)}"'
    return line.encode()


def frame(fields: Sequence[tuple[str, str]], filename: str, boundary: str
          ) -> tuple[bytes, bytes]:
    """The multipart/form-data body around the file: (everything before its bytes,
    everything after). The body is head + file + tail, so its length is known without
    reading the file, and the file itself streams in between."""
    dash = f"--{boundary}".encode()
    head = b"".join(dash + b"\r\n" + _disposition(name) + b"\r\n\r\n" + value.encode()
                    + b"\r\n" for name, value in fields)
    head += (dash + b"\r\n" + _disposition("content", filename) + b"\r\n"
             b"Content-Type: application/octet-stream\r\n\r\n")
    return head, b"\r\n" + dash + b"--\r\n"


def new_boundary() -> str:
    return f"wheelhouse-bundler-{secrets.token_hex(16)}"


def read_metadata(path: Path, filename: str) -> RawMetadata:
    """METADATA of a wheel on disk (the only member read): `<name>-<ver>.dist-info/`,
    or the one dist-info at the top when the name is spelt otherwise there."""
    try:
        with zipfile.ZipFile(path) as zf:
            found = [n for n in zf.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            prefix = "-".join(filename.split("-")[:2]) + ".dist-info/"
            chosen = [n for n in found if n.startswith(prefix)] or found
            if len(chosen) != 1:
                raise IntegrityError(f"{filename}: {len(found)} .dist-info/METADATA files; "
                                     "a wheel has one")
            info = zf.getinfo(chosen[0])
            if info.file_size > MAX_METADATA:
                raise IntegrityError(f"{filename}: METADATA of {info.file_size} bytes, "
                                     f"over the {MAX_METADATA} limit")
            data = zf.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise IntegrityError(f"{filename}: not a readable wheel ({exc})") from exc
    raw, _ = parse_email(data)
    return raw


# ---- talking to the index

class Progress(Protocol):
    def advance(self, nbytes: int) -> None: ...
    def finished(self) -> None: ...


class _Silent:
    def advance(self, nbytes: int) -> None:
        pass

    def finished(self) -> None:
        pass


Log = Callable[[str], None]


def find_index(client: LazyClient, repo: Repository, index_url: str | None, log: Log
               ) -> Source | None:
    """The Simple API root to learn what the index has, or None when there is none to read.

    `--index-url` is taken as given. Otherwise one GET of the upload URL tells devpi
    (its headers) from the rest, and the derived root must answer; if it does not, the
    run goes on and learns from the upload answers (a warning says what that costs).
    """
    if index_url is not None:
        url = normalise_index_url(index_url)
        same_host = urlsplit(url).hostname == urlsplit(repo.url).hostname
        return repo.source(url) if same_host else Source("index", url)
    with stream(client, repo.url, repo.source()) as probe:
        _refuse_auth_failure(probe, repo, "reading it")
        devpi = DEVPI_HEADER in probe.headers
    root = simple_root(repo.url, devpi)
    with stream(client, root, repo.source(root)) as answer:
        _refuse_auth_failure(answer, repo, f"reading its Simple page {redact(root)}")
        if answer.is_success:
            return repo.source(root)
        code = answer.status_code
    log(f"warning: no Simple page at {redact(root)} (HTTP {code}): what the index has is "
        "learnt from its upload answers, and a file it already holds is not compared by "
        "hash; give --index-url to check every file first")
    return None


def _refuse_auth_failure(response: httpx.Response, repo: Repository, doing: str) -> None:
    if response.status_code in (401, 403):
        raise NetworkError(f"{doing}: {response.status_code} {response.reason_phrase} from "
                           f"{repo.describe()}; check TWINE_USERNAME/TWINE_PASSWORD, its "
                           "~/.pypirc section or netrc")


def read_listings(index: Index, source: Source, files: Sequence[ManifestFile], jobs: int
                  ) -> dict[str, list[IndexFile]]:
    """Each project's page, once, several at once; a project the index lacks lists nothing."""
    projects = sorted({canonicalize_name(f.name) for f in files})

    def one(project: str) -> list[IndexFile]:
        try:
            return index.files(source, project)
        except ProjectNotFound:
            return []

    return dict(zip(projects, run_all(one, projects, jobs), strict=True))


def hash_listed(client: LazyClient, source: Source, listed: IndexFile) -> str:
    """The sha256 of a file the index lists without one: downloaded and hashed on the
    stream (never held in memory)."""
    digest = hashlib.sha256()
    try:
        with stream(client, listed.url, source, {"Accept-Encoding": "identity"}) as response:
            check_status(response, source, listed.filename)
            for chunk in response.iter_raw():
                digest.update(chunk)
    except _transport_errors() as exc:
        raise NetworkError(f"{listed.filename} from {redact(listed.url)}: "
                           f"{describe(exc)}") from exc
    return digest.hexdigest()


def _transport_errors() -> type[Exception]:
    import httpx

    return httpx.TransportError


def _server_says(response: httpx.Response) -> str:
    """The first words of an error answer (HTML pages of error text included)."""
    try:
        raw = response.read()[:4096].decode("utf-8", "replace")
    except _transport_errors():
        return ""
    raw = re.sub(r"(?is)<(head|style|script)\b.*?</\1\s*>", " ", raw)
    text = " ".join(html.unescape(re.sub(r"<[^>]*>", " ", raw)).split())
    return f": {excerpt(text, 200)}" if text else ""


@dataclass(frozen=True)
class Upload:
    wheel: ManifestFile
    path: Path
    fields: tuple[tuple[str, str], ...]


def upload_one(client: LazyClient, repo: Repository, item: Upload, progress: Progress,
               stop: threading.Event) -> bool:
    """POST one wheel; True if it was stored, False if the server says it has the name.

    The body is made afresh for each attempt (net.stream retries dropped connections,
    timeouts, 5xx and 429), and a restarted attempt takes back the bytes it had counted.
    """
    boundary = new_boundary()
    head, tail = frame(item.fields, item.wheel.filename, boundary)
    size = item.path.stat().st_size
    if size != item.wheel.size:
        raise IntegrityError(f"{item.wheel.filename}: {size} bytes on disk, the manifest "
                             f"says {item.wheel.size}")
    sent = [0]

    def body() -> Iterator[bytes]:
        if sent[0]:
            progress.advance(-sent[0])
            sent[0] = 0
        yield head
        with open(item.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                if stop.is_set():
                    raise Stopped(item.wheel.filename)
                sent[0] += len(chunk)
                progress.advance(len(chunk))
                yield chunk
        yield tail

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(head) + size + len(tail))}
    what = f"upload of {item.wheel.filename}"
    with stream(client, repo.url, repo.source(), headers, method="POST", body=body) as answer:
        if answer.is_success:
            return True
        _refuse_auth_failure(answer, repo, what)
        if answer.status_code == 409:
            return False
        if answer.is_redirect:
            raise NetworkError(f"{what}: {repo.describe()} redirects to "
                               f"{redact(answer.headers.get('location', '?'))}; give that "
                               "URL as the repository URL")
        raise NetworkError(f"{what}: HTTP {answer.status_code} {answer.reason_phrase} from "
                           f"{repo.describe()}{_server_says(answer)}")


# ---- the run

@dataclass(frozen=True)
class Published:
    repository: str  # redacted
    index: str | None  # the Simple root read (redacted), None when there was none
    dry_run: bool
    uploaded: tuple[ManifestFile, ...]
    present: tuple[ManifestFile, ...]
    unchecked: tuple[ManifestFile, ...]  # the server had the name; no page to compare
    seconds: float

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.uploaded)


@dataclass(frozen=True)
class Connection:
    """How to reach the repository: the client's settings (net.make_client)."""

    jobs: int = 4
    timeout: float = 30.0
    cert: str | None = None
    client_cert: str | None = None


def publish(bundle: Path, repo: Repository, *, targets: Sequence[str] = (),
            index_url: str | None = None, dry_run: bool = False,
            connection: Connection | None = None, trust: Trust | None = None,
            progress: Progress | None = None, log: Log | None = None) -> Published:
    """Verify the bundle, learn what the index has, refuse conflicts, upload the rest."""
    started = time.monotonic()
    how = connection or Connection()
    say = log or (lambda _line: None)
    staging = Path(tempfile.mkdtemp(prefix="wheelhouse-publish-"))
    try:
        checked = verify_signed(bundle, extract_to=staging, trust=trust)
        assert checked.root is not None
        files = choose(checked.manifest, targets)
        with LazyClient(jobs=how.jobs, cert=how.cert, client_cert=how.client_cert,
                        timeout=how.timeout) as client:
            index = find_index(client, repo, index_url, say)
            todo = _plan_checked(client, index, files, how.jobs)
            uploads = [Upload(f, checked.root / wheel_path(f.filename),
                              tuple(_fields(checked.root / wheel_path(f.filename), f)))
                       for f in todo.upload]
            if dry_run:
                return Published(redact(repo.url), _shown(index), True,
                                 tuple(u.wheel for u in uploads), todo.present, (),
                                 time.monotonic() - started)
            stored = _upload_all(client, repo, uploads, how.jobs, progress or _Silent())
            late_present, unchecked = _explain_refused(
                client, index, [u.wheel for u, ok in zip(uploads, stored, strict=True)
                                if not ok], repo)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Published(redact(repo.url), _shown(index), False,
                     tuple(u.wheel for u, ok in zip(uploads, stored, strict=True) if ok),
                     todo.present + late_present, unchecked, time.monotonic() - started)


def _shown(index: Source | None) -> str | None:
    """The Simple root as it may be shown: the credentials it carries for net.py gone."""
    return strip_credentials(index.url) if index is not None else None


def _fields(path: Path, wheel: ManifestFile) -> list[tuple[str, str]]:
    meta = read_metadata(path, wheel.filename)
    check_metadata(meta, wheel)
    return form_fields(meta, wheel)


def _plan_checked(client: LazyClient, index: Source | None, files: list[ManifestFile],
                  jobs: int) -> Plan:
    """The plan, with files listed without a hash hashed, and every conflict refused."""
    if index is None:
        return plan(files, None)
    listings = read_listings(Index(client), index, files, jobs)
    todo = plan(files, listings)
    if todo.unhashed:
        hashes = dict(zip([i.url for _, i in todo.unhashed],
                          run_all(lambda pair: hash_listed(client, index, pair[1]),
                                  todo.unhashed, jobs), strict=True))
        listings = {p: [replace(i, sha256=hashes.get(i.url, i.sha256)) for i in listed]
                    for p, listed in listings.items()}
        todo = plan(files, listings)
    refuse_conflicts(todo.conflicts, f"the index {strip_credentials(index.url)}")
    return todo


def _upload_all(client: LazyClient, repo: Repository, uploads: list[Upload], jobs: int,
                progress: Progress) -> list[bool]:
    stop = threading.Event()

    def one(item: Upload) -> bool:
        stored = upload_one(client, repo, item, progress, stop)
        progress.finished()
        return stored

    return run_all(one, uploads, jobs, stop)


def _explain_refused(client: LazyClient, index: Source | None, refused: list[ManifestFile],
                     repo: Repository) -> tuple[tuple[ManifestFile, ...],
                                                tuple[ManifestFile, ...]]:
    """Files the server said it had (409) although the plan found them absent: an earlier
    attempt of ours landed before its answer was lost, or someone uploaded meanwhile.
    The page, read again, tells which; with no page they stay unchecked."""
    if not refused:
        return (), ()
    if index is None:
        return (), tuple(refused)
    listings = read_listings(Index(client), index, refused, 1)
    again = plan(refused, listings)
    refuse_conflicts(again.conflicts, f"the index {strip_credentials(index.url)} (changed during "
                     "the run)")
    if again.upload or again.unhashed:
        names = ", ".join(f.filename for f in (*again.upload, *(f for f, _ in again.unhashed)))
        raise NetworkError(f"{repo.describe()} refused {names} as already there, yet its "
                           "Simple page does not list it with a hash")
    return again.present, ()

