"""Image automation: new images in a registry become commits in Git (and then deployments).

- ``registry``: the OCI distribution API client (tags, digests, token challenge, Retry-After);
- ``policy`` / ``semver_range``: which tag is the latest (ImagePolicy, Flux's fields);
- ``setters``: writing images into YAML (Flux setter markers, Kustomize, Helm values);
- ``writeback``: one commit per update window, pushed, a lost push race redone on the new tip;
- ``automation``: the loop the controller runs (``ImageAutomation``), on the informers of ``watch``;
  ``receiver``: ``POST /hooks/registry``.
"""

from tether.images.automation import AutomationStats, ImageAutomation
from tether.images.errors import (
    ImageError,
    InvalidImageReference,
    PolicyError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryUnauthorized,
    RegistryUnreachable,
    WriteBackError,
)
from tether.images.policy import Policy, parse_policy
from tether.images.reference import ImageName, parse_image_name, parse_reference
from tether.images.registry import Credentials, RegistryClient, RegistryOptions
from tether.images.setters import Change, ChosenImage, update_directory, update_text

__all__ = [
    "AutomationStats",
    "Change",
    "ChosenImage",
    "Credentials",
    "ImageAutomation",
    "ImageError",
    "ImageName",
    "InvalidImageReference",
    "Policy",
    "PolicyError",
    "RegistryClient",
    "RegistryError",
    "RegistryNotFound",
    "RegistryOptions",
    "RegistryRateLimited",
    "RegistryUnauthorized",
    "RegistryUnreachable",
    "WriteBackError",
    "parse_image_name",
    "parse_policy",
    "parse_reference",
    "update_directory",
    "update_text",
]
