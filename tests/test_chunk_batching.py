"""The message-level transports hand over every HTTP chunk already received
in one read (``sora_transports._chunked``), not one chunk per read.

requests: ``read1`` of the response class (http.client's, with the buffered
whole chunks taken at once); httpx: the bytes of a read rewritten as one
chunk for httpcore's h11. Either way the body's data, its end, its trailers
and its framing errors must be exactly those of the library reading the
same bytes itself, however they are split; only the number of reads falls.
"""

from __future__ import annotations

import asyncio
import http.client
import io
from typing import Any

import h11
import pytest
import trio

from sora_core import ChatRequest, ConnectionLost, RemoteProtocolError
from sora_transports import httpx as httpx_transport
from sora_transports import requests as rq_transport
from sora_transports._chunked import BAD_FOOTER, MORE, OTHER, Reframer, scan
from tests import hostile_server as hs

from .feeding import feed_three_ways

pytestmark = pytest.mark.timeout(60)

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENTS = [b'data: {"n": %d, "text": "word %d"}\n\n' % (i, i) for i in range(30)]


def chunks(*pieces: bytes, line: str = "%x") -> bytes:
    return b"".join((line % len(p)).encode() + b"\r\n" + p + b"\r\n" for p in pieces)


PLAIN = chunks(*EVENTS) + b"0\r\n\r\n"
BODIES = {
    "plain": PLAIN,
    "one-byte chunks": chunks(*(bytes([b]) for b in b"".join(EVENTS[:3]))) + b"0\r\n\r\n",
    "a large chunk": chunks(EVENTS[0], b"x" * 70_000, EVENTS[1]) + b"0\r\n\r\n",
    "upper case and zeros": chunks(*EVENTS[:3], line="%X")
    + chunks(*EVENTS[3:6], line="000%x")
    + b"0\r\n\r\n",
    "an extension": chunks(*EVENTS[:3])
    + chunks(EVENTS[3], line="%x;a=b")
    + chunks(*EVENTS[4:6])
    + b"0\r\n\r\n",
    "a space after the size": chunks(*EVENTS[:3]) + chunks(EVENTS[3], line="%x ") + b"0\r\n\r\n",
    "trailers": chunks(*EVENTS[:4]) + b"0\r\nX-Trailer: yes\r\n\r\n",
    "several zeros end": chunks(*EVENTS[:4]) + b"000\r\n\r\n",
    "cut short in a chunk": chunks(*EVENTS[:4]) + b"20\r\nonly part",
    "cut short at a boundary": chunks(*EVENTS[:4]),
    "cut short in a size line": chunks(*EVENTS[:4]) + b"2",
    "cut short in a CRLF": chunks(*EVENTS[:4])[:-1],
    "not hex": chunks(*EVENTS[:4]) + b"zz\r\nnonsense\r\n0\r\n\r\n",
    "no CRLF after the data": chunks(*EVENTS[:4]) + b"8\r\n" + EVENTS[4] + b"\r\n0\r\n\r\n",
    "an endless size line": chunks(*EVENTS[:4]) + b"1" * 40 + b"\r\nx\r\n0\r\n\r\n",
    "garbage after the end": PLAIN + b"HTTP/1.1 200 OK\r\n\r\n",
}


# -- scan -------------------------------------------------------------------------------


def test_scan_takes_every_whole_chunk_and_the_start_of_a_partial_one() -> None:
    buf = chunks(b"abc", b"de") + b"5\r\nfg"
    pieces, pos, left, footer, why = scan(buf, 0, 0, False, 100)
    assert (b"".join(pieces), pos, left, footer, why) == (b"abcdefg", len(buf), 3, False, MORE)


def test_scan_never_stops_inside_a_size_line_or_a_crlf() -> None:
    assert scan(b"3\r\nabc\r\n1", 0, 0, False, 100)[1:] == (8, 0, False, MORE)
    assert scan(b"3\r\nabc\r", 0, 0, False, 100)[1:] == (6, 0, True, MORE)


def test_scan_stops_at_the_limit() -> None:
    pieces, pos, left, footer, why = scan(chunks(b"abcdef", b"gh"), 0, 0, False, 4)
    assert (b"".join(pieces), pos, left, footer, why) == (b"abcd", 7, 2, False, MORE)


