"""One ImageRepository scan and one ImagePolicy evaluation, reading Secrets through the API."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from tether.images.errors import ImageError, RegistryError
from tether.images.policy import parse_policy
from tether.images.reference import ImageName, parse_image_name
from tether.images.registry import RegistryClient, RegistryOptions, credentials_from_dockerconfig
from tether.images.setters import ChosenImage
from tether.kube import Kube

LATEST_TAGS_SHOWN = 10


@dataclass
class ScanResult:
    image: ImageName
    tags: list[str]


def _secret_value(secret: dict[str, Any] | None, key: str) -> bytes | None:
    if not secret:
        return None
    data, string_data = secret.get("data") or {}, secret.get("stringData") or {}
    if data.get(key) is not None:
        return base64.b64decode(data[key])
    if string_data.get(key) is not None:
        return str(string_data[key]).encode()
    return None


async def read_secret(kube: Kube, namespace: str, name: str, what: str) -> dict[str, Any]:
    secret = await kube.get(await kube.info("v1", "Secret"), name, namespace)
    if secret is None:
        raise ImageError(f"{what}: Secret {namespace}/{name} does not exist")
    return secret


async def registry_client(kube: Kube, repository: dict[str, Any]) -> tuple[RegistryClient, ImageName]:
    """A client configured from the ImageRepository's spec and its Secrets."""
    meta, spec = repository.get("metadata") or {}, repository.get("spec") or {}
    namespace, what = meta.get("namespace") or "", f"ImageRepository {meta.get('namespace')}/{meta.get('name')}"
    try:
        image = parse_image_name(str(spec.get("image") or ""))
    except ImageError as error:
        raise ImageError(f"{what}: spec.image: {error}") from None
    options = RegistryOptions(insecure=bool(spec.get("insecure")))
    if (spec.get("secretRef") or {}).get("name"):
        secret = await read_secret(kube, namespace, spec["secretRef"]["name"], f"{what} spec.secretRef")
        config = _secret_value(secret, ".dockerconfigjson")
        if config is None:
            raise ImageError(
                f"{what}: Secret {namespace}/{spec['secretRef']['name']} has no .dockerconfigjson key "
                f"(create it with kubectl create secret docker-registry)"
            )
        options.credentials = credentials_from_dockerconfig(config, image.host)
        if options.credentials is None:
            raise ImageError(
                f"{what}: the .dockerconfigjson of Secret {spec['secretRef']['name']} has no entry for {image.host}"
            )
    if (spec.get("certSecretRef") or {}).get("name"):
        secret = await read_secret(kube, namespace, spec["certSecretRef"]["name"], f"{what} spec.certSecretRef")
        options.ca_pem = _secret_value(secret, "ca.crt")
        if options.ca_pem is None:
            raise ImageError(f"{what}: Secret {namespace}/{spec['certSecretRef']['name']} has no ca.crt key")
    return RegistryClient(options), image


async def scan(kube: Kube, repository: dict[str, Any]) -> ScanResult:
    """The repository's tags without the excluded ones; raises ``RegistryError`` / ``ImageError``."""
    spec = repository.get("spec") or {}
    exclusions = []
    for pattern in spec.get("exclusionList") or []:
        try:
            exclusions.append(re.compile(str(pattern)))
        except re.error as error:
            raise ImageError(
                f"ImageRepository {repository['metadata'].get('name')}: spec.exclusionList "
                f"{pattern!r} is not a valid regex: {error}"
            ) from None
    client, image = await registry_client(kube, repository)
    async with client:
        tags = await client.list_tags(image)
    return ScanResult(image, [t for t in tags if not any(p.search(t) for p in exclusions)])


async def choose(
    kube: Kube, policy: dict[str, Any], repository: dict[str, Any], tags: list[str], previous: dict[str, Any] | None
) -> ChosenImage:
    """What the policy selects among ``tags``; the digest resolved when the policy reflects digests."""
    meta, spec = policy.get("metadata") or {}, policy.get("spec") or {}
    where = f"ImagePolicy {meta.get('namespace')}/{meta.get('name')}"
    tag = parse_policy(spec, where).latest(tags)
    if tag is None:
        raise ImageError(f"{where}: none of the {len(tags)} tags of {repository['spec']['image']} satisfies the policy")
    digest = ""
    reflect = str(spec.get("digestReflectionPolicy") or "Never")
    if reflect in ("Always", "IfNotPresent"):
        known = previous or {}
        if reflect == "IfNotPresent" and known.get("tag") == tag and known.get("digest"):
            digest = str(known["digest"])
        else:
            client, image = await registry_client(kube, repository)
            async with client:
                try:
                    digest = await client.manifest_digest(image, tag)
                except RegistryError as error:
                    raise ImageError(f"{where}: cannot read the digest of {image}:{tag}: {error}") from None
    return ChosenImage(
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(repository["spec"]["image"]).rstrip("/"),
        tag,
        digest,
    )


__all__ = ["LATEST_TAGS_SHOWN", "ScanResult", "choose", "read_secret", "registry_client", "scan"]
