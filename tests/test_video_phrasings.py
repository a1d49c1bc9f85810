"""Composed relay streams: every phrasing, marker and link form the video
layer reads, each fed three ways (see ``test_video.py``)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import (
    VideoEvent,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoTaskInfo,
)

from .feeding import Op, cut_ops, merged_ops, opwise
from .test_video import check, run, three_ways

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
    whole = run(merged_ops(ops, "cr"))
    assert run(opwise(ops, "cr")) == whole
    assert run(cut_ops(merged_ops(ops, "cr"), points, "cr")) == whole


# --- relay phrasings invented for the generality check (issue 11/14) ----------------------
# None of these is a recorded house style: each is a plausible variation (other
# words, punctuation, emoji, HTML or markdown wrappers) the rules must read as
# a family, not as known strings.

INVENTED = [
    Case(
        "html-list-english-task-and-percent-in-tags",
        [
            ("c", "<ul><li><b>Job ID:</b> <code>task_77ab12cd34ef</code></li>\n"),
            ("c", "<li>Rendering… <b>62%</b></li>\n<li>Rendering… <b>88 %</b></li></ul>\n"),
            ("c", '<p><a href="https://m.example.net/r/77ab.mp4">Open result</a></p>'),
        ],
        {
            "task_id": "task_77ab12cd34ef",
            "progress": 88,
            "video_url": "https://m.example.net/r/77ab.mp4",
            "status": "succeeded",
        },
    ),
    Case(
        "chinese-brackets-fullwidth-percent-and-fraction",
        [
            ("c", "【任务编号】：gen-20251201-abc\n【状态】排队中……\n"),
            ("c", "【生成进度】3/8\n【生成进度】55％\n"),
            ("c", "🎬 成品：https://v.example.cn/out/abc.webm\n"),
        ],
        {
            "task_id": "gen-20251201-abc",
            "progress": 55,
            "video_url": "https://v.example.cn/out/abc.webm",
        },
        [
            VideoTaskInfo("gen-20251201-abc", ()),
            VideoQueued(),
            VideoProgress(37.5),
            VideoProgress(55),
            VideoReady("https://v.example.cn/out/abc.webm"),
        ],
    ),
    Case(
        "emoji-timeout-after-progress-in-reasoning",
        [
            ("r", "⌛ progress 12%\n⌛ progress 40%\n"),
            ("r", "⏰ Generation timed out after 10 minutes, credits refunded.\n"),
        ],
        {
            "status": "failed",
            "progress": 40,
            "error": "Generation timed out after 10 minutes, credits refunded.",
        },
    ),
    Case(
        "markdown-table-status-failed",
        [
            ("c", "| field | value |\n|---|---|\n| task | `task_tbl0000001` |\n"),
            ("c", "| status | **FAILED** |\n| reason | 余额不足 |\n"),
        ],
        {"status": "failed", "task_id": "task_tbl0000001"},
    ),
    Case(
        "english-sentence-could-not-and-quoted-prompt",
        [
            ("c", 'Prompt: "a dog that failed its exam"\n'),
            ("c", "We couldn't render your video (GPU quota exhausted). Please retry.\n"),
        ],
        {
            "status": "failed",
            "error": "We couldn't render your video (GPU quota exhausted). Please retry.",
        },
    ),
    Case(
        "structured-output-list-with-text-progress",
        [
            ("c", "Working on it: "),
            ("f", {"output": [{"id": "out_5566778899", "status": "in_progress"}]}),
            ("c", "progress 5/20, "),
            ("c", "progress 20/20\n"),
            ("f", {"output": [{"id": "out_5566778899", "url": "https://o.example.com/5566"}]}),
        ],
        {
            "task_id": "out_5566778899",
            "progress": 100,
            "video_url": "https://o.example.com/5566",
        },
        [
            VideoTaskInfo("out_5566778899", ()),
            VideoProgress(25),
            VideoProgress(100),
            VideoReady("https://o.example.com/5566"),
        ],
    ),
    Case(
        "chinese-watermark-failure-with-colon-label",
        [
            ("c", "> 🏃 进度：100%\n"),
            ("c", "> ⚠️ 去水印失败 —— 错误信息：watermark service unavailable\n"),
        ],
        {"status": "failed", "progress": 100, "error": "watermark service unavailable"},
    ),
    Case(
        "bbcode-and-angle-bracket-links",
        [
            ("c", "Task ID = sora_9f8e7d6c5b\nstatus: generating (71%)\n"),
            ("c", "Download → <https://dl.example.org/9f8e.mp4>\n"),
        ],
        {
            "task_id": "sora_9f8e7d6c5b",
            "progress": 71,
            "video_url": "https://dl.example.org/9f8e.mp4",
            "download_url": "https://dl.example.org/9f8e.mp4",
        },
    ),
    Case(
        "json-status-line-cancelled",
        [("c", '{"task_id": "t-123456", "state": "cancelled", "msg": "user cancelled"}\n')],
        {"status": "failed", "error": "user cancelled", "task_id": "t-123456"},
    ),
    Case(
        "english-unable-with-link-to-docs-still-fails",
        [
            ("c", "Status: queued\n"),
            ("c", "Unable to generate video, see [docs](https://docs.example.com/errors)\n"),
        ],
        {"status": "failed", "video_url": None},
    ),
]


@pytest.mark.parametrize("case", INVENTED, ids=[c.name for c in INVENTED])
def test_invented_relay_phrasings(case: Case) -> None:
    events, result = three_ways(case.ops)
    check(result, **case.expect)
    if case.events is not None:
        assert events == case.events


def test_enough_invented_phrasings() -> None:
    assert len(INVENTED) >= 8
