"""One mirror per repository: a push that wakes many apps costs one or two fetches, not one each."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tether.delivery.source import SourceFetcher

IDENTITY = ["-c", "user.name=T", "-c", "user.email=t@example.com"]


def _repo(tmp_path: Path) -> tuple[Path, str]:
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "a.yaml").write_text("a: 1\n")
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(work), *IDENTITY, "commit", "-qm", "one"], check=True)
    return work, f"file://{work}"


def _commit(work: Path, text: str) -> str:
    (work / "a.yaml").write_text(text)
    subprocess.run(["git", "-C", str(work), *IDENTITY, "commit", "-qam", text.strip()], check=True)
    return subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_forced_fetches_asked_at_once_share_one_or_two_fetches(tmp_path: Path) -> None:
    work, url = _repo(tmp_path)
    fetcher = SourceFetcher(tmp_path / "cache", min_interval=0)

    async def main() -> None:
        await fetcher.fetch(url)
        head = _commit(work, "a: 2\n")
        await asyncio.gather(*(fetcher.fetch(url, force=True) for _ in range(50)))
        assert fetcher.fetches[url] <= 3  # the first, then at most two for the 50 forced ones
        resolved = await fetcher.resolve(url, "branch:main")
        assert resolved.commit == head and resolved.info.subject == "a: 2"

    asyncio.run(main())


def test_a_resolution_is_shared_until_the_next_fetch(tmp_path: Path) -> None:
    work, url = _repo(tmp_path)
    fetcher = SourceFetcher(tmp_path / "cache", min_interval=0)

    async def main() -> None:
        await fetcher.fetch(url)
        first = await fetcher.resolve(url, "branch:main")
        second_commit = _commit(work, "a: 3\n")
        assert (await fetcher.resolve(url, "branch:main")).commit == first.commit  # the mirror did not move
        await fetcher.fetch(url, force=True)
        assert (await fetcher.resolve(url, "branch:main")).commit == second_commit
        assert await fetcher.changed_paths(url, first.commit, second_commit) == ["a.yaml"]

    asyncio.run(main())


def test_apps_exporting_one_commit_at_once_share_one_extraction(tmp_path: Path) -> None:
    _work, url = _repo(tmp_path)
    fetcher = SourceFetcher(tmp_path / "cache", min_interval=0)
    extractions: list[str] = []
    extract = fetcher.cache._extract

    def counted(mirror: Path, url_: str, commit: str, into: Path) -> None:
        extractions.append(commit)
        extract(mirror, url_, commit, into)

    fetcher.cache._extract = counted  # type: ignore[method-assign]

    async def main() -> None:
        await fetcher.fetch(url)
        commit = (await fetcher.resolve(url, "branch:main")).commit
        waiting = [asyncio.ensure_future(fetcher.export(url, commit)) for _ in range(20)]
        await asyncio.sleep(0)
        waiting[0].cancel()  # one app giving up does not cancel the others' export
        trees = await asyncio.gather(*waiting[1:])
        assert {tree.name for tree in trees} == {commit} and (trees[0] / "a.yaml").read_text() == "a: 1\n"
        assert extractions == [commit]
        assert (await fetcher.export(url, commit)) == trees[0] and extractions == [commit]  # reused after

    asyncio.run(main())
