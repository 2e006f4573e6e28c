"""A small HTTP client for sandbox tests: JSON in, (code, body, headers) out."""

from __future__ import annotations

import json
from typing import Any

import requests


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, requests.structures.CaseInsensitiveDict]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {"Content-Type": content_type, "Accept": "application/json", **(headers or {})}
        response = self.session.request(
            method, self.url + path, data=data, params=params, headers=all_headers, timeout=60
        )
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        return response.status_code, payload, response.headers

    def get(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, content_type: str, **kw: Any) -> tuple[int, Any, Any]:
        return self.call("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any, Any]:
        return self.call("DELETE", path, body, **kw)


def deployment(
    name: str, namespace: str, *, replicas: int = 1, image: str = "nginx:1.27", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }


def configmap(
    name: str, namespace: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}
