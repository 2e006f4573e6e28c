"""Chart dependencies from a password-protected chart repository on loopback: credentials from a file,
never sent to another host (a redirect to another port included), never shown in errors or logs."""

from __future__ import annotations

import base64
import functools
import http.server
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest
from typer.testing import CliRunner

from tether.cli.app import app as cli_app
from tether.errors import RenderError
from tether.render import RenderOptions, render_source
from tether.render.chart_credentials import CredentialsFileError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_helm_dependencies import make_chart, parent

USERNAME, PASSWORD = "robot", "pw-Zq81-never-shown"


class RecordingRepository:
    """A chart repository on loopback that records the Authorization header of every request. With
    ``password`` it answers 401 without the right one; with ``redirect_to`` it sends every request there."""

    def __init__(self, directory: Path, password: str = "", redirect_to: str = "") -> None:
        self.seen: list[tuple[str, str]] = []  # (path, Authorization header)
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{password}".encode()).decode() if password else ""
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization") or ""
                outer.seen.append((self.path, authorization))
                if expected and authorization != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="charts"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to.rstrip("/") + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    super().do_GET()

        handler = functools.partial(Handler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/charts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorized(self) -> list[str]:
        return [path for path, authorization in self.seen if authorization]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository directory with cache 1.2.3 and 1.2.5 under charts/ (archive URLs relative)."""
    root = tmp_path_factory.mktemp("served")
    build = tmp_path_factory.mktemp("build")
    (root / "charts").mkdir()
    for version in ("1.2.3", "1.2.5"):
        helm_python.package(make_chart(build / version, "cache", version), destination=root / "charts")
    helm_python.repo_index_generate(root / "charts")
    return root


@pytest.fixture
def private(served: Path) -> Iterator[RecordingRepository]:
    repository = RecordingRepository(served, password=PASSWORD)
    yield repository
    repository.stop()


def render(chart: Path, cache: Path, credentials: tuple = ()) -> dict[str, dict]:
    options = RenderOptions(release_name="shop", cache_dir=str(cache), chart_credentials=credentials)
    return {m.obj["metadata"]["name"]: m.obj for m in render_source(chart, options).manifests}


def test_credentials_reach_the_repository_and_nothing_shows_them(
    private: RecordingRepository, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chart = parent(tmp_path, private.url, "~1.2.0")
    objects = render(chart, tmp_path / "cache", ((private.url, (USERNAME, PASSWORD)),))
    assert objects["shop-cache"]["data"]["chartVersion"] == "1.2.5"
    assert private.authorized() == ["/charts/index.yaml", "/charts/cache-1.2.5.tgz"]

    for credentials, why in (((), "credentials missing"), (((private.url, (USERNAME, "wrong-" + PASSWORD)),), "")):
        with pytest.raises(
            RenderError, match=r"dependency cache from http://127.0.0.1:\d+/charts: .*answered 401"
        ) as e:
            render(
                parent(tmp_path / f"again{len(credentials)}", private.url, "~1.2.0"), tmp_path / "cache", credentials
            )
        assert why in str(e.value) and PASSWORD not in str(e.value)
    assert PASSWORD not in caplog.text
    assert base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode() not in caplog.text


def test_a_cached_private_chart_needs_the_repository_to_accept_the_credential(
    private: RecordingRepository, tmp_path: Path
) -> None:
    credentials = ((private.url, (USERNAME, PASSWORD)),)
    render(parent(tmp_path / "a", private.url, "1.2.3"), tmp_path / "cache", credentials)
    # the archive is in the shared cache, yet a render without the credential is not handed it
    with pytest.raises(RenderError, match=r"answered 401"):
        render(parent(tmp_path / "b", private.url, "1.2.3"), tmp_path / "cache")
    private.seen.clear()
    assert render(parent(tmp_path / "c", private.url, "1.2.3"), tmp_path / "cache", credentials)["shop-cache"]
    assert [path for path, _ in private.seen] == ["/charts/index.yaml"]  # the archive came from the cache


def test_a_redirect_to_another_port_gets_no_credentials(served: Path, tmp_path: Path) -> None:
    elsewhere = RecordingRepository(served)
    front = RecordingRepository(served, password=PASSWORD, redirect_to=elsewhere.url.removesuffix("/charts"))
    try:
        chart = parent(tmp_path, front.url, "~1.2.0")
        objects = render(chart, tmp_path / "cache", ((front.url, (USERNAME, PASSWORD)),))
        assert objects["shop-cache"]["data"]["chartVersion"] == "1.2.5"
        assert front.authorized() == ["/charts/index.yaml", "/charts/cache-1.2.5.tgz"]
        assert [path for path, _ in elsewhere.seen] == ["/charts/index.yaml", "/charts/cache-1.2.5.tgz"]
        assert elsewhere.authorized() == []  # same host name, another port: another origin
    finally:
        front.stop()
        elsewhere.stop()


def test_push_mode_reads_the_credentials_file(private: RecordingRepository, tmp_path: Path) -> None:
    chart = parent(tmp_path, private.url, "~1.2.0")
    (tmp_path / "password").write_text(PASSWORD + "\n")
    credentials = tmp_path / "chart-credentials.yaml"
    credentials.write_text(f"{private.url}:\n  username: {USERNAME}\n  passwordFile: password\n")
    arguments = ["render", str(chart), "--release-name", "shop", "--chart-credentials", str(credentials)]
    result = CliRunner().invoke(cli_app, [*arguments, "--app", "shop"], env={"XDG_CACHE_HOME": str(tmp_path / "c")})
    assert result.exit_code == 0, result.output
    assert "name: shop-cache" in result.output and PASSWORD not in result.output

    credentials.write_text(f"{private.url}:\n  username: {USERNAME}\n  password: {PASSWORD}\n")
    credentials.chmod(0o644)
    refused = CliRunner().invoke(cli_app, arguments, env={"XDG_CACHE_HOME": str(tmp_path / "c")})
    # the command's error (main prints a TetherError as "error: MESSAGE")
    assert isinstance(refused.exception, CredentialsFileError)
    assert "holds a password and is readable by others (mode 0644)" in str(refused.exception)
    assert PASSWORD not in str(refused.exception) and PASSWORD not in refused.output
