"""Thin async access to the Kubernetes API: connect, discover, apply, get/list/delete, watch."""

from tether.kube.client import FIELD_MANAGER, Conflict, Kube, NotFound
from tether.kube.discovery import Discovery, ResourceInfo, UnknownKind, infos_from_crd

__all__ = ["FIELD_MANAGER", "Conflict", "Discovery", "Kube", "NotFound", "ResourceInfo", "UnknownKind",
           "infos_from_crd"]
