"""The Application API (``applications.tether.dev/v1alpha1``): the CRD and typed models of it.

The CustomResourceDefinition is data (``crds/applications.yaml``, shipped with the package);
its schema lets the API server refuse invalid specs and fill defaults. The pydantic models
below read what the server stored, with the same defaults, so the controller never has to
guess at a missing field. ``parse_application`` turns a validation failure into one message
naming the object and field path.
"""

from __future__ import annotations

import copy
import functools
import re
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic.alias_generators import to_camel

from tether.errors import KubeError, TetherError
from tether.kube import Kube, ResourceInfo
from tether.render.chart_credentials import masked, valid_prefix

GROUP = "tether.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Application"
PLURAL = "applications"
CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_PATH = Path(__file__).parent / "crds" / "applications.yaml"

#: how the controller reaches Applications without a discovery round trip
APPLICATION_INFO = ResourceInfo(
    GROUP,
    VERSION,
    KIND,
    PLURAL,
    True,
    frozenset({"create", "delete", "get", "list", "patch", "update", "watch", "deletecollection"}),
)
CRD_INFO = ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False)

#: the status keeps at most this many drift entries (the CRD schema's maxItems says the same)
MAX_DRIFT_ENTRIES = 20


class InvalidApplication(TetherError):
    """An Application object does not satisfy the API (a field has a wrong type or value)."""

    def __init__(self, message: str, key: tuple[str, str], problems: list[str]) -> None:
        super().__init__(message)
        self.key = key
        self.problems = problems


# ------------------------------------------------------------------ the CRD as data


@functools.cache
def _crd_text() -> str:
    return CRD_PATH.read_text(encoding="utf-8")


def load_crd() -> dict[str, Any]:
    """The CustomResourceDefinition manifest (a fresh copy each call)."""
    return copy.deepcopy(_parsed_crd())


@functools.cache
def _parsed_crd() -> dict[str, Any]:
    return yaml.safe_load(_crd_text())


def crd_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the served version."""
    version = next(v for v in _parsed_crd()["spec"]["versions"] if v["name"] == VERSION)
    return copy.deepcopy(version["schema"]["openAPIV3Schema"])


def _established(crd: dict[str, Any] | None) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def install_crd(kube: Kube, *, timeout: float = 60.0, field_manager: str = "tether-controller") -> ResourceInfo:
    """Server-side apply the CRD, wait until it is Established and served, return its resource."""
    await kube.apply(CRD_INFO, load_crd(), force=True, field_manager=field_manager)

    async def established() -> bool:
        return _established(await kube.get(CRD_INFO, CRD_NAME))

    await kube.wait_for(f"CustomResourceDefinition {CRD_NAME} to be Established", established, timeout)

    async def served() -> ResourceInfo | None:
        try:
            return await kube.info(API_VERSION, KIND, refresh=True)
        except KubeError:
            return None

    return await kube.wait_for(f"{API_VERSION} {KIND} to be served", served, timeout)


# ------------------------------------------------------------------ Go durations

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """A Go duration string (``1m``, ``90s``, ``1h30m``, ``1.5h``, ``0``) as a timedelta.

    Negative durations are refused: every duration in the API is a wait or an interval."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected a string such as '1m' or '1h30m'")
    if text == "0":
        return timedelta(0)
    position, seconds = 0, 0.0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if not match:
            raise ValueError(f"invalid duration {text!r}: expected a Go duration such as '90s', '1m' or '1h30m'")
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError(f"invalid duration {text!r}: expected a Go duration such as '90s', '1m' or '1h30m'")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest Go duration string for ``value`` (whole seconds and above; ms below)."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    if total < 1:
        return f"{round(total * 1000)}ms"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = (f"{int(hours)}h" if hours else "") + (f"{int(minutes)}m" if minutes else "")
    if seconds:
        out += f"{seconds:g}s"
    return out


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]


# ------------------------------------------------------------------ models


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", validate_assignment=True)


class LocalObjectReference(_Model):
    name: str = Field(min_length=1)


