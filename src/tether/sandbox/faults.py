"""Fault injection, so clients' retry and re-list paths can be tested against the sandbox.

Faults are set with ``--fault`` flags on ``tether sandbox`` or at run time through the admin
endpoint ``/_sandbox/faults`` (GET shows them, POST changes them, DELETE clears them):

    error=VERB:RATE[:CODE]     answer that share of VERB requests (``*`` = every verb) with a
                               Status error (default 500 InternalError; 429 adds Retry-After: 1)
    latency=VERB:SECONDS       delay every VERB request by that long before serving it
    drop-watches=SECONDS       end every open watch stream at that interval
    seed=N                     seed the random choice of failing requests (reproducible runs)

The POST body is JSON: ``{"errors": {"create": {"rate": 0.5, "code": 503}}, "latency": {"get": 0.2},
"dropWatchesEvery": 5, "seed": 1}`` replaces those settings; the one-shot actions
``{"dropWatches": true}`` (end every open watch now) and ``{"compact": true}`` or
``{"compact": RV}`` (forget watch history up to RV, so a watch from an older version gets 410
Gone) act at once. Requests to ``/_sandbox/`` and the health endpoints are never faulted.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tether.errors import UsageError
from tether.sandbox import errors
from tether.sandbox.request import RequestInfo
from tether.sandbox.store import Store

PATH = "/_sandbox/faults"
_EXEMPT = ("/healthz", "/livez", "/readyz", "/_sandbox/")
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass
class ErrorRule:
    rate: float
    code: int = 500


@dataclass
class FaultConfig:
    errors: dict[str, ErrorRule] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    drop_watches_every: float = 0.0
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "errors": {v: {"rate": r.rate, "code": r.code} for v, r in self.errors.items()},
            "latency": dict(self.latency),
            "dropWatchesEvery": self.drop_watches_every,
            "seed": self.seed,
        }


def _verb(text: str, flag: str) -> str:
    if text != "*" and text not in VERBS:
        raise UsageError(f"--fault {flag}: unknown verb {text!r} (one of {', '.join(VERBS)} or *)")
    return text


def parse_flags(flags: list[str]) -> FaultConfig:
    """``--fault`` values (see the module docstring) -> FaultConfig; bad values are UsageErrors."""
    config = FaultConfig()
    for flag in flags:
        key, _, value = flag.partition("=")
        parts = value.split(":")
        try:
            if key == "error" and len(parts) in (2, 3):
                code = int(parts[2]) if len(parts) == 3 else 500
                config.errors[_verb(parts[0], flag)] = ErrorRule(_rate(float(parts[1]), flag), code)
            elif key == "latency" and len(parts) == 2:
                config.latency[_verb(parts[0], flag)] = max(float(parts[1]), 0.0)
            elif key == "drop-watches" and len(parts) == 1:
                config.drop_watches_every = max(float(parts[0]), 0.0)
            elif key == "seed" and len(parts) == 1:
                config.seed = int(parts[0])
            else:
                raise UsageError(
                    f"--fault {flag}: expected error=VERB:RATE[:CODE], latency=VERB:SECONDS, "
                    "drop-watches=SECONDS or seed=N"
                )
        except ValueError:
            raise UsageError(f"--fault {flag}: not a number") from None
    return config


def _rate(value: float, where: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"--fault {where}: rate must be between 0 and 1")
    return value


class FaultInjector:
    """A request hook (see ``Sandbox.hooks``) plus the admin endpoint that configures it."""

    def __init__(self, store: Store, config: FaultConfig | None = None) -> None:
        self.store = store
        self.config = config or FaultConfig()
        self.random = random.Random(self.config.seed)
        self.injected = 0
        self._dropper: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.config.drop_watches_every > 0 and self._dropper is None:
            self._dropper = asyncio.get_running_loop().create_task(self._drop_loop())

    def stop(self) -> None:
        if self._dropper is not None:
            self._dropper.cancel()
            self._dropper = None

    async def _drop_loop(self) -> None:
        while self.config.drop_watches_every > 0:
            await asyncio.sleep(self.config.drop_watches_every)
            self.store.close_watches()
        self._dropper = None

    async def hook(self, info: RequestInfo, request: web.Request) -> web.StreamResponse | None:
        if request.path.rstrip("/") == PATH:
            return await self._admin(request)
        if request.path.startswith(_EXEMPT):
            return None
        verb = info.verb
        delay = self.config.latency.get(verb, self.config.latency.get("*", 0.0))
        if delay > 0:
            await asyncio.sleep(delay)
        rule = self.config.errors.get(verb) or self.config.errors.get("*")
        if rule is not None and rule.rate > 0 and self.random.random() < rule.rate:
            self.injected += 1
            headers = {"Retry-After": "1"} if rule.code == 429 else {}
            reason = _REASONS.get(rule.code, "InternalError")
            raise errors.ApiError(
                rule.code,
                reason,
                f"injected fault: {verb} {request.path} failed with {rule.code}",
                details={"causes": [{"reason": "InjectedFault", "message": "fault injection is enabled"}]},
                headers=headers,
            )
        return None

    # -- admin endpoint ---------------------------------------------------------------------------

    async def _admin(self, request: web.Request) -> web.Response:
        if request.method == "DELETE":
            self.config = FaultConfig(seed=self.config.seed)
        elif request.method == "POST":
            try:
                body = json.loads(await request.read() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                self._update(body)
            except (ValueError, TypeError, UsageError) as error:
                raise errors.bad_request(f"invalid fault configuration: {error}") from None
        elif request.method != "GET":
            raise errors.method_not_allowed()
        body = {
            **self.config.to_json(),
            "injected": self.injected,
            "resourceVersion": str(self.store.rv),
            "compactedTo": str(self.store.floor),
        }
        return web.json_response(body)

    def _update(self, body: dict[str, Any]) -> None:
        """Apply a POST body; invalid settings raise before anything changes."""
        config = copy.deepcopy(self.config)
        if "errors" in body:
            rules = {}
            for verb, rule in (body["errors"] or {}).items():
                _verb(verb, "errors")
                rule = rule if isinstance(rule, dict) else {"rate": rule}
                rules[verb] = ErrorRule(_rate(float(rule.get("rate", 0)), verb), int(rule.get("code", 500)))
            config.errors = rules
        if "latency" in body:
            config.latency = {_verb(v, "latency"): max(float(s), 0.0) for v, s in (body["latency"] or {}).items()}
        if "seed" in body:
            config.seed = None if body["seed"] is None else int(body["seed"])
        if "dropWatchesEvery" in body:
            config.drop_watches_every = max(float(body["dropWatchesEvery"] or 0), 0.0)
        self.config = config
        if "seed" in body:
            self.random = random.Random(config.seed)
        if "dropWatchesEvery" in body:
            self.stop()
            self.start()
        if body.get("dropWatches"):
            self.store.close_watches()
        compact = body.get("compact")
        if compact is True:
            self.store.compact()
        elif isinstance(compact, (int, str)) and not isinstance(compact, bool) and str(compact).isdigit():
            self.store.compact(int(compact))


def install(store: Store, config: FaultConfig | None = None) -> FaultInjector:
    return FaultInjector(store, config)
