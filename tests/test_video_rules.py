"""The dialect rule table (``sora_core._video_rules``): the failure
prefilter, and the rule families the tracker applies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import _video_rules as rules

_FAIL_RULES = [
    ("search", rules.FAIL_MARK),
    ("fullmatch", rules.ERROR_LINE),
    ("search", rules.STATUS_FAILED),
    ("search", rules.POLICY),
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
        assert rules.FAILISH.search(folded), line


def test_failure_words_with_unusual_case_still_fail() -> None:
    for line in ("VIDEO GENERATION FAİLED: too long", "ſtatus: failed", "Task faıled"):
        assert rules.failure_reason(line) is not None, line