class SourceRef(_Model):
    """Exactly one of branch, tag, semver, commit."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,64}$")

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceRef:
        given = [k for k in ("branch", "tag", "semver", "commit") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of branch, tag, semver or commit (got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("branch", "tag", "semver", "commit") if getattr(self, k) is not None)

    @property
    def value(self) -> str:
        return str(getattr(self, self.kind))

    def as_ref_string(self) -> str:
        """The ``kind:value`` form ``tether.source`` resolves (``branch:main``, ``semver:^1.2``)."""
        return f"{self.kind}:{self.value}"


class Verification(_Model):
    mode: Literal["ssh", "gpg"]
    secret_ref: LocalObjectReference


_URL_PREFIXES = ("/", "file://", "http://", "https://", "ssh://", "git://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:")


class Source(_Model):
    url: str
    ref: SourceRef | None = None
    path: str = "."
    secret_ref: LocalObjectReference | None = None
    verify: Verification | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not (url.startswith(_URL_PREFIXES) or _SCP_LIKE.match(url)):
            raise ValueError(
                f"unsupported URL {url!r}: use an absolute path, file://, http(s)://, ssh:// or git@host:org/repo"
            )
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https", "ssh") and parts.password is not None:
            raise ValueError(
                "the URL carries a password; put Git credentials in a Secret named by spec.source.secretRef"
            )
        return url

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(f"path {path!r} must be relative to the repository root and may not contain '..'")
        return path


class HelmRepository(_Model):
    """Credentials for the chart dependencies whose repository URL this one covers (by path prefix)."""

    url: str = Field(min_length=1)
    secret_ref: LocalObjectReference

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://", "oci://")) or not valid_prefix(url):
            raise ValueError(
                f"unsupported URL {masked(url)}: use https://host/path or oci://host/path, without user, query or "
                "fragment (the credentials go in the Secret named by secretRef)"
            )
        return url


class HelmOptions(_Model):
    values_files: list[str] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict)
    release_name: str | None = None
    repositories: list[HelmRepository] = Field(default_factory=list)


class JsonnetOptions(_Model):
    tla_str: dict[str, str] = Field(default_factory=dict)
    tla_code: dict[str, str] = Field(default_factory=dict)
    ext_str: dict[str, str] = Field(default_factory=dict)
    ext_code: dict[str, str] = Field(default_factory=dict)


class SubstituteFrom(_Model):
    kind: Literal["ConfigMap", "Secret"]
    name: str = Field(min_length=1)
    optional: bool = False


class Substitute(_Model):
    vars: dict[str, str] = Field(default_factory=dict)
    from_: list[SubstituteFrom] = Field(default_factory=list, alias="from")


class Render(_Model):
    helm: HelmOptions | None = None
    jsonnet: JsonnetOptions | None = None
    substitute: Substitute | None = None


class Destination(_Model):
    namespace: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    create_namespace: bool = False


class Decryption(_Model):
    secret_ref: LocalObjectReference


class SyncPolicy(_Model):
    automated: bool = True
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False


class Backoff(_Model):
    duration: Duration = timedelta(seconds=5)
    factor: float = Field(default=2.0, ge=1)
    max_duration: Duration = timedelta(minutes=3)


class Retry(_Model):
    limit: int = Field(default=5, ge=0)
    backoff: Backoff = Field(default_factory=Backoff)

    def delay(self, attempt: int) -> timedelta:
        """The wait before retry number ``attempt`` (1-based), capped at ``backoff.maxDuration``."""
        seconds = self.backoff.duration.total_seconds() * self.backoff.factor ** max(attempt - 1, 0)
        return min(timedelta(seconds=seconds), self.backoff.max_duration)


class Dependency(_Model):
    name: str = Field(min_length=1)
    namespace: str | None = None


class IgnoreDifference(_Model):
    group: str = ""
    kind: str = Field(min_length=1)
    name: str | None = None
    namespace: str | None = None
    json_pointers: list[str] = Field(default_factory=list)
    managed_fields_managers: list[str] = Field(default_factory=list)

    @field_validator("json_pointers")
    @classmethod
    def _pointers(cls, pointers: list[str]) -> list[str]:
        for pointer in pointers:
            if pointer and not pointer.startswith("/"):
                raise ValueError(f"JSON pointer {pointer!r} must start with '/'")
        return pointers


class HealthCheckExpr(_Model):
    """A CEL health check for one kind, as Flux's Kustomization ``spec.healthCheckExprs`` entry."""

    api_version: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    current: str = Field(min_length=1)
    in_progress: str = ""
    failed: str = ""

    @model_validator(mode="after")
    def _compiles(self) -> HealthCheckExpr:
        from tether.engine.health_rules import syntax_error

        for name, text in (("current", self.current), ("inProgress", self.in_progress), ("failed", self.failed)):
            detail = syntax_error(text) if text else ""
            if detail:
                raise ValueError(f"{name} is not a valid CEL expression: {text.strip()!r}: {detail}")
        return self

    def entry(self) -> dict[str, str]:
        return self.model_dump(by_alias=True)


class Pin(_Model):
    revision: str = Field(pattern=r"^[0-9a-f]{7,64}$")
    reason: str = ""


