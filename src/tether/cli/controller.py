"""``tether controller``: the pull-mode controller, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Annotated, Any

import typer

from tether.errors import UsageError


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry)


def configure_logging(log_format: str, level: str) -> None:
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be text or json (got {log_format!r})")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("tether")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def controller_command(
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", metavar="FILE", help="Kubeconfig file.")] = None,
    context: Annotated[str | None, typer.Option("--context", metavar="TEXT", help="Kubeconfig context.")] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", metavar="TEXT", help="Watch Applications in this namespace (repeatable)."),
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace.")] = False,
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Serve /metrics, /healthz, /readyz and /hooks/* here.")
    ] = "",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Apps reconciled at once.")] = 4,
    leader_elect: Annotated[bool, typer.Option("--leader-elect", help="Run only while holding the Lease.")] = False,
    lease_namespace: Annotated[str, typer.Option("--lease-namespace", metavar="TEXT")] = "tether-system",
    webhook_secret: Annotated[
        str,
        typer.Option(
            "--webhook-secret",
            metavar="NAMESPACE/NAME",
            help="Secret with the webhook secrets (keys github, gitlab, ...).",
        ),
    ] = "",
    cache_dir: Annotated[str, typer.Option("--cache-dir", metavar="DIRECTORY", help="Git mirror cache.")] = "",
    log_format: Annotated[str, typer.Option("--log-format", metavar="text|json")] = "text",
    log_level: Annotated[str, typer.Option("--log-level", metavar="LEVEL")] = "info",
    no_install: Annotated[bool, typer.Option("--no-install-crd", help="Do not install/upgrade the CRD.")] = False,
    images: Annotated[
        bool,
        typer.Option(
            "--images",
            help="Also run image automation (ImageRepository, ImagePolicy, ImageUpdate; POST /hooks/registry).",
        ),
    ] = False,
    dashboard: Annotated[
        str,
        typer.Option("--dashboard", metavar="HOST:PORT", help="Also serve the web dashboard here (sign-in by token)."),
    ] = "",
    health_rules: Annotated[
        str | None,
        typer.Option(
            "--health-rules",
            metavar="FILE",
            help="YAML list of CEL health checks per kind (Flux healthCheckExprs); an app's own entries win.",
        ),
    ] = None,
) -> None:
    """Run the pull-mode controller until stopped (SIGTERM/SIGINT finish in-flight work).

    Example:

        tether controller --kubeconfig ./kubeconfig -A --listen 127.0.0.1:8080
    """
    from tether.controller.run import Controller, ControllerOptions
    from tether.kube import Kube
    from tether.notify import attach

    if all_namespaces and namespace:
        raise UsageError("give --namespace or --all-namespaces, not both")
    configure_logging(log_format, log_level)
    rules = None
    if health_rules is not None:
        from tether.engine.health_rules import load_health_rules

        rules = load_health_rules(health_rules)  # a bad file stops the start, naming the entry
    options = ControllerOptions(
        namespaces=tuple(namespace or ()),
        concurrency=concurrency,
        listen=listen,
        leader_elect=leader_elect,
        lease_namespace=lease_namespace,
        install_crd=not no_install,
        cache_dir=cache_dir,
        webhook_secret=webhook_secret,
        companions=(_image_automation(namespace or (), webhook_secret, cache_dir),) if images else (),
        health_rules=rules,
    )

    async def run() -> None:
        kube = await Kube.connect(kubeconfig=kubeconfig, context=context)
        web: asyncio.Task[None] | None = None
        try:
            controller = Controller(kube, options)
            feedback = attach(controller)
            controller.install_signal_handlers()
            if dashboard:
                from tether.cli.dashboard import parse_listen
                from tether.dashboard import serve

                web = asyncio.create_task(serve(kube, *parse_listen(dashboard, "--dashboard")))
            try:
                await controller.run()
            finally:
                await feedback.close()
        finally:
            if web is not None:
                web.cancel()
                await asyncio.gather(web, return_exceptions=True)
            await kube.close()

    asyncio.run(run())


def _image_automation(namespaces: Any, webhook_secret: str, cache_dir: str) -> Any:
    """A factory for the image automation companion; its notification token is the ``registry`` key
    of the webhook Secret."""
    from pathlib import Path

    def make(kube: Any) -> Any:
        from tether.images import ImageAutomation

        return ImageAutomation(
            kube,
            namespaces=namespaces,
            webhook_secret=webhook_secret,
            work_dir=Path(cache_dir) / "images" if cache_dir else None,
        )

    return make


def register(app: typer.Typer) -> None:
    app.command("controller")(controller_command)
