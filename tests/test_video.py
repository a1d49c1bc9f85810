"""The sora video layer: relay text in, video events and a result out.

Every stream here is checked with the shared feeder (``feed_ops_three_ways``
in ``tests/feeding.py``): as recorded or written, whole per field, one
character at a time, and at hypothesis-chosen splits; each must give the
same events and the same result. The composed relay phrasings are in
``test_video_phrasings.py``, the rule table's own tests in
``test_video_rules.py``; both use the helpers defined here.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from sora_core import (
    VideoEvent,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoResult,
    VideoTaskInfo,
    VideoTracker,
)
from sora_core._errors import LocalProtocolError
from sora_core._video import MAX_LINE

from .feeding import Op, feed_ops_three_ways

HERE = pathlib.Path(__file__).parent / "fixtures" / "relay-streams"
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "relay-streams"
FIXTURES = HERE if HERE.is_dir() else SHARED

# A stream is a list of ops: ("c", text) content, ("r", text) reasoning,
# ("f", mapping) structured delta fields, ("fail", message) an error event,
# ("finish", finish_reason) the end.


def run(ops: Sequence[Op]) -> tuple[list[VideoEvent], VideoResult]:
    tracker = VideoTracker()
    events: list[VideoEvent] = []
    for kind, value in ops:
        if kind == "c":
            events += tracker.feed(value, None)
        elif kind == "r":
            events += tracker.feed(None, value)
        elif kind == "f":
            events += tracker.feed_fields(value)
        elif kind == "fail":
            assert value is not None
            events += tracker.fail(value)
        else:
            events += tracker.finish(value)
            assert tracker.finish(value) == []  # idempotent
    return events, tracker.result


def three_ways(ops: Sequence[Op], *, examples: int = 30) -> tuple[list[VideoEvent], VideoResult]:
    """Run ``ops`` as given, merged, char by char and at random splits; all must agree."""
    ops = list(ops)
    if not ops or ops[-1][0] != "finish":
        ops.append(("finish", None))
    return feed_ops_three_ways(run, ops, max_examples=examples)


def check(result: VideoResult, **expected: Any) -> None:
    got = result.to_dict()
    assert {k: got[k] for k in expected} == expected


# --- the recorded relay streams ---------------------------------------------------


def fixture_ops(name: str) -> list[Op]:
    ops: list[Op] = []
    finish_reason = None
    for line in (FIXTURES / f"{name}.sse").read_text(encoding="utf-8").splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        obj = json.loads(line[5:])
        if "error" in obj:
            ops.append(("fail", obj["error"]["message"]))
            continue
        for choice in obj.get("choices", [])[:1]:
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                ops.append(("r", delta["reasoning_content"]))
            if delta.get("content"):
                ops.append(("c", delta["content"]))
            finish_reason = choice.get("finish_reason") or finish_reason
    ops.append(("finish", finish_reason))
    return ops


FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_matches_its_expect_file(name: str) -> None:
    expected = json.loads((FIXTURES / f"{name}.expect.json").read_text())
    _, result = three_ways(fixture_ops(name))
    check(result, **expected)


def test_fixture_content_markdown() -> None:
    events, result = three_ways(fixture_ops("content-markdown"))
    task = "task_01k7e5w9z5f2d91pekrqy59rwc"
    links = (
        f"https://tasks.example.net/web/{task}",
        f"https://tasks.example.net/source/{task}",
    )
    video = "https://cdn.example.com/20251013/a7a7c1.mp4"
    thumb = "https://cdn.example.com/20251013/38e9f0.webp"
    remix = "s_68eca3f1c2b08191a3f4d7e6b5c4a3f2"
    assert events == [
        VideoTaskInfo(task, ()),
        VideoTaskInfo(task, links[:1]),
        VideoTaskInfo(task, links),
        VideoQueued(),
        *(VideoProgress(p) for p in (36, 44, 61, 69, 81)),
        VideoReady(video, thumb, None, remix),
    ]
    check(
        result,
        status="succeeded",
        task_id=task,
        links=list(links),
        progress=81,
        video_url=video,
        thumbnail_url=thumb,
        remix_id=remix,
        download_url=None,
        error=None,
        finish_reason="stop",
    )
    assert result.text.startswith("```json") and result.reasoning == ""


def test_fixture_reasoning_html() -> None:
    events, result = three_ways(fixture_ops("reasoning-html"))
    assert events == [
        *(VideoProgress(p) for p in (0, 13, 40, 72, 95)),
        VideoReady("https://media.example.org/v/2f6c/out.mp4", None, None, None),
    ]
    assert "Video Generation Progress" in result.reasoning


def test_fixture_policy_fail() -> None:
    events, result = three_ways(fixture_ops("reasoning-html-policy-fail"))
    reason = "This content may violate our content policies."
    assert events == [*(VideoProgress(p) for p in (0, 13, 40, 72, 95)), VideoFailed(reason)]
    check(result, status="failed", error=reason, video_url=None, finish_reason="STOP")


def test_fixture_error_event() -> None:
    events, result = three_ways(fixture_ops("error-event"))
    assert events == [VideoQueued(), VideoFailed("upstream error: sentinel_block")]
    check(result, status="failed", error="upstream error: sentinel_block", text="> 排队中.")


# --- API details -------------------------------------------------------------------


def test_split_number_is_one_number() -> None:
    tracker = VideoTracker()
    assert tracker.feed("> 进度 3") == []
    assert tracker.feed("6..") == [VideoProgress(36)]
    assert tracker.feed("4") == []
    assert tracker.feed("4.") == []  # could still be 44.5
    assert tracker.feed(".") == [VideoProgress(44)]


def test_events_are_prompt() -> None:
    tracker = VideoTracker()
    assert tracker.feed("> ID: `task_abcdef123`") == [VideoTaskInfo("task_abcdef123", ())]
    assert tracker.feed(" 排队中") == [VideoQueued()]
    assert tracker.feed(" Progress: 5%") == [VideoProgress(5)]
    assert tracker.feed(" [预览](https://t.example.com/x)") == [
        VideoTaskInfo("task_abcdef123", ("https://t.example.com/x",))
    ]
    assert tracker.result.task_id == "task_abcdef123"
    assert tracker.feed("\n❌ 生成失败: nope") == []  # final once the line ends
    assert tracker.finish() == [VideoFailed("nope")]


def test_result_mid_stream_and_after_a_drop() -> None:
    tracker = VideoTracker()
    tracker.feed("> ID: `task_abcdef123`\n[数据预览](https://t.example.com/task_abcdef123)\n")
    tracker.feed("> 进度 40..[在线播放▶️](https://v.example.com/a.mp4)")
    mid = tracker.result
    assert mid.status == "succeeded" and mid.video_url == "https://v.example.com/a.mp4"
    assert mid.links == ("https://t.example.com/task_abcdef123",)
    assert mid.progress == 40 and mid.finish_reason is None
    tracker.feed("\n![t](https://v.example.com/a.webp")  # cut before the ")"
    assert tracker.result.thumbnail_url is None  # not certain yet
    events = tracker.finish()  # a URL at the very end is flushed
    thumb = "https://v.example.com/a.webp"
    assert events == [VideoReady("https://v.example.com/a.mp4", thumb, None, None)]


def test_to_dict() -> None:
    result = VideoResult(status="succeeded", progress=81.0, links=("a", "b"), text="t")
    assert result.to_dict() == {
        "status": "succeeded",
        "video_url": None,
        "thumbnail_url": None,
        "download_url": None,
        "task_id": None,
        "links": ["a", "b"],
        "progress": 81,
        "remix_id": None,
        "error": None,
        "text": "t",
        "reasoning": "",
        "finish_reason": None,
    }
    assert isinstance(result.to_dict()["progress"], int)
    assert VideoResult(status="x", progress=36.5).to_dict()["progress"] == 36.5
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_classes_are_frozen_and_slotted() -> None:
    objects: list[object] = [
        VideoQueued(),
        VideoProgress(1.0),
        VideoTaskInfo(None, ()),
        VideoReady("u", None, None, None),
        VideoFailed("r"),
        VideoResult(status="incomplete"),
    ]
    for obj in objects:
        assert not hasattr(obj, "__dict__")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            obj.x = 1  # type: ignore[attr-defined]
    assert VideoQueued in VideoEvent.__args__  # type: ignore[attr-defined]


def test_finish_is_idempotent_and_feeding_after_it_is_misuse() -> None:
    tracker = VideoTracker()
    tracker.feed("[click here](https://v.example.com/a.mp4)")
    assert tracker.finish("stop") == [VideoReady("https://v.example.com/a.mp4", None, None, None)]
    assert tracker.finish("stop") == []
    assert tracker.feed(None, None) == [] and tracker.feed("", "") == []
    with pytest.raises(LocalProtocolError, match="after finish"):
        tracker.feed("more")


def test_fail_once_and_video_wins() -> None:
    tracker = VideoTracker()
    assert tracker.fail("first") == [VideoFailed("first")]
    assert tracker.fail("second") == []
    assert tracker.result.status == "failed" and tracker.result.error == "first"
    tracker.feed("<video src='https://v.example.com/late.mp4'></video>")
    tracker.finish()
    assert tracker.result.status == "succeeded" and tracker.result.error == "first"


def test_both_fields_in_one_delta() -> None:
    tracker = VideoTracker()
    events = tracker.feed("[下载](https://v.example.com/a.mp4)", "Progress: 99%\n")
    assert events == [VideoProgress(99)]
    assert tracker.finish() == [
        VideoReady("https://v.example.com/a.mp4", None, "https://v.example.com/a.mp4", None)
    ]


def test_no_progress_before_keyword_and_no_big_numbers() -> None:
    _, result = three_ways([("c", "take 45% off\n进度 2025\nProgress: 150%\n")])
    assert result.progress == 100  # only the explicit percentage, clamped


def test_long_line_without_breaks_is_bounded() -> None:
    tracker = VideoTracker()
    filler = "字" * 5000 + " "
    for i in range(40):
        tracker.feed(filler + f"Progress: {i}% ")
    assert len(tracker._content.line) <= MAX_LINE
    assert tracker.result.progress == 39
    tracker.feed("x" * (3 * MAX_LINE))  # no space to cut at
    assert len(tracker._content.line) <= MAX_LINE


def test_many_small_deltas_are_linear() -> None:
    tracker = VideoTracker()
    body = "".join(f"进度 {i % 100}.." for i in range(3000)) + "\n"
    for ch in body:
        tracker.feed(ch)
    assert tracker.result.progress == 99
    assert len(tracker.result.text) == len(body)


# --- queue dots and the failure prefilter (speed paths that must not change results) ---


def test_queue_dots_are_counted_then_scanned_as_text() -> None:
    # Dots after a queue line are counted, not appended one by one; a dot run
    # longer than MAX_LINE, a progress figure glued to the dots and a link
    # after them must come out as if every dot had been scanned.
    dots = [("c", ".")] * (MAX_LINE + 7)
    events, result = three_ways(
        [
            ("c", "> ID: `task_01k7e5w9z5f2d91p`\n> 排队中"),
            *dots,
            ("c", "\n> 进度 3"),
            ("c", "6"),
            *dots[:40],
            ("c", "%..\n[下载](https://v.example.com/a.mp4)"),
            *dots[:5],
        ],
        examples=5,
    )
    assert events[:3] == [
        VideoTaskInfo("task_01k7e5w9z5f2d91p", ()),
        VideoQueued(),
        VideoProgress(36),
    ]
    check(result, status="succeeded", video_url="https://v.example.com/a.mp4", progress=36)
    assert result.text.count(".") == (MAX_LINE + 7) + 40 + 2 + 5 + 3


def test_counted_dots_stay_bounded() -> None:
    tracker = VideoTracker()
    tracker.feed("> 排队中")
    for _ in range(3 * MAX_LINE):
        tracker.feed(".")
    field = tracker._content
    assert field.dots <= MAX_LINE and len(field.line) <= MAX_LINE
    assert tracker.feed("\n> 进度 50%\n") == [VideoProgress(50)]
