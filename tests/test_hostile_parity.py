"""Issue 14, items 11, 12 and 15: one answer for the same bytes on every transport.

Interim (1xx) answers are skipped; ``data: [DONE]`` ends the call even when
the relay leaves the body open; and the framing mistakes one HTTP library
lets through and another refuses are refused by all of them, the same way.
Real loopback servers (tests/hostile_server.py), every transport.
"""

from __future__ import annotations

import pytest

from sora_core import RemoteProtocolError, StreamEnded
from tests import hostile_more as hs
from tests.hostile_server import PARTIAL
from tests.test_hostile import TRANSPORTS, call, serve

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


FULL = PARTIAL + "."  # COMPLETE's text: the partial text and the finishing chunk


def test_interim_answers_are_skipped(transport: str) -> None:
    with serve(hs.interim_then_stream) as server:
        out = call(transport, server.base_url)
    assert out.error is None, repr(out.error)
    assert out.streamed_text().startswith(PARTIAL)
    ends = [e for e in out.events if isinstance(e, StreamEnded)]
    assert len(ends) == 1 and ends[0].reason == "done"


def test_done_ends_the_call_though_the_body_stays_open(transport: str) -> None:
    # The relay never ends the chunked body: the call must not wait for the
    # idle timeout (5 s in call()) once [DONE] arrived.
    with serve(hs.done_then_hold) as server:
        out = call(transport, server.base_url, idle_timeout=5.0)
    assert out.error is None, repr(out.error)
    assert any(isinstance(e, StreamEnded) and e.reason == "done" for e in out.events)
    assert out.seconds < 2.0, f"took {out.seconds:.2f} s"


@pytest.mark.parametrize(
    "behaviour",
    [
        hs.content_length_minus_one,
        hs.content_length_plus,
        hs.nul_in_header_value,
        hs.gzip_chunked,
        hs.http2_status_line,
    ],
    ids=["content-length--1", "content-length-+N", "nul-in-value", "gzip-chunked", "http-2.0"],
)
def test_framing_mistakes_get_one_answer_everywhere(transport: str, behaviour: object) -> None:
    with serve(behaviour) as server:  # type: ignore[arg-type]
        out = call(transport, server.base_url)
    assert isinstance(out.error, RemoteProtocolError), f"{transport}: {out.error!r}"
    assert "malformed HTTP response" in str(out.error), str(out.error)
    assert not out.events  # nothing of a response framed wrongly is handed out
