"""``tether render`` and ``tether validate``, plus the shared render options of ``diff`` / ``apply``.

Other commands take the same render options with one decorator::

    from tether.cli.render import with_render_options

    @app.command()
    @with_render_options
    def diff(path: str, ..., render_options: RenderOptions) -> None:
        result = render_source(path, render_options)

The decorator adds ``--values/-f``, ``--set``, ``--set-string``, ``--release-name``, ``--tla-str``,
``--tla-code``, ``--ext-str``, ``--ext-code``, ``--jpath/-J``, ``--var``, ``--substitute``, ``--app``,
``--namespace/-n``, ``--renderer``, ``--render-timeout``, ``--verify``, ``--allowed-signers`` and
``--chart-credentials``
and passes them on as one ``RenderOptions`` in the ``render_options`` keyword.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import typing
from collections.abc import Callable
from typing import Annotated, Any

import click
import typer
import yaml

from tether.errors import TetherError, UsageError
from tether.render import DEFAULT_RENDER_TIMEOUT, RENDERERS, RenderOptions, render_source
from tether.render.chart_credentials import load_credentials_file

_EMPTY: list[str] = []


def _pairs(values: list[str] | None, flag: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        out.append((key, value))
    return tuple(out)


def build_render_options(
    *,
    values: list[str] | None = None,
    set_values: list[str] | None = None,
    set_string: list[str] | None = None,
    release_name: str = "",
    tla_str: list[str] | None = None,
    tla_code: list[str] | None = None,
    ext_str: list[str] | None = None,
    ext_code: list[str] | None = None,
    jpath: list[str] | None = None,
    var: list[str] | None = None,
    app: str = "",
    namespace: str = "",
    renderer: str = "auto",
    render_timeout: float = DEFAULT_RENDER_TIMEOUT,
    verify: str = "",
    allowed_signers: str = "",
    decryption_key: list[str] | None = None,
    substitute: bool = False,
    kube_version: str = "",
    api_versions: list[str] | None = None,
    chart_credentials: str = "",
) -> RenderOptions:
    """``kube_version``: "" when the user gave none (1.32, or the target cluster's version, is used)."""
    if renderer not in RENDERERS:
        raise UsageError(f"--renderer {renderer!r}: choose one of {', '.join(RENDERERS)}")
    if verify not in ("", "ssh", "gpg"):
        raise UsageError(f"--verify {verify!r}: choose ssh or gpg")
    return RenderOptions(
        app=app,
        namespace=namespace,
        renderer=renderer,
        values_files=tuple(values or ()),
        set_values=tuple(set_values or ()),
        set_string_values=tuple(set_string or ()),
        release_name=release_name,
        tla_str=_pairs(tla_str, "--tla-str"),
        tla_code=_pairs(tla_code, "--tla-code"),
        ext_str=_pairs(ext_str, "--ext-str"),
        ext_code=_pairs(ext_code, "--ext-code"),
        jsonnet_paths=tuple(jpath or ()),
        variables=_pairs(var, "--var"),
        substitute=substitute,
        timeout=render_timeout,
        verify=verify,
        allowed_signers=allowed_signers,
        decryption_keys=tuple(decryption_key or ()),
        kube_version=_kube_version(kube_version) if kube_version else RenderOptions.kube_version,
        kube_version_given=bool(kube_version),
        api_versions=tuple(_api_version(item) for item in api_versions or ()),
        chart_credentials=load_credentials_file(chart_credentials) if chart_credentials else (),
    )


def _kube_version(text: str) -> str:
    if not re.match(r"^v?\d+\.\d+(\.\d+)?$", text.strip()):
        raise UsageError(f"--kube-version {text!r}: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.32")
    return text.strip().removeprefix("v")


def _api_version(text: str) -> str:
    if not re.match(r"^(?:[a-z0-9.-]+/)?v[0-9a-z]+(?:/[A-Za-z][A-Za-z0-9]*)?$", text.strip()):
        raise UsageError(f"--api-versions {text!r}: expected group/version or group/version/Kind")
    return text.strip()


def _given_on_command_line(name: str, value: Any) -> bool:
    """Did the user pass this option (rather than typer filling in its default)?"""
    context = click.get_current_context(silent=True)
    if context is None:  # called as a function: a value other than the default was chosen
        return bool(value != _DEFAULTS[name])
    source = context.get_parameter_source(name)
    return source is not None and source is not click.core.ParameterSource.DEFAULT


# (parameter name, annotation) of every render option, in --help order
_OPTIONS: list[tuple[str, Any]] = [
    (
        "app",
        Annotated[
            str, typer.Option("--app", help="Application name (label tether.dev/app); required by diff and apply.")
        ],
    ),
    (
        "namespace",
        Annotated[
            str,
            typer.Option(
                "--namespace",
                "-n",
                help="Namespace for namespaced objects without one (and the Helm release namespace).",
            ),
        ],
    ),
    ("renderer", Annotated[str, typer.Option("--renderer", help=f"Force a renderer: {', '.join(RENDERERS)}.")]),
    (
        "values",
        Annotated[
            list[str] | None, typer.Option("--values", "-f", metavar="FILE", help="Helm values file (repeatable).")
        ],
    ),
    (
        "set_values",
        Annotated[
            list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Helm value KEY=VALUE as helm --set.")
        ],
    ),
    (
        "set_string",
        Annotated[
            list[str] | None, typer.Option("--set-string", metavar="KEY=VALUE", help="Helm string value KEY=VALUE.")
        ],
    ),
    ("release_name", Annotated[str, typer.Option("--release-name", help="Helm release name (default: --app).")]),
    (
        "tla_str",
        Annotated[
            list[str] | None,
            typer.Option("--tla-str", metavar="KEY=TEXT", help="Jsonnet top-level argument KEY=STRING."),
        ],
    ),
    (
        "tla_code",
        Annotated[
            list[str] | None,
            typer.Option("--tla-code", metavar="KEY=CODE", help="Jsonnet top-level argument KEY=CODE."),
        ],
    ),
    (
        "ext_str",
        Annotated[
            list[str] | None,
            typer.Option("--ext-str", metavar="KEY=TEXT", help="Jsonnet external variable KEY=STRING."),
        ],
    ),
    (
        "ext_code",
        Annotated[
            list[str] | None, typer.Option("--ext-code", metavar="KEY=CODE", help="Jsonnet external variable KEY=CODE.")
        ],
    ),
    (
        "jpath",
        Annotated[
            list[str] | None, typer.Option("--jpath", "-J", metavar="DIRECTORY", help="Jsonnet library directory.")
        ],
    ),
    (
        "var",
        Annotated[
            list[str] | None,
            typer.Option(
                "--var", metavar="KEY=VALUE", help="Substitution variable KEY=VALUE for ${KEY} (turns substitution on)."
            ),
        ],
    ),
    (
        "substitute",
        Annotated[
            bool,
            typer.Option(
                "--substitute",
                help="Substitute ${VAR} / ${VAR:=default} even without --var (off by default, as Flux's postBuild).",
            ),
        ],
    ),
    (
        "render_timeout",
        Annotated[
            float,
            typer.Option(
                "--render-timeout", metavar="SECONDS", help="Seconds a renderer (kustomize, helm, jsonnet) may run."
            ),
        ],
    ),
    ("verify", Annotated[str, typer.Option("--verify", help="Require Git revisions signed by: ssh or gpg.")]),
    (
        "allowed_signers",
        Annotated[
            str,
            typer.Option("--allowed-signers", metavar="FILE", help="SSH allowed-signers file or GPG public keys file."),
        ],
    ),
    (
        "kube_version",
        Annotated[
            str,
            typer.Option(
                "--kube-version",
                metavar="X.Y",
                help="Kubernetes version rendered for (Helm's .Capabilities.KubeVersion).",
            ),
        ],
    ),
    (
        "api_versions",
        Annotated[
            list[str] | None,
            typer.Option(
                "--api-versions",
                metavar="GROUP/VERSION[/KIND]",
                help="API version for Helm .Capabilities.APIVersions (repeatable).",
            ),
        ],
    ),
    (
        "chart_credentials",
        Annotated[
            str,
            typer.Option(
                "--chart-credentials",
                metavar="FILE",
                help="YAML file: chart repository URL -> username/password (or usernameFile/passwordFile); mode 600.",
            ),
        ],
    ),
    (
        "decryption_key",
        Annotated[
            list[str] | None,
            typer.Option(
                "--decryption-key",
                metavar="FILE",
                help="SOPS decryption key file: age identity or armored PGP secret key (repeatable).",
            ),
        ],
    ),
]
_DEFAULTS = {
    "app": "",
    "namespace": "",
    "renderer": "auto",
    "values": None,
    "set_values": None,
    "set_string": None,
    "release_name": "",
    "tla_str": None,
    "tla_code": None,
    "ext_str": None,
    "ext_code": None,
    "jpath": None,
    "var": None,
    "render_timeout": DEFAULT_RENDER_TIMEOUT,
    "verify": "",
    "allowed_signers": "",
    "decryption_key": None,
    "substitute": False,
    "kube_version": "1.32",
    "api_versions": None,
    "chart_credentials": "",
}


def with_render_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the render options to a typer command; it receives them as ``render_options: RenderOptions``."""
    signature = inspect.signature(func)
    # resolve string annotations for typer; the command's own module need not import RenderOptions
    hints = typing.get_type_hints(func, localns={"RenderOptions": RenderOptions}, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name != "render_options"
    ]
    taken = {p.name for p in own}
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS[name], annotation=annotation)
        for name, annotation in _OPTIONS
        if name not in taken
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        picked = {name: kwargs.pop(name) for name, _ in _OPTIONS if name in kwargs and name not in taken}
        # an option the command declares itself (e.g. a required --app) is shared, not taken away
        picked.update({name: kwargs[name] for name in taken & set(_DEFAULTS) if kwargs.get(name) is not None})
        if "kube_version" in picked and not _given_on_command_line("kube_version", picked["kube_version"]):
            picked["kube_version"] = ""  # not chosen: the default, or the target cluster's version
        return func(*args, render_options=build_render_options(**picked), **kwargs)

    positional = [p for p in own if p.kind != inspect.Parameter.KEYWORD_ONLY]
    keyword = [p for p in own if p.kind == inspect.Parameter.KEYWORD_ONLY]
    wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
    return wrapper


def dump_manifests(objects: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        return (
            json.dumps(
                objects[0] if len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}, indent=2
            )
            + "\n"
        )
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(
        objects, Dumper=dumper, sort_keys=False, default_flow_style=False, explicit_start=True, allow_unicode=True
    )


@with_render_options
def render_command(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH|URL",
            help="Directory or one file, or a Git source such as https://host/repo.git//dir?ref=v1.2.0",
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
    *,
    render_options: RenderOptions,
) -> None:
    """Render PATH (plain YAML/JSON, Kustomize, Helm or Jsonnet) and print the objects.

    Example:

        tether render ./chart --values prod.yaml --release-name web -n prod
    """
    if output not in ("yaml", "json"):
        raise UsageError(f"--output {output!r}: choose yaml or json")
    result = render_source(path, render_options)
    sys.stdout.write(dump_manifests([m.obj for m in result.manifests], output))
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if result.revision is not None:  # on stderr: stdout stays pure YAML/JSON for pipes
        typer.echo(
            f"rendered {result.revision.url} at {result.revision.commit} ({len(result.manifests)} objects, "
            f"{result.renderer})",
            err=True,
        )


def _cluster_crds(kubeconfig: str, context: str | None) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every CustomResourceDefinition of the cluster, indexed by the kinds it serves."""
    import asyncio

    from tether.kube import Kube
    from tether.validate.crd import index_crds

    async def fetch() -> list[dict[str, Any]]:
        async with await Kube.connect(kubeconfig=kubeconfig, context=context) as kube:
            return await kube.list(await kube.info("apiextensions.k8s.io/v1", "CustomResourceDefinition"))

    return index_crds(asyncio.run(fetch()))


@with_render_options
def validate_command(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH|URL",
            help="Directory or one file, or a Git source such as https://host/repo.git//dir?ref=v1.2.0",
        ),
    ],
    kube_version: Annotated[str, typer.Option("--kube-version", help="Kubernetes version of the schemas.")] = "1.32",
    policy: Annotated[str, typer.Option("--policy", metavar="FILE", help="Policy file with CEL expressions.")] = "",
    fmt: Annotated[str, typer.Option("--format", help="text, json, junit or sarif.")] = "text",
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig", metavar="FILE", help="Also take CRD schemas from this cluster's CustomResourceDefinitions."
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context (with --kubeconfig).")] = None,
    schema_location: Annotated[
        list[str] | None,
        typer.Option(
            "--schema-location",
            metavar="DIRECTORY",
            help="Also take CRD schemas from the CRD files under DIRECTORY (repeatable).",
        ),
    ] = None,
    ignore_missing_schemas: Annotated[
        bool, typer.Option("--ignore-missing-schemas", help="A kind without any schema is a warning, not an error.")
    ] = False,
    *,
    render_options: RenderOptions,
) -> None:
    """Validate PATH: syntax, duplicates, schemas, unknown kinds, policies. Exit 0 valid, 1 invalid, 2 error.

    Example:

        tether validate ./deploy --kube-version 1.32 --format junit
    """
    from tether import schemas
    from tether.validate import validate_source
    from tether.validate.crd import crds_in_directory, lookup_in
    from tether.validate.report import FORMATS, render_report

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    schemas.definitions(kube_version)  # unknown version: a usage error before any work
    tables = [crds_in_directory(d) for d in schema_location or ()]
    if kubeconfig:
        tables.append(_cluster_crds(kubeconfig, context))
    lookup = lookup_in(*tables) if tables else None
    try:
        report = validate_source(
            path,
            render_options,
            kube_version=kube_version,
            policy_file=policy or None,
            crd_lookup=lookup,
            ignore_missing_schemas=ignore_missing_schemas,
        )
    except TetherError:
        raise
    except Exception as error:  # an internal error is exit 2, never "invalid"
        raise TetherError(f"internal error while validating {path}: {type(error).__name__}: {error}") from error
    sys.stdout.write(render_report(report, fmt))
    for finding in report.findings:
        if finding.rule == "no-objects":  # also on stderr: stdout may be a JSON or SARIF file nobody reads
            typer.echo(f"warning: {finding.message}", err=True)
    raise typer.Exit(0 if report.valid else 1)


def register(app: typer.Typer) -> None:
    app.command("render")(render_command)
    app.command("validate")(validate_command)
