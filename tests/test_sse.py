"""Tests for the incremental Server-Sent Events decoder.

Every byte-level vector goes through ``feed_three_ways`` (whole, byte by byte,
random splits). The hypothesis properties cannot nest ``feed_three_ways``'s own
``@given``, so they draw their split points themselves and compare the same
three ways by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core._errors import LimitExceeded, LocalProtocolError
from sora_core._sse import ServerSentEvent, SSEDecoder
from tests.feeding import bytewise, cut, feed_three_ways, outcome

E = ServerSentEvent
Result = tuple[list[ServerSentEvent], str, "int | None"]


def runner(*, eof: bool = True, **kwargs: int) -> Callable[[list[bytes]], Result]:
    """A ``run`` for feed_three_ways: events, then ``last_event_id`` and ``retry``."""

    def run(pieces: list[bytes]) -> Result:
        decoder = SSEDecoder(**kwargs)
        events: list[ServerSentEvent] = []
        for piece in pieces:
            if piece:  # b"" would mean end of stream (only an empty input gives one)
                events += decoder.feed(piece)
        if eof:
            assert decoder.feed(b"") == []
        return events, decoder.last_event_id, decoder.retry

    return run


def decode(data: bytes, **kwargs: int) -> list[ServerSentEvent]:
    return feed_three_ways(runner(**kwargs), data)[0]


VECTORS: list[tuple[bytes, list[ServerSentEvent]]] = [
    # BOM: one leading BOM is ignored, only at the very start.
    (b"\xef\xbb\xbfdata: x\n\n", [E(data="x")]),
    (b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),  # field "\ufeffdata" is unknown
    (b"\xef\xbb\xbfdata: \xef\xbb\xbfx\n\n", [E(data="\ufeffx")]),
    (b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [E(data="a")]),
    (b"\xef\xbbdata: x\n\n", []),  # a BOM prefix that is no BOM stays in the line
    (b"\xef\ndata: x\n\n", [E(data="x")]),  # and does not swallow the line end
    (b"\xef\xbb\xbf", []),
    (b"\xef\xbb", []),
    # Line ends.
    (b"data: x\n\n", [E(data="x")]),
    (b"data: x\r\n\r\n", [E(data="x")]),
    (b"data: x\r\r", [E(data="x")]),
    (b"data: a\r\ndata: b\rdata: c\n\r\n", [E(data="a\nb\nc")]),
    (b"data: x\r\r\n", [E(data="x")]),  # CR then CRLF: line end, blank line
    (b"data: x\r\n\ndata: y\n\r", [E(data="x"), E(data="y")]),
    (b"data: x\r\n\r\n\r\n\r\ndata: y\r\n\r\n", [E(data="x"), E(data="y")]),
    (b"\r\n\r\r\n\ndata: x\r\n\r\n", [E(data="x")]),
    # Comments.
    (b": PING\ndata: x\n: another\n\n", [E(data="x")]),
    (b":\n\n: PING\n\n", []),
    (b":data: x\n\n", []),
    # Field/value split.
    (b"data:x\n\n", [E(data="x")]),
    (b"data:  x\n\n", [E(data=" x")]),
    (b"data: a:b: c\n\n", [E(data="a:b: c")]),
    (b"event:a:b\ndata\n\n", [E(event="a:b", data="")]),
    (b"data: x \n\n", [E(data="x ")]),
    (b"data:\tx\n\n", [E(data="\tx")]),
    # Data buffer.
    (b"data: a\ndata: b\ndata:\ndata: c\n\n", [E(data="a\nb\n\nc")]),
    (b"data:\n\n", [E(data="")]),
    (b"data\n\n", [E(data="")]),
    (b"data:\ndata:\n\n", [E(data="\n")]),
    (b"data: \n\n", [E(data="")]),
    (b"\n\n\n", []),
    (b"event: foo\n\n", []),
    (b"event: foo\n\ndata: x\n\n", [E(data="x")]),  # type reset without dispatch
    (b"event: a\ndata: 1\n\ndata: 2\n\n", [E(event="a", data="1"), E(data="2")]),
    (b"event: a\nevent: b\ndata: 1\n\n", [E(event="b", data="1")]),
    (b"event:\ndata: 1\n\n", [E(data="1")]),
    (b"event\ndata: 1\n\n", [E(data="1")]),
    (b"data: 1\nevent: late\n\n", [E(event="late", data="1")]),
    # Unknown fields (names are case-sensitive) are ignored.
    (b"foo: bar\nData: x\nDATA: y\n data: z\ndata : w\ndata: ok\n\n", [E(data="ok")]),
    (b"foo\n\n", []),
    # Unfinished event or line at the end of the stream: discarded.
    (b"data: x\n", []),
    (b"data: x", []),
    (b"data: x\n\ndata: y\n", [E(data="x")]),
    (b"data: x\n\ndata: y\r", [E(data="x")]),
    # UTF-8: invalid bytes become U+FFFD, split characters decode whole.
    (b"data: \xff\xfeok\n\n", [E(data="\ufffd\ufffdok")]),
    (b"data: \xe2\x82\n\n", [E(data=b"\xe2\x82".decode("utf-8", "replace"))]),
    (b"event: \xc3\n data: x\ndata: \xc3\xa9\n\n", [E(event="\ufffd", data="\xe9")]),
    (b"data: \xf0\x9f\x98\x80\n\n", [E(data="\U0001f600")]),
    (b"data: a\xf0\x9f\x98\x80\ndata: \xf0\x9f\x98\x80b\n\n", [E(data="a\U0001f600\n\U0001f600b")]),
    # Only CR and LF end lines.
    (
        "data: a\u2028b\u2029c\x85d\x0ce\x0bf\x1cg\x1dh\x1ei\n\n".encode(),
        [E(data="a\u2028b\u2029c\x85d\x0ce\x0bf\x1cg\x1dh\x1ei")],
    ),
    (b"data: a\x00b\n\n", [E(data="a\x00b")]),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_vectors(data: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode(data) == expected


@pytest.mark.parametrize(
    ("data", "ids", "last"),
    [
        (b"id: 1\ndata: a\n\ndata: b\n\n", ["1", "1"], "1"),
        (b"id: 1\ndata: a\n\nid: 2\x00x\ndata: b\n\n", ["1", "1"], "1"),  # NUL: ignored
        (b"id: 1\ndata: a\n\nid\ndata: b\n\n", ["1", ""], ""),  # empty value resets
        (b"id: 1\ndata: a\n\nid:\ndata: b\n\n", ["1", ""], ""),
        (b"id: 7\n\n", [], "7"),  # set on a blank line even if nothing is dispatched
        (b"id: 7\n", [], ""),  # but not by an event discarded at EOF
        (b"data: a\nid: 3\n\n", ["3"], "3"),
        (b"id: 1\nid: 2\ndata: a\n\n", ["2"], "2"),
        (b"id:  x\ndata: a\n\n", [" x"], " x"),
        (b"id: \xff\ndata: a\n\n", ["\ufffd"], "\ufffd"),
        (b"ID: 1\ndata: a\n\n", [""], ""),
    ],
)
def test_last_event_id(data: bytes, ids: list[str], last: str) -> None:
    events, last_event_id, _ = feed_three_ways(runner(), data)
    assert [e.id for e in events] == ids
    assert last_event_id == last


@pytest.mark.parametrize(
    ("data", "retries", "in_force"),
    [
        (b"retry: 1500\ndata: x\n\n", [1500], 1500),
        (b"retry: 1500\ndata: x\n\ndata: y\n\n", [1500, None], 1500),
        (b"retry: 12a\ndata: x\n\n", [None], None),
        (b"retry: 100\ndata: x\n\nretry: 12a\ndata: y\n\n", [100, None], 100),
        (b"retry:\ndata: x\n\n", [None], None),
        (b"retry\ndata: x\n\n", [None], None),
        (b"retry: -5\ndata: x\n\n", [None], None),
        (b"retry: 1.5\ndata: x\n\n", [None], None),
        (b"retry:  15\ndata: x\n\n", [None], None),  # value " 15" is not all digits
        (b"retry: \xd9\xa1\ndata: x\n\n", [None], None),  # Arabic-Indic one: not ASCII
        (b"retry:007\ndata: x\n\n", [7], 7),
        (b"retry: 5\n\ndata: x\n\n", [None], 5),  # block without data: nothing dispatched
        (b"retry: 5\nretry: 6\ndata: x\n\n", [6], 6),
        (b"retry: 5\n", [], 5),  # in force at once, even if the event never completes
        (b"Retry: 5\ndata: x\n\n", [None], None),
    ],
)
def test_retry(data: bytes, retries: list[int | None], in_force: int | None) -> None:
    events, _, retry = feed_three_ways(runner(), data)
    assert [e.retry for e in events] == retries
    assert retry == in_force


def test_retry_with_more_digits_than_int_accepts_is_ignored() -> None:
    data = b"retry: " + b"9" * 5000 + b"\ndata: x\n\n"
    assert feed_three_ways(runner(), data, max_examples=5) == ([E(data="x")], "", None)


def test_all_fields_together() -> None:
    data = b'id: 42\nevent: update\nretry: 3000\ndata: {"a": 1}\ndata: more\n\n'
    events, last_event_id, retry = feed_three_ways(runner(), data)
    assert events == [E(event="update", data='{"a": 1}\nmore', id="42", retry=3000)]
    assert (last_event_id, retry) == ("42", 3000)


def _prompt(pieces: list[bytes]) -> tuple[list[ServerSentEvent], list[ServerSentEvent]]:
    """What the feeds before the last returned, and what the last one returned."""
    decoder = SSEDecoder()
    results = [decoder.feed(piece) for piece in pieces]
    return [e for result in results[:-1] for e in result], results[-1]


@pytest.mark.parametrize(
    "data",
    # (With a final CRLF the CR completes the event: its LF would come later.)
    [b"data: x\n\n", b"data: x\r\n\n", b"data: x\r\r", b"data: x\n\r", b"data: x\r\n\r"],
)
def test_the_feed_completing_an_event_returns_it(data: bytes) -> None:
    # No feed(b"") and no further byte: the event is out with the last byte.
    assert feed_three_ways(_prompt, data) == ([], [E(data="x")])


def test_earlier_events_come_out_before_the_stream_continues() -> None:
    data = b"data: 1\n\ndata: 2\r\rdata: 3\r\n\r\ndata: 4"
    events, _, _ = feed_three_ways(runner(eof=False), data)
    assert events == [E(data="1"), E(data="2"), E(data="3")]


def test_cr_at_end_of_feed_then_lf_is_one_line_end() -> None:
    def run(pieces: list[bytes]) -> tuple[list[ServerSentEvent], list[ServerSentEvent]]:
        decoder = SSEDecoder()
        # The CR ends the blank line at once, so this feed already returns x...
        first = decoder.feed(b"data: x\r\n\r")
        # ...and the LF starting the next feed is not another (blank) line.
        rest = [e for piece in pieces for e in decoder.feed(piece)]
        return first, rest

    assert feed_three_ways(run, b"\ndata: y\r\n\n") == ([E(data="x")], [E(data="y")])
    assert feed_three_ways(run, b"\n\ndata: y\r") == ([E(data="x")], [])


def _limited(max_event_size: int) -> Callable[[list[bytes]], object]:
    return outcome(runner(eof=False, max_event_size=max_event_size))


def test_limit_counts_data_plus_current_line() -> None:
    one_line = b"data: abc\n\n"  # the line is 9 bytes
    assert feed_three_ways(_limited(9), one_line) == (([E(data="abc")], "", None), None)
    bad = feed_three_ways(_limited(8), one_line)
    assert isinstance(bad, tuple)
    assert bad[1][0] == "LimitExceeded"
    assert "larger than 8 bytes" in bad[1][1]
    two_lines = b"data: abc\ndata: de\n\n"  # 4 bytes of data ("abc\n"), then 8
    assert feed_three_ways(_limited(12), two_lines)[0] == ([E(data="abc\nde")], "", None)
    assert feed_three_ways(_limited(11), two_lines)[1] is not None


def test_limit_is_per_event() -> None:
    data = b"data: 0123456789\n\n" * 20
    events = feed_three_ways(_limited(16), data)
    assert events == (([E(data="0123456789")] * 20, "", None), None)


def test_limit_message_and_then_refusal() -> None:
    def run(pieces: list[bytes]) -> tuple[str, str]:
        decoder = SSEDecoder(max_event_size=10)
        with pytest.raises(LimitExceeded) as exceeded:
            for piece in pieces:
                decoder.feed(piece)
        with pytest.raises(LocalProtocolError) as refused:
            decoder.feed(b"data: x\n\n")
        with pytest.raises(LocalProtocolError):
            decoder.feed(b"")
        return str(exceeded.value), str(refused.value)

    exceeded, refused = feed_three_ways(run, b"data: x\n\ndata: " + b"y" * 20 + b"\n\n")
    assert exceeded.startswith("server-sent event larger than 10 bytes (max_event_size)")
    assert "failed earlier" in refused
    assert "create a new one" in refused
    assert "LimitExceeded" in refused


@pytest.mark.parametrize("prefix", [b"", b"data: ok\n\n", b"data: a\n", b": c\n"])
def test_endless_line_hits_the_limit(prefix: bytes) -> None:
    limit = 50
    # Exactly the limit is fine (and is discarded at EOF)...
    assert feed_three_ways(outcome(runner(max_event_size=limit)), b"x" * limit)[1] is None
    # ...one byte more raises, however it is cut: the buffer never outgrows it.
    result = feed_three_ways(_limited(limit), prefix + b"d" * (limit + 1))
    assert result[1] is not None
    assert result[1][0] == "LimitExceeded"


def test_feed_after_end_of_stream_is_refused() -> None:
    def run(pieces: list[bytes]) -> tuple[list[ServerSentEvent], str]:
        decoder = SSEDecoder()
        events = [e for piece in pieces for e in decoder.feed(piece)]
        assert decoder.feed(b"") == []
        with pytest.raises(LocalProtocolError) as refused:
            decoder.feed(b"\n")
        with pytest.raises(LocalProtocolError):
            decoder.feed(b"")
        return events, str(refused.value)

    events, message = feed_three_ways(run, b"data: x\n\ndata: y\n")
    assert events == [E(data="x")]
    assert "end of the stream" in message


def test_other_bytes_like_inputs() -> None:
    def run(pieces: list[bytes]) -> list[ServerSentEvent]:
        decoder = SSEDecoder()
        out: list[ServerSentEvent] = []
        for i, piece in enumerate(pieces):
            out += decoder.feed(bytearray(piece) if i % 2 else memoryview(piece))  # type: ignore[arg-type]
        return out

    assert feed_three_ways(run, b"data: a\r\nid: 1\r\n\r\n") == [E(data="a", id="1")]


def test_public_api() -> None:
    decoder = SSEDecoder()
    assert (decoder.last_event_id, decoder.retry) == ("", None)
    assert E() == ServerSentEvent(event="message", data="", id="", retry=None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        E().data = "x"  # type: ignore[misc]
    assert not hasattr(E(), "__dict__")
    with pytest.raises(ValueError, match="max_event_size"):
        SSEDecoder(max_event_size=-1)


# -- properties ------------------------------------------------------------

splits = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


def three_ways(run: Callable[[list[bytes]], object], data: bytes, points: list[int]) -> object:
    whole = run([data])
    assert run(bytewise(data)) == whole
    assert run(cut(data, points)) == whole
    return whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.lists(st.sampled_from(
    [b"data", b"event", b"id", b"retry", b":", b" ", b"\r", b"\n", b"\xef\xbb\xbf", b"x", b"\x00",
     b"\xf0\x9f", b"1"]
)).map(b"".join), splits)  # fmt: skip
def test_fuzz_never_raises(data: bytes, points: list[int]) -> None:
    result = three_ways(outcome(runner()), data, points)
    assert isinstance(result, tuple)
    assert result[1] is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), splits, st.integers(min_value=0, max_value=20))
def test_fuzz_tiny_limit_only_raises_limit_exceeded(
    data: bytes, points: list[int], max_event_size: int
) -> None:
    result = three_ways(outcome(runner(max_event_size=max_event_size)), data, points)
    assert isinstance(result, tuple)
    assert result[1] is None or result[1][0] == "LimitExceeded"


no_line_end = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"))
events_strategy = st.lists(
    st.tuples(
        no_line_end.filter(lambda s: s != ""),  # event type ("" would mean "message")
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r")),  # data
        st.none() | no_line_end.filter(lambda s: "\x00" not in s),  # id field, if any
        st.none() | st.integers(min_value=0, max_value=10**12),  # retry field, if any
        st.booleans(),  # a comment line too
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(events_strategy, st.booleans(), st.data())
def test_encoded_events_decode_back(
    events: list[tuple[str, str, str | None, int | None, bool]], bom: bool, draw: st.DataObject
) -> None:
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    last_id = ""
    for event, data, id_, retry, comment in events:
        if comment:
            lines.append(": keep-alive")
        if id_ is not None:
            lines.append(f"id: {id_}")
            last_id = id_
        lines.append(f"event: {event}")
        if retry is not None:
            lines.append(f"retry: {retry}")
        lines += [f"data: {part}" for part in data.split("\n")]
        lines.append("")
        expected.append(E(event=event, data=data, id=last_id, retry=retry))
    ends = draw.draw(st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=len(lines)))
    text, previous = "", ""
    for line, end in zip(lines, ends[: len(lines)], strict=True):
        if previous == "\r" and line == "" and end == "\n":
            end = "\r"  # CR then a lone LF would be one CRLF, not two line ends
        text += line + end
        previous = end
    encoded = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    result = three_ways(runner(), encoded, draw.draw(splits))
    retries = [r for *_, r, _ in events if r is not None]
    assert result == (expected, last_id, retries[-1] if retries else None)


# Reads made of whole one-line data events are built at once, without the
# line-by-line loop; every read that is not exactly that takes the loop. The
# two must agree wherever a read starts and ends, in both output forms.
@pytest.mark.parametrize(
    "data",
    [
        b"data: a\n\ndata: b\n\ndata: c\n\n",
        b"id: 7\ndata: a\n\ndata: b\n\n: ping\n\ndata: c\n\n",
        b"retry: 9\ndata: a\n\ndata: b\n\nevent: x\ndata: c\n\ndata: d\n\n",
        b"data: a\n\n\n\ndata: b\ndata: c\n\ndata: d\n\ndata:e\n\ndata: f\n\n",
        b"data: a\n\ndata: b\r\n\r\ndata: c\n\ndata: \n\ndata: d",
        # Blocks that are more than one data line between one-line events:
        # ids that later events carry, comments, two-line data, a lone id.
        b"data: a\n\nid: 5\n\ndata: b\n\n: keep-alive\n\ndata: c\n\nid: 6\ndata: d\n\n"
        b"data: e\n\ndata: f\ndata: g\n\ndata: h\n\nevent: x\ndata: i\n\ndata: j\n\n",
    ],
)
def test_whole_data_events_agree_with_the_line_loop(data: bytes) -> None:
    def raw(pieces: list[bytes]) -> tuple[list[tuple[str, bytes]], str]:
        decoder = SSEDecoder()
        out: list[tuple[str, bytes]] = []
        for piece in pieces:
            if piece:
                out += decoder._feed_raw(piece)
        out += decoder._feed_raw(b"")
        return out, decoder.last_event_id

    by_byte = raw(bytewise(data))
    decoded = decode(data)  # whole, byte by byte, random cuts: the same
    assert [(e.event, e.data.encode()) for e in decoded] == by_byte[0]
    assert len(by_byte[0]) >= 3
    for at in range(len(data) + 1):
        assert raw([data[:at], data[at:]]) == by_byte, at

    def typed(pieces: list[bytes]) -> list[ServerSentEvent]:
        decoder = SSEDecoder()
        return [e for piece in [*filter(None, pieces), b""] for e in decoder.feed(piece)]

    # The typed events too, ids and retries included, at every cut.
    whole = typed(bytewise(data))
    for at in range(len(data) + 1):
        assert typed([data[:at], data[at:]]) == whole, at
