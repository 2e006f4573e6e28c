"""Authentication extras, impersonation and RBAC authorization.

* Users: a static token file in upstream's format, one ``token,user,uid[,"group1,group2"]`` line
  each (``#`` comments allowed), loaded into the server's bearer-token table.
* ServiceAccounts: tokens are minted by the sandbox in two upstream ways. A Secret of type
  ``kubernetes.io/service-account-token`` annotated ``kubernetes.io/service-account.name`` gets
  ``data.token`` / ``data.namespace`` filled in at creation (the token controller's job), and
  ``POST .../serviceaccounts/NAME/token`` (what ``kubectl create token`` calls) returns a
  TokenRequest. Both authenticate as ``system:serviceaccount:NS:NAME`` with the groups
  ``system:serviceaccounts``, ``system:serviceaccounts:NS``, ``system:authenticated``. Secret tokens
  survive a restart (they are stored); TokenRequest tokens live until the server stops.
* Impersonation: ``Impersonate-User`` / ``Impersonate-Group`` / ``Impersonate-Uid`` headers; the
  requester needs the ``impersonate`` verb on ``users`` / ``groups`` / ``serviceaccounts`` / ``uids``.
* Authorization (``--authz rbac``): Roles, ClusterRoles, RoleBindings and ClusterRoleBindings with
  wildcards, resourceNames and nonResourceURLs; ``system:masters`` is always allowed (the admin
  kubeconfig user); discovery, version and health paths are open to authenticated users as the
  upstream ``system:discovery`` / ``system:public-info-viewer`` roles allow. Denials answer the
  standard 403 Forbidden Status.
* TokenReview (``authentication.k8s.io/v1``): answers who a bearer token belongs to, as the
  upstream ``--authentication-token-webhook`` consumers (dashboards, proxies) ask.
"""

from __future__ import annotations

import base64
import csv
import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from tether.errors import UsageError
from tether.sandbox import errors
from tether.sandbox.request import RequestInfo, UserInfo
from tether.sandbox.resources import ResourceType
from tether.sandbox.store import Store, WatchEvent

RBAC = "rbac.authorization.k8s.io"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
#: paths every authenticated user may GET (system:discovery, system:public-info-viewer)
_OPEN_PATHS = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/version/",
    "/openapi",
    "/openapi/*",
)


def load_token_file(path: Path) -> dict[str, UserInfo]:
    """Parse a static token file: ``token,user,uid[,"group1,group2"]`` per line."""
    users: dict[str, UserInfo] = {}
    try:
        text = path.read_text()
    except OSError as error:
        raise UsageError(f"--token-file {path}: {error.strerror}") from None
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3:
            raise UsageError(f'{path}:{number}: expected token,user,uid[,"group1,group2"]')
        token, name = row[0].strip(), row[1].strip()
        groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
        users[token] = UserInfo(name, groups + ([AUTHENTICATED] if AUTHENTICATED not in groups else []))
    return users


def service_account_user(namespace: str, name: str) -> UserInfo:
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED],
    )


def forbidden(user: str, verb: str, info: RequestInfo, name: str = "") -> errors.ApiError:
    """The Status upstream's authorization filter answers a denied request with."""
    if not info.is_resource:
        return errors.ApiError(
            403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path "{info.path}"', details={}
        )
    resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
    scope = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
    reason = f'User "{user}" cannot {verb} resource "{resource}" in API group "{info.group}" {scope}'
    qualified = errors.qualified(info.resource, info.group)
    name = name or info.name
    message = f'{qualified} "{name}" is forbidden: {reason}' if name else f"{qualified} is forbidden: {reason}"
    details: dict[str, Any] = {"name": name} if name else {}
    if info.group:
        details["group"] = info.group
    details["kind"] = info.resource
    return errors.ApiError(403, "Forbidden", message, details=details)


