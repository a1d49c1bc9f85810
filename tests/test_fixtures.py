"""The recorded relay streams give their expected results through the core.

The streams live in ``tests/fixtures/relay-streams`` (a copy of the shared
recordings); each ``.sse`` body has an ``.expect.json`` with the values a
client must draw from it. Every body is fed whole, byte by byte and at
random splits.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from sora_core import ChatResponse, StreamEnded

from .feeding import feed_three_ways

HERE = pathlib.Path(__file__).parent / "fixtures" / "relay-streams"
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "relay-streams"
STREAMS = sorted(HERE.glob("*.sse"))


def replay(body: bytes) -> dict[str, Any]:
    def run(pieces: list[bytes]) -> dict[str, Any]:
        r = ChatResponse(stream=True, video=True)
        r.receive_headers(200, [("content-type", "text/event-stream")])
        events: list[Any] = []
        for piece in pieces:
            events += r.receive_body(piece)
        events += r.receive_body(b"")
        end = events[-1]
        assert isinstance(end, StreamEnded) and end.video is not None
        return {"events": events, "result": end.video.to_dict()}

    return feed_three_ways(run, body, max_examples=15)


@pytest.mark.parametrize("path", STREAMS, ids=[p.stem for p in STREAMS])
def test_fixture_gives_its_expected_result(path: pathlib.Path) -> None:
    expected = json.loads(path.with_suffix("").with_suffix(".expect.json").read_text())
    got = replay(path.read_bytes())["result"]
    assert {k: got.get(k) for k in expected} == expected


def test_fixtures_are_a_copy_of_the_shared_ones() -> None:
    assert len(STREAMS) >= 4
    if not SHARED.is_dir():
        pytest.skip("shared/ is not beside this checkout")
    for path in SHARED.iterdir():
        assert (HERE / path.name).read_bytes() == path.read_bytes(), path.name
