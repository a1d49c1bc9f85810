"""The wire level: an h11 client connection around :class:`ChatResponse`.

``send(request) -> bytes`` to write; ``receive_data(bytes)`` (``b""`` is
EOF); ``next_event()`` until it returns :data:`NEED_DATA`. h11 does the
HTTP/1.1 framing (content-length, chunked, close-delimited, keep-alive);
this module maps its events and errors to the project's own, so nothing of
h11 reaches a user (the way wsproto wraps it).

One connection runs many exchanges in a row: when an exchange's body has
been read to its end, :class:`ExchangeComplete` says whether the connection
can be reused, and ``send`` takes the next request.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn

import h11

from ._chunks import BAD_FOOTER, OTHER, bad_footer, scan
from ._errors import LimitExceeded, LocalProtocolError, RemoteProtocolError, SoraError
from ._events import NEED_DATA, Event, ExchangeComplete, _NeedData
from ._framing import check_http_version
from ._limits import Limits
from ._request import HTTPRequest, build_request
from ._response import ChatResponse
from ._shapes import ChatCompletion, ChatRequest
from ._video import VideoResult

__all__ = ["ChatConnection"]

_QUOTED_BYTES = re.compile(r"""[:,]?\s*(bytearray\()?b(['"]).*?(?<!\\)\2\)?""")

# Connection states, as seen by a user.
IDLE = "IDLE"  # ready to send a request
WAITING = "WAITING"  # request sent, response being read
CLOSED = "CLOSED"  # the connection cannot carry another exchange
ERROR = "ERROR"  # something went wrong; the object refuses further use


def _TRAILING() -> RemoteProtocolError:
    return RemoteProtocolError(
        "the server sent data after the end of the response "
        "(a body longer than its Content-Length, or garbage after the last chunk)"
    )


def _chunked_body(head: h11.Response, request: HTTPRequest | None) -> bool:
    """Whether a chunked body follows ``head`` (h11 checked its framing)."""
    if request is None or request.method in ("HEAD", "CONNECT"):
        return False
    if head.status_code in (204, 304) or head.http_version != b"1.1":
        return False
    return any(k == b"transfer-encoding" and v.lower() == b"chunked" for k, v in head.headers)


class ChatConnection:
    """A client connection to one chat completions endpoint, with no I/O.

    Give it the base URL and token once (or pass
    :class:`~sora_core.HTTPRequest` objects you built yourself to
    :meth:`send`). It never opens a socket: the caller writes what
    :meth:`send` returns and feeds what it reads to :meth:`receive_data`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        limits: Limits | None = None,
        video: bool | None = None,
        assemble: bool = True,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._headers = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        self.limits = limits or Limits()
        self._video = video
        self._assemble = assemble
        # h11 bounds a head (and a chunk-size line, a trailer section) only
        # while it is incomplete, when asked for the next event: one that
        # arrives in a single read is never checked. So h11 is never given
        # more bytes than take what it holds to max_header_size (the rest
        # waits in _unfed): an element that long is then still incomplete
        # at some NEED_DATA, and h11, whose limit is one less, refuses it,
        # however the bytes were split. This also keeps the order of the
        # checks that of a byte-by-byte feed (a bad status line is seen at
        # its first byte, a head too long at byte max_header_size + 1).
        self._h11 = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=self.limits.max_header_size - 1
        )
        self._budget = self.limits.max_header_size  # what h11 may be given now
        self._unfed = bytearray()  # received, not given to h11 yet
        self._eof = False  # receive_data(b"") was called
        self._state = IDLE
        self._error: SoraError | None = None
        self._pending_error: SoraError | None = None
        self._events: deque[Event] = deque()
        self._queue: list[Event] = []
        self._body_started = False
        self._held: Any = None  # an h11 event taken out after a body's Data, not handled yet
        # The chunked body's own reader (see _fast_pump): the bytes not read
        # yet, while it runs (None: h11 reads), the data bytes left in the
        # current chunk and the CRLF bytes still expected after it.
        self._fast: bytearray | None = None
        self._left = 0
        self._footer = False
        self._connection_headers: list[tuple[bytes, bytes]] = []
        self._response: ChatResponse | None = None
        self.request: HTTPRequest | None = None

    def __repr__(self) -> str:
        return f"<ChatConnection state={self._state}>"

    # -- state -------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``IDLE``, ``WAITING``, ``CLOSED`` or ``ERROR``."""
        return self._state

    @property
    def response(self) -> ChatResponse | None:
        """The message-level object of the current (or last) exchange."""
        return self._response

    @property
    def partial(self) -> ChatCompletion | None:
        """What the current exchange received so far, assembled."""
        return self._response.partial if self._response is not None else None

    @property
    def video_result(self) -> VideoResult | None:
        return self._response.video_result if self._response is not None else None

    @property
    def body_started(self) -> bool:
        """True once a byte of the response body arrived (no retry after that)."""
        return self._body_started

    # -- sending -----------------------------------------------------------------

    def send(
        self, request: ChatRequest | HTTPRequest, *, response: ChatResponse | None = None
    ) -> bytes:
        """The bytes to write for ``request``.

        A :class:`ChatRequest` is built with the base URL and token given to
        the constructor. ``response`` is the message-level object that reads
        the answer (any object with :class:`ChatResponse`'s ``receive_headers``
        / ``receive_body_into`` / ``ended``, e.g. a video task or download
        reader); by default a :class:`ChatResponse` for the request.
        """
        self._check_usable()
        if self._state == CLOSED:
            raise LocalProtocolError(
                "this connection was closed by the previous exchange; open a new one"
            )
        if self._state != IDLE:
            raise LocalProtocolError(
                "a request is already in flight: read its response until ExchangeComplete "
                "before sending the next one, or open another connection"
            )
        if isinstance(request, ChatRequest):
            if not self._base_url:
                raise LocalProtocolError(
                    "ChatConnection needs base_url=... to send a ChatRequest, or an "
                    "HTTPRequest built with build_request (the core reads no environment: "
                    "SORA_BASE_URL / OPENAI_BASE_URL are read by the clients)"
                )
            http = build_request(
                request, base_url=self._base_url, api_key=self._api_key, headers=self._headers
            )
            model: str | None = request.model
        elif isinstance(request, HTTPRequest):
            http = request
            model = None
        else:
            raise LocalProtocolError(
                f"send() takes a ChatRequest or an HTTPRequest, not {type(request).__name__}"
            )
        try:
            data = self._h11.send(
                h11.Request(method=http.method, target=http.target, headers=list(http.headers))
            )
            data = (data or b"") + (self._h11.send(h11.Data(data=http.body)) or b"")
            data += self._h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            self._state = ERROR
            self._error = LocalProtocolError(f"cannot send this request: {exc}")
            raise self._error from None
        self.request = http
        if response is None:
            response = ChatResponse(
                stream=http.stream,
                model=model,
                video=self._video,
                assemble=self._assemble,
                limits=self.limits,
            )
        self._response = response
        self._body_started = False
        self._state = WAITING
        return data

    # -- receiving ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the peer; ``b""`` means the peer closed (EOF)."""
        self._check_usable()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"receive_data() takes bytes, not {type(data).__name__}")
        if self._eof:
            if data:
                raise LocalProtocolError(
                    "receive_data() after EOF: receive_data(b'') said the peer closed"
                )
            return
        if (
            data
            and self._state in (IDLE, CLOSED)
            and self._response is not None
            and self._response.ended
        ):
            # The exchange ended (kept alive or not) and we never pipeline:
            # these bytes belong to no request, whenever they arrive.
            self._raise(_TRAILING())
        if self._fast is not None:
            if data:
                self._fast += data
            else:
                self._eof = True
            return
        if not data:
            self._eof = True
            if not self._unfed:  # else it goes in after them
                self._h11.receive_data(b"")
            return
        if not self._unfed:
            if len(data) > self._budget:
                # h11 may have taken events out since the budget was set.
                self._budget = self._room()
            if len(data) <= self._budget:  # the usual case: all of it
                self._budget -= len(data)
                self._h11.receive_data(bytes(data))
                return
            if self._budget:
                self._h11.receive_data(bytes(data[: self._budget]))
                data = data[self._budget :]
                self._budget = 0
        self._unfed += data

    def next_event(self) -> Event | _NeedData:
        """The next event, or :data:`NEED_DATA` when more bytes must be read."""
        self._check_usable()
        while not self._events:
            if self._pending_error is not None:
                self._raise(self._pending_error)
            if self._state != WAITING:
                return NEED_DATA
            if not self._pump():
                return NEED_DATA
        return self._events.popleft()

    def events(self) -> Iterator[Event]:
        """Every event available now (until :data:`NEED_DATA`)."""
        while True:
            event = self.next_event()
            if event is NEED_DATA:
                return
            assert not isinstance(event, _NeedData)
            yield event

    def close(self) -> None:
        """Mark the connection unusable (the transport closes the socket)."""
        if self._state != ERROR:
            self._state = CLOSED

    # -- internals ---------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state == ERROR:
            raise LocalProtocolError(
                f"this connection failed earlier ({self._error}); open a new one"
            )

    def _raise(self, exc: SoraError) -> NoReturn:
        self._state = ERROR
        self._error = exc
        self._pending_error = None
        response = self._response
        if response is not None:
            if exc.partial is None:
                exc.partial = response.partial
            if exc.video is None:
                exc.video = response.video_result
        raise exc

    def _pump(self) -> bool:
        """Turn one h11 event into ours; False when h11 needs data."""
        response = self._response
        assert response is not None
        if self._fast is not None:
            return self._fast_pump(response)
        event = self._held
        if event is not None:
            self._held = None
        else:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._raise(self._remote_error(exc))
        if event is h11.NEED_DATA:
            return self._feed_more()
        try:
            if event.__class__ is h11.Data:
                self._body_started = True
                self._body(event, response)
            elif isinstance(event, h11.Response):
                if event.http_version not in (b"1.1", b"1.0"):
                    check_http_version(event.http_version)
                self._queue.extend(
                    response.receive_headers(event.status_code, event.headers, event.reason)
                )
                if _chunked_body(event, self.request):
                    self._start_fast(event)
            elif isinstance(event, h11.EndOfMessage):
                response.receive_body_into(b"", self._queue)
                self._end_exchange()
            elif isinstance(event, h11.ConnectionClosed):
                self._raise(
                    RemoteProtocolError("the server closed the connection without a response")
                )
            # h11.InformationalResponse (1xx) is skipped: the final response follows.
        except SoraError as exc:
            # Hand out what was completed before the error, then raise it.
            self._pending_error = exc
            self._events.extend(self._queue)
        else:
            self._events.extend(self._queue)
        self._queue.clear()
        return True

    def _body(self, event: h11.Data, response: ChatResponse) -> None:
        """One ``Data`` event and every one h11 has right behind it (one per
        HTTP chunk), handed to the response in one call: the per-call cost
        of the message level is paid once per read, not once per chunk."""
        next_event = self._h11.next_event
        data = event.data
        pieces: list[Any] | None = None
        while True:
            try:
                following = next_event()
            except h11.RemoteProtocolError as exc:
                # What came before the error first, then the error.
                self._pending_error = self._remote_error(exc)
                break
            if following.__class__ is not h11.Data:
                self._held = following
                break
            if pieces is None:
                pieces = [data]
            pieces.append(following.data)
        response.receive_body_into(b"".join(pieces) if pieces else bytes(data), self._queue)

    def _start_fast(self, head: h11.Response) -> None:
        """A chunked body follows: read it here, not through h11 (whose cost
        per HTTP chunk is several times the SSE parsing of the event in it).
        The bytes h11 has not processed yet are where the body starts."""
        self._connection_headers = [
            (b"connection", v) for k, v in head.headers if k == b"connection"
        ]
        self._fast = bytearray(self._h11.trailing_data[0]) + self._unfed
        self._unfed = bytearray()
        self._left = 0
        self._footer = False

    def _fast_pump(self, response: ChatResponse) -> bool:
        """Every whole ``size CRLF data CRLF`` chunk (and the start of a
        partial one: its data is handed on at once, as h11 does) from the
        buffer, in one call to the response. Anything else at a chunk
        boundary (the last chunk, extensions, a bad or over-long size line,
        a large chunk) goes to a fresh h11 connection put at that boundary,
        so the end of the body, its trailers and every framing error are
        h11's, as before; False when nothing could be done."""
        buf = self._fast
        assert buf is not None
        error: SoraError | None = None
        out, pos, left, footer, why = scan(buf, 0, self._left, self._footer, len(buf))
        fallback = why == OTHER  # an extension, not plain hex, or the last chunk
        if why == BAD_FOOTER:
            error = bad_footer()
        del buf[:pos]
        self._left, self._footer = left, footer
        if error is None and self._eof and not fallback:
            if left or footer:
                error = RemoteProtocolError(
                    "the connection closed before the response was complete "
                    "(the body was cut short)"
                )
            else:
                fallback = True  # at a boundary: h11 says what is wrong
        if out:
            self._body_started = True
            try:
                response.receive_body_into(b"".join(out), self._queue)
            except SoraError as exc:
                error = exc
                fallback = False
        if error is not None:
            self._pending_error = error
        elif fallback:
            self._to_h11(bytes(buf))
        self._events.extend(self._queue)
        self._queue.clear()
        return bool(out) or error is not None or fallback

    def _to_h11(self, rest: bytes) -> None:
        """A fresh h11 connection, at a chunk boundary of a chunked 200
        response (with the real one's Connection headers, so reuse is
        decided as before), fed ``rest`` as any read is."""
        h = h11.Connection(h11.CLIENT, max_incomplete_event_size=self.limits.max_header_size - 1)
        request = self.request
        assert request is not None
        asked = [(k, v) for k, v in request.headers if k.lower() == "connection"]
        h.send(h11.Request(method="GET", target="/", headers=[("Host", "x"), *asked]))
        h.send(h11.EndOfMessage())
        lines = b"".join(b"Connection: %s\r\n" % v for _, v in self._connection_headers)
        h.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + lines + b"\r\n")
        h.next_event()  # the Response
        self._h11 = h
        self._fast = None
        self._unfed = bytearray(rest)
        self._budget = 0
        if not rest and self._eof:
            h.receive_data(b"")

    def _room(self) -> int:
        """How many more bytes h11 may hold (see ``__init__``)."""
        return self.limits.max_header_size - len(self._h11.trailing_data[0])

    def _feed_more(self) -> bool:
        """At h11's NEED_DATA: give it what was held back, as much as it may
        hold; False when there is nothing to give."""
        if not self._unfed:
            return False
        # Exact here: at NEED_DATA h11 holds only the incomplete element.
        n = self._room()
        piece = bytes(self._unfed[:n])
        del self._unfed[:n]
        self._budget = n - len(piece)
        self._h11.receive_data(piece)
        if self._eof and not self._unfed:
            self._h11.receive_data(b"")
        return True

    def _end_exchange(self) -> None:
        h = self._h11
        if h.trailing_data[0] or self._unfed:
            # We never pipeline, so bytes after the end of the response belong
            # to no request: the body was longer than its framing said.
            raise _TRAILING()
        # A body that ends when the server closes (neither Content-Length nor
        # chunked) leaves h11 calling both sides DONE: the EOF says otherwise.
        reusable = h.our_state is h11.DONE and h.their_state is h11.DONE and not self._eof
        if reusable:
            h.start_next_cycle()
            self._budget = self.limits.max_header_size
            self._state = IDLE
        else:
            self._state = CLOSED
        self._queue.append(ExchangeComplete(reusable))

    def _remote_error(self, exc: h11.RemoteProtocolError) -> RemoteProtocolError:
        text = str(exc)
        if "ConnectionClosed" in text and "SEND_RESPONSE" in text:
            return RemoteProtocolError("the server closed the connection without a response")
        if "incomplete" in text or "without sending complete" in text or "peer closed" in text:
            return RemoteProtocolError(
                "the connection closed before the response was complete (the body was cut short)"
            )
        if "exceeds" in text or "too long" in text or "too large" in text:
            head_seen = self._response is not None and self._response.status_code is not None
            what = "a chunk-size line or trailer section" if head_seen else "the response head"
            return LimitExceeded(
                f"{what} is larger than {self.limits.max_header_size} bytes "
                "(Limits.max_header_size)"
            )
        if "status line" in text or "request line" in text or "response line" in text:
            # h11 calls a bad status line "illegal status line", "illegal
            # request line" or "no response line received", depending on how
            # much of it had arrived: one message, whatever the split.
            return RemoteProtocolError(
                "malformed HTTP response: invalid status line "
                "(expected 'HTTP/1.1 <status code> <reason>')"
            )
        if "chunk footer" in text:
            return bad_footer()
        # h11 quotes the bytes it choked on, and how many it had depends on how
        # the input was split; the message must not (same bytes, same error).
        text = _QUOTED_BYTES.sub("", text).strip()
        return RemoteProtocolError(f"malformed HTTP response: {text}")
