"""Chart archives fetched from HTTP chart repositories and OCI registries into a content-addressed cache.

Layout under the cache directory (default ``$XDG_CACHE_HOME/tether``)::

    charts/sha256/<hex>.tgz     an archive, named by the sha256 of its bytes
    charts/refs/<hex>.json      (repository, name, version) -> the digest of its archive

A version that is already in ``refs/`` (an exact version, or one pinned by ``Chart.lock``) is
served from the cache without touching the network, unless it was fetched with a credential: then
the repository is asked again, so the shared cache hands a private chart only to a render whose
credential the repository accepts (the archive itself still comes from the cache). A range
(``~1.2.0``) is resolved against the repository's ``index.yaml`` (HTTP) or its tags (OCI) every
time, since the answer can change.
Every archive is checked before it is used: against the index's ``digest`` (HTTP, when the index
has one) or the manifest's layer digest (OCI, always), and against its cache name when read back.
Downloads have a time limit and a size limit.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import tempfile
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tether.errors import RenderError, SourceError
from tether.render.chart_credentials import credential_for, same_origin
from tether.source.semver_range import best_match, parse_version

#: cap on a repository's index.yaml (the biggest public indexes are a few tens of MiB)
MAX_INDEX_BYTES = 64 * 1024**2
#: OCI layer holding a Helm chart archive
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


class FetchError(RenderError):
    """A dependency could not be resolved or downloaded (the message says which and why)."""


@dataclass(frozen=True)
class FetchSettings:
    """How dependencies are fetched. ``credentials``: (URL prefix, (username, password)) entries, matched as
    ``tether.render.chart_credentials`` says; kept out of repr."""

    cache_dir: Path
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_archive_bytes: int = 32 * 1024**2
    credentials: tuple[tuple[str, tuple[str, str]], ...] = field(default=(), repr=False)

    def credentials_for(self, url: str) -> tuple[str, str] | None:
        """The credential configured for ``url`` (a chart repository URL, or ``oci://host/path/chart``)."""
        return credential_for(self.credentials, url)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tether"


class ChartCache:
    def __init__(self, cache_dir: Path) -> None:
        self.base = cache_dir / "charts"

    def _ref_path(self, repository: str, name: str, version: str) -> Path:
        key = hashlib.sha256(f"{repository.rstrip('/')}\n{name}\n{version}".encode()).hexdigest()
        return self.base / "refs" / f"{key}.json"

    def archive_path(self, digest: str) -> Path:
        return self.base / "sha256" / f"{digest.removeprefix('sha256:')}.tgz"

    def lookup(self, repository: str, name: str, version: str, digest: str = "") -> Path | None:
        """The cached archive of this chart version (and digest, when given), verified; None when absent.

        Without a digest (no repository asked), an archive that was fetched with a credential is not
        served: the cache is shared, and only the repository can tell whether this render's credential
        (if any) may read it."""
        if not digest:
            try:
                record = json.loads(self._ref_path(repository, name, version).read_text())
                digest = record["digest"]
            except (OSError, ValueError, KeyError, TypeError):
                return None
            if record.get("authenticated", True):
                return None
        path = self.archive_path(digest)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            path.unlink(missing_ok=True)  # damaged: fetched again
            return None
        return path

    def store(self, repository: str, name: str, version: str, data: bytes, *, authenticated: bool) -> Path:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.archive_path(digest)
        _write_atomic(path, data)
        record = {"repository": repository, "name": name, "version": version, "digest": digest}
        record["authenticated"] = authenticated
        _write_atomic(self._ref_path(repository, name, version), json.dumps(record).encode())
        return path


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _is_exact(constraint: str) -> bool:
    return parse_version(constraint.strip()) is not None


def _pick(constraint: str, versions: Iterable[str], what: str) -> str:
    available = list(versions)
    try:
        chosen = best_match(constraint.strip() or "*", available)
    except SourceError as error:
        raise FetchError(f"{what}: version {constraint!r} is not a semver version or range ({error})") from None
    if chosen is None:
        shown = ", ".join(sorted(available, key=lambda v: parse_version(v) or parse_version("0.0.0"))[-8:])
        raise FetchError(f"{what}: no version matching {constraint!r} (available: {shown or 'none'})")
    return chosen


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ChartFetcher:
    """Resolves and downloads one chart version; one instance per render (one HTTP connection pool)."""

    def __init__(self, settings: FetchSettings) -> None:
        import httpx2 as httpx

        self.settings = settings
        self.cache = ChartCache(settings.cache_dir)
        self._httpx = httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout), follow_redirects=True
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ChartFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ entry point

    def fetch(self, repository: str, name: str, constraint: str, what: str) -> tuple[str, Path]:
        """(resolved version, cached archive) of chart ``name`` from ``repository`` satisfying ``constraint``."""
        if _is_exact(constraint):
            cached = self.cache.lookup(repository, name, constraint.strip())
            if cached is not None:
                return constraint.strip(), cached
        if repository.startswith("oci://"):
            return self._fetch_oci(repository, name, constraint, what)
        return self._fetch_http(repository, name, constraint, what)

    # ------------------------------------------------------------ transport

    def _get(self, url: str, what: str, limit: int, headers: dict[str, str] | None = None, auth: Any = None) -> Any:
        """GET ``url`` into memory (at most ``limit`` bytes); returns (response, body)."""
        httpx = self._httpx
        try:
            with self._client.stream("GET", url, headers=headers or {}, auth=auth) as response:
                if response.status_code == 401:
                    return response, b""
                if response.status_code >= 400:
                    raise FetchError(f"{what}: GET {_masked(url)} answered {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"{what}: {_masked(url)} is {int(declared)} bytes, above the limit of {limit}")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise FetchError(f"{what}: {_masked(url)} is larger than the limit of {limit} bytes")
                    chunks.append(chunk)
                return response, b"".join(chunks)
        except httpx.TimeoutException:
            raise FetchError(f"{what}: {_masked(url)} did not answer within {self.settings.timeout:g}s") from None
        except httpx.HTTPError as error:
            raise FetchError(f"{what}: {_masked(url)} is unreachable ({type(error).__name__}: {error})") from None

    def _basic(self, url: str) -> Any:
        pair = self.settings.credentials_for(url)
        return self._httpx.BasicAuth(*pair) if pair else None

    # ------------------------------------------------------------ HTTP chart repositories

    def _fetch_http(self, repository: str, name: str, constraint: str, what: str) -> tuple[str, Path]:
        base = repository.rstrip("/") + "/"
        auth = self._basic(repository)
        response, body = self._get(base + "index.yaml", what, MAX_INDEX_BYTES, auth=auth)
        if response.status_code == 401:
            raise FetchError(f"{what}: {_masked(base)}index.yaml answered 401 (credentials missing or refused)")
        try:
            index = yaml.safe_load(body)
        except yaml.YAMLError as error:
            raise FetchError(f"{what}: {_masked(base)}index.yaml is not YAML ({error})") from None
        entries = ((index or {}).get("entries") or {}).get(name) if isinstance(index, dict) else None
        if not entries:
            raise FetchError(f"{what}: the repository's index.yaml has no chart named {name!r}")
        by_version = {str(e.get("version")): e for e in entries if isinstance(e, dict) and e.get("version")}
        version = _pick(constraint, by_version, what)
        entry = by_version[version]
        digest = str(entry.get("digest") or "")
        if digest and not digest.startswith("sha256:"):
            digest = "sha256:" + digest  # Helm's index writes the bare hex
        cached = self.cache.lookup(repository, name, version, digest) if digest else None
        if cached is not None:
            return version, cached
        urls = [u for u in entry.get("urls") or [] if isinstance(u, str)]
        if not urls:
            raise FetchError(f"{what}: index.yaml lists {name} {version} without a download URL")
        url = urllib.parse.urljoin(base, urls[0])
        # the repository's credential follows its archives only on its own origin (scheme, host and port)
        archive_auth = self._basic(url) or (auth if same_origin(url, base) else None)
        response, data = self._get(url, what, self.settings.max_archive_bytes, auth=archive_auth)
        if response.status_code == 401:
            raise FetchError(f"{what}: {_masked(url)} answered 401 (credentials missing or refused)")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest and actual != digest:
            raise FetchError(
                f"{what}: digest mismatch for {name} {version} from {_masked(url)}: index.yaml says {digest}, "
                f"the archive is {actual}; refusing to use it"
            )
        return version, self.cache.store(repository, name, version, data, authenticated=bool(auth or archive_auth))

    # ------------------------------------------------------------ OCI registries

    def _fetch_oci(self, repository: str, name: str, constraint: str, what: str) -> tuple[str, Path]:
        parts = urllib.parse.urlsplit(repository)
        host = parts.netloc
        path = "/".join(p for p in (parts.path.strip("/"), name) if p)
        # a registry on loopback speaks plain HTTP (tests, a local mirror); any other one HTTPS
        scheme = "http" if _loopback(host) else "https"
        api = f"{scheme}://{host}/v2/{path}"
        session = _OciSession(self, f"oci://{host}/{path}", api, what)
        _response, body = session.get(f"{api}/tags/list", MAX_INDEX_BYTES)
        try:
            tags = json.loads(body).get("tags") or []
        except (ValueError, AttributeError):
            raise FetchError(f"{what}: {_masked(api)}/tags/list is not a tag list") from None
        # OCI tags cannot hold "+": Helm writes build metadata with "_" instead
        versions = {str(t).replace("_", "+"): str(t) for t in tags}
        version = _pick(constraint, versions, what)
        _response, body = session.get(f"{api}/manifests/{versions[version]}", 4 * 1024**2, {"Accept": _MANIFEST_TYPES})
        try:
            layers = json.loads(body).get("layers") or []
        except (ValueError, AttributeError):
            raise FetchError(f"{what}: the manifest of {name}:{version} is not JSON") from None
        layer = next((item for item in layers if item.get("mediaType") == HELM_LAYER), None)
        if layer is None or not str(layer.get("digest", "")).startswith("sha256:"):
            raise FetchError(f"{what}: {repository}/{name}:{version} is not a Helm chart (no {HELM_LAYER} layer)")
        digest = str(layer["digest"])
        cached = self.cache.lookup(repository, name, version, digest)
        if cached is not None:
            return version, cached
        _response, data = session.get(f"{api}/blobs/{digest}", self.settings.max_archive_bytes)
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise FetchError(
                f"{what}: digest mismatch for {name} {version}: the manifest says {digest}, the blob is {actual}"
            )
        # an anonymous bearer token (a public registry) is no credential: such a chart is public
        return version, self.cache.store(repository, name, version, data, authenticated=session.auth is not None)


class _OciSession:
    """Registry requests with the distribution spec's auth: basic, or a bearer token from the 401 challenge."""

    def __init__(self, fetcher: ChartFetcher, chart: str, api: str, what: str) -> None:
        self.fetcher, self.repository, self.api, self.what = fetcher, chart, api, what
        self.auth = fetcher._basic(chart)
        self.token = ""

    def get(self, url: str, limit: int, headers: dict[str, str] | None = None) -> tuple[Any, bytes]:
        headers = dict(headers or {})
        for attempt in range(2):
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            response, body = self.fetcher._get(url, self.what, limit, headers, None if self.token else self.auth)
            if response.status_code != 401:
                return response, body
            challenge = response.headers.get("www-authenticate", "")
            if attempt or not challenge.lower().startswith("bearer"):
                break
            self.token = self._token(challenge)
        credentials = "credentials refused" if self.auth else "credentials needed and none configured"
        raise FetchError(f"{self.what}: {_masked(url)} answered 401 ({credentials} for {self.repository})")

    def _token(self, challenge: str) -> str:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = fields.pop("realm", "")
        if not realm:
            return ""
        query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
        # the registry's credential goes to a token service on the registry's own origin; one elsewhere
        # (Docker Hub's auth.docker.io) gets only a credential configured for its own URL, else none
        auth = self.auth if same_origin(realm, self.api) else self.fetcher._basic(realm)
        _response, body = self.fetcher._get(f"{realm}?{query}", self.what, 1024**2, auth=auth)
        try:
            answer = json.loads(body)
        except ValueError:
            return ""
        return str(answer.get("token") or answer.get("access_token") or "")


def _masked(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password or parts.username:
        parts = parts._replace(netloc=parts.hostname or "")
    return urllib.parse.urlunsplit(parts)