class ApplicationSpec(_Model):
    source: Source
    render: Render = Field(default_factory=Render)
    destination: Destination = Field(default_factory=Destination)
    decryption: Decryption | None = None
    service_account_name: str | None = None
    interval: Duration = timedelta(minutes=1)
    sync_policy: SyncPolicy = Field(default_factory=SyncPolicy)
    retry: Retry = Field(default_factory=Retry)
    wait: bool = False
    timeout: Duration = timedelta(minutes=5)
    depends_on: list[Dependency] = Field(default_factory=list)
    ignore_differences: list[IgnoreDifference] = Field(default_factory=list)
    suspend: bool = False
    revision_history_limit: int = Field(default=10, ge=0, le=100)
    pin: Pin | None = None
    health_check_exprs: list[HealthCheckExpr] = Field(default_factory=list)

    def health_rules(self) -> Any:
        """The app's own health checks (``tether.engine.health_rules.HealthRules``), compiled once per text."""
        from tether.engine.health_rules import parse_health_checks

        return parse_health_checks([e.entry() for e in self.health_check_exprs], "spec")

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, interval: timedelta) -> timedelta:
        if interval.total_seconds() <= 0:
            raise ValueError("interval must be longer than 0s")
        return interval


# -- status (times are kept as the RFC 3339 strings the server stores, so rewriting a status
# -- that did not change produces byte-identical JSON and no write)

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(_Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""
    observed_generation: int = 0


class SyncStatus(_Model):
    status: Literal["Synced", "OutOfSync", "Unknown"] = "Unknown"
    revision: str | None = None


class HealthStatus(_Model):
    status: Literal["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"] = "Unknown"
    message: str | None = None


class DriftEntry(_Model):
    object: str
    fields: list[str] = Field(default_factory=list)
    manager: str | None = None
    time: str | None = None


class Inventory(_Model):
    count: int = 0


class ObjectCounts(_Model):
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0


class HistoryEntry(_Model):
    revision: str
    author: str | None = None
    subject: str | None = None
    committed_at: str | None = None
    deployed_at: str | None = None
    result: Literal["Succeeded", "Failed"] = "Succeeded"
    objects: ObjectCounts = Field(default_factory=ObjectCounts)


class ApplicationStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    source_revision: str | None = None
    last_applied_revision: str | None = None
    last_attempted_revision: str | None = None
    last_handled_sync_at: str | None = None
    last_handled_refresh_at: str | None = None
    sync: SyncStatus = Field(default_factory=SyncStatus)
    health: HealthStatus = Field(default_factory=HealthStatus)
    drift: list[DriftEntry] = Field(default_factory=list)
    inventory: Inventory = Field(default_factory=Inventory)
    history: list[HistoryEntry] = Field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to the status subresource (unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(_Model):
    name: str
    namespace: str
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: str | None = None
    finalizers: list[str] = Field(default_factory=list)


class Application(_Model):
    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: ApplicationSpec
    status: ApplicationStatus = Field(default_factory=ApplicationStatus)
    #: the object as read from the server (the status writer diffs against its ``status``)
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.metadata.namespace, self.metadata.name)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def generation(self) -> int:
        return self.metadata.generation

    def __str__(self) -> str:
        return f"{KIND} {self.metadata.namespace}/{self.metadata.name}"


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before", "function-plain") or "[" in str(part):
            continue  # pydantic's names for validator wrappers, not fields
        else:
            path += f".{part}" if path else str(part)
    return path


def _problem(error: Any) -> str:
    message = str(error.get("msg", ""))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error.get("type") == "missing":
        message = "required field is missing"
    return f"{_location(tuple(error.get('loc') or ()))}: {message}"


def parse_application(obj: dict[str, Any]) -> Application:
    """The typed Application of an object read from the API server (or a manifest).

    Raises ``InvalidApplication`` whose message names the object and every failing field:
    ``Application team-a/web: spec.interval: invalid duration 'x'``."""
    meta = obj.get("metadata") or {}
    key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    try:
        app = Application.model_validate(obj)
    except PydanticValidationError as error:
        problems = [_problem(e) for e in error.errors()]
        where = f"{KIND} {key[0]}/{key[1]}" if key[0] else f"{KIND} {key[1] or '(unnamed)'}"
        raise InvalidApplication(f"{where}: {'; '.join(problems)}", key, problems) from None
    app.raw = obj
    return app


__all__ = [
    "API_VERSION",
    "APPLICATION_INFO",
    "CRD_INFO",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "MAX_DRIFT_ENTRIES",
    "PLURAL",
    "VERSION",
    "Application",
    "ApplicationSpec",
    "ApplicationStatus",
    "Backoff",
    "Condition",
    "Decryption",
    "Dependency",
    "Destination",
    "DriftEntry",
    "Duration",
    "HealthCheckExpr",
    "HealthStatus",
    "HelmOptions",
    "HelmRepository",
    "HistoryEntry",
    "IgnoreDifference",
    "InvalidApplication",
    "Inventory",
    "JsonnetOptions",
    "LocalObjectReference",
    "ObjectCounts",
    "ObjectMeta",
    "Pin",
    "Render",
    "Retry",
    "Source",
    "SourceRef",
    "Substitute",
    "SubstituteFrom",
    "SyncPolicy",
    "SyncStatus",
    "Verification",
    "crd_schema",
    "format_duration",
    "install_crd",
    "load_crd",
    "parse_application",
    "parse_duration",
]