# -- rule evaluation -----------------------------------------------------------------------------


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def rule_allows(rule: dict[str, Any], info: RequestInfo, verb: str) -> bool:
    if not _has(rule.get("verbs"), verb):
        return False
    if not info.is_resource:
        path = info.path
        for pattern in rule.get("nonResourceURLs") or []:
            if pattern == "*" or pattern == path or (pattern.endswith("*") and path.startswith(pattern[:-1])):
                return True
        return False
    if not _has(rule.get("apiGroups"), info.group):
        return False
    combined = info.resource + (f"/{info.subresource}" if info.subresource else "")
    resources = rule.get("resources") or []
    if not ("*" in resources or combined in resources or (info.subresource and f"*/{info.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(info.name) and info.name in names)


def subject_matches(subject: dict[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


class Authorizer:
    """RBAC decisions read straight from the store's Role/Binding objects (always current)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        bucket = self.store.objects.get((RBAC, plural), {})
        return [o for (ns, _), o in bucket.items() if namespace is None or ns == namespace]

    def _role_rules(self, ref: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "ClusterRole":
            role = self.store.objects.get((RBAC, "clusterroles"), {}).get(("", name))
        elif kind == "Role":
            role = self.store.objects.get((RBAC, "roles"), {}).get((namespace, name))
        else:
            role = None
        return list((role or {}).get("rules") or [])

    def allowed(self, user: UserInfo, info: RequestInfo, verb: str | None = None) -> bool:
        verb = verb or info.verb
        if MASTERS in user.groups:
            return True
        if not info.is_resource and verb in ("get", "head") and AUTHENTICATED in user.groups:
            path = info.path
            if any(path == p or (p.endswith("*") and path.startswith(p[:-1])) for p in _OPEN_PATHS):
                return True
        for binding in self._objects("clusterrolebindings"):
            subjects = binding.get("subjects") or []
            if any(subject_matches(s, user, "") for s in subjects) and any(
                rule_allows(r, info, verb) for r in self._role_rules(binding.get("roleRef") or {}, "")
            ):
                return True
        if info.is_resource and info.namespace:
            for binding in self._objects("rolebindings", info.namespace):
                if any(subject_matches(s, user, info.namespace) for s in binding.get("subjects") or []):
                    rules = self._role_rules(binding.get("roleRef") or {}, info.namespace)
                    if any(rule_allows(r, info, verb) for r in rules):
                        return True
        return False


# -- tokens and the request hook -----------------------------------------------------------------


class Rbac:
    """The request hook doing impersonation, TokenRequests and (optionally) authorization."""

    def __init__(self, store: Store, users: dict[str, UserInfo], *, authorize: bool) -> None:
        self.store = store
        self.users = users
        self.authorize = authorize
        self.authorizer = Authorizer(store)
        # with no bearer tokens configured and no RBAC the server does not authenticate at all:
        # registering a ServiceAccount token would switch authentication on and lock the admin out.
        # With RBAC it always authenticates, so ServiceAccount tokens are the way in.
        self.authenticating = bool(users) or authorize
        self._secret_tokens: dict[tuple[str, str], str] = {}
        for (namespace, name), secret in list(store.objects.get(("", "secrets"), {}).items()):
            self._register_secret(namespace, name, secret)
        store.admission.append(self._admit)
        store.listeners.append(self._on_event)

    # ServiceAccount token Secrets ---------------------------------------------------------------

    def _admit(self, op: str, rt: ResourceType, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rt.storage_key != ("", "secrets") or new.get("type") != SA_TOKEN_TYPE:
            return
        meta = new.get("metadata") or {}
        account = (meta.get("annotations") or {}).get(SA_NAME_ANNOTATION)
        data = new.get("data") if isinstance(new.get("data"), dict) else None
        if not account or (data or {}).get("token"):
            return
        if op == "UPDATE" and old is not None and (old.get("data") or {}).get("token"):
            new.setdefault("data", {})["token"] = old["data"]["token"]
            return
        namespace = meta.get("namespace", "")
        sa = self.store.objects.get(("", "serviceaccounts"), {}).get((namespace, account))
        if sa is not None:
            meta.setdefault("annotations", {})[SA_UID_ANNOTATION] = sa["metadata"]["uid"]
        data = new.setdefault("data", {})
        data["token"] = base64.b64encode(secrets.token_urlsafe(32).encode()).decode()
        data["namespace"] = base64.b64encode(namespace.encode()).decode()

    def _register_secret(self, namespace: str, name: str, secret: dict[str, Any]) -> None:
        old = self._secret_tokens.pop((namespace, name), None)
        if old is not None:
            self.users.pop(old, None)
        account = ((secret.get("metadata") or {}).get("annotations") or {}).get(SA_NAME_ANNOTATION)
        encoded = (secret.get("data") or {}).get("token")
        if secret.get("type") != SA_TOKEN_TYPE or not account or not encoded or not self.authenticating:
            return
        try:
            token = base64.b64decode(encoded).decode()
        except (ValueError, UnicodeDecodeError):
            return
        self._secret_tokens[(namespace, name)] = token
        self.users[token] = service_account_user(namespace, account)

    def _on_event(self, event: WatchEvent) -> None:
        if event.key != ("", "secrets"):
            return
        name = event.object["metadata"]["name"]
        if event.type == "DELETED":
            token = self._secret_tokens.pop((event.namespace, name), None)
            if token is not None:
                self.users.pop(token, None)
        else:
            self._register_secret(event.namespace, name, event.object)

    # request path -------------------------------------------------------------------------------

    async def hook(self, info: RequestInfo, request: web.Request) -> web.StreamResponse | None:
        user = info.user or UserInfo("system:anonymous", ["system:unauthenticated"])
        user = self._impersonate(user, info, request)
        info.user = user
        if self.authorize and not self.authorizer.allowed(user, info):
            raise forbidden(user.name, info.verb, info)
        if info.is_resource and info.resource == "serviceaccounts" and info.subresource == "token":
            return await self._token_request(info, request)
        if info.is_resource and info.group == "authentication.k8s.io" and info.resource == "tokenreviews":
            return await self._token_review(info, request)
        return None

    def _impersonate(self, user: UserInfo, info: RequestInfo, request: web.Request) -> UserInfo:
        name = request.headers.get("Impersonate-User", "")
        groups = request.headers.getall("Impersonate-Group", [])
        uid = request.headers.get("Impersonate-Uid", "")
        if not name:
            if groups or uid:
                raise errors.ApiError(500, "InternalError", "requested impersonation of groups or uid without a user")
            return user
        checks: list[tuple[str, str, str]] = []  # (resource, namespace, name)
        if name.startswith("system:serviceaccount:") and name.count(":") == 3:
            _, _, namespace, account = name.split(":")
            checks.append(("serviceaccounts", namespace, account))
            target = service_account_user(namespace, account)
            target.groups = list(dict.fromkeys(target.groups + groups))
        else:
            checks.append(("users", "", name))
            target = UserInfo(name, list(groups))
            if name != "system:anonymous" and AUTHENTICATED not in target.groups:
                target.groups.append(AUTHENTICATED)
        checks += [("groups", "", g) for g in groups]
        if uid:
            checks.append(("uids", "", uid))
        for resource, namespace, object_name in checks:
            if not self.authorize:
                break  # AlwaysAllow authorizes impersonation too
            probe = RequestInfo(
                verb="impersonate",
                path=info.path,
                is_resource=True,
                group="",
                version="v1",
                resource=resource,
                namespace=namespace,
                name=object_name,
            )
            if not self.authorizer.allowed(user, probe, "impersonate"):
                raise forbidden(user.name, "impersonate", probe)
        return target

    async def _token_request(self, info: RequestInfo, request: web.Request) -> web.Response:
        if info.verb != "create":
            raise errors.method_not_allowed()
        sa = self.store.objects.get(("", "serviceaccounts"), {}).get((info.namespace, info.name))
        if sa is None:
            raise errors.not_found("serviceaccounts", "", info.name)
        body: dict[str, Any] = {}
        raw = await request.read()
        if raw.strip() and "json" in request.content_type:
            try:
                body = json.loads(raw)
            except ValueError:
                raise errors.bad_request("the body of a TokenRequest must be JSON") from None
        # other encodings (kubectl sends protobuf) are answered with the defaults of an empty spec
        spec = (body.get("spec") if isinstance(body, dict) else None) or {}
        seconds = spec.get("expirationSeconds") or 3600
        if not isinstance(seconds, int) or seconds < 600:
            raise errors.invalid(
                "TokenRequest",
                "authentication.k8s.io",
                info.name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "spec.expirationSeconds",
                        "message": f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
                    }
                ],
            )
        token = secrets.token_urlsafe(32)
        if self.authenticating:
            self.users[token] = service_account_user(info.namespace, info.name)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        answer = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": info.name,
                "namespace": info.namespace,
                "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            "spec": {
                "audiences": spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"],
                "expirationSeconds": seconds,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {"token": token, "expirationTimestamp": expires},
        }
        return web.json_response(answer, status=201)

    async def _token_review(self, info: RequestInfo, request: web.Request) -> web.Response:
        """``POST /apis/authentication.k8s.io/v1/tokenreviews``: who a bearer token belongs to."""
        if info.verb != "create" or info.name or info.namespace:
            raise errors.method_not_allowed()
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise errors.bad_request("the body of a TokenReview must be JSON") from None
        token = ((body.get("spec") if isinstance(body, dict) else None) or {}).get("token")
        if not isinstance(token, str) or not token:
            raise errors.invalid(
                "TokenReview",
                "authentication.k8s.io",
                "",
                [{"reason": "FieldValueRequired", "field": "spec.token", "message": "Required value: token"}],
            )
        user = self.users.get(token)
        status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
        if user is not None:
            status = {"authenticated": True, "user": {"username": user.name, "groups": list(user.groups)}}
        answer = {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "spec": {"token": token},
            "status": status,
        }
        return web.json_response(answer, status=201)


def install(store: Store, users: dict[str, UserInfo], *, authorize: bool, token_file: Path | None = None) -> Rbac:
    """Load ``token_file`` into ``users`` (the server's token table) and build the hook."""
    if token_file is not None:
        users.update(load_token_file(token_file))
    return Rbac(store, users, authorize=authorize)


# -- the default cluster roles upstream bootstraps -----------------------------------------------

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = [
    {
        "apiGroups": [""],
        "resources": [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "pods",
            "pods/log",
            "pods/status",
            "services",
            "services/status",
            "serviceaccounts",
            "events",
        ],
    },
    {
        "apiGroups": ["apps"],
        "resources": [
            "daemonsets",
            "deployments",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
    },
    {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"]},
]


def _rules(verbs: list[str], extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [{**r, "verbs": list(verbs)} for r in _WORKLOADS + (extra or [])]


def bootstrap_roles() -> list[dict[str, Any]]:
    """cluster-admin and (condensed) admin / edit / view ClusterRoles plus the system:masters binding."""
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

    def role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations)},
            "rules": rules,
        }

    secrets_rule = [{"apiGroups": [""], "resources": ["secrets"]}]
    rbac_rules = [{"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": _READ + _WRITE}]
    namespaces = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ}]
    return [
        role(
            "cluster-admin",
            [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        ),
        role("admin", _rules(_READ + _WRITE, secrets_rule) + rbac_rules + namespaces),
        role("edit", _rules(_READ + _WRITE, secrets_rule) + namespaces),
        role("view", _rules(_READ) + namespaces),
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "cluster-admin", "labels": dict(labels), "annotations": dict(annotations)},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": MASTERS}],
        },
    ]


def ensure_bootstrap(store: Store) -> None:
    for obj in bootstrap_roles():
        rt = store.registry.by_kind(obj["apiVersion"], obj["kind"])
        if rt is not None and store.get(rt, "", obj["metadata"]["name"]) is None:
            store.create(rt, obj)
