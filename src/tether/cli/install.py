"""``tether install``: the Application CRD, the controller's identity and rights, and its Deployment.

The manifests are built here and nowhere else: ``deploy/`` in the repository is their output
(``tether install --dry-run --write-dir deploy/``) and a test keeps the two equal. Exit codes:
0 installed (or printed), 2 error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from tether import __version__
from tether.errors import KubeError, UsageError
from tether.kube import Kube

CRD_FILE = Path(__file__).resolve().parent.parent / "controller" / "crds" / "applications.yaml"
CRD_NAME = "applications.tether.dev"
DEFAULT_NAMESPACE = "tether-system"
DEFAULT_IMAGE = f"ghcr.io/tether-dev/tether:v{__version__}"
NAME = "tether-controller"
FIELD_MANAGER = "tether-install"
PORT = 8080
#: deploy/ files in apply order (the order kustomization.yaml lists them and --dry-run prints them)
FILES = ("crds/applications.yaml", "rbac.yaml", "controller.yaml")
LABELS = {
    "app.kubernetes.io/name": "tether",
    "app.kubernetes.io/component": "controller",
    "app.kubernetes.io/part-of": "tether",
}


@dataclass(frozen=True)
class Rule:
    why: str
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"apiGroups": list(self.api_groups), "resources": list(self.resources), "verbs": list(self.verbs)}


READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete")

#: what the controller itself needs, cluster-wide because it watches Applications in every namespace
CONTROLLER_RULES = (
    Rule(
        "Watch Applications and update them (add and remove the tether.dev/cascade finalizer).",
        ("tether.dev",),
        ("applications",),
        (*READ, "update", "patch"),
    ),
    Rule(
        "Write what it observed: conditions, revisions, drift and history.",
        ("tether.dev",),
        ("applications/status",),
        ("get", "update", "patch"),
    ),
    Rule(
        "Block owner deletion on objects owned by an Application (OwnerReferencesPermissionEnforcement).",
        ("tether.dev",),
        ("applications/finalizers",),
        ("update",),
    ),
    Rule(
        "Record Events on Applications (kubectl describe, tether app describe).",
        ("", "events.k8s.io"),
        ("events",),
        ("create", "patch", "update"),
    ),
    Rule(
        "Keep each app's inventory (what was applied, so it can be pruned) in a ConfigMap; read ConfigMaps "
        "named by spec.render.substitute.from.",
        ("",),
        ("configmaps",),
        (*READ, *WRITE),
    ),
    Rule(
        "Read Git credentials (spec.source.secretRef), signing keys (spec.source.verify), SOPS keys "
        "(spec.decryption) and variables (spec.render.substitute.from).",
        ("",),
        ("secrets",),
        READ,
    ),
    Rule(
        "Apply as the ServiceAccount an Application names (spec.serviceAccountName), with that account's rights only.",
        ("",),
        ("serviceaccounts",),
        ("impersonate",),
    ),
    Rule(
        "Check destination namespaces and create them (spec.destination.createNamespace).",
        ("",),
        ("namespaces",),
        (*READ, "create"),
    ),
    Rule(
        "Read CRD schemas to validate custom resources before applying them.",
        ("apiextensions.k8s.io",),
        ("customresourcedefinitions",),
        READ,
    ),
    Rule(
        "Notifications: read Alerts (alerts.tether.dev) and keep in their status what was already told, "
        "so a restart or a new leader does not tell it again.",
        ("tether.dev",),
        ("alerts", "alerts/status"),
        (*READ, "patch", "update"),
    ),
    Rule(
        "Image automation (--images): read ImageRepositories, ImagePolicies and ImageUpdates and write their status.",
        ("tether.dev",),
        (
            "imagerepositories",
            "imagerepositories/status",
            "imagepolicies",
            "imagepolicies/status",
            "imageupdates",
            "imageupdates/status",
        ),
        (*READ, "patch", "update"),
    ),
)

#: apps without spec.serviceAccountName are applied with the controller's own identity
APPLY_RULES = (
    Rule(
        "Create, update, watch (drift) and prune the objects of Applications that do not name a "
        "ServiceAccount: they may hold any kind. To restrict this, delete the tether-controller-apply "
        "ClusterRoleBinding and give every Application a spec.serviceAccountName with the rights it needs.",
        ("*",),
        ("*",),
        ("*",),
    ),
)

LEADER_RULES = (
    Rule(
        "Leader election: one active controller holds a Lease in its own namespace.",
        ("coordination.k8s.io",),
        ("leases",),
        (*READ, *WRITE),
    ),
    Rule("Events about leadership changes.", ("", "events.k8s.io"), ("events",), ("create", "patch")),
)


def crd_document() -> str:
    """The Application CRD. Its descriptions show ``${VAR}`` syntax, so it opts out of substitution:
    a repository that deploys tether with tether (or ``tether validate deploy/``) renders it as is."""
    crd = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    crd["metadata"].setdefault("annotations", {})["tether.dev/substitute"] = "disabled"
    return _document(crd, "The Application API (applications.tether.dev), from src/tether/controller/crds/.")


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(LABELS)
    return meta


def _document(obj: dict[str, Any], comment: str = "", rules: tuple[Rule, ...] = ()) -> str:
    """One YAML document; ``rules`` are written last, each under a comment saying why it is granted."""
    head = "".join(f"# {line}\n" for line in _wrap(comment)) if comment else ""
    text = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
    if rules:
        text += "rules:\n"
        for rule in rules:
            text += "".join(f"# {line}\n" for line in _wrap(rule.why))
            text += yaml.safe_dump([rule.as_dict()], sort_keys=False, default_flow_style=False)
    return head + text


def _wrap(text: str, width: int = 100) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def _binding(kind: str, name: str, role_kind: str, namespace: str, bound_in: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, bound_in),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
    }


def rbac_documents(namespace: str) -> list[str]:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1"}
    return [
        _document(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(namespace)},
            "The controller's namespace: its ServiceAccount, Deployment and leader-election Lease.",
        ),
        _document(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, namespace)},
            "The identity the controller runs as.",
        ),
        _document(
            {**role, "kind": "ClusterRole", "metadata": _meta(NAME)},
            "What the controller needs for itself, in every namespace it watches.",
            CONTROLLER_RULES,
        ),
        _document(_binding("ClusterRoleBinding", NAME, "ClusterRole", namespace)),
        _document(
            {**role, "kind": "ClusterRole", "metadata": _meta(f"{NAME}-apply")},
            "The rights to manage app objects applied with the controller's own identity.",
            APPLY_RULES,
        ),
        _document(
            _binding("ClusterRoleBinding", f"{NAME}-apply", "ClusterRole", namespace),
            "Delete this binding to make every Application apply as its own spec.serviceAccountName.",
        ),
        _document(
            {**role, "kind": "Role", "metadata": _meta(f"{NAME}-leader-election", namespace)},
            "Rights in the controller's own namespace only.",
            LEADER_RULES,
        ),
        _document(_binding("RoleBinding", f"{NAME}-leader-election", "Role", namespace, namespace)),
    ]


def _from_pod(name: str, field_path: str) -> dict[str, Any]:
    # apiVersion spelled out: the server defaults it, and fieldRef is atomic, so a manifest without it
    # would conflict with itself when applied by a second field manager (kubectl apply -k deploy/)
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}}


def deployment(namespace: str, image: str) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": "tether", "app.kubernetes.io/component": "controller"}
    probe = {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    container = {
        "name": "controller",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tether"],
        "args": ["controller", "--all-namespaces", "--leader-elect", "--listen", f"0.0.0.0:{PORT}"],
        "env": [
            _from_pod("POD_NAMESPACE", "metadata.namespace"),
            _from_pod("POD_NAME", "metadata.name"),
            {"name": "XDG_CACHE_HOME", "value": "/var/cache/tether"},
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/tether"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAME, namespace),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": dict(LABELS),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def controller_documents(namespace: str, image: str) -> list[str]:
    return [
        _document(
            deployment(namespace, image),
            f"The controller: watches Applications in every namespace; one replica leads (Lease). "
            f"Port {PORT} serves /healthz (liveness), /readyz (readiness), /metrics (Prometheus) and "
            "webhooks.",
        )
    ]


def manifest_files(namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE) -> dict[str, str]:
    """deploy/ file name -> text, in apply order (kustomization.yaml included, last)."""
    files = {
        "crds/applications.yaml": crd_document(),
        "rbac.yaml": "---\n".join(rbac_documents(namespace)),
        "controller.yaml": "---\n".join(controller_documents(namespace, image)),
    }
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": list(FILES)}
    files["kustomization.yaml"] = _document(
        kustomization,
        "tether install --dry-run --write-dir deploy/ writes these files; edit src/tether/cli/install.py, not them.",
    )
    return files


def manifest_text(namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE) -> str:
    files = manifest_files(namespace, image)
    return "---\n".join(files[name] for name in FILES)


def manifest_objects(namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifest_text(namespace, image)) if d]


async def apply_all(kube: Kube, objects: list[dict[str, Any]], timeout: float = 60.0) -> list[str]:
    """Server-side apply in order, then wait until the CRD is Established (so `tether app` works at once)."""
    done = []
    for obj in objects:
        info = await kube.info(obj["apiVersion"], obj["kind"])
        await kube.apply(info, obj, force=True, field_manager=FIELD_MANAGER)
        meta = obj["metadata"]
        done.append(f"{obj['kind']} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta['name']}")
    crd_info = await kube.info("apiextensions.k8s.io/v1", "CustomResourceDefinition")

    async def established() -> bool:
        crd = await kube.get(crd_info, CRD_NAME) or {}
        return any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )

    await kube.wait_for(f"CustomResourceDefinition {CRD_NAME} to be Established", established, timeout)
    return done


def install_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the manifests instead of applying them.")] = False,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace of the controller.")
    ] = DEFAULT_NAMESPACE,
    image: Annotated[str, typer.Option("--image", help="Controller image.")] = DEFAULT_IMAGE,
    write_dir: Annotated[
        str,
        typer.Option(
            "--write-dir",
            help="With --dry-run: write the manifests as files "
            "(crds/, rbac.yaml, controller.yaml, kustomization.yaml) here.",
        ),
    ] = "",
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Path to the kubeconfig file.")] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.")] = None,
) -> None:
    """Install the Application CRD, the controller's RBAC and its Deployment (server-side apply).

    The controller gets: read/write on Applications and their status, Events, ConfigMaps
    (inventories), read on Secrets (Git credentials and keys), impersonation of ServiceAccounts
    (spec.serviceAccountName), Leases in its own namespace, and full rights on app objects
    through a separate ClusterRoleBinding (tether-controller-apply) that can be removed when
    every Application names a ServiceAccount. Exit 0 done, 2 error.

    Example:

        tether install --dry-run > tether.yaml
    """
    if write_dir and not dry_run:
        raise UsageError("--write-dir writes files instead of applying: give --dry-run too")
    if dry_run:
        if write_dir:
            for name, text in manifest_files(namespace, image).items():
                target = Path(write_dir) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {', '.join(manifest_files(namespace, image))} under {write_dir}", err=True)
        else:
            typer.echo(manifest_text(namespace, image), nl=False)
        return

    async def run() -> list[str]:
        kube = await Kube.connect(kubeconfig=kubeconfig, context=context)
        try:
            return await apply_all(kube, manifest_objects(namespace, image))
        finally:
            await kube.close()

    try:
        applied = asyncio.run(run())
    except KubeError as error:
        raise KubeError(f"tether install: {error}") from None
    for line in applied:
        typer.echo(f"{line} applied")


def register(app: typer.Typer) -> None:
    app.command("install")(install_command)
