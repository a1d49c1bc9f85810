"""The dialect rule table (``sora_core._video_rules``) and the rule families the
tracker applies: task ids in structured delta fields, failure sentences in
any words, fraction progress, and the failure prefilter that keeps it fast.

Streams go through the shared feeder (``three_ways`` in ``test_video.py``).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import (
    LocalProtocolError,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoTaskInfo,
    VideoTracker,
)
from sora_core import _video_rules as rules

from .test_video import check, three_ways

# --- issue 14 item 7: task ids and videos in structured delta fields -------------------


def test_task_id_in_a_nested_structured_field() -> None:
    # delta.wm.task_id: the models keep unknown delta fields in Delta.extra.
    events, result = three_ways(
        [
            ("f", {"wm": {"task_id": "task_01kwm0000000aaaa"}}),
            ("c", "> 进度 40..\n"),
        ]
    )
    assert events[0] == VideoTaskInfo("task_01kwm0000000aaaa", ())
    check(result, task_id="task_01kwm0000000aaaa", progress=40, status="incomplete")


def test_task_id_and_video_in_an_output_list() -> None:
    video = "https://cdn.example.com/o/7d2e/out.mp4"
    events, result = three_ways(
        [
            ("c", "生成中..."),
            ("f", {"output": [{"task_id": "gen_7d2e91aa"}]}),
            ("f", {"output": [{"task_id": "gen_7d2e91aa", "url": video}]}),
            ("finish", "stop"),
        ]
    )
    assert events == [VideoTaskInfo("gen_7d2e91aa", ()), VideoReady(video)]
    check(result, task_id="gen_7d2e91aa", video_url=video, status="succeeded")


@pytest.mark.parametrize(
    "fields",
    [
        {"taskId": "abc-123-def"},
        {"task-id": "abc-123-def"},
        {"TASK_ID": "abc-123-def"},
        {"outputs": [{"id": "abc-123-def"}]},
        {"data": [{"id": "abc-123-def", "status": "queued"}]},
        {"task": {"id": "abc-123-def"}},
        {"meta": {"sora": {"job_id": "abc-123-def"}}},
    ],
)
def test_structured_task_id_spellings(fields: dict[str, object]) -> None:
    tracker = VideoTracker()
    assert VideoTaskInfo("abc-123-def", ()) in tracker.feed_fields(fields)
    assert tracker.result.task_id == "abc-123-def"


def test_structured_fields_that_are_not_a_task() -> None:
    tracker = VideoTracker()
    # A bare "id" at the top of the fields, an "id" in an unrelated object, a
    # plain "url" outside an output list, booleans and junk keys: nothing.
    fields = {
        "id": "chatcmpl-1",
        "logprobs_meta": {"id": "x-y-z-1"},
        "url": "https://docs.example.com/page.mp4",
        "progress": True,
        "0": ["task_id"],
    }
    assert tracker.feed_fields(fields) == []
    assert tracker.result.task_id is None and tracker.finish() == []


def test_structured_progress_status_links_and_failure() -> None:
    events, result = three_ways(
        [
            ("f", {"video": {"id": "vid_0001", "status": "queued", "progress": "3/10"}}),
            ("f", {"status_url": "https://t.example.com/vid_0001", "progress": 55}),
            ("f", {"result": [{"thumbnail_url": "https://t.example.com/p.webp"}]}),
            ("f", {"state": "FAILED", "error": {"message": "quota exhausted"}}),
        ]
    )
    assert events == [
        VideoTaskInfo("vid_0001", ()),
        VideoQueued(),
        VideoProgress(30),
        VideoTaskInfo("vid_0001", ("https://t.example.com/vid_0001",)),
        VideoProgress(55),
        VideoFailed("quota exhausted"),
    ]
    check(result, status="failed", thumbnail_url="https://t.example.com/p.webp")


def test_structured_fields_are_bounded_and_refused_after_finish() -> None:
    deep: dict[str, object] = {"task_id": "deep-task-id"}
    for _ in range(50):
        deep = {"wm": deep}
    wide = {f"k{i}": i for i in range(10_000)} | {"task_id": "late-task-id"}
    tracker = VideoTracker()
    assert tracker.feed_fields(deep) == [] and tracker.feed_fields(wide) == []
    tracker.finish()
    assert tracker.feed_fields({}) == []
    with pytest.raises(LocalProtocolError, match="after finish"):
        tracker.feed_fields({"task_id": "abc-123"})


# --- issue 14 item 8: failure sentences in other words -------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("⚠️ 任务超时，未能生成视频。", "任务超时，未能生成视频。"),
        ("Progress: 100%\n去水印失败: watermark removal failed", "watermark removal failed"),
        ("视频生成失败，原因：上游服务繁忙", "上游服务繁忙"),
        ("生成失败。原因是：排队人数过多", "排队人数过多"),
        ("> 上传失败！", "上传失败！"),
        ("Request timed out after 600s", "Request timed out after 600s"),
        ("⏱ Timeout.", "Timeout."),
        ("Sorry, we could not generate this video right now.", None),
        ("Unable to create the video: server busy", None),
        ("抱歉，无法生成该视频", "抱歉，无法生成该视频"),
        ("Watermark removal failed", "Watermark removal failed"),
        ("Upstream error: 503 Service Unavailable", "503 Service Unavailable"),
        ("**Render failed** - out of memory", "out of memory"),
        ("status = TIMED_OUT", "status = TIMED_OUT"),
        ("任务状态：已取消", "任务状态：已取消"),
        ("✖️ Failed to render the video: GPU lost", "GPU lost"),
    ],
)
def test_failure_family(text: str, reason: str | None) -> None:
    events, result = three_ways([("c", text)])
    expected = reason if reason is not None else text
    assert result.status == "failed", text
    assert result.error == expected
    assert events[-1] == VideoFailed(expected)


@pytest.mark.parametrize(
    "text",
    [
        "Progress: 45% (processing)\n进度 60%\n",
        "Prompt: a robot whose experiment failed, timed out in the lab\n",
        "提示词：一只猫尝试跳跃失败了，超时了\n",
        "The cat failed to jump.\n",
        "No errors so far. Progress: 30%\n",
        "超时时间: 600 秒\ntimeout: 600\n",
        "[失败重试说明](https://docs.example.com/error/timeout)\n",
        "See https://x.example.com/failed/timeout.html for help\n",
        "失败率 0.1%，未失败\n",
        "The video was generated successfully, no timeout.\n",
        "If the upload failed, try again.\n",
    ],
)
def test_no_failure_false_positives(text: str) -> None:
    _, result = three_ways([("c", text)])
    assert result.error is None and result.status == "incomplete", text


def test_failure_then_video_still_wins() -> None:
    video = "https://v.example.com/f.mp4"
    _, result = three_ways([("c", f"去水印失败: watermark removal failed\n[原视频]({video})\n")])
    check(result, status="succeeded", video_url=video, error="watermark removal failed")


# --- issue 14 item 9: fraction progress -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "percent"),
    [
        ("生成进度 7/10\n", 70),
        ("Progress: 3/4\n", 75),
        ("进度：37/100\n", 37),
        ("**Progress**: step 1/3 ...\n", 33.33),
        ("🏃 进度 3 / 4 ..\n", 75),
        ("进度 7/10..", 70),
    ],
)
def test_fraction_progress(text: str, percent: float) -> None:
    events, result = three_ways([("c", text)])
    assert result.progress == percent
    assert events == [VideoProgress(percent)]


@pytest.mark.parametrize(
    "text",
    ["排队中 3/10\n", "进度 2025/10/13\n", "Size 1280/720 progress\n", "1/2 of the cats\n"],
)
def test_fractions_that_are_not_progress(text: str) -> None:
    _, result = three_ways([("c", text)])
    assert result.progress is None, text


def test_split_fraction_waits_for_its_denominator() -> None:
    tracker = VideoTracker()
    assert tracker.feed("生成进度 7/") == []
    assert tracker.feed("1") == []  # could be 7/10, 7/100, ...
    assert tracker.feed("0") == []
    assert tracker.feed("\n") == [VideoProgress(70)]


# --- the failure prefilter: fast, and it lets every failure through -----------------------

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
    *("超时", "任务", "未能生成", "无法完成", "生成不了", "TIMED OUT", "Timeout", "time\u3000out"),
    *("ſtate=cancelled", "状态：已取消", "could not generate", "COULDN’T RENDER", "unable to"),
    *("can\tnot create", "was not\u2003able to produce", "去水印失败", "Upload", "✖️", "✗"),
    *("Render", "the", "a", ".", "!", "。", "prompt", "提示词", "[x](https://a.b/c)", "。"),
]


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.sampled_from(_FAIL_VOCAB), max_size=8).map("".join))
def test_failure_prefilter_lets_every_failure_line_through(line: str) -> None:
    # failure_reason skips a line without any failure word: every line one of
    # its rules matches (case-insensitively, as re folds case) must pass.
    if any(getattr(rule, how)(line) for how, rule in rules.FAILURE_RULES):
        folded = line.lower().replace("ı", "i").replace("ſ", "s").replace("\u0307", "")
        assert rules.FAILISH.search(folded), line


def test_failure_rules_table_is_the_one_the_function_uses() -> None:
    # Each rule of the table, alone on a line, makes a failure.
    samples = {
        rules.FAIL_MARK: "❌ 生成失败: x",
        rules.ERROR_LINE: "Error: x",
        rules.STATUS_FAILED: "status: failed",
        rules.POLICY: "violates our content policy",
        rules.TIMEOUT: "任务超时",
        rules.UNABLE: "could not generate the video",
        rules.STATUS_POSITION: "Watermark removal failed",
    }
    assert set(samples) == {rule for _, rule in rules.FAILURE_RULES}
    for rule, line in samples.items():
        assert rules.failure_reason(line) is not None, (rule.pattern[:40], line)


def test_failure_words_with_unusual_case_still_fail() -> None:
    for line in ("VIDEO GENERATION FAİLED: too long", "ſtatus: failed", "Task faıled"):
        assert rules.failure_reason(line) is not None, line
