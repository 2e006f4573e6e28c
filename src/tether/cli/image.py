"""``tether image``: the image automation objects (ImageRepository, ImagePolicy, ImageUpdate).

Exit codes: 0 success; 2 any error (cluster, registry, unknown name).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from tether.errors import UsageError
from tether.kube import Kube

group = typer.Typer(
    name="image",
    no_args_is_help=True,
    add_completion=False,
    help="Image automation: repositories scanned, policies' latest images, Git updates.\n\nExit codes: 0 "
    "success; 2 any error.\n\nExample:\n\n    tether image scan api -n apps",
)

NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", metavar="FILE", help="Kubeconfig file.")]
ContextOpt = Annotated[str | None, typer.Option("--context", metavar="TEXT", help="Kubeconfig context.")]


def _run(kubeconfig: str | None, context: str | None, namespace: str | None, work: Any) -> Any:
    async def main() -> Any:
        kube = await Kube.connect(kubeconfig=kubeconfig, context=context, namespace=namespace)
        try:
            return await work(kube, kube.namespace)
        finally:
            await kube.close()

    return asyncio.run(main())


def _ready(obj: dict[str, Any]) -> str:
    found = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    return f"{found.get('status', 'Unknown')} {found.get('reason', '')}".strip()


@group.command("list")
def list_command(namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None) -> None:
    """List ImageRepositories (tags found), ImagePolicies (latest image) and ImageUpdates (last push).

    Example:

        tether image list -n apps
    """
    from tether.images.api import POLICY_INFO, REPOSITORY_INFO, UPDATE_INFO

    async def work(kube: Kube, ns: str) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for info in (REPOSITORY_INFO, POLICY_INFO, UPDATE_INFO):
            for obj in await kube.list(info, ns):
                status = obj.get("status") or {}
                detail = {
                    "ImageRepository": f"{obj['spec'].get('image')} "
                    f"({(status.get('lastScanResult') or {}).get('tagCount', '?')} tags)",
                    "ImagePolicy": status.get("latestImage") or "-",
                    "ImageUpdate": (status.get("lastPushCommit") or "-")[:12],
                }[info.kind]
                rows.append((info.kind, obj["metadata"]["name"], detail, _ready(obj)))
        return rows

    rows = _run(kubeconfig, context, namespace, work)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("KIND", "NAME", "IMAGE", "READY"))]
    for row in [("KIND", "NAME", "IMAGE", "READY"), *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@group.command("get")
def get_command(
    name: Annotated[str, typer.Argument(help="ImagePolicy, ImageRepository or ImageUpdate name.")],
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Show one object (an ImagePolicy first, then an ImageRepository, then an ImageUpdate) as JSON.

    Example:

        tether image get web -n apps
    """
    from tether.images.api import POLICY_INFO, REPOSITORY_INFO, UPDATE_INFO

    async def work(kube: Kube, ns: str) -> dict[str, Any]:
        for info in (POLICY_INFO, REPOSITORY_INFO, UPDATE_INFO):
            found = await kube.get(info, name, ns)
            if found is not None:
                return found
        raise UsageError(f"no ImagePolicy, ImageRepository or ImageUpdate named {name!r} in namespace {ns}")

    obj = _run(kubeconfig, context, namespace, work)
    obj.get("metadata", {}).pop("managedFields", None)
    typer.echo(json.dumps(obj, indent=2))


@group.command("scan")
def scan_command(
    name: Annotated[str, typer.Argument(help="ImageRepository name.")],
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Scan an ImageRepository now (from here), print what each of its policies selects, and ask the
    controller to scan it too (annotation tether.dev/scan-requested-at).

    Example:

        tether image scan web -n apps
    """
    from tether.images import scanner
    from tether.images.api import POLICY_INFO, REPOSITORY_INFO, SCAN_ANNOTATION, now_iso

    async def work(kube: Kube, ns: str) -> list[str]:
        repository = await kube.get(REPOSITORY_INFO, name, ns)
        if repository is None:
            raise UsageError(f"no ImageRepository named {name!r} in namespace {ns}")
        result = await scanner.scan(kube, repository)
        lines = [f"{result.image}: {len(result.tags)} tags"]
        for policy in await kube.list(POLICY_INFO, ns):
            if ((policy.get("spec") or {}).get("imageRepositoryRef") or {}).get("name") == name:
                chosen = await scanner.choose(kube, policy, repository, result.tags, None)
                lines.append(f"ImagePolicy {policy['metadata']['name']}: {chosen.full}")
        await kube.patch(REPOSITORY_INFO, name, ns, {"metadata": {"annotations": {SCAN_ANNOTATION: now_iso()}}})
        return lines

    for line in _run(kubeconfig, context, namespace, work):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="image")
