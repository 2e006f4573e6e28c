"""``/openapi/v2`` in protobuf form: content negotiation and the message's structure, read back
with the field-level protobuf reader the sandbox uses for request bodies."""

from __future__ import annotations

import json
import urllib.request

from tether.sandbox.openapi_proto import MEDIA_TYPE, wants_protobuf
from tether.sandbox.protobuf import _fields

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _get(sandbox, accept: str) -> tuple[str, bytes]:
    request = urllib.request.Request(f"{sandbox.url}/openapi/v2", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["Content-Type"], response.read()


def test_accept_header_negotiation():
    assert wants_protobuf(f"{PROTOBUF}, application/json")
    assert wants_protobuf("application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    assert not wants_protobuf(f"application/json, {PROTOBUF}")
    assert not wants_protobuf("")


def test_protobuf_document_carries_the_json_documents_definitions(sandbox):
    content_type, body = _get(sandbox, PROTOBUF)
    assert content_type == MEDIA_TYPE
    document = dict(_fields(body))
    assert document[1] == b"2.0"
    definitions = {}
    for number, named in _fields(document[9]):
        assert number == 1
        pair = dict(_fields(named))
        definitions[pair[1].decode()] = pair[2]
    _, text = _get(sandbox, "application/json")
    assert set(definitions) == set(json.loads(text)["definitions"])
    deployment = _fields(definitions["io.k8s.api.apps.v1.Deployment"])
    extensions = {}
    for number, value in deployment:
        if number == 31:  # vendor extensions: name + Any{yaml}
            pair = dict(_fields(value))
            extensions[pair[1].decode()] = json.loads(dict(_fields(pair[2]))[2])
    assert extensions["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    names = {dict(_fields(named))[1] for _, named in _fields(dict(deployment)[25])}
    assert {b"spec", b"status", b"metadata"} <= names
