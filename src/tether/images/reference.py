"""Image references: ``[host[:port]/]path[:tag][@sha256:...]`` split the way container runtimes do.

A first component with a dot, a colon or equal to ``localhost`` is a registry host; otherwise the
image lives on Docker Hub (``docker.io``, served from ``registry-1.docker.io``) and a single-name
path gets the ``library/`` prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tether.images.errors import InvalidImageReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")


@dataclass(frozen=True)
class ImageName:
    """A repository: where it is (``host``) and its name there (``path``)."""

    host: str
    path: str

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    def __str__(self) -> str:
        return f"{self.host}/{self.path}"


@dataclass(frozen=True)
class ImageReference:
    name: ImageName
    tag: str = ""
    digest: str = ""


def _is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_image_name(text: str) -> ImageName:
    """A repository name without tag or digest, e.g. ``registry.example.com:5000/team/api``."""
    reference = parse_reference(text)
    if reference.tag or reference.digest:
        raise InvalidImageReference(f"image {text!r}: give the repository only, without ':tag' or '@digest'")
    return reference.name


def parse_reference(text: str) -> ImageReference:
    """A full reference; raises ``InvalidImageReference`` naming what is wrong."""
    raw = text.strip()
    if not raw:
        raise InvalidImageReference("image reference is empty")
    rest, _, digest = raw.partition("@")
    if digest and not _DIGEST.match(digest):
        raise InvalidImageReference(f"image {text!r}: digest {digest!r} is not 'algorithm:hex'")
    first, slash, remainder = rest.partition("/")
    if slash and _is_host(first):
        host, path = first.lower(), remainder
    else:
        host, path = DOCKER_HUB, rest
    tag = ""
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidImageReference(f"image {text!r}: tag {tag!r} is not a valid tag")
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _PATH.match(path):
        raise InvalidImageReference(
            f"image {text!r}: repository path {path!r} must be lowercase components separated by '/'"
        )
    return ImageReference(ImageName(host, path), tag, digest)


def same_repository(a: str, b: str) -> bool:
    """Do two references (with or without tags) name the same repository?"""
    try:
        return parse_reference(a).name == parse_reference(b).name
    except InvalidImageReference:
        return False


__all__ = ["DOCKER_HUB", "ImageName", "ImageReference", "parse_image_name", "parse_reference", "same_repository"]
