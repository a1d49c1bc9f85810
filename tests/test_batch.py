"""Batch pieces without a network: input, journal states, reconciliation, gate,
runner decisions (with a fake generator) and the displays."""

from __future__ import annotations

import io
import json
from typing import Any

import anyio
import pytest

from sora_core import (
    AuthenticationError,
    ConnectError,
    ConnectionLost,
    LocalProtocolError,
    RateLimitError,
    RetryPolicy,
    VideoGenerationFailed,
    VideoResult,
)
from sora_transports.batch import (
    BatchAborted,
    BatchInputError,
    BatchItem,
    Change,
    GatePolicy,
    Journal,
    JsonDisplay,
    Result,
    TerminalDisplay,
    TextDisplay,
    Watch,
    parse_lines,
    run_batch,
)

# -- input ---------------------------------------------------------------------------


def test_plain_text_and_json_lines() -> None:
    items = parse_lines(["\ufeffa cat\n", "\n", "# a comment\n", "a dog\r\n", "a cat\n"])
    assert [i.prompt for i in items] == ["a cat", "a dog", "a cat"]
    assert items[0].key != items[2].key and items[2].key == items[0].key + "/2"
    assert [i.line for i in items] == [1, 4, 5]
    items = parse_lines(
        ['{"id": 7, "prompt": "x", "size": "720x1280", "seconds": 4, "style": "noir"}']
    )
    (item,) = items
    assert (item.key, item.item_id, item.model) == ("id:7", "7", "sora-2")
    assert item.extra == {"style": "noir"}
    assert item.params_json() == '{"seconds": 4, "size": "720x1280", "style": "noir"}'


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        (['{"prompt": "a"}', "{nope"], 2, "not valid JSON"),
        (['{"prompt": "a"}', "plain"], 2, "not a JSON object"),
        (["plain", '{"prompt": "a"}'], 2, "JSON line in a plain-text"),
        (['{"prompt": ""}'], 1, "non-empty string"),
        (['{"prompt": "a", "id": "x"}', '{"prompt": "b", "id": "x"}'], 2, "used twice"),
        (['{"prompt": "a", "model": 5}'], 1, '"model" must be a string'),
        (['{"prompt": "a", "seconds": [1]}'], 1, '"seconds"'),
        (['{"prompt": "a"}', "[1, 2]"], 2, "not a JSON object"),
        (['{"prompt": "a"}', '{"x": [1]} '], 2, "prompt"),
        (['{"prompt": "a", "id": true}'], 1, '"id"'),
    ],
)
def test_bad_lines_are_named(lines: list[str], line: int, words: str) -> None:
    with pytest.raises(BatchInputError) as info:
        parse_lines(lines, path="in.jsonl")
    assert info.value.line == line
    assert str(info.value).startswith(f"in.jsonl:{line}: ") and words in str(info.value)
    assert isinstance(info.value, LocalProtocolError)


def test_an_empty_file_is_an_error() -> None:
    with pytest.raises(BatchInputError, match="no prompt"):
        parse_lines(["", "# only a comment"])


# -- journal ---------------------------------------------------------------------------


def _journal(tmp_path: Any, name: str = "j.sqlite") -> Journal:
    return Journal(tmp_path / name, durable=False)


def test_journal_state_machine(tmp_path: Any) -> None:
    with _journal(tmp_path) as j:
        j.reconcile(parse_lines(['{"id": "a", "prompt": "x"}', '{"id": "b", "prompt": "y"}']))
        j.apply([Change("id:a", "attempt"), Change("id:a", "task", task_id="t1", endpoint="chat")])
        row = j.row("id:a")
        assert row is not None
        assert (row.state, row.task_id, row.attempts, row.endpoint) == (
            "submitted",
            "t1",
            1,
            "chat",
        )
        # Never back to a submission once the task id is known.
        with pytest.raises(LocalProtocolError, match="submitted"):
            j.apply([Change("id:a", "attempt")])
        with pytest.raises(LocalProtocolError):
            j.apply([Change("id:a", "task", task_id="t2")])
        # A bad change in a list writes none of it.
        with pytest.raises(LocalProtocolError):
            j.apply([Change("id:b", "attempt"), Change("id:b", "file", file="f")])
        assert j.row("id:b").attempts == 0  # type: ignore[union-attr]
        j.apply([Change("id:a", "succeeded", video_url="http://v/1.mp4")])
        j.apply([Change("id:a", "file", file="/tmp/1.mp4")])
        j.apply([Change("id:b", "failed", error="policy")])
        with pytest.raises(LocalProtocolError):
            j.apply([Change("id:b", "succeeded", video_url="u")])
        j.apply([Change("id:b", "retry")])
        assert j.counts() == {
            "succeeded": 1,
            "failed": 0,
            "pending": 1,
            "submitted": 0,
            "total": 2,
        }
        with pytest.raises(LocalProtocolError, match="no item"):
            j.apply([Change("id:zz", "attempt")])


