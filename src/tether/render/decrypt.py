"""Give a renderer that reads files itself (Kustomize, Helm) a plaintext view of an encrypted tree.

The tree is copied into a private temporary directory (mode 0700) where every encrypted file
is replaced by its plaintext; the copy is removed as soon as rendering ends, error or not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tether.render import Decryptor
from tether.render.files import check_tree_symlinks


def _hidden_dirs(directory: str, names: list[str]) -> set[str]:
    """Hidden directories (.git, virtual environments) are never rendered: do not copy them."""
    return {n for n in names if n.startswith(".") and os.path.isdir(os.path.join(directory, n))}


_STRUCTURED = {".yaml", ".yml", ".json", ".env", ".ini"}


@contextlib.contextmanager
def plaintext_tree(root: Path, directory: Path, decryptor: Decryptor, max_bytes: int) -> Iterator[Path]:
    check_tree_symlinks(directory, root)
    private = Path(tempfile.mkdtemp(prefix="tether-plain-"))
    os.chmod(private, 0o700)
    try:
        copy = private / "tree"
        shutil.copytree(root, copy, symlinks=True, ignore=_hidden_dirs)
        for dirpath, _dirnames, filenames in os.walk(copy):
            for name in filenames:
                path = Path(dirpath, name)
                # only structured files: a binary-format guess on source code could match SOPS markers
                if path.suffix not in _STRUCTURED or path.is_symlink() or path.stat().st_size > max_bytes:
                    continue
                data = path.read_bytes()
                if decryptor.is_encrypted(data, path):
                    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(decryptor.decrypt(data, root / path.relative_to(copy)))
        yield copy
    finally:
        shutil.rmtree(private, ignore_errors=True)
