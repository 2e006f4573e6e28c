"""One plaintext sample per format, with a parser that compares content (not layout)."""

from __future__ import annotations

import configparser
import json
from typing import Any

from ruamel.yaml import YAML as _Yaml

YAML = b"""\
# database credentials
apiVersion: v1
kind: Secret
metadata:
  name: db   # the object name
stringData:
  password: s3cr3t-yaml
  multi: |
    line one
    line two
  port: 5432
  ratio: 0.25
  huge: 1.0e+20
  enabled: true
  empty: ""
  nothing: null
list:
  - one
  - 2
  - nested: deep
  # a comment in a list
plain_unencrypted: visible
"""

JSON = b"""{
  "user": "admin",
  "password": "s3cr3t-json",
  "port": 5432,
  "ratio": 0.5,
  "flags": [true, false, null, "x"],
  "nested": {"deep": {"token": "t0k3n"}, "empty": ""},
  "note_unencrypted": "visible"
}
"""

DOTENV = b"""# service credentials
USER=admin
PASSWORD=s3cr3t=env
MULTI=first\\nsecond
"""

INI = b"""; top comment
[database]
user = admin
password = s3cr3t-ini
; inner comment
port = 5432

[cache]
url = redis://cache:6379
"""

BINARY = b"\x00\x01binary s3cr3t-bin\xff\xfe\nsecond line\n"

SAMPLES = {
    "yaml": (YAML, "yaml"),
    "json": (JSON, "json"),
    "dotenv": (DOTENV, "env"),
    "ini": (INI, "ini"),
    "binary": (BINARY, "bin"),
}
SECRET_WORD = b"s3cr3t"


def parsed(fmt: str, data: bytes) -> Any:
    if fmt == "yaml":
        return list(_Yaml(typ="safe").load_all(data))  # YAML 1.2, like sops
    if fmt == "json":
        return json.loads(data)
    if fmt == "ini":
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(data.decode())
        return {name: dict(parser[name]) for name in parser.sections()}
    return data  # dotenv and binary round-trip byte for byte