def test_journal_survives_reopening_and_refuses_a_second_writer(tmp_path: Any) -> None:
    with _journal(tmp_path) as j:
        j.reconcile(parse_lines(["a"]))
        key = j.rows()[0].key
        j.apply([Change(key, "task", task_id="t")])
        from sora_transports.batch import JournalError

        with pytest.raises(JournalError, match="in use"):
            Journal(tmp_path / "j.sqlite")
    with Journal(tmp_path / "j.sqlite") as j:
        assert j.rows()[0].task_id == "t"
    (tmp_path / "not.sqlite").write_bytes(b"hello, this is not a database" * 100)
    from sora_transports.batch import JournalError

    with pytest.raises(JournalError, match="not a batch journal"):
        Journal(tmp_path / "not.sqlite")


def test_reconciliation_rules(tmp_path: Any) -> None:
    first = [
        '{"id": "keep", "prompt": "same"}',
        '{"id": "edit-pending", "prompt": "old"}',
        '{"id": "edit-paid", "prompt": "old"}',
        '{"id": "gone-pending", "prompt": "p"}',
        '{"id": "gone-paid", "prompt": "q"}',
    ]
    second = [
        '{"id": "new", "prompt": "fresh"}',
        '{"id": "edit-paid", "prompt": "new"}',
        '{"id": "keep", "prompt": "same"}',
        '{"id": "edit-pending", "prompt": "new", "size": "1x1"}',
    ]
    with _journal(tmp_path) as j:
        r = j.reconcile(parse_lines(first))
        assert len(r.added) == 5 and not r.changed
        j.apply([Change("id:edit-paid", "task", task_id="t1")])
        j.apply([Change("id:gone-paid", "task", task_id="t2")])
        r = j.reconcile(parse_lines(second))
        assert r.added == ("id:new",)
        assert r.updated == ("id:edit-pending",)
        assert r.kept == ("id:edit-paid",)
        assert r.dropped == ("id:gone-pending",)
        assert r.orphaned == ("id:gone-paid",)
        assert r.changed and len(r.lines()) == 5
        rows = {row.key: row for row in j.rows()}
        assert rows["id:edit-pending"].prompt == "new"
        assert rows["id:edit-pending"].params == {"size": "1x1"}
        assert rows["id:edit-paid"].prompt == "old"  # the paid version stays
        assert "id:gone-pending" not in rows and "id:gone-paid" in rows
        assert [row.key for row in j.rows()][:3] == ["id:new", "id:edit-paid", "id:keep"]


# -- gate ----------------------------------------------------------------------------


def test_gate_pauses_lowers_and_recovers() -> None:
    g = GatePolicy(8)
    g.rate_limited(now=0.0, delay=2.0)
    assert g.wait(1.0) == 1.0 and g.limit == 8
    g.rate_limited(now=1.5, delay=2.0)  # the tail of the same burst
    assert g.limit == 8 and g.wait(1.5) == 2.0
    g.rate_limited(now=4.0, delay=1.0)  # a new burst after the pause: second strike
    assert g.limit == 4 and g.lowered == 1
    for _ in range(4):
        g.succeeded()
    assert g.limit == 5
    for _ in range(5 + 6 + 7):
        g.succeeded()
    assert g.limit == 8
    g.succeeded()
    assert g.limit == 8
    low = GatePolicy(2, min_limit=2)
    low.rate_limited(0, 0)
    low.rate_limited(1, 0)
    assert low.limit == 2
    with pytest.raises(LocalProtocolError):
        GatePolicy(0)


# -- runner, with a fake generator ------------------------------------------------------------


