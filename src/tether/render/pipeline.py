"""Render pipeline: source -> detect -> renderer -> post-processing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from tether.errors import RenderError, UsageError
from tether.model import Manifest
from tether.render import RENDERERS, Decryptor, RenderOptions, RenderResult
from tether.render.files import check_tree_symlinks, relative
from tether.render.postprocess import postprocess


def detect(directory: Path) -> str:
    """Which renderer a directory needs: kustomization > Helm chart > Jsonnet main > plain YAML/JSON."""
    from tether.render.jsonnet import main_file
    from tether.render.kustomize import kustomization_file

    if kustomization_file(directory):
        return "kustomize"
    if (directory / "Chart.yaml").is_file():
        return "helm"
    if main_file(directory):
        return "jsonnet"
    return "yaml"


def render_directory(
    directory: Path,
    root: Path,
    options: RenderOptions,
    decryptor: Decryptor | None = None,
    tree_decryptor: Decryptor | bool | None = True,
    on_error: Callable[[RenderError], None] | None = None,
    warnings: list[str] | None = None,
) -> tuple[list[Manifest], str]:
    """Run the renderer for ``directory`` (inside ``root``); returns raw manifests and the renderer used.

    ``tree_decryptor`` decrypts the files Kustomize and Helm read (``True``: the same as ``decryptor``).
    ``warnings`` gets the renderers' warnings (kustomize's deprecations, say) of a successful render."""
    if tree_decryptor is True:
        tree_decryptor = decryptor
    if options.renderer not in RENDERERS:
        raise UsageError(f"unknown renderer {options.renderer!r}; choose one of {', '.join(RENDERERS)}")
    if directory.is_file():
        return _render_file(directory, root, options, decryptor)
    if not directory.is_dir():
        raise RenderError(f"{relative(directory, root)}: not a directory or file")
    renderer = detect(directory) if options.renderer == "auto" else options.renderer
    check_tree_symlinks(directory, root)
    if renderer == "yaml":
        from tether.render.plain import kustomize_bases, render_plain

        manifests = render_plain(directory, root, options.max_file_bytes, decryptor, on_error)
        bases = kustomize_bases(directory)
        if bases:
            # a sub-directory with a kustomization is a Kustomize base, as Flux builds it
            from tether.render.kustomize import render_kustomize

            with _plaintext(root, directory, tree_decryptor or None, options.max_file_bytes) as tree:
                for base in bases:
                    manifests.extend(
                        render_kustomize(
                            tree / base.relative_to(root), tree, options.limits, options.max_file_bytes, warnings
                        )
                    )
            manifests.sort(key=lambda m: m.source.file if m.source else "")
        return manifests, renderer
    if renderer == "jsonnet":
        return _decrypt_objects(_jsonnet(directory, root, options), decryptor), renderer
    # Kustomize and Helm read files themselves: give them a plaintext copy when decrypting
    with _plaintext(root, directory, tree_decryptor or None, options.max_file_bytes) as tree:
        work_dir = tree / directory.relative_to(root)
        if renderer == "kustomize":
            from tether.render.kustomize import render_kustomize

            return render_kustomize(work_dir, tree, options.limits, options.max_file_bytes, warnings), renderer
        from tether.render.helm import merge_values, render_helm, user_values

        if not options.inline_values:
            values = user_values(
                work_dir,
                tree,
                options.values_files,
                options.set_values,
                options.set_string_values,
                options.max_file_bytes,
            )
        else:  # files, then the inline values, then --set expressions
            values = merge_values(
                user_values(work_dir, tree, options.values_files, (), (), options.max_file_bytes),
                _inline_values(options.inline_values),
            )
            if options.set_values or options.set_string_values:
                values = merge_values(
                    values,
                    user_values(
                        work_dir, tree, (), options.set_values, options.set_string_values, options.max_file_bytes
                    ),
                )
        if options.cluster_capabilities is not None:
            options = options.for_cluster(*options.cluster_capabilities())
        release = options.release_name or options.app or directory.resolve().name
        manifests = render_helm(
            work_dir,
            tree,
            release=release,
            namespace=options.namespace or "default",
            values=values,
            timeout=options.limits,
            kube_version=options.kube_version,
            api_versions=options.api_versions,
            fetch=_fetch_settings(options),
            max_bytes=options.max_file_bytes,
        )
        return manifests, renderer


def _fetch_settings(options: RenderOptions):  # -> FetchSettings (imported lazily with the Helm renderer)
    from tether.render.helm_fetch import FetchSettings, default_cache_dir

    return FetchSettings(
        cache_dir=Path(options.cache_dir) if options.cache_dir else default_cache_dir(),
        connect_timeout=options.git_connect_timeout,
        max_archive_bytes=options.max_file_bytes,
        credentials=options.chart_credentials,
    )


def _inline_values(text: str) -> dict:
    import json

    try:
        values = json.loads(text)
    except ValueError as error:
        raise RenderError(f"inline Helm values are not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise RenderError("inline Helm values must be a mapping")
    return values


def _render_file(
    path: Path,
    root: Path,
    options: RenderOptions,
    decryptor: Decryptor | None,
) -> tuple[list[Manifest], str]:
    """PATH named one file: render just that file (YAML/JSON, or a Jsonnet program)."""
    from tether.render.files import check_inside
    from tether.render.kustomize import KUSTOMIZATION_FILES

    rel = relative(path, root)
    check_inside(path, root)
    if path.name in KUSTOMIZATION_FILES or path.name == "Chart.yaml":
        what = "a kustomization" if path.name in KUSTOMIZATION_FILES else "a Helm chart"
        raise RenderError(
            f"{rel}: this file belongs to {what}; pass its directory "
            f"({relative(path.parent, root) or '.'}) to render it"
        )
    renderer = options.renderer if options.renderer != "auto" else ("jsonnet" if path.suffix == ".jsonnet" else "yaml")
    if renderer == "jsonnet":
        return _decrypt_objects(_jsonnet(path.parent, root, options, main=path), decryptor), renderer
    if renderer != "yaml":
        raise RenderError(f"{rel}: the {renderer} renderer needs a directory, not a single file")
    from tether.render.plain import load_file

    return load_file(path, root, options.max_file_bytes, decryptor), renderer


def _sops_keys_configured(options: RenderOptions) -> bool:
    from tether.secrets import default_age_key_file

    env_keys = ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_SSH_PRIVATE_KEY_FILE", "SOPS_PGP_FP")
    return (
        bool(options.decryption_keys)
        or any(os.environ.get(name) for name in env_keys)
        or (default_age_key_file().is_file())
    )


@contextlib.contextmanager
def _plaintext(root: Path, directory: Path, decryptor: Decryptor | None, max_bytes: int):
    if decryptor is None:
        yield root
        return
    from tether.render.decrypt import plaintext_tree

    with plaintext_tree(root, directory, decryptor, max_bytes) as tree:
        yield tree


def _decrypt_objects(manifests: list[Manifest], decryptor: Decryptor | None) -> list[Manifest]:
    """Jsonnet output can carry SOPS documents too (e.g. an imported encrypted JSON)."""
    if decryptor is None:
        return manifests
    import json

    import yaml

    out = []
    for manifest in manifests:
        data = json.dumps(manifest.obj).encode()
        path = Path(manifest.source.file if manifest.source else "<jsonnet>")
        if decryptor.is_encrypted(data, path):
            manifest = Manifest(yaml.safe_load(decryptor.decrypt(data, path)), manifest.source)
        out.append(manifest)
    return out


def render_source(
    path_or_url: str | Path,
    options: RenderOptions,
    decryptor: Decryptor | None,
    on_error: Callable[[RenderError], None] | None = None,
) -> RenderResult:
    from tether.source import fetch_source, mask_url, parse_source

    spec = parse_source(str(path_or_url))
    checkout = fetch_source(
        spec,
        cache_dir=options.cache_dir or None,
        verify=options.verify,
        allowed_signers=options.allowed_signers,
        source_root=options.source_root or None,
        connect_timeout=options.git_connect_timeout,
    )
    tree_decryptor = decryptor
    if decryptor is None:
        # SOPS manifests are always decrypted (or refused, naming the file), never applied as ciphertext
        from tether.secrets import Decryptor as SopsDecryptor

        decryptor = SopsDecryptor.from_environment([Path(key) for key in options.decryption_keys])
        # a plaintext copy of the tree for Kustomize/Helm costs a full copy: only when keys were configured
        tree_decryptor = decryptor if _sops_keys_configured(options) else None
    errors: list[RenderError] = []

    def collect(error: RenderError) -> None:
        errors.append(error)
        assert on_error is not None
        on_error(error)

    warnings: list[str] = []
    manifests, renderer = render_directory(
        checkout.directory, checkout.root, options, decryptor, tree_decryptor, collect if on_error else None, warnings
    )
    manifests = postprocess(
        manifests,
        app=options.app,
        namespace=options.namespace,
        variables=options.substitution,
        add_labels=options.add_labels,
        on_error=collect if on_error else None,
    )
    if not manifests and not errors:
        # an empty directory or a typo in PATH must not pass as "valid" or "nothing to change" unnoticed
        warnings.append(f"0 objects rendered from {mask_url(str(path_or_url))}")
    return RenderResult(
        manifests=manifests,
        root=checkout.directory,
        renderer=renderer,
        revision=checkout.revision,
        source_root=checkout.root,
        warnings=warnings,
    )


def _jsonnet(directory: Path, root: Path, options: RenderOptions, main: Path | None = None) -> list[Manifest]:
    """Jsonnet as the ``jsonnet`` CLI runs it with the options' -J, --ext-* and --tla-* values."""
    from tether.render.jsonnet import render_jsonnet

    return render_jsonnet(
        directory,
        root,
        jpaths=options.jsonnet_paths,
        ext_str=dict(options.ext_str),
        ext_code=dict(options.ext_code),
        tla_str=dict(options.tla_str),
        tla_code=dict(options.tla_code),
        timeout=options.limits,
        max_bytes=options.max_file_bytes,
        main=main,
    )
