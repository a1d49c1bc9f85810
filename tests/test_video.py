"""The sora video layer: relay text in, video events and a result out.

Every stream here is checked three ways (as recorded or written, whole per
field, one character at a time, and at hypothesis-chosen splits) and must
give the same events and the same result each time.
"""

from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_core import _video as video
from sora_core._errors import LocalProtocolError
from sora_core._video import (
    MAX_LINE,
    VideoEvent,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoResult,
    VideoTaskInfo,
    VideoTracker,
)

HERE = pathlib.Path(__file__).parent / "fixtures" / "relay-streams"
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "relay-streams"
FIXTURES = HERE if HERE.is_dir() else SHARED

# A stream is a list of ops: ("c", text) content, ("r", text) reasoning,
# ("fail", message) an error event, ("finish", finish_reason) the end.
Op = tuple[str, str | None]


def run(ops: Sequence[Op]) -> tuple[list[VideoEvent], VideoResult]:
    tracker = VideoTracker()
    events: list[VideoEvent] = []
    for kind, value in ops:
        if kind == "c":
            events += tracker.feed(value, None)
        elif kind == "r":
            events += tracker.feed(None, value)
        elif kind == "fail":
            assert value is not None
            events += tracker.fail(value)
        else:
            events += tracker.finish(value)
            assert tracker.finish(value) == []  # idempotent
    return events, tracker.result


def merged(ops: Sequence[Op]) -> list[Op]:
    """Consecutive text of the same field joined into one delta."""
    out: list[Op] = []
    for kind, value in ops:
        if kind in "cr" and out and out[-1][0] == kind:
            out[-1] = (kind, (out[-1][1] or "") + (value or ""))
        elif kind not in "cr" or value:
            out.append((kind, value))
    return out


def cut(ops: Sequence[Op], points: Sequence[int]) -> list[Op]:
    """The text ops cut at the given offsets into the concatenated text."""
    out: list[Op] = []
    offset = 0
    for kind, value in ops:
        if kind not in "cr" or not value:
            out.append((kind, value))
            continue
        local = sorted(
            {0, len(value)} | {p - offset for p in points if 0 < p - offset < len(value)}
        )
        out += [(kind, value[a:b]) for a, b in itertools.pairwise(local)]
        offset += len(value)
    return out


def charwise(ops: Sequence[Op]) -> list[Op]:
    return [(k, ch) for k, v in ops for ch in (v if k in "cr" and v else [v])]


def three_ways(ops: Sequence[Op], *, examples: int = 30) -> tuple[list[VideoEvent], VideoResult]:
    """Run ``ops`` as given, merged, char by char and at random splits; all must agree."""
    ops = list(ops)
    if not ops or ops[-1][0] != "finish":
        ops.append(("finish", None))
    whole = run(merged(ops))
    assert run(ops) == whole, "the stream as written differs from the merged one"
    assert run(charwise(ops)) == whole, "char-by-char feed differs from the whole feed"
    total = sum(len(v or "") for k, v in ops if k in "cr")

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.integers(min_value=0, max_value=total), max_size=16))
    def random_splits(points: list[int]) -> None:
        assert run(cut(merged(ops), points)) == whole, f"split at {sorted(points)} differs"

    random_splits()
    return whole


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


# --- composed streams: every phrasing, marker and link form ---------------------

ECHO = (
    '```json\n{\n  "prompt": "a cat, progress 50% https://ref.example.com/ref.mp4",\n'
    '  "image": "https://ref.example.com/r.png",\n  "duration": 15\n}\n```\n\n'
)
TID = "task_01k7zz0000aaaabbbbccccdddd"


@attrs.frozen
class Case:
    name: str
    ops: list[Op]
    expect: dict[str, Any]
    events: list[VideoEvent] | None = None