class Fake:
    """A generator scripted per prompt: a list of outcomes, one per call."""

    endpoint = "fake"

    def __init__(self, script: dict[str, list[Any]], *, delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.submits: dict[str, int] = {}
        self.follows: dict[str, int] = {}
        self.running = 0
        self.peak = 0
        self.submit_times: list[float] = []

    async def submit(self, item: BatchItem, watch: Watch) -> Result:
        self.submits[item.prompt] = self.submits.get(item.prompt, 0) + 1
        self.submit_times.append(anyio.current_time())
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await anyio.sleep(self.delay)
            steps = self.script.get(item.prompt) or ["ok"]
            step = steps.pop(0) if len(steps) > 1 else steps[0]
            task = f"task-{item.prompt}"
            if step == "ok":
                await watch.task_id(task)
                watch.progress(50.0)
                return Result(f"http://v/{item.prompt}.mp4", task)
            if step == "break":  # the stream broke after the task id
                await watch.task_id(task)
                raise ConnectionLost("cut")
            if step == "break-carrying":  # the id only on the error
                raise ConnectionLost("cut", video=VideoResult("incomplete", task_id=task))
            if isinstance(step, BaseException):
                raise step
            raise AssertionError(step)
        finally:
            self.running -= 1

    async def follow(self, task_id: str, item: BatchItem, watch: Watch) -> Result:
        self.follows[item.prompt] = self.follows.get(item.prompt, 0) + 1
        outcome = self.script.get("follow:" + item.prompt, ["ok"])[0]
        if outcome == "policy":
            raise VideoGenerationFailed("content policy")
        if outcome == "lost":
            raise LookupError("no such task")
        return Result(f"http://v/{item.prompt}.mp4")

    async def download(self, result: Result, item: BatchItem, directory: str) -> str:
        if item.prompt == "nodl":
            raise ConnectionLost("download cut")
        return f"{directory}/{item.prompt}.mp4"


def _429(after: str = "0.2") -> RateLimitError:
    return RateLimitError("slow down", status_code=429, headers={"retry-after": after})


FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)


def _run(tmp_path: Any, prompts: list[str], gen: Fake, **kw: Any) -> Any:
    kw.setdefault("retry_policy", FAST)

    async def main() -> Any:
        return await run_batch(
            parse_lines(prompts), tmp_path / "j.sqlite", gen, durable=False, **kw
        )

    return anyio.run(main)


def _rows(tmp_path: Any) -> dict[str, Any]:
    with Journal(tmp_path / "j.sqlite") as j:
        return {r.prompt: r for r in j.rows()}


def test_runner_outcomes(tmp_path: Any) -> None:
    gen = Fake(
        {
            "flaky": [ConnectError("refused"), "ok"],
            "broken": ["break"],
            "carry": ["break-carrying"],
            "refused": [VideoGenerationFailed("content policy")],
            "dead": [ConnectError("refused")],
            "started": [ConnectionLost("cut", video=VideoResult("incomplete"))],
            "bad": [LocalProtocolError("bad request")],
            "nodl": ["ok"],
        }
    )
    prompts = ["fine", "flaky", "broken", "carry", "refused", "dead", "started", "bad", "nodl"]
    summary = _run(tmp_path, prompts, gen, concurrency=3, download_dir="/dl")
    rows = _rows(tmp_path)
    assert rows["fine"].state == "succeeded" and rows["fine"].file == "/dl/fine.mp4"
    assert (rows["flaky"].state, rows["flaky"].attempts, gen.submits["flaky"]) == (
        "succeeded",
        2,
        2,
    )
    # Broken after the task id: followed, never submitted again.
    for p in ("broken", "carry"):
        assert (rows[p].state, rows[p].task_id, gen.submits[p], gen.follows[p]) == (
            "succeeded",
            f"task-{p}",
            1,
            1,
        )
    assert rows["refused"].state == "failed" and gen.submits["refused"] == 1
    assert rows["refused"].error == "content policy"
    assert rows["dead"].state == "failed" and gen.submits["dead"] == 3  # 1 + 2 retries
    assert rows["dead"].error.startswith("ConnectError")
    # A stream that began without a task id may have been paid for: not resent.
    assert rows["started"].state == "failed" and gen.submits["started"] == 1
    assert rows["bad"].state == "failed" and gen.submits["bad"] == 1
    assert rows["nodl"].state == "succeeded" and rows["nodl"].file is None
    assert rows["nodl"].error.startswith("download failed")
    assert summary.counts["failed"] == 4 and not summary.ok
    assert summary.followed == 2 and gen.peak <= 3


