"""Resume, never resubmit: a broken chat stream is followed by its task id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import (
    ConnectionLost,
    IdleTimeout,
    NotFoundError,
    Sleep,
    VideoGenerationFailed,
)
from sora_core._flows import poll_task
from sora_core._task_exchange import TaskAnswer, TaskExchange
from sora_core.tasks import NEW_API, OPENAI_VIDEOS, PollPolicy, parse_task, resume_probes
from sora_transports.emulator import Emulator

from .videos_support import CLIENTS, on_client, steps


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(speed=0, api_key="k") as relay:
        yield relay


FAULTS = [
    {"X-Emulator-Fault": "disconnect-after-id"},
    {"X-Emulator-Fault": "disconnect", "X-Emulator-Disconnect-At": "40"},
]


@pytest.mark.parametrize("headers", FAULTS, ids=["after-id", "at-40"])
@pytest.mark.parametrize("name", CLIENTS)
def test_broken_stream_resumes_with_one_submission(name: str, headers: dict[str, str]) -> None:
    with Emulator(speed=4, api_key="k") as relay:
        seen: list[str] = []

        def body(c: Any) -> Any:
            return c.videos.generate_video(
                "a cat at 40%",
                poll_policy=PollPolicy(initial_delay=0.05, max_delay=0.2),
                on_task=lambda t: seen.append(t.status),
            )

        video = on_client(name, relay.base_url, body, headers=headers)
        assert video.status == "succeeded" and video.task_id
        assert video.video_url and video.task_id in video.video_url
        assert relay.stats.chat_submissions == 1
        assert relay.stats.submissions_by_prompt == {"a cat at 40%": 1}
        assert relay.stats.polls >= 1
        assert seen[-1] == "completed"


def test_a_stall_before_the_task_id_is_raised_not_resubmitted() -> None:
    with Emulator(speed=0, api_key="k", stall_seconds=5) as relay:
        headers = {"X-Emulator-Fault": "stall"}

        def body(c: Any) -> Any:
            with pytest.raises(IdleTimeout) as info:
                c.videos.generate_video("stalled", poll_policy=PollPolicy(initial_delay=0.05))
            return info.value

        error = on_client("requests", relay.base_url, body, headers=headers, idle_timeout=0.3)
        assert error.video is None or error.video.task_id is None
        assert relay.stats.chat_submissions == 1
        assert relay.stats.polls == 0


def test_policy_failure_is_not_followed(emu: Emulator) -> None:
    before = emu.stats

    def body(c: Any) -> Any:
        with pytest.raises(VideoGenerationFailed) as info:
            c.videos.generate_video("forbidden")
        return info.value

    failed = on_client("requests", emu.base_url, body, headers={"X-Emulator-Fault": "policy"})
    assert failed.video is not None and failed.video.status == "failed"
    assert emu.stats.polls == before.polls
    assert emu.stats.chat_submissions == before.chat_submissions + 1


@pytest.mark.parametrize("name", CLIENTS)
def test_resume_any_task_id_later_and_remember_the_dialect(name: str, emu: Emulator) -> None:
    before = emu.stats.chat_submissions

    def body(c: Any) -> Any:
        return steps(
            c,
            lambda: c.videos.create(prompt="later", dialect="video-query"),
        )

    (made,) = on_client(name, emu.base_url, body)
    bare = made.id.split(":", 1)[-1]

    def follow(c: Any) -> Any:
        return steps(
            c,
            lambda: c.videos.resume_video(bare),
            lambda: c.videos.poll(bare),
            lambda: c.videos.resume_dialect,
        )

    video, task, remembered = on_client(name, emu.base_url, follow)
    assert video.status == "succeeded" and video.task_id == bare
    assert task.status == "completed"
    assert remembered is OPENAI_VIDEOS
    assert emu.stats.chat_submissions == before


# -- the poll flow itself, without a server ---------------------------------------------------


def drive(flow: Any, answers: list[Any]) -> tuple[Any, list[Any]]:
    """Run a flow by hand: exchanges get the next answer (an exception is thrown in)."""
    sent: list[Any] = []
    clock = 0.0
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as stop:
            return stop.value, sent
        value, error = None, None
        if isinstance(step, Sleep):
            clock += step.seconds
            value = clock
            continue
        sent.append(step)
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            error = answer
        else:
            value = answer


def answer(body: bytes, dialect: Any = OPENAI_VIDEOS) -> TaskAnswer:
    return TaskAnswer(parse_task(200, [("content-type", "application/json")], body, dialect))


def test_probes_fall_through_to_the_dialect_that_knows_the_task() -> None:
    probes = resume_probes("task_1", base_url="http://relay.test/v1")
    told: list[Any] = []
    flow = poll_task(probes, policy=PollPolicy(initial_delay=0.01), on_dialect=told.append)
    new_api = b'{"code":"success","data":{"task_id":"task_1","status":"%s","progress":"%s"}}'
    task, sent = drive(
        flow,
        [
            NotFoundError("no", status_code=404),
            answer(new_api % (b"IN_PROGRESS", b"50%"), NEW_API),
            ConnectionLost("dropped"),
            answer(new_api % (b"SUCCESS", b"100%"), NEW_API),
        ],
    )
    assert task.status == "completed" and task.progress == 100
    assert told == [NEW_API]
    paths = [s.request.target for s in sent]
    assert paths[0].endswith("/videos/task_1")
    assert all(p.endswith("/video/generations/task_1") for p in paths[1:])
    assert all(isinstance(s, TaskExchange) for s in sent)


def test_a_final_poll_error_is_raised() -> None:
    probes = resume_probes("task_1", base_url="http://relay.test/v1", prefer="openai")
    flow = poll_task(probes[:1], policy=PollPolicy(initial_delay=0.01))
    with pytest.raises(NotFoundError):
        drive(flow, [NotFoundError("gone", status_code=404)])


def test_the_deadline_ends_polling() -> None:
    from sora_core import DeadlineExceeded

    probes = resume_probes("task_1", base_url="http://relay.test/v1")[:1]
    flow = poll_task(probes, policy=PollPolicy(initial_delay=1.0, timeout=2.5))
    queued = b'{"id":"task_1","status":"queued"}'
    with pytest.raises(DeadlineExceeded):
        drive(flow, [answer(queued)] * 10)