@pytest.mark.parametrize(
    "line", [b"0", b"000", b"3;ext", b"3 ", b"+3", b"0x3", b"", b"1" * 19], ids=repr
)
def test_scan_leaves_any_other_line_to_the_library(line: bytes) -> None:
    buf = chunks(b"ab") + line + b"\r\nabc\r\n"
    pieces, pos, _, _, why = scan(buf, 0, 0, False, 100)
    assert (pieces, pos, why) == ([b"ab"], 7, OTHER)


def test_scan_stops_at_data_not_followed_by_crlf_after_taking_the_data() -> None:
    pieces, pos, _, footer, why = scan(b"2\r\nabXY", 0, 0, False, 100)
    assert (pieces, pos, footer, why) == ([b"ab"], 5, True, BAD_FOOTER)


# -- httpx: the reframer in front of h11 ------------------------------------------------------


def h11_body(pieces: list[bytes], reframe: bool) -> tuple[bytes, str, bytes, int]:
    """``pieces`` (the first one arriving with the head) through h11, as
    httpcore reads it: the data, how it ended, what h11 kept after the
    end, and how many Data events it took."""
    h = h11.Connection(h11.CLIENT)
    h.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    h.send(h11.EndOfMessage())
    h.receive_data(HEAD + pieces[0])
    assert isinstance(h.next_event(), h11.Response)
    reframer = Reframer(h.trailing_data[0], lambda: RemoteProtocolError("bad footer"))
    reads = [*pieces[1:], b""]

    def read() -> bytes:  # as the httpx transport's read does
        while True:
            raw = reads.pop(0) if reads else b""
            given = reframer.feed(raw) if reframe else raw
            if given or not raw:
                return given

    data, events = b"", 0
    while True:
        try:
            event = h.next_event()
            if event is h11.NEED_DATA:
                h.receive_data(read())
                continue
        except (h11.RemoteProtocolError, RemoteProtocolError):
            return data, "error", b"", events
        if isinstance(event, h11.Data):
            data += event.data
            events += 1
        else:
            assert isinstance(event, h11.EndOfMessage)
            return data, "end", h.trailing_data[0], events


@pytest.mark.parametrize("name", sorted(BODIES))
def test_h11_reads_the_same_body_through_the_reframer(name: str) -> None:
    body = BODIES[name]

    def run(pieces: list[bytes]) -> tuple[bytes, str]:
        for held in (0, 1):  # the first piece arrives with the head, or nothing does
            split = [b"", *pieces] if held == 0 else pieces
            direct = h11_body(split, reframe=False)
            reframed = h11_body(split, reframe=True)
            assert reframed[:3] == direct[:3]  # what h11 kept after the end too
        return direct[:2]  # (what h11 keeps after the end depends on the split)

    feed_three_ways(run, body, max_examples=30)


def test_h11_gets_one_data_event_per_read() -> None:
    data, how, _, events = h11_body([b"", PLAIN], reframe=True)
    assert (data, how, events) == (b"".join(EVENTS), "end", 1)
    assert h11_body([b"", PLAIN], reframe=False)[3] == len(EVENTS)


# -- requests: read1 of the response class ---------------------------------------------------


class _Pieces(io.RawIOBase):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = [p for p in pieces if p]

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self.pieces:
            return 0
        piece = self.pieces.pop(0)
        n = min(len(b), len(piece))
        b[:n] = piece[:n]
        if n < len(piece):
            self.pieces.insert(0, piece[n:])
        return n


class _Sock:
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_Pieces(self.pieces))


def read1_body(cls: type[http.client.HTTPResponse], pieces: list[bytes], n: int) -> Any:
    response = cls(_Sock([HEAD, *pieces]), method="GET")  # type: ignore[arg-type]
    response.begin()
    data, reads = b"", 0
    try:
        while piece := response.read1(n):
            assert len(piece) <= n
            data += piece
            reads += 1
    except http.client.HTTPException as exc:
        return data, type(exc).__name__, reads
    return data, "end", reads


@pytest.mark.parametrize("name", sorted(BODIES))
def test_read1_gives_the_body_http_client_gives(name: str) -> None:
    body = BODIES[name]

    def run(pieces: list[bytes]) -> tuple[bytes, str]:
        for n in (65536, 7):
            ours = read1_body(rq_transport._Response, pieces, n)
            theirs = read1_body(http.client.HTTPResponse, pieces, n)
            assert ours[:2] == theirs[:2]
        return ours[:2]

    feed_three_ways(run, body, max_examples=30)


