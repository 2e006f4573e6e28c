"""Debian's ``docker-registry`` (the CNCF distribution registry) on loopback, for tests and the bench.

``LocalRegistry`` writes a config, starts the binary and waits for ``/v2/``; options choose htpasswd
auth, TLS with a self-signed certificate, token auth against ``TokenServer`` (a small token
service issuing RS256 JWTs the registry trusts through its ``rootcertbundle``) and notification
endpoints. ``push_image`` uploads a small OCI image (config and layer blobs, then the manifest) over
the registry's HTTP API.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

#: the tags the integration tests push to team/api (versions, build ids, dated releases)
TAGS = [
    "1.0.0",
    "1.2.0",
    "1.10.0",
    "2.0.0-rc.1",
    "v1.9.3",
    "latest",
    "main-abc1234-100",
    "main-def5678-99",
    "main-0ff0ff0-1000",
    "dev-1234567-5000",
    "RELEASE.2024-01-02",
    "RELEASE.2024-03-01",
]
BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(directory: Path, name: str) -> tuple[Path, Path, rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, key, cert


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token service: ``GET /token?service=&scope=`` with Basic auth answers ``{"token": JWT}``."""

    def __init__(self, directory: Path, username: str, password: str, issuer: str = "tether-test-issuer") -> None:
        self.cert_path, _, self._key, self._cert = self_signed(directory, "token-signer")
        self.username, self.password, self.issuer = username, password, issuer
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                expected = "Basic " + base64.b64encode(f"{outer.username}:{outer.password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": outer.token(query.get("service", [""])[0], query.get("scope", []))})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def token(self, service: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": self.username,
            "aud": service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        self._server.shutdown()


@dataclass
class LocalRegistry:
    directory: Path
    username: str = "robot"
    password: str = field(default_factory=lambda: secrets.token_hex(8))
    tls: bool = False
    token_server: TokenServer | None = None
    notify_url: str = ""
    notify_token: str = ""
    port: int = 0
    ca_pem: bytes = b""
    _process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def start(self) -> LocalRegistry:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.directory / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.token_server is not None:
            config["auth"] = {
                "token": {
                    "realm": self.token_server.url,
                    "service": "tether-test-registry",
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(self.token_server.cert_path),
                }
            }
        else:
            entry = subprocess.run(
                ["htpasswd", "-Bbn", "-C", "5", self.username, self.password],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            (self.directory / "htpasswd").write_text(entry + "\n")
            config["auth"] = {"htpasswd": {"realm": "tether-test", "path": str(self.directory / "htpasswd")}}
        if self.tls:
            cert, key, _, _ = self_signed(self.directory, "registry")
            self.ca_pem = cert.read_bytes()
            config["http"]["tls"] = {"certificate": str(cert), "key": str(key)}
        if self.notify_url:
            config["notifications"] = {
                "endpoints": [
                    {
                        "name": "tether",
                        "url": self.notify_url,
                        "timeout": "2s",
                        "threshold": 3,
                        "backoff": "200ms",
                        "headers": {"Authorization": [f"Bearer {self.notify_token}"]},
                        "ignoredmediatypes": ["application/octet-stream"],
                    }
                ]
            }
        path = self.directory / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        self._process = subprocess.Popen(
            [BINARY, "serve", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "registry.log", "wb"),  # noqa: SIM115 - held by the child for its life
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self._process.poll() is not None:
                    log = (self.directory / "registry.log").read_text()
                    raise RuntimeError(f"docker-registry exited: {log}") from None
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start listening")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    def dockerconfigjson(self, password: str | None = None) -> str:
        auth = base64.b64encode(f"{self.username}:{password or self.password}".encode()).decode()
        return json.dumps({"auths": {self.host: {"auth": auth}}})

    # ------------------------------------------------------------ pushing

    def _client(self) -> httpx.Client:
        verify: Any = True
        if self.tls:
            import ssl

            context = ssl.create_default_context()
            context.load_verify_locations(cadata=self.ca_pem.decode())
            verify = context
        return httpx.Client(base_url=self.base, verify=verify, timeout=20)

    def _auth(self, client: httpx.Client, repository: str) -> dict[str, str]:
        basic = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if self.token_server is None:
            return {"Authorization": basic}
        scope = f"repository:{repository}:pull,push"
        answer = client.get(
            self.token_server.url,
            params={"service": "tether-test-registry", "scope": scope},
            headers={"Authorization": basic},
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def push_image(self, repository: str, *tags: str) -> str:
        """Upload a one-layer OCI image and tag it with every tag; returns the manifest digest."""
        with self._client() as client:
            headers = self._auth(client, repository)
            layer = f"layer of {repository} {secrets.token_hex(4)}".encode()
            config = json.dumps(
                {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
            ).encode()
            for blob in (config, layer):
                self._upload(client, headers, repository, blob)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "size": len(config),
                        "digest": _digest(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "size": len(layer),
                            "digest": _digest(layer),
                        }
                    ],
                }
            ).encode()
            for tag in tags:
                answer = client.put(
                    f"/v2/{repository}/manifests/{tag}",
                    content=manifest,
                    headers={**headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                )
                answer.raise_for_status()
            return _digest(manifest)

    @staticmethod
    def _upload(client: httpx.Client, headers: dict[str, str], repository: str, blob: bytes) -> None:
        started = client.post(f"/v2/{repository}/blobs/uploads/", headers=headers)
        started.raise_for_status()
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = client.put(
            f"{location}{separator}digest={_digest(blob)}",
            content=blob,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        done.raise_for_status()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class PagingProxy:
    """Forwards to a registry and serves its tag lists in pages of ``page`` with ``Link`` headers.

    Debian's distribution 2.8 answers a tag list in one piece whatever ``n`` asks; hosted registries
    (GHCR, Docker Hub, Harbor) page it. Everything else, challenges included, passes through."""

    def __init__(self, upstream: str, page: int = 3) -> None:
        self.upstream, self.page, self.pages_served = upstream, page, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
                with httpx.Client(timeout=20) as client:
                    answer = client.get(outer.upstream + parts.path, headers=headers)
                body, extra = answer.content, {}
                if parts.path.endswith("/tags/list") and answer.status_code == 200:
                    query = urllib.parse.parse_qs(parts.query)
                    tags = sorted(answer.json().get("tags") or [])
                    last = query.get("last", [""])[0]
                    rest = [t for t in tags if t > last] if last else tags
                    chunk = rest[: outer.page]
                    outer.pages_served += 1
                    body = json.dumps({"name": answer.json()["name"], "tags": chunk}).encode()
                    if len(rest) > outer.page:
                        extra["Link"] = f'<{parts.path}?n={outer.page}&last={chunk[-1]}>; rel="next"'
                self.send_response(answer.status_code)
                for name in ("Content-Type", "WWW-Authenticate", "Docker-Content-Digest"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