CASES = [
    Case(
        "chinese-progress-forms",
        [
            ("c", "> 排队中..."),
            ("c", "\n> 生成中.\n🏃 进度：36.0%\n🏃 进度：52.5%\n生成进度: 70%\n> 进度 7"),
            ("c", "5..\n✅ 视频生成成功\n[在线播放▶️](https://v.example.com/a/b.mp4)"),
        ],
        {"status": "succeeded", "progress": 75, "video_url": "https://v.example.com/a/b.mp4"},
        [
            VideoQueued(),
            *(VideoProgress(p) for p in (36, 52.5, 70, 75)),
            VideoReady("https://v.example.com/a/b.mp4"),
        ],
    ),
    Case(
        "english-progress-forms-query-string",
        [
            ("c", "Status: in queue\nProgress: 36%\nprogress 36.5 %\nProgress: 80%\n"),
            ("c", "Video generation completed\n"),
            ("c", "[click here](https://x.example.com/v/1.mp4?sig=a%2Fb&exp=17)\n"),
        ],
        {
            "status": "succeeded",
            "progress": 80,
            "video_url": "https://x.example.com/v/1.mp4?sig=a%2Fb&exp=17",
        },
        [
            VideoQueued(),
            *(VideoProgress(p) for p in (36, 36.5, 80)),
            VideoReady("https://x.example.com/v/1.mp4?sig=a%2Fb&exp=17"),
        ],
    ),
    Case(
        "reasoning-progress-bare-html-webm",
        [
            ("r", "生成进度: 3%\n"),
            ("r", "**Video Generation Progress**: 45% (processing)\n"),
            ("r", "**Video Generation Progress**: 100% (processing)\n"),
            ("c", '<video src="https://m.example.org/out.webm" controls></video>'),
        ],
        {"status": "succeeded", "progress": 100, "video_url": "https://m.example.org/out.webm"},
        [*(VideoProgress(p) for p in (3, 45, 100)), VideoReady("https://m.example.org/out.webm")],
    ),
    Case(
        "fenced-html-poster-source-mov",
        [
            ("c", "```html\n<video controls poster='https://m.example.org/p.jpg'>\n"),
            ("c", "<source src='https://m.example.org/o?id=7' type='video/quicktime'>\n"),
            ("c", "</video>\n```\n<a href='https://m.example.org/o.mov' download>save</a>"),
        ],
        {
            "status": "succeeded",
            "video_url": "https://m.example.org/o?id=7",
            "thumbnail_url": "https://m.example.org/p.jpg",
            "download_url": "https://m.example.org/o.mov",
        },
    ),
    Case(
        "m3u8-and-download-link",
        [
            ("c", "✅ 视频生成成功\n[▶ 播放](https://s.example.com/live/index.m3u8)\n"),
            ("c", "[下载视频](https://s.example.com/dl/video?id=9)\n"),
        ],
        {
            "status": "succeeded",
            "video_url": "https://s.example.com/live/index.m3u8",
            "download_url": "https://s.example.com/dl/video?id=9",
        },
    ),
    Case(
        "download-link-only",
        [("c", "video generated successfully\n[Download](https://d.example.com/file/abc)\n")],
        {
            "status": "succeeded",
            "video_url": "https://d.example.com/file/abc",
            "download_url": "https://d.example.com/file/abc",
        },
    ),
    Case(
        "thumbnail-before-video-remix-id",
        [
            ("c", "Progress: 99%\n![cover](https://c.example.com/t.png)\n"),
            ("c", "[Watch](https://c.example.com/watch/v1)\nRemix ID: s_0123456789abcdef0123\n"),
        ],
        {
            "status": "succeeded",
            "video_url": "https://c.example.com/watch/v1",
            "thumbnail_url": "https://c.example.com/t.png",
            "remix_id": "s_0123456789abcdef0123",
            "task_id": None,
        },
    ),
    Case(
        "task-id-forms-and-tracking-links",
        [
            ("c", f"**Task ID**: {TID}\n"),
            (
                "c",
                "[Preview](https://t.example.com/p/xyz) | [Source](https://t.example.com/s/xyz)\n",
            ),
            ("c", f"status: https://t.example.com/{TID}/state\nremix_id: s_aaaabbbbccccdddd1111\n"),
            ("c", "https://cdn.example.com/final.mp4 "),
        ],
        {
            "status": "succeeded",
            "task_id": TID,
            "links": [
                "https://t.example.com/p/xyz",
                "https://t.example.com/s/xyz",
                f"https://t.example.com/{TID}/state",
            ],
            "remix_id": "s_aaaabbbbccccdddd1111",
            "video_url": "https://cdn.example.com/final.mp4",
        },
    ),
    Case(
        "chinese-task-id-then-cut-before-video",
        [
            ("c", ECHO + "任务ID：`gen-7f3a9c21`\n[数据预览](https://t.example.cn/web/1)\n"),
            ("c", "> 排队中..\n> 进度 12.."),
            ("c", "30.."),
        ],
        {
            "status": "incomplete",
            "task_id": "gen-7f3a9c21",
            "links": ["https://t.example.cn/web/1"],
            "progress": 30,
            "video_url": None,
            "thumbnail_url": None,
        },
        [
            VideoTaskInfo("gen-7f3a9c21", ()),
            VideoTaskInfo("gen-7f3a9c21", ("https://t.example.cn/web/1",)),
            VideoQueued(),
            VideoProgress(12),
            VideoProgress(30),
        ],
    ),
    Case(
        "failure-in-reasoning",
        [("r", "Progress: 20%\n"), ("r", "video generation failed: upstream timeout\n")],
        {"status": "failed", "progress": 20, "error": "upstream timeout"},
        [VideoProgress(20), VideoFailed("upstream timeout")],
    ),
    Case(
        "failure-in-content-chinese",
        [("c", "> 排队中\n"), ("c", "生成失败：余额不足，请充值")],
        {"status": "failed", "error": "余额不足，请充值"},
        [VideoQueued(), VideoFailed("余额不足，请充值")],
    ),
    Case(
        "failure-english-marker",
        [("c", "Generation failed: quota exceeded\nthen something else: 50%\n")],
        {"status": "failed", "error": "quota exceeded"},
        [VideoFailed("quota exceeded")],
    ),
    Case(
        "policy-text-without-marker",
        [("r", "Progress: 5%\n"), ("r", "> This request was blocked by our guardrail system.\n")],
        {"status": "failed", "error": "This request was blocked by our guardrail system."},
    ),
    Case(
        "moderation-wording-without-marker",
        [("c", "Sorry, your prompt was flagged by our moderation system.\n")],
        {"status": "failed", "error": "Sorry, your prompt was flagged by our moderation system."},
    ),
    Case(
        "policy-chinese-in-content",
        [("c", "提示词违反内容政策，请修改后重试")],
        {"status": "failed", "error": "提示词违反内容政策，请修改后重试"},
    ),
    Case(
        "error-line-and-bare-cross",
        [("c", "Progress: 10%\nError: upstream 503\n❌ another\n")],
        {"status": "failed", "error": "upstream 503"},
        [VideoProgress(10), VideoFailed("upstream 503")],
    ),
    Case(
        "error-event-after-progress",
        [("c", "Progress: 30%\n"), ("fail", "server overloaded"), ("c", "x")],
        {"status": "failed", "error": "server overloaded", "progress": 30},
        [VideoProgress(30), VideoFailed("server overloaded")],
    ),
    Case(
        "plain-chat-with-images-only",
        [("c", "Here: ![a](https://i.example.com/a.png) and https://i.example.com/b.jpg ok")],
        {"status": "incomplete", "video_url": None, "thumbnail_url": "https://i.example.com/a.png"},
        [],
    ),
    Case(
        "plain-chat-with-web-links",
        [("c", "See https://docs.example.com/guide and [the FAQ](https://docs.example.com/faq).")],
        {"status": "incomplete", "video_url": None, "links": []},
        [],
    ),
    Case(
        "u2028-and-crlf",
        [
            ("c", "进度 40%\u2028进度 60%\r\n"),
            ("c", "Progress: 70%\r\n<video src='https://x.example.com/a.mp4'>\u2028</video>\r\n"),
        ],
        {"status": "succeeded", "progress": 70, "video_url": "https://x.example.com/a.mp4"},
        [*(VideoProgress(p) for p in (40, 60, 70)), VideoReady("https://x.example.com/a.mp4")],
    ),
    Case(
        "json-echo-is-not-the-result",
        [("c", ECHO + "> 生成中\n"), ("finish", "stop")],
        {"status": "incomplete", "video_url": None, "thumbnail_url": None, "progress": None},
        [],
    ),
    Case(
        "numbers-that-are-not-progress",
        [
            ("c", '{"duration": 15, "size": "1280x720"}\n> sid: s_0000111122223333aaaa\n'),
            ("c", "Progress: 12% (ETA 120s, 2025-10-13)\n"),
            ("c", "[在线播放](https://cdn.example.com/20251013/99/v.mp4)\n"),
        ],
        {"progress": 12, "remix_id": "s_0000111122223333aaaa", "status": "succeeded"},
        [
            VideoProgress(12),
            VideoReady(
                "https://cdn.example.com/20251013/99/v.mp4", None, None, "s_0000111122223333aaaa"
            ),
        ],
    ),
    Case(
        "progress-never-goes-back-and-bare-percent",
        [("c", "Progress: 50%\nProgress: 40%\n45% (processing)\n> 75%\n")],
        {"progress": 75, "status": "incomplete"},
        [VideoProgress(50), VideoProgress(75)],
    ),
    Case(
        "waiting-and-unfenced-json-result",
        [
            ("c", "waiting...\n"),
            ("c", '{"status": "succeeded", "video_url": "https://r.example.com/v/9"}\n'),
        ],
        {"status": "succeeded", "video_url": "https://r.example.com/v/9"},
        [VideoQueued(), VideoReady("https://r.example.com/v/9")],
    ),
    Case(
        "clickable-thumbnail-and-bare-fence",
        [
            ("c", "```\n<video src=https://f.example.com/v.mp4></video>\n```\n"),
            ("c", "[![poster](https://f.example.com/p.webp)](https://f.example.com/v.mp4)"),
        ],
        {
            "status": "succeeded",
            "video_url": "https://f.example.com/v.mp4",
            "thumbnail_url": "https://f.example.com/p.webp",
        },
    ),
    Case(
        "success-line-with-bare-link",
        [("c", "✅ 视频生成成功\n视频地址：https://v.example.cn/p/abc，请尽快下载")],
        {"status": "succeeded", "video_url": "https://v.example.cn/p/abc"},
    ),
    Case(
        "content-filter-finish-reason",
        [("c", "Progress: 10%\n"), ("finish", "content_filter")],
        {"status": "failed", "error": "content_filter"},
        [VideoProgress(10), VideoFailed("content_filter")],
    ),
]


