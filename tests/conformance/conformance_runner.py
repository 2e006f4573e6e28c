"""Runs data-driven conformance cases against a Kubernetes API server.

A case is a list of steps. Each step is an HTTP request (or a watch) with an expectation on
the response; values can be saved from a response and substituted into later steps. The
expectation is a *subset* match: every key written in the case must be present and match;
keys not written are ignored. String values starting with ``$`` are matchers:

``$any``            present, any value            ``$absent``        key must not be present
``$nonempty``       present and truthy            ``$regex:PATTERN`` string matching PATTERN
``$int``            an integer (or digit string)  ``$gt:VALUE``      integer greater than VALUE
``$len:N``          list/dict/str of length N     ``$ne:VALUE``      anything but VALUE, or absent

An object made only of negative matchers is satisfied by absence too.

A list in the expectation must have the same length and match element-wise, unless it is
written as ``{"$contains": [...]}``, where each listed element must match some element, or
``{"$excludes": [...]}``, where no element may match any listed one.

Placeholders: ``{ns}`` is the case's own namespace (created before the steps unless the case
says ``namespace: false``); ``${name}`` is a value saved by an earlier step.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import yaml

DEFAULT_EVENTUALLY_SECONDS = 20.0


class CaseFailure(AssertionError):
    pass


@dataclass
class Response:
    code: int
    headers: dict[str, str]
    body: Any
    text: str


@dataclass
class ApiClient:
    base_url: str
    token: str | None = None
    ssl_context: ssl.SSLContext | None = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme == "https":
            return http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Response:
        all_headers = {"Accept": "application/json", "User-Agent": "tether-conformance/1.0"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=body, headers=all_headers)
            raw = conn.getresponse()
            data = raw.read()
            resp_headers = {k.lower(): v for k, v in raw.getheaders()}
        finally:
            conn.close()
        text = data.decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            parsed = None
        return Response(raw.status, resp_headers, parsed, text)

    def watch(self, path: str, max_events: int, timeout: float) -> tuple[int, list[dict]]:
        """Reads up to ``max_events`` watch events (or until the server closes the stream)."""
        conn = self._connection(timeout)
        headers = {"Accept": "application/json", "User-Agent": "tether-conformance/1.0"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        events: list[dict] = []
        try:
            conn.request("GET", path, headers=headers)
            raw = conn.getresponse()
            if raw.status != 200:
                body = raw.read().decode("utf-8", "replace")
                try:
                    return raw.status, [json.loads(body)]
                except json.JSONDecodeError:
                    return raw.status, []
            deadline = time.monotonic() + timeout
            while len(events) < max_events and time.monotonic() < deadline:
                line = raw.readline()
                if not line:
                    break
                if line.strip():
                    events.append(json.loads(line))
            return 200, events
        except TimeoutError:
            return 200, events
        finally:
            conn.close()


# ---------------------------------------------------------------- matching


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def match(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Returns a list of mismatch descriptions (empty when ``actual`` satisfies ``expected``)."""
    where = path or "<root>"
    if isinstance(expected, str) and expected.startswith("$"):
        return _match_marker(expected, actual, where)
    if isinstance(expected, dict):
        if "$contains" in expected or "$excludes" in expected:
            return _match_list_ops(expected, actual, where)
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {json.dumps(actual)[:200]}"]
        problems: list[str] = []
        for key, value in expected.items():
            if value == "$absent":
                if key in actual:
                    problems.append(f"{path}.{key}: expected absent, got {json.dumps(actual[key])[:200]}")
                continue
            if key not in actual:
                if not _satisfied_by_absence(value):
                    problems.append(f"{path}.{key}: missing")
                continue
            problems.extend(match(value, actual[key], f"{path}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {json.dumps(actual)[:200]}"]
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}: {json.dumps(actual)[:300]}"]
        problems = []
        for index, (exp, act) in enumerate(zip(expected, actual, strict=True)):
            problems.extend(match(exp, act, f"{path}[{index}]"))
        return problems
    if expected != actual:
        return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)[:300]}"]
    return []


def _satisfied_by_absence(expected: Any) -> bool:
    """Negative expectations (``$ne``, ``$absent``, or an object made only of them) hold for a missing key."""
    if isinstance(expected, str):
        return expected == "$absent" or expected.startswith("$ne:")
    if isinstance(expected, dict) and expected and not ({"$contains", "$excludes"} & expected.keys()):
        return all(_satisfied_by_absence(value) for value in expected.values())
    return False


def _match_list_ops(expected: dict, actual: Any, where: str) -> list[str]:
    if not isinstance(actual, list):
        return [f"{where}: expected a list, got {json.dumps(actual)[:200]}"]
    problems = []
    for wanted in expected.get("$contains", []):
        if not any(not match(wanted, item) for item in actual):
            problems.append(f"{where}: no element matches {json.dumps(wanted)} in {json.dumps(actual)[:400]}")
    for unwanted in expected.get("$excludes", []):
        if any(not match(unwanted, item) for item in actual):
            problems.append(f"{where}: an element matches excluded {json.dumps(unwanted)}")
    return problems


