"""Chart dependencies fetched from a chart repository served on loopback and from Debian's docker-registry (OCI)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest
import yaml

from tether.errors import RenderError
from tether.render import RenderOptions, render_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "images"))
from localregistry import LocalRegistry, free_port

SUBCHART_TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cache
data:
  greeting: {{ .Values.greeting | quote }}
  chartVersion: {{ .Chart.Version | quote }}
"""


def make_chart(directory: Path, name: str, version: str, dependencies: list[dict] | None = None) -> Path:
    chart = directory / name
    (chart / "templates").mkdir(parents=True)
    meta = {"apiVersion": "v2", "name": name, "version": version}
    if dependencies:
        meta["dependencies"] = dependencies
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    if dependencies is None or name == "cache":
        (chart / "values.yaml").write_text("greeting: default\n")
        (chart / "templates" / "configmap.yaml").write_text(SUBCHART_TEMPLATE)
    else:
        (chart / "values.yaml").write_text("cache:\n  greeting: hello from the parent\n")
        (chart / "templates" / "own.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-own\n"
        )
    return chart


class ChartRepository:
    """A directory of chart archives and its index.yaml, served by http.server on loopback."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *args: None  # type: ignore[method-assign]
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartRepository]:
    served = tmp_path_factory.mktemp("repo")
    build = tmp_path_factory.mktemp("build")
    for version in ("1.2.3", "1.2.5", "1.3.0"):
        helm_python.package(make_chart(build / version, "cache", version), destination=served)
    helm_python.repo_index_generate(served)
    running = ChartRepository(served)
    yield running
    running.stop()


def snapshot(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def parent(tmp_path: Path, repository: str, version: str, name: str = "cache") -> Path:
    return make_chart(tmp_path / "src", "shop", "0.1.0", [{"name": name, "version": version, "repository": repository}])


def render(chart: Path, cache: Path, **options) -> dict[str, dict]:
    result = render_source(chart, RenderOptions(release_name="shop", cache_dir=str(cache), **options))
    return {m.obj["metadata"]["name"]: m.obj for m in result.manifests}


def test_dependency_fetched_rendered_with_parent_values_and_tree_untouched(repository, tmp_path: Path) -> None:
    chart = parent(tmp_path, repository.url, "~1.2.0")
    before = snapshot(chart)
    objects = render(chart, tmp_path / "cache")
    assert objects["shop-cache"]["data"] == {"greeting": "hello from the parent", "chartVersion": "1.2.5"}
    assert "shop-own" in objects
    assert snapshot(chart) == before  # no charts/, no Chart.lock written
    assert not (chart / "charts").exists()
    archives = list((tmp_path / "cache" / "charts" / "sha256").glob("*.tgz"))
    assert [a.stem for a in archives] == [hashlib.sha256(archives[0].read_bytes()).hexdigest()]


def test_chart_lock_pins_the_version_and_the_cache_serves_it_offline(tmp_path: Path) -> None:
    served, build = tmp_path / "served", tmp_path / "build"
    served.mkdir()
    for version in ("1.2.3", "1.2.5"):
        helm_python.package(make_chart(build / version, "cache", version), destination=served)
    helm_python.repo_index_generate(served)
    own = ChartRepository(served)
    chart = parent(tmp_path, own.url, "~1.2.0")
    lock = {"dependencies": [{"name": "cache", "repository": own.url, "version": "1.2.3"}], "digest": "sha256:0"}
    (chart / "Chart.lock").write_text(yaml.safe_dump(lock))
    try:
        assert render(chart, tmp_path / "cache")["shop-cache"]["data"]["chartVersion"] == "1.2.3"
    finally:
        own.stop()
    # the repository is gone: the pinned version comes from the cache
    assert render(chart, tmp_path / "cache")["shop-cache"]["data"]["chartVersion"] == "1.2.3"
    # an exact version is served from the cache too; an uncached one needs the repository, which is down
    with pytest.raises(RenderError, match=r"Chart.yaml: dependency cache from http://127.0.0.1:\d+/: .*unreachable"):
        render(parent(tmp_path / "other", own.url, "1.2.5"), tmp_path / "cache")


def test_lock_out_of_sync_with_chart_yaml(repository, tmp_path: Path) -> None:
    chart = parent(tmp_path, repository.url, "~1.3.0")
    lock = {"dependencies": [{"name": "cache", "repository": repository.url, "version": "1.2.3"}]}
    (chart / "Chart.lock").write_text(yaml.safe_dump(lock))
    with pytest.raises(RenderError, match=r"Chart.lock: out of sync with Chart.yaml: cache is locked at 1.2.3"):
        render(chart, tmp_path / "cache")


def test_no_matching_version(repository, tmp_path: Path) -> None:
    chart = parent(tmp_path, repository.url, "~9.1")
    with pytest.raises(RenderError, match=r"dependency cache from http://.*: no version matching '~9.1' \(available:"):
        render(chart, tmp_path / "cache")


def test_unknown_chart_in_the_repository(repository, tmp_path: Path) -> None:
    chart = parent(tmp_path, repository.url, "1.0.0", name="nosuch")
    with pytest.raises(RenderError, match=r"dependency nosuch .*index.yaml has no chart named 'nosuch'"):
        render(chart, tmp_path / "cache")


def test_unreachable_repository(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/charts"
    with pytest.raises(
        RenderError, match=r"Chart.yaml: dependency cache from http://127.0.0.1:\d+/charts: .*unreachable"
    ):
        render(parent(tmp_path, url, "~1.2.0"), tmp_path / "cache")


def test_digest_mismatch_is_refused(repository, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    index = yaml.safe_load((repository.directory / "index.yaml").read_text())
    for entry in index["entries"]["cache"]:
        entry["digest"] = "0" * 64
        entry["urls"] = [repository.url + entry["urls"][0]]  # the real archives, a lying index
    (served / "index.yaml").write_text(yaml.safe_dump(index))
    lying = ChartRepository(served)
    try:
        with pytest.raises(RenderError, match=r"digest mismatch for cache 1.2.5 .*index.yaml says sha256:0000"):
            render(parent(tmp_path, lying.url, "~1.2.0"), tmp_path / "cache")
    finally:
        lying.stop()
    assert not list((tmp_path / "cache").rglob("*.tgz"))


def test_file_dependency_inside_the_tree_and_one_escaping_it(tmp_path: Path) -> None:
    make_chart(tmp_path / "src" / "libs", "cache", "0.5.0")
    chart = parent(tmp_path, "file://../libs/cache", "0.5.0")
    before = snapshot(tmp_path / "src")
    objects = render(chart, tmp_path / "cache", source_root=str(tmp_path / "src"))
    assert objects["shop-cache"]["data"]["greeting"] == "hello from the parent"
    assert snapshot(tmp_path / "src") == before

    make_chart(tmp_path / "outside", "cache", "0.5.0")
    escaping = parent(tmp_path / "two", "file://../../../outside/cache", "0.5.0")
    with pytest.raises(
        RenderError, match=r"dependency cache: repository 'file://../../../outside/cache' points outside"
    ):
        render(escaping, tmp_path / "cache", source_root=str(tmp_path / "two" / "src"))


def test_repository_names_need_urls(tmp_path: Path) -> None:
    for name in ("@stable", "stable"):
        chart = parent(tmp_path / name, name, "1.0.0")
        with pytest.raises(RenderError, match=r"Chart.yaml: dependency cache: repository .* `helm repo add`"):
            render(chart, tmp_path / "cache")


@pytest.fixture(scope="module")
def oci(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """docker-registry with htpasswd auth and charts cache 2.0.0 / 2.1.0 pushed under charts/."""
    running = LocalRegistry(tmp_path_factory.mktemp("oci")).start()
    build = tmp_path_factory.mktemp("oci-build")
    with helm_python.RegistryClient(plain_http=True, credentials_file=build / "registry.json") as client:
        client.login(running.host, running.username, running.password, plain_http=True)
        for version in ("2.0.0", "2.1.0"):
            archive = helm_python.package(make_chart(build / version, "cache", version), destination=build)
            client.push(archive, f"oci://{running.host}/charts", plain_http=True)
    yield running
    running.stop()


def test_oci_dependency_with_credentials_then_from_the_cache(oci: LocalRegistry, tmp_path: Path) -> None:
    repo = f"oci://{oci.host}/charts"
    chart = parent(tmp_path, repo, "^2.0.0")
    credentials = ((oci.host, (oci.username, oci.password)),)
    objects = render(chart, tmp_path / "cache", chart_credentials=credentials)
    assert objects["shop-cache"]["data"] == {"greeting": "hello from the parent", "chartVersion": "2.1.0"}
    assert not (chart / "charts").exists()
    # a chart fetched with a credential is in the shared cache, yet only a render the registry accepts gets it
    with pytest.raises(RenderError, match=r"answered 401 \(credentials needed and none configured"):
        render(parent(tmp_path / "b", repo, "2.1.0"), tmp_path / "cache")
    assert render(parent(tmp_path / "c", repo, "2.1.0"), tmp_path / "cache", chart_credentials=credentials)


def test_oci_without_credentials_says_so(oci: LocalRegistry, tmp_path: Path) -> None:
    chart = parent(tmp_path, f"oci://{oci.host}/charts", "^2.0.0")
    with pytest.raises(RenderError, match=r"dependency cache from oci://.*answered 401 \(credentials needed"):
        render(chart, tmp_path / "cache")
