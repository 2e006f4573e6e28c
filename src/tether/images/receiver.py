"""``POST /hooks/registry``: a registry announces pushed tags; matching ImageRepositories are scanned now.

Answers ``202 {"scanning": N}``; ``401``/``403`` when the token or signature is missing or wrong,
``400`` for a payload that is not a registry notification, ``413`` for a body over 1 MiB.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tether.images import notifications

if TYPE_CHECKING:
    from tether.images.automation import ImageAutomation

MAX_BODY = 1024 * 1024


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


def registry_routes(automation: ImageAutomation) -> list[web.RouteDef]:
    async def receive(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _json({"error": f"body over the {MAX_BODY} byte limit"}, 413)
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _json({"error": f"body over the {MAX_BODY} byte limit"}, 413)
        if not automation.notification_secret:
            return _json(
                {"error": "registry notifications are not enabled: no 'registry' key in the webhook Secret"}, 403
            )
        try:
            notifications.verify(automation.notification_secret, request.headers, request.query, body)
            pushed = notifications.parse(body)
        except notifications.NotificationRejected as error:
            return _json({"error": str(error)}, error.status)
        return _json({"scanning": automation.notify(pushed), "tags": len(pushed)}, 202)

    return [web.post("/hooks/registry", receive)]


__all__ = ["MAX_BODY", "registry_routes"]