CASES += [
    Case(
        "prefixed-task-id-and-point-here-link",
        [
            ("c", ECHO + "> 任务已创建 ID: `sora-2:task_01k9abcdefghij`\n> 🕐 排队中...\n"),
            (
                "c",
                "> 🏃 进度：15%\n"
                "> ✅ 视频生成成功，[点击这里](https://a.example.com/v/x) 查看视频~~~\n",
            ),
        ],
        {
            "task_id": "sora-2:task_01k9abcdefghij",
            "video_url": "https://a.example.com/v/x",
            "progress": 15,
        },
        [
            VideoTaskInfo("sora-2:task_01k9abcdefghij", ()),
            VideoQueued(),
            VideoProgress(15),
            VideoReady("https://a.example.com/v/x"),
        ],
    ),
    Case(
        "emoji-english-labels",
        [
            ("c", "🆔 Task: task_01k9zzzzzzzzzz\n⏳ Waiting in queue (position 3)...\n"),
            ("c", "🎞️ Generating... 12%\n🎉 Done! Watch: https://f.example.com/s/abc?token=x&e=1\n"),
            ("c", "🖼️ Cover: https://f.example.com/c/abc\n📥 Download: https://f.example.com/d/abc"),
        ],
        {
            "task_id": "task_01k9zzzzzzzzzz",
            "video_url": "https://f.example.com/s/abc?token=x&e=1",
            "thumbnail_url": "https://f.example.com/c/abc",
            "download_url": "https://f.example.com/d/abc",
            "progress": 12,
            "links": [],
        },
    ),
    Case(
        "json-status-lines",
        [
            ("c", '{"id": "video_68e0aa11bb22", "status": "queued", "progress": 0}\n'),
            ("c", '{"id": "video_68e0aa11bb22", "status": "in_progress", "progress": 33}\n'),
            ("c", '{"status": "failed", "error": {"message": "moderation_blocked"}}\n'),
        ],
        {"status": "failed", "task_id": "video_68e0aa11bb22", "error": "moderation_blocked"},
        [
            VideoTaskInfo("video_68e0aa11bb22", ()),
            VideoQueued(),
            VideoProgress(0),
            VideoProgress(33),
            VideoFailed("moderation_blocked"),
        ],
    ),
    Case(
        "fenced-json-status-keys-only",
        [
            ("c", '```json\n{"id": "video_1a2b3c", "status": "queued", "note": "Error: x 50%"}\n'),
            ("c", '```\n```json\n{"progress": 100, "video_url": "https://e.example.com/v"}\n```'),
        ],
        {"status": "succeeded", "task_id": "video_1a2b3c", "video_url": "https://e.example.com/v"},
        [
            VideoTaskInfo("video_1a2b3c", ()),
            VideoQueued(),
            VideoProgress(100),
            VideoReady("https://e.example.com/v"),
        ],
    ),
    Case(
        "progress-bar-and-one-line-video-tag",
        [
            ("r", "[█████░░░░░] 50%\n[██████████] 100%\n"),
            ("c", '<video controls src="https://j.example.com/o?x=1&amp;y=2" '),
            ("c", 'poster="https://j.example.com/o.jpg"></video>'),
        ],
        {
            "progress": 100,
            "video_url": "https://j.example.com/o?x=1&y=2",
            "thumbnail_url": "https://j.example.com/o.jpg",
        },
    ),
    Case(
        "anchor-around-image-and-unclosed-echo",
        [
            ("c", '```json\n{"prompt": "x"}\n> ID: task_01kqqqqqqqqqqq\n'),
            (
                "c",
                '<a href="https://k.example.com/v.mp4"><img src="https://k.example.com/t.png"></a>',
            ),
        ],
        {
            "task_id": "task_01kqqqqqqqqqqq",
            "video_url": "https://k.example.com/v.mp4",
            "thumbnail_url": "https://k.example.com/t.png",
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_composed_stream(case: Case) -> None:
    events, result = three_ways(case.ops)
    check(result, **case.expect)
    if case.events is not None:
        assert events == case.events
    ready = [e for e in events if isinstance(e, VideoReady)]
    assert len(ready) == (1 if result.video_url else 0)
    if ready:
        assert ready[0].video_url == result.video_url
        assert ready[0].thumbnail_url == result.thumbnail_url
        assert ready[0].download_url == result.download_url
        assert ready[0].remix_id == result.remix_id
    assert len([e for e in events if isinstance(e, VideoFailed)]) <= 1
    assert result.text == "".join(v or "" for k, v in case.ops if k == "c")
    assert result.reasoning == "".join(v or "" for k, v in case.ops if k == "r")


def test_enough_composed_streams() -> None:
    assert len(CASES) >= 15


VOCAB = [
    *("进度", "生成进度", " 3", "6", "..", "%", "．", ".", " ", "\n", "\r", "\r\n", "\u2028"),
    *("Progress", ": ", "：", "**", "ID", "Task ID", "任务ID", "`", "task_01k7e5w9z5f2d91p"),
    *("sid", "s_0123456789abcdef01", "remix_id", "Remix", "[", "]", "(", ")", "![", "https://"),
    *("http:", "x.example.com/a", ".mp4", ".webp", "?q=1", "<a href='", "'>", "</a>", "<a"),
    *("<video src='", "<source src=", "poster='", "<", "a", "```", "json", "html", "{", "}"),
    *('"', "排队中", "排队", "queued", "❌", "生成失败", "Error", "content policy", "下载"),
    *("播放", "click here", "预览", "数据", "✅", "100", "12.5", "🏃", "…", "，", "sora-2:"),
    *("任务编号", '"progress": ', '"id": "', '"status": "failed"', "ht", "tp", "s://", "9"),
]


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("cr"), st.lists(st.sampled_from(VOCAB), max_size=30).map("".join)
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(min_value=0, max_value=400), max_size=16),
)
def test_fuzz_any_split_gives_the_same_events(ops: list[Op], points: list[int]) -> None:
    ops = [*ops, ("finish", None)]
    whole = run(merged(ops))
    assert run(charwise(ops)) == whole
    assert run(cut(merged(ops), points)) == whole


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


_FAIL_RULES = [
    ("search", video._FAIL_MARK),
    ("fullmatch", video._ERROR_LINE),
    ("search", video._STATUS_FAILED),
    ("search", video._POLICY),
]
_FAIL_VOCAB = [
    *("fail", "FAIL", "FAİLED", "faıled", "ſtatus", "STATUS", "Status: failed", "error", "ERROR"),
    *(
        "Error:",
        "错误",
        "失败原因：",
        "生成失败",
        "❌",
        "⛔",
        "🚫",
        "content polic",
        "USAGE POLICY",
    ),
    *("violates the policy", "guardrail", "flagged by moderation", "BLOCKED by safety", "违规"),
    *("审核未通过", "敏感内容", "内容政策", " ", ": ", "：", "*", ">", "-", "x", "\u0307", "K"),
]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(_FAIL_VOCAB), max_size=8).map("".join))
def test_failure_prefilter_lets_every_failure_line_through(line: str) -> None:
    # _failure_reason skips a line without any failure word: every line one
    # of its rules matches (case-insensitively, as re folds case) must pass.
    if any(getattr(rule, how)(line) for how, rule in _FAIL_RULES):
        folded = line.lower().replace("ı", "i").replace("ſ", "s").replace("\u0307", "")
        assert video._FAILISH.search(folded), line


def test_failure_words_with_unusual_case_still_fail() -> None:
    for line in ("VIDEO GENERATION FAİLED: too long", "ſtatus: failed", "Task faıled"):
        assert video._failure_reason(line) is not None, line