def _match_marker(marker: str, actual: Any, where: str) -> list[str]:
    name, _, arg = marker.partition(":")
    ok: bool
    if name == "$any":
        ok = True
    elif name == "$nonempty":
        ok = bool(actual)
    elif name == "$regex":
        ok = isinstance(actual, str) and re.search(arg, actual) is not None
    elif name == "$int":
        ok = _as_int(actual) is not None
    elif name == "$gt":
        left, right = _as_int(actual), _as_int(arg)
        ok = left is not None and right is not None and left > right
    elif name == "$len":
        ok = hasattr(actual, "__len__") and len(actual) == int(arg)
    elif name == "$ne":
        ok = json.dumps(actual) != arg and str(actual) != arg
    else:
        raise CaseFailure(f"unknown matcher {marker!r}")
    return [] if ok else [f"{where}: {json.dumps(actual)[:300]} does not satisfy {marker}"]


# ---------------------------------------------------------------- substitution


_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole and not isinstance(variables.get(whole.group(1)), str):
            return variables[whole.group(1)]
        text = value.replace("{ns}", variables["ns"])
        return _VAR.sub(lambda m: str(variables[m.group(1)]), text)
    if isinstance(value, dict):
        return {substitute(k, variables): substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


def extract(document: Any, dotted: str) -> Any:
    """``body.metadata.resourceVersion`` / ``body.items[0].metadata.name`` / ``header.warning``."""
    current = document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        if part.startswith("["):
            current = current[int(part[1:-1])]
        else:
            current = current[part]
    return current


# ---------------------------------------------------------------- execution


@dataclass
class Case:
    name: str
    steps: list[dict]
    namespace: bool = True
    source: str = ""
    variables: dict[str, Any] = field(default_factory=dict)


def load_cases(paths: list) -> list[Case]:
    cases: list[Case] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for raw in yaml.safe_load(handle) or []:
                cases.append(
                    Case(
                        name=raw["name"],
                        steps=raw["steps"],
                        namespace=raw.get("namespace", True),
                        source=f"{path.name}",
                    )
                )
    return cases


def _encode_body(step: dict) -> tuple[bytes | None, str | None]:
    if "raw" in step:
        return step["raw"].encode(), step.get("content_type", "application/json")
    if "body" not in step:
        return None, None
    content_type = step.get("content_type", "application/json")
    if "yaml" in content_type:
        return yaml.safe_dump(step["body"]).encode(), content_type
    return json.dumps(step["body"]).encode(), content_type


def run_step(client: ApiClient, step: dict, variables: dict[str, Any]) -> None:
    step = substitute(step, variables)
    expect = step.get("expect", {})
    eventually = float(step.get("eventually", 0) and DEFAULT_EVENTUALLY_SECONDS)
    deadline = time.monotonic() + eventually
    while True:
        problems, response_doc = _attempt(client, step, expect)
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if problems:
        raise CaseFailure(
            f"step {step.get('method', 'WATCH')} {step.get('path', step.get('watch'))}:\n  "
            + "\n  ".join(problems)
            + f"\n  response: {json.dumps(response_doc)[:1500]}"
        )
    for name, dotted in (step.get("save") or {}).items():
        variables[name] = extract(response_doc, dotted)


def _attempt(client: ApiClient, step: dict, expect: dict) -> tuple[list[str], dict]:
    if "watch" in step:
        code, events = client.watch(step["watch"], int(step.get("events", 100)), float(step.get("timeout", 10)))
        doc = {"code": code, "events": events}
        problems = _match_code(expect.get("code"), code)
        if "events" in expect:
            problems += match(expect["events"], events, "events")
        return problems, doc
    body, content_type = _encode_body(step)
    headers = dict(step.get("headers") or {})
    if content_type:
        headers["Content-Type"] = content_type
    response = client.request(step["method"], step["path"], body=body, headers=headers)
    doc = {"code": response.code, "body": response.body, "header": response.headers, "text": response.text}
    problems = _match_code(expect.get("code"), response.code)
    if "body" in expect:
        problems += match(expect["body"], response.body, "body")
    if "headers" in expect:
        problems += match(expect["headers"], response.headers, "header")
    if "text" in expect:
        problems += match(expect["text"], response.text, "text")
    return problems, doc


def _match_code(expected: int | list[int] | None, code: int) -> list[str]:
    if expected is None:
        return []
    allowed = expected if isinstance(expected, list) else [expected]
    return [] if code in allowed else [f"code: expected {expected}, got {code}"]


def run_case(client: ApiClient, case: Case, namespace: str) -> None:
    variables: dict[str, Any] = {"ns": namespace}
    if case.namespace:
        created = client.request(
            "POST",
            "/api/v1/namespaces",
            body=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        if created.code != 201:
            raise CaseFailure(f"could not create namespace {namespace}: {created.code} {created.text[:300]}")
    for index, step in enumerate(case.steps):
        try:
            run_step(client, step, variables)
        except CaseFailure as failure:
            raise CaseFailure(f"{case.source} :: {case.name} :: step {index + 1}: {failure}") from None