def test_rerun_skips_finished_follows_submitted_and_retries_failed_on_request(
    tmp_path: Any,
) -> None:
    gen = Fake({"a": ["ok"], "b": ["break"], "follow:b": ["lost"], "c": [ConnectError("x")]})
    summary = _run(tmp_path, ["a", "b", "c"], gen, retry_policy=RetryPolicy(max_retries=0))
    rows = _rows(tmp_path)
    assert rows["b"].state == "submitted" and rows["b"].error.startswith("LookupError")
    assert summary.counts == {
        "succeeded": 1,
        "failed": 1,
        "pending": 1,
        "submitted": 1,
        "total": 3,
    }
    gen2 = Fake({"c": ["ok"]})
    summary = _run(tmp_path, ["a", "b", "c"], gen2)
    assert gen2.submits == {} and gen2.follows == {"b": 1}  # c stays failed
    assert summary.counts["pending"] == 0 and summary.counts["failed"] == 1
    summary = _run(tmp_path, ["a", "b", "c"], gen2, retry_failed=True)
    assert gen2.submits == {"c": 1} and summary.ok


def test_a_429_pauses_every_worker(tmp_path: Any) -> None:
    gen = Fake({"p0": [_429("0.3"), "ok"]}, delay=0.01)
    prompts = [f"p{i}" for i in range(8)]
    summary = _run(tmp_path, prompts, gen, concurrency=4)
    assert summary.ok and summary.rate_limited == 1 and gen.submits["p0"] == 2
    # After the 429 (the first round, at ~0.01 s), no submission started
    # until the pause of 0.3 s had passed.
    start = gen.submit_times[0]
    later = [t - start for t in gen.submit_times[4:]]
    assert later and min(later) >= 0.28


def test_repeated_429s_lower_the_concurrency(tmp_path: Any) -> None:
    # Two bursts: all four 429 together (one strike), then again after the
    # pause (a second strike): the concurrency is halved once, not per 429.
    script: dict[str, list[Any]] = {f"p{i}": [_429("0.05"), _429("0.05"), "ok"] for i in range(4)}
    gen = Fake(script, delay=0.02)
    summary = _run(tmp_path, [f"p{i}" for i in range(4)], gen, concurrency=4)
    assert summary.ok and summary.rate_limited == 8
    assert summary.concurrency_lowered == 1
    assert 2 <= summary.final_concurrency < 4


def test_a_401_stops_the_batch_and_keeps_the_journal(tmp_path: Any) -> None:
    gen = Fake({"a": [AuthenticationError("bad key", status_code=401)]})
    with pytest.raises(BatchAborted, match="bad key"):
        _run(tmp_path, ["a", "b", "c"], gen, concurrency=1)
    rows = _rows(tmp_path)
    assert rows["a"].state == "pending" and rows["a"].attempts == 1


# -- displays ---------------------------------------------------------------------------------


def test_json_display_lines_and_summary(tmp_path: Any) -> None:
    out = io.StringIO()
    gen = Fake({"b": [VideoGenerationFailed("nope")]})
    _run(tmp_path, ["a", "b"], gen, display=JsonDisplay(out))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {(r["prompt"], r["status"]) for r in lines[:-1]} == {
        ("a", "succeeded"),
        ("b", "failed"),
    }
    assert lines[-1] == {"succeeded": 1, "failed": 1, "pending": 0, "total": 2}


def test_terminal_display_draws_bar_and_running_lines() -> None:
    out = io.StringIO()
    now = [0.0]
    d = TerminalDisplay(out, clock=lambda: now[0], width=80, interval=0)
    from sora_transports.batch import Reconciliation

    d.start(Reconciliation(), {"succeeded": 0, "failed": 0, "pending": 3, "total": 3}, 3)
    a, b = BatchItem("k1", "first prompt"), BatchItem("k2", "second prompt " * 20)
    d.running(a)
    d.running(b)
    d.task("k1", "task_1")
    d.progress("k1", 42.0)
    rows = d.rows()
    assert "running 2" in rows[0] and "ETA --" in rows[0]
    assert "42.0%" in rows[1] and "task_1" in rows[1]
    assert all(len(r) <= 80 for r in rows)
    now[0] = 10.0
    d.finished(a, "succeeded", "task_1", "http://v/1.mp4", None, None)
    assert "1/3" in d.bar() and "ETA 0:20" in d.bar()
    d.close({"succeeded": 1, "failed": 0, "pending": 2, "total": 3})
    text = out.getvalue()
    assert "\x1b[" in text and "✓ k1 http://v/1.mp4" in text
    assert text.rstrip().endswith("1 succeeded, 0 failed, 2 not finished (of 3)")


def test_text_display_lines() -> None:
    out = io.StringIO()
    d = TextDisplay(out)
    d.finished(BatchItem("id:x", "p", item_id="x"), "failed", None, None, None, "policy")
    d.unfinished("id:y", "t9", "LookupError: gone")
    assert out.getvalue().splitlines() == [
        "✗ x policy",
        "… id:y task t9 not finished: LookupError: gone",
    ]
