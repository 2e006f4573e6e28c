"""What an Application's render needs from the cluster: Secret data, substitution variables, SOPS keys.

Read for one pass (or one CLI command) and never stored or logged. Used by the reconciler and by
``tether app diff`` / the dashboard, so all of them render an app exactly alike.
"""

from __future__ import annotations

import base64
from typing import Any

from tether.controller.stages import StageError


def decode_secret(secret: dict[str, Any]) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


async def secret_data(kube: Any, namespace: str, name: str, *, field: str = "") -> dict[str, str]:
    """A Secret's data decoded; ``field`` names the spec field that refers to it, for the error."""
    secret = await kube.get(await kube.info("v1", "Secret"), name, namespace)
    if secret is None:
        where = f"{field} names " if field else ""
        raise StageError("SecretNotFound", f"{where}Secret {namespace}/{name}, which does not exist")
    return decode_secret(secret)


async def substitution_variables(kube: Any, app: Any) -> tuple[tuple[str, str], ...]:
    """spec.render.substitute: ConfigMaps/Secrets of ``from`` in order, then ``vars`` (inline wins, as Flux)."""
    substitute = app.spec.render.substitute
    if substitute is None:
        return ()
    values: dict[str, str] = {}
    for source in substitute.from_:
        found = await kube.get(await kube.info("v1", source.kind), source.name, app.namespace)
        if found is None:
            if source.optional:
                continue
            raise StageError(
                "SubstituteFailed",
                f"spec.render.substitute.from names {source.kind} {app.namespace}/{source.name}, which does not exist",
            )
        values.update(decode_secret(found) if source.kind == "Secret" else dict(found.get("data") or {}))
    values.update(substitute.vars)
    return tuple(sorted(values.items()))


async def decryption_keys(kube: Any, app: Any) -> dict[str, str]:
    """The SOPS keys of spec.decryption.secretRef ({} when the app has none)."""
    if app.spec.decryption is None:
        return {}
    return await secret_data(
        kube, app.namespace, app.spec.decryption.secret_ref.name, field="spec.decryption.secretRef"
    )


async def chart_credentials(kube: Any, app: Any) -> tuple[tuple[str, tuple[str, str]], ...]:
    """The (URL prefix, (username, password)) entries of spec.render.helm.repositories, read from Secrets
    in the app's own namespace (Flux's keys: ``username`` and ``password``)."""
    helm = app.spec.render.helm
    if helm is None or not helm.repositories:
        return ()
    entries = []
    for number, repository in enumerate(helm.repositories):
        field = f"spec.render.helm.repositories[{number}].secretRef"
        data = await secret_data(kube, app.namespace, repository.secret_ref.name, field=field)
        missing = [key for key in ("username", "password") if not data.get(key)]
        if missing:
            raise StageError(
                "SecretInvalid",
                f"{field} names Secret {app.namespace}/{repository.secret_ref.name}, which has no "
                f"{' and no '.join(missing)} key (chart repository credentials for {repository.url} need both)",
            )
        entries.append((repository.url, (data["username"], data["password"])))
    return tuple(entries)