def test_read1_takes_every_chunk_already_buffered() -> None:
    data, how, reads = read1_body(rq_transport._Response, [PLAIN], 65536)
    assert (data, how) == (b"".join(EVENTS), "end")
    assert reads == 1
    assert read1_body(http.client.HTTPResponse, [PLAIN], 65536)[2] == len(EVENTS)


# -- over loopback: fewer reads, the same events, the connection reused --------------------------


def _many_chunks(peer: hs.Peer) -> None:
    """Streams of 40 small chunks, each sent in one write, kept alive."""
    body = b"".join(hs.event(hs.chunk_json(f"w{i} ")) for i in range(40)) + hs.event("[DONE]")
    for _ in range(3):
        if not peer.read_request():
            return
        framed = b"".join(hs.chunked(line + b"\n\n") for line in body.split(b"\n\n")[:-1])
        peer.send(hs.head(chunked=True) + framed + b"0\r\n\r\n")


@pytest.mark.parametrize("module", [rq_transport, httpx_transport], ids=["requests", "httpx"])
def test_a_stream_of_small_chunks_is_read_in_few_reads_and_the_connection_kept(
    module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    io_class = module._RequestsIO if module is rq_transport else module._SyncIO
    reads: list[int] = []
    receive = io_class.receive

    def counting(self: Any, action: Any) -> bytes:
        data: bytes = receive(self, action)
        reads.append(len(data))
        return data

    monkeypatch.setattr(io_class, "receive", counting)
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    expected = "".join(f"w{i} " for i in range(40))
    with hs.HostileServer(_many_chunks, lifetime=30) as server:
        with module.Client(server.base_url, "sk-test", max_retries=0) as client:
            for _ in range(2):
                reads.clear()
                assert client.chat(request).text == expected
                assert len(reads) < 10, reads  # 41 chunks: one read each before
        assert server.connections == 1


@pytest.mark.parametrize("runner", ["asyncio", "trio"])
def test_the_async_httpx_client_reads_a_stream_of_small_chunks_in_few_reads(
    runner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    receive = httpx_transport._AsyncIO.receive

    async def counting(self: Any, action: Any) -> bytes:
        data: bytes = await receive(self, action)
        reads.append(len(data))
        return data

    monkeypatch.setattr(httpx_transport._AsyncIO, "receive", counting)
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)

    async def go(base_url: str) -> list[str]:
        texts = []
        async with httpx_transport.AsyncClient(base_url, "sk-test", max_retries=0) as client:
            for _ in range(2):
                reads.clear()
                texts.append((await client.chat(request)).text or "")
                assert len(reads) < 10, reads
        return texts

    expected = "".join(f"w{i} " for i in range(40))
    with hs.HostileServer(_many_chunks, lifetime=30) as server:
        if runner == "asyncio":
            texts = asyncio.run(go(server.base_url))
        else:
            texts = trio.run(go, server.base_url)
        assert texts == [expected, expected]
        assert server.connections == 1


def _head_with_a_chunk_then_a_chunk_then_gone(peer: hs.Peer) -> None:
    """The first chunk with the head, the second alone a little later, then
    the connection closes before the last chunk."""
    peer.read_request()
    peer.send(hs.head(chunked=True) + hs.chunked(hs.event(hs.chunk_json("partial "))))
    peer.wait(0.2)
    peer.send(hs.chunked(hs.event(hs.chunk_json("text"))))
    peer.wait(0.2)


@pytest.mark.parametrize("kind", ["requests", "httpx", "httpx-async"])
def test_data_after_the_bytes_that_came_with_the_head_is_kept_when_the_body_is_cut(
    kind: str,
) -> None:
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    with hs.HostileServer(_head_with_a_chunk_then_a_chunk_then_gone, lifetime=30) as server:
        if kind == "httpx-async":

            async def go() -> Any:
                async with httpx_transport.AsyncClient(server.base_url, "sk-test") as client:
                    with pytest.raises(ConnectionLost) as info:
                        await client.chat(request)
                return info

            info = asyncio.run(go())
        else:
            module = rq_transport if kind == "requests" else httpx_transport
            client = module.Client(server.base_url, "sk-test", max_retries=0)
            with client, pytest.raises(ConnectionLost) as info:
                client.chat(request)
    assert info.value.partial is not None and info.value.partial.text == "partial text"
