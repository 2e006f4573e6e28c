"""Rendering one app from an exported Git tree, off the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tether.model import Manifest
from tether.render import Decryptor, RenderOptions


def render_tree(root: Path, path: str, options: RenderOptions, decryptor: Decryptor | None = None) -> list[Manifest]:
    """Render ``root/path`` (the tree is the confinement root) with post-processing applied."""
    from tether.errors import SourceError
    from tether.render.pipeline import render_directory
    from tether.render.postprocess import postprocess

    directory = (root / path) if path else root
    if path and (".." in Path(path).parts or Path(path).is_absolute()):
        raise SourceError(f"spec.source.path {path!r} must be a relative path inside the repository")
    if not directory.is_dir():
        raise SourceError(f"no directory {path!r} in the repository")
    if decryptor is None:
        from tether.secrets import Decryptor as SopsDecryptor

        # SOPS documents are decrypted or refused (naming the file), never applied as ciphertext
        decryptor = SopsDecryptor.from_key_material({})
    manifests, _renderer = render_directory(directory, root, options, decryptor, None)
    return postprocess(
        manifests,
        app=options.app,
        namespace=options.namespace,
        variables=options.substitution,
        add_labels=options.add_labels,
    )


async def render_tree_async(
    root: Path, path: str, options: RenderOptions, decryptor: Decryptor | None = None
) -> list[Manifest]:
    return await asyncio.to_thread(render_tree, root, path, options, decryptor)
