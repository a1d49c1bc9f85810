"""Issue 12: a relay dialect the project has never seen is followed to a
downloaded file with one row of the dialect table and no other code.

The relay here is a small standard-library server (not the emulator) with
its own vocabulary: ``POST /v1/jobs`` answers ``{"success": true, "job":
{"jobId", "state": "PARKED"}}``; polls say ``CRUNCHING`` with ``pct`` as a
fraction, then ``SHIPPED`` with the file under ``result.mp4``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sora_core.tasks import PollPolicy, TaskDialect
from sora_transports.asyncio import Client as AsyncioClient
from sora_transports.requests import Client as RequestsClient
from sora_transports.socket import Client as SocketClient

pytestmark = pytest.mark.timeout(60)

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000  # an MP4 box header, then bytes

# The whole of what the project needs to know about this relay: one row.
JOBS = TaskDialect(
    name="jobs",
    create_path="/jobs",
    retrieve_path="/jobs/{id}",
    envelope=("job",),
    id=("jobId",),
    status=("state",),
    progress=("pct",),
    video_url=("result.mp4",),
    statuses={"parked": "queued", "crunching": "in_progress", "shipped": "completed"},
)


class Relay(ThreadingHTTPServer):
    polls: dict[str, int]
    posts: int


class Handler(BaseHTTPRequestHandler):
    server: Relay

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts += 1
        job = f"J{self.server.posts}"
        self.server.polls[job] = 0
        self._json({"success": True, "job": {"jobId": job, "state": "PARKED"}})

    def do_GET(self) -> None:
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/v1/jobs/"):
            job = self.path.rsplit("/", 1)[1]
            self.server.polls[job] += 1
            if self.server.polls[job] < 3:
                state = {"jobId": job, "state": "CRUNCHING", "pct": 0.3 * self.server.polls[job]}
            else:
                state = {
                    "jobId": job,
                    "state": "SHIPPED",
                    "result": {"mp4": f"{host}/out/{job}.mp4"},
                }
            self._json({"success": True, "job": state})
        elif self.path.startswith("/out/"):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(VIDEO)))
            self.end_headers()
            self.wfile.write(VIDEO)
        else:
            self.send_error(404)


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay(("127.0.0.1", 0), Handler)
    server.polls, server.posts = {}, 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


FAST = PollPolicy(initial_delay=0.02, max_delay=0.05)


@pytest.mark.parametrize("client_class", [RequestsClient, SocketClient], ids=["requests", "socket"])
def test_an_unseen_dialect_to_a_downloaded_file(
    relay: Relay, tmp_path: Path, client_class: Any
) -> None:
    base = f"http://127.0.0.1:{relay.server_address[1]}/v1"
    progress: list[float | None] = []
    with client_class(base, "sk-test") as client:
        video = client.videos.generate_video(
            "a lighthouse",
            endpoint="videos",
            dialect=JOBS,
            poll_policy=FAST,
            on_task=lambda task: progress.append(task.progress),
        )
        assert video.status == "succeeded" and video.task_id == "J1"
        assert video.video_url == f"http://127.0.0.1:{relay.server_address[1]}/out/J1.mp4"
        saved = client.videos.download(video.video_url, tmp_path / "out.mp4", from_peer=True)
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO and saved.size == len(VIDEO)
    assert relay.posts == 1 and relay.polls == {"J1": 3}
    assert 30.0 in progress and 60.0 in progress  # pct 0.3 / 0.6 read as percent


def test_an_unseen_dialect_async(relay: Relay) -> None:
    import asyncio

    base = f"http://127.0.0.1:{relay.server_address[1]}/v1"

    async def go() -> Any:
        async with AsyncioClient(base, "sk-test") as client:
            return await client.videos.create_and_poll(
                prompt="a lighthouse", dialect=JOBS, poll_policy=FAST
            )

    task = asyncio.run(go())
    assert task.status == "completed" and task.raw_status == "SHIPPED"
    assert task.video_url and task.video_url.endswith("/out/J1.mp4")
