"""The order in which objects are applied and pruned.

Apply goes in phases: CustomResourceDefinitions (the caller waits until they are Established,
so custom resources of them can follow in the same run), Namespaces, other cluster-scoped
kinds, then namespaced kinds. Within a phase the wave (``tether.dev/wave`` or Argo CD's
``argocd.argoproj.io/sync-wave``, an integer, default 0) orders batches; objects in one batch
have no order among themselves and may be applied concurrently. Prune walks the same batches
backwards: namespaced objects before the
Namespaces that hold them, custom resources before their CRDs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from tether.engine.annotations import WAVE_ANNOTATION, wave_of
from tether.model import ObjectRef


class Phase(IntEnum):
    CRDS = 0
    NAMESPACES = 1
    CLUSTER = 2
    NAMESPACED = 3


def phase_of(ref: ObjectRef, namespaced: bool) -> Phase:
    if ref.group == "apiextensions.k8s.io" and ref.kind == "CustomResourceDefinition":
        return Phase.CRDS
    if ref.group == "" and ref.kind == "Namespace":
        return Phase.NAMESPACES
    return Phase.NAMESPACED if namespaced else Phase.CLUSTER


@dataclass(frozen=True, order=True)
class BatchKey:
    phase: Phase
    wave: int


T = TypeVar("T")


def batches(
    items: Iterable[T],
    *,
    ref: Callable[[T], ObjectRef],
    namespaced: Callable[[T], bool],
    wave: Callable[[T], int],
) -> list[tuple[BatchKey, list[T]]]:
    """Group items into apply batches, in apply order; items inside a batch are sorted by ref."""
    grouped: dict[BatchKey, list[T]] = {}
    for item in items:
        key = BatchKey(phase_of(ref(item), namespaced(item)), wave(item))
        grouped.setdefault(key, []).append(item)
    return [(key, sorted(grouped[key], key=ref)) for key in sorted(grouped)]


def prune_batches(
    items: Iterable[T],
    *,
    ref: Callable[[T], ObjectRef],
    namespaced: Callable[[T], bool],
    wave: Callable[[T], int] = lambda _item: 0,
) -> list[tuple[BatchKey, list[T]]]:
    """The apply batches reversed: the last thing created is the first removed."""
    return list(reversed(batches(items, ref=ref, namespaced=namespaced, wave=wave)))


__all__ = ["WAVE_ANNOTATION", "BatchKey", "Phase", "batches", "phase_of", "prune_batches", "wave_of"]
