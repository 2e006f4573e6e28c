"""Render stage: turn a source directory (plain YAML/JSON, Kustomize, Helm, Jsonnet) into manifests.

Public API (used by ``tether render`` and by ``diff`` / ``apply``)::

    from tether.render import RenderOptions, render_source
    result = render_source("https://host/repo.git//apps/web?ref=v1.2.0", RenderOptions(app="web"))
    result.manifests   # list[tether.model.Manifest], each with a SourceLocation
    result.revision    # SourceRevision (url, ref, commit sha, sub path) or None for a local directory

Everything returned has already gone through variable substitution (when asked for), namespace defaulting and
the ``app.kubernetes.io/managed-by`` / ``tether.dev/app`` labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from tether.errors import RenderError
from tether.model import Manifest, SourceRevision  # SourceRevision: re-exported for existing imports
from tether.render.limits import (
    DEFAULT_MAX_MEMORY_BYTES,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_RENDER_TIMEOUT,
    Limits,
)
from tether.source.reach import DEFAULT_CONNECT_TIMEOUT

#: renderer names accepted by ``RenderOptions.renderer`` ("auto" detects per directory)
RENDERERS = ("auto", "yaml", "kustomize", "helm", "jsonnet")

#: default limit for a single input file; bigger files are refused before being read
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class RenderOptions:
    """Everything that influences rendering. Immutable so it can key caches and be shared."""

    app: str = ""
    namespace: str = ""
    renderer: str = "auto"
    # Helm (as ``helm template -f FILE --set K=V --set-string K=V``)
    values_files: tuple[str, ...] = ()
    set_values: tuple[str, ...] = ()
    set_string_values: tuple[str, ...] = ()
    release_name: str = ""
    #: values given inline (JSON of a mapping, e.g. an Application's spec.render.helm.values):
    #: merged over the values files, under --set
    inline_values: str = ""
    # Jsonnet (as the ``jsonnet`` CLI: --tla-str/--tla-code/--ext-str/--ext-code/-J)
    tla_str: tuple[tuple[str, str], ...] = ()
    tla_code: tuple[tuple[str, str], ...] = ()
    ext_str: tuple[tuple[str, str], ...] = ()
    ext_code: tuple[tuple[str, str], ...] = ()
    jsonnet_paths: tuple[str, ...] = ()
    # post-render ``${VAR}`` / ``${VAR:=default}`` substitution: opt-in (as Flux's postBuild), on
    # when variables are given or ``substitute`` is set (``--substitute``: defaults only)
    variables: tuple[tuple[str, str], ...] = ()
    substitute: bool = False
    # the Kubernetes version rendered for: Helm's .Capabilities.KubeVersion (as v1.32.0)
    kube_version: str = "1.32"
    #: Helm's .Capabilities.APIVersions beyond its built-in list: "group/version" or "group/version/Kind"
    api_versions: tuple[str, ...] = ()
    #: the user chose kube_version (--kube-version): a target cluster's own version does not replace it
    kube_version_given: bool = False
    #: chart repository credentials: (URL prefix, (username, password)) entries, the prefix an
    #: ``https://host/path`` or ``oci://host/path`` (matched as tether.render.chart_credentials says);
    #: kept out of comparisons and repr, so they neither key caches nor show in logs
    chart_credentials: tuple[tuple[str, tuple[str, str]], ...] = field(default=(), repr=False, compare=False)
    #: asked only when a Helm chart is rendered: the target cluster's (version, API versions), so a
    #: command on a plain or Kustomize source does not pay for the cluster's discovery
    cluster_capabilities: Callable[[], tuple[str, tuple[str, ...]]] | None = field(
        default=None, repr=False, compare=False
    )
    add_labels: bool = True
    # limits of every renderer child process (kubectl kustomize, the Helm / Jsonnet child): see tether.render.limits
    timeout: float = DEFAULT_RENDER_TIMEOUT  # seconds; --render-timeout on the command line
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES  # address space (RLIMIT_AS); 0: no limit
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES  # rendered output; 0: no limit
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES  # any one input file
    # Git sources
    verify: str = ""  # "" (off), "ssh" or "gpg"
    allowed_signers: str = ""  # SSH allowed-signers file, or a GPG keyring / armored public keys file
    cache_dir: str = ""  # default: $XDG_CACHE_HOME/tether
    git_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT  # seconds for a Git host to accept and answer
    # SOPS: key files added to the keys sops itself would find (SOPS_AGE_KEY*, GnuPG keyring)
    decryption_keys: tuple[str, ...] = ()
    # for a local directory: the tree renderers may read and file names are relative to
    # (default: the enclosing Git work tree, else the directory itself)
    source_root: str = ""

    @property
    def variables_map(self) -> dict[str, str]:
        return dict(self.variables)

    @property
    def substitution(self) -> dict[str, str] | None:
        """The variables to substitute, or None when substitution is off."""
        return dict(self.variables) if self.substitute or self.variables else None

    @property
    def limits(self) -> Limits:
        return Limits(self.timeout, self.max_memory_bytes, self.max_output_bytes)

    def for_cluster(self, kube_version: str, api_versions: Iterable[str]) -> RenderOptions:
        """These options for a target cluster of ``kube_version`` serving ``api_versions`` (its discovery):
        the cluster's version unless the user gave one, its APIs added to those the user gave."""
        merged = tuple(dict.fromkeys([*self.api_versions, *api_versions]))
        version = self.kube_version if self.kube_version_given or not kube_version else kube_version
        return dataclasses.replace(self, kube_version=version, api_versions=merged)


@dataclass
class RenderResult:
    manifests: list[Manifest]
    root: Path  # directory that was rendered
    renderer: str  # renderer actually used
    revision: SourceRevision | None = None
    warnings: list[str] = field(default_factory=list)
    source_root: Path | None = None  # tree that SourceLocation.file names are relative to


@runtime_checkable
class Decryptor(Protocol):
    """Hook for encrypted manifests (SOPS). Implementations must never write plaintext to disk."""

    def is_encrypted(self, data: bytes, path: Path) -> bool: ...

    def decrypt(self, data: bytes, path: Path) -> bytes: ...


def render_source(
    path_or_url: str | Path,
    options: RenderOptions | None = None,
    decryptor: Decryptor | None = None,
    *,
    on_error: Callable[[RenderError], None] | None = None,
) -> RenderResult:
    """Fetch (if a Git source), render and post-process ``path_or_url`` (a directory or one file).

    Raises SourceError / RenderError. ``on_error``: called with the error of each bad file or object
    (plain YAML/JSON), which is then left out, so one run can report them all; a renderer that
    builds the whole tree at once (Kustomize, Helm, Jsonnet) still fails as one unit.
    ``RenderResult.warnings`` says when nothing was rendered at all."""
    from tether.render.pipeline import render_source as _impl

    return _impl(path_or_url, options or RenderOptions(), decryptor, on_error)


__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_MEMORY_BYTES",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_RENDER_TIMEOUT",
    "RENDERERS",
    "Decryptor",
    "Limits",
    "RenderOptions",
    "RenderResult",
    "SourceRevision",
    "render_source",
]
