"""Downloads: the core's rules through a client, and the .part file rules."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import AuthenticationError, ConnectionLost, LocalProtocolError
from sora_core.tasks import DownloadError, UnexpectedContent
from sora_transports._files import PartFile
from sora_transports.emulator import Emulator

from .videos_support import CLIENTS, on_client


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(speed=0, api_key="k") as relay:
        yield relay


@pytest.fixture(scope="module")
def task_id(emu: Emulator) -> str:
    made = on_client("requests", emu.base_url, lambda c: c.videos.create(prompt="a file"))
    return str(made.id)


@pytest.mark.parametrize("name", CLIENTS)
def test_download_by_task_id_and_by_url(
    name: str, emu: Emulator, task_id: str, tmp_path: pathlib.Path
) -> None:
    url = emu.base_url.replace("/v1", "/files/sample.mp4")

    def body(c: Any) -> Any:
        if hasattr(c, "aclose"):

            async def both() -> Any:
                a = await c.videos.download(task_id, tmp_path / "a.mp4")
                b = await c.videos.download(url, tmp_path)
                return a, b

            return both()
        return c.videos.download(task_id, tmp_path / "a.mp4"), c.videos.download(url, tmp_path)

    by_id, by_url = on_client(name, emu.base_url, body)
    assert by_id.path == str(tmp_path / "a.mp4") and by_url.path == str(tmp_path / "sample.mp4")
    assert pathlib.Path(by_id.path).read_bytes() == pathlib.Path(by_url.path).read_bytes()
    assert by_id.size == os.path.getsize(by_id.path) and by_id.media_type == "video/mp4"
    assert sorted(os.listdir(tmp_path)) == ["a.mp4", "sample.mp4"]  # no .part left


def test_short_body_is_an_error_then_resumes_with_range(
    emu: Emulator, task_id: str, tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "v.mp4"
    short = {"X-Emulator-Fault": "short-body"}

    def first(c: Any) -> Any:
        with pytest.raises((DownloadError, ConnectionLost)) as info:
            c.videos.download(task_id, target, retries=0)
        return info.value

    on_client("requests", emu.base_url, first, headers=short)
    assert not target.exists()
    part = tmp_path / "v.mp4.part"
    assert part.stat().st_size > 0
    kept = part.stat().st_size
    before = len(emu.request_log)
    saved = on_client("requests", emu.base_url, lambda c: c.videos.download(task_id, target))
    ranged = [line for line in emu.request_log[before:] if "/content" in line]
    assert ranged and " -> 206 " in ranged[-1] and f"range: bytes={kept}-" in ranged[-1]
    assert not part.exists() and target.stat().st_size == saved.size > kept
    whole = on_client("requests", emu.base_url, lambda c: c.videos.download_content(task_id))
    assert target.read_bytes() == whole.content


def test_short_body_is_retried_in_the_same_run(
    emu: Emulator, task_id: str, tmp_path: pathlib.Path
) -> None:
    emu.reset_faults()
    headers = {"X-Emulator-Fault": "short-body", "X-Emulator-Fault-Count": "1"}
    saved = on_client(
        "requests", emu.base_url, lambda c: c.videos.download(task_id, tmp_path), headers=headers
    )
    assert pathlib.Path(saved.path).stat().st_size == saved.size
    assert os.listdir(tmp_path) == [os.path.basename(saved.path)]


def test_a_planted_part_symlink_is_refused(
    emu: Emulator, task_id: str, tmp_path: pathlib.Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (tmp_path / "v.mp4.part").symlink_to(victim)
    with pytest.raises(LocalProtocolError, match="symlink"):
        on_client(
            "requests", emu.base_url, lambda c: c.videos.download(task_id, tmp_path / "v.mp4")
        )
    assert victim.read_bytes() == b"keep me"
    assert not (tmp_path / "v.mp4").exists()


def test_an_existing_file_is_kept_without_force(
    emu: Emulator, task_id: str, tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "v.mp4"
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        on_client("requests", emu.base_url, lambda c: c.videos.download(task_id, target))
    assert target.read_bytes() == b"mine" and not (tmp_path / "v.mp4.part").exists()
    saved = on_client(
        "requests", emu.base_url, lambda c: c.videos.download(task_id, target, force=True)
    )
    assert target.stat().st_size == saved.size > 4


def test_an_html_page_is_refused_and_its_part_deleted(
    emu: Emulator, task_id: str, tmp_path: pathlib.Path
) -> None:
    page = emu.base_url.replace("/v1", f"/tasks/web/{task_id}")
    with pytest.raises(UnexpectedContent):
        on_client("requests", emu.base_url, lambda c: c.videos.download(page, tmp_path / "x.mp4"))
    assert os.listdir(tmp_path) == []


def test_the_token_goes_only_to_the_base_urls_origin(
    emu: Emulator, task_id: str, tmp_path: pathlib.Path
) -> None:
    other_origin = emu.base_url.replace("127.0.0.1", "localhost")
    content = other_origin + f"/videos/{task_id}/content"
    # Same server, another origin: the token stays home, so the server refuses.
    with pytest.raises(AuthenticationError):
        on_client("requests", emu.base_url, lambda c: c.videos.download(content, tmp_path / "x"))
    assert os.listdir(tmp_path) == []  # the empty .part is not left behind


def test_part_file_rules(tmp_path: pathlib.Path) -> None:
    from sora_core.tasks import DownloadStart

    target = tmp_path / "f.bin"
    with PartFile(target) as sink:
        sink.write(b"abc")
        assert sink.have == 3
    assert (tmp_path / "f.bin.part").read_bytes() == b"abc"  # kept for a resume
    with PartFile(target) as sink:
        assert sink.have == 3
        sink.begin(DownloadStart("append", 3))
        sink.write(b"def")
        sink.commit()
    assert target.read_bytes() == b"abcdef" and not (tmp_path / "f.bin.part").exists()
    (tmp_path / "dir.part").mkdir()
    with pytest.raises(LocalProtocolError, match="regular file"):
        PartFile(tmp_path / "dir")
