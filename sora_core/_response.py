"""The message level: status, headers and body bytes -> events.

For transports that frame HTTP themselves (requests, httpx, a browser's
fetch): feed the status and headers with :meth:`ChatResponse.receive_headers`,
then the body as it arrives with :meth:`ChatResponse.receive_body`
(``b""`` is the end of the body). Each call returns the events its bytes
completed, at once: nothing waits for the next read.

The wire level (:class:`~sora_core.ChatConnection`) drives this same object
from h11, so the logic lives once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from . import _json
from ._accumulate import ChunkAccumulator
from ._errors import (
    LimitExceeded,
    LocalProtocolError,
    RemoteProtocolError,
    SoraError,
)
from ._events import (
    APIErrorReceived,
    ChunkReceived,
    CompletionReceived,
    EndReason,
    Event,
    Headers,
    ResponseStarted,
    StreamEnded,
    header,
)
from ._limits import Limits
from ._ndjson import NDJSON_TYPES, NDJSONDecoder
from ._shapes import ChatCompletion, ChatCompletionChunk, Usage, draft_class
from ._sse import SSEDecoder
from ._structure import (
    _completion_as_chunk,
    _usual_chunk,
    structure_chunk,
    structure_completion,
    structure_error,
    structure_error_body,
)
from ._video import VideoResult

if TYPE_CHECKING:
    from ._video_tracker import VideoTracker

__all__ = ["ChatResponse", "ChatResponseReader"]

# How much of an unexpected body is quoted in an error message.
_QUOTE = 300
# An error body (a gateway's HTML page) is kept up to this size; the rest is
# read and dropped, so a huge error page cannot hold memory.
_MAX_ERROR_TEXT = 64 * 1024
# Inflate in pieces of at most this size, so memory stays bounded however
# far a small body inflates.
_INFLATE_STEP = 64 * 1024
# A streaming body whose type does not say NDJSON is told by its first bytes:
# the first non-blank byte among the first _SNIFF_LIMIT is "{" (or RS, for
# json-seq) for JSON lines; anything else is an event stream (or, with a type
# that is neither, an unexpected body).
_SNIFF_LIMIT = 64 * 1024
_BLANK = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
# One ChunkReceived per streamed chunk: built without attrs' frozen __init__,
# as a draft (``_shapes.draft_class``), inline, as slot_constructor would.
_DraftReceived = draft_class(ChunkReceived)

# States of one response.
_HEADERS = "awaiting headers"
_SNIFF = "reading the first bytes of the stream"
_STREAM = "streaming"
_STREAM_OVER = "stream over"  # after [DONE]: the rest of the body is read and dropped
_JSON = "reading JSON body"
_ERROR_BODY = "reading error body"
_WRONG_TYPE = "reading unexpected body"
_ENDED = "ended"
_FAILED = "failed"


def _normalise_headers(headers: Iterable[tuple[Any, Any]]) -> Headers:
    out = []
    for name, value in headers:
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).decode("latin-1")
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("latin-1")
        out.append((str(name).lower(), str(value)))
    return tuple(out)


def _quote(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text[:_QUOTE]
    return repr(text)


_ENCODINGS = ("gzip", "x-gzip", "deflate")


def content_encoding(headers: Headers, decode: bool = True, what: str = "") -> str | None:
    """The body's ``Content-Encoding`` to undo (``None``: nothing to undo, or
    ``decode`` is off because the transport inflated already). Another coding
    than gzip or deflate is a :class:`~sora_core.RemoteProtocolError`."""
    encoding = (header(headers, "content-encoding") or "identity").strip().lower()
    if encoding in ("identity", "") or not decode:
        return None
    if encoding not in _ENCODINGS:
        raise RemoteProtocolError(
            f"unsupported Content-Encoding {encoding!r}{what} (only gzip and deflate)"
        )
    return encoding


class _Inflater:
    """Incremental, bounded gzip / deflate decoding, whatever the split.

    Feeding the compressed body one byte at a time is the reference: the
    first byte whose output goes over the limit, or that zlib finds corrupt,
    decides the error, and what the bytes before it inflate to comes out
    first. Any other split of the same bytes gives the same, because:

    - zlib is never asked for more output than takes the total one byte
      past the limit, so it stops there, before corrupt input further on;
    - zlib drops the output of a call that fails, so the state before each
      call is kept (``copy()``, about a microsecond; compressed bodies only)
      and a failing input is fed again in halves, down to the bad byte;
    - "deflate" is told from raw DEFLATE by its first two bytes, not by
      whether zlib failed before its first output (which depended on how
      much input one call got).
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.total = 0
        gzip = encoding in ("gzip", "x-gzip")
        # 32 + MAX_WBITS: gzip or zlib header, detected automatically.
        self._wbits = 47 if gzip else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        # "deflate": the first bytes, until there are two to tell the format by.
        self._head: bytearray | None = None if gzip else bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._head is not None:
            self._head += data
            if len(self._head) < 2:
                return  # (no output can come from fewer bytes, in either format)
            data = self._start_deflate()
        yield from self._inflate(data)

    def finish(self) -> Iterator[bytes]:
        if self._head:  # a "deflate" body of one byte
            yield from self._inflate(self._start_deflate())
        try:
            out = self._obj.flush()
        except zlib.error as exc:
            raise self._corrupt(exc) from None
        yield from self._count(out)

    def _start_deflate(self) -> bytes:
        assert self._head is not None
        head, self._head = bytes(self._head), None
        # RFC 9110 §8.4.1.2 says zlib, some servers send raw DEFLATE (urllib3
        # and browsers accept both). A zlib header is compression method 8, a
        # window of at most 32 KiB, and the two bytes a multiple of 31.
        if len(head) >= 2 and not (
            head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and ((head[0] << 8) | head[1]) % 31 == 0
        ):
            self._wbits = -zlib.MAX_WBITS
            self._obj = zlib.decompressobj(self._wbits)
        return head

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._obj.eof:
                # Concatenated gzip members (RFC 1952 §2.2): what follows the
                # end of one is the next.
                self._obj = zlib.decompressobj(self._wbits)
            before = self._obj.copy()
            try:
                out, rest = self._step(data)
            except zlib.error as exc:
                self._obj = before
                if len(data) == 1:
                    raise self._corrupt(exc) from None
                # Find the bad byte, handing out the output of those before it.
                half = len(data) // 2
                yield from self._inflate(data[:half])
                yield from self._inflate(data[half:])
                return
            yield from self._count(out)
            data = rest

    def _step(self, data: bytes) -> tuple[bytes, bytes]:
        """One zlib call: (its output, the input it left)."""
        obj = self._obj
        room = self.limit - self.total
        out = obj.decompress(data, min(_INFLATE_STEP, room + 1))
        rest = obj.unused_data if obj.eof else obj.unconsumed_tail
        if len(out) == _INFLATE_STEP <= room:
            # Stopped by the output cap, zlib may hold more for input it took
            # already (the rest of a match, bits it read ahead): take it now,
            # so that an error in those bits counts against this input, as
            # it would byte by byte. Without new input that is a few KiB.
            out += obj.decompress(b"", min(_INFLATE_STEP, room - len(out) + 1))
        return out, rest

    def _count(self, out: bytes) -> Iterator[bytes]:
        room = self.limit - self.total
        self.total += len(out)
        if len(out) > room:
            # What fits comes out first, as it would from a finer split.
            if room:
                yield out[:room]
            raise LimitExceeded(
                f"the {self.encoding} body inflates to more than {self.limit} bytes "
                "(Limits.max_decompressed_size)"
            )
        if out:
            yield out

    def _corrupt(self, exc: zlib.error) -> RemoteProtocolError:
        return RemoteProtocolError(f"the {self.encoding} body is corrupt: {exc}")


class ChatResponseReader:
    """The message-level reader of one response to a chat completions request.

    Not a data model (the answer is a :class:`~sora_core.ChatCompletion`):
    it is fed the status, headers and body bytes and hands out events.
    ``ChatResponse`` is the same class, under its earlier name.

    ``stream`` says whether the request asked for ``stream: true``.
    ``video`` runs the sora video layer on the deltas (``None``: when the
    request's model starts with ``sora``). ``assemble=False`` skips building
    the completion, for very long streams whose chunks the caller consumes
    itself. ``decode_content=False`` when the transport already inflated a
    gzip body.
    """

    def __init__(
        self,
        *,
        stream: bool,
        model: str | None = None,
        video: bool | None = None,
        assemble: bool = True,
        limits: Limits | None = None,
        decode_content: bool = True,
    ) -> None:
        self.stream = stream
        self.limits = limits or Limits()
        self.decode_content = decode_content
        self.status_code: int | None = None
        self.headers: Headers = ()
        if video is None:
            video = bool(model) and str(model).lower().startswith("sora")
        self._tracker: VideoTracker | None = None
        if video:
            # The video layer (its table of relay phrasings compiles ~40
            # regular expressions) loads with the first sora response only.
            from ._video_tracker import VideoTracker

            self._tracker = VideoTracker()
        self._acc = ChunkAccumulator() if assemble else None
        self._state = _HEADERS
        self._error: SoraError | None = None
        self._sse: SSEDecoder | NDJSONDecoder | None = None
        self._ndjson = False
        self._sniffed = bytearray()
        self._sniff_fallback = _STREAM
        self._events_json = _json.StreamDecoder(self.limits)
        self._inflater: _Inflater | None = None
        self._body = bytearray()
        self._body_size = 0
        self._end: StreamEnded | CompletionReceived | None = None
        self._saw_finish = False
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    # -- what was received so far ------------------------------------------

    @property
    def partial(self) -> ChatCompletion | None:
        """The completion assembled from what arrived so far (``None`` if nothing)."""
        if isinstance(self._end, CompletionReceived):
            return self._end.completion
        if self._acc is None or self._acc.chunks == 0:
            return None
        return self._acc.completion()

    @property
    def usage(self) -> Usage | None:
        """The last ``usage`` the stream carried (also with ``assemble=False``)."""
        if isinstance(self._end, CompletionReceived):
            return self._end.completion.usage
        return self._usage

    @property
    def finish_reason(self) -> str | None:
        """The last finish reason of choice 0 so far (also with ``assemble=False``)."""
        if isinstance(self._end, CompletionReceived):
            return self._end.completion.finish_reason
        return self._finish_reason

    @property
    def video_result(self) -> VideoResult | None:
        """The sora result so far (``None`` when the video layer is off)."""
        return self._tracker.result if self._tracker is not None else None

    @property
    def ended(self) -> bool:
        """True once the body has been read to its end (or the response failed)."""
        return self._state in (_ENDED, _FAILED)

    @property
    def finished(self) -> StreamEnded | CompletionReceived | None:
        """The event that ended the logical answer, once it came."""
        return self._end

    # -- feeding ---------------------------------------------------------------

    def receive_headers(
        self, status_code: int, headers: Iterable[tuple[Any, Any]], reason: str | bytes = ""
    ) -> list[Event]:
        """The final status and headers (skip 1xx responses before calling this)."""
        self._check_usable()
        if self._state is not _HEADERS:
            raise LocalProtocolError("receive_headers() was already called for this response")
        if not isinstance(status_code, int) or not 200 <= status_code <= 999:
            raise LocalProtocolError(
                f"receive_headers() takes the final status (200-999), not {status_code!r}; "
                "skip 1xx responses"
            )
        self.status_code = status_code
        self.headers = hdrs = _normalise_headers(headers)
        if isinstance(reason, bytes):
            reason = reason.decode("latin-1")
        events: list[Event] = [ResponseStarted(status_code, hdrs, reason)]
        try:
            encoding = content_encoding(hdrs, self.decode_content)
        except RemoteProtocolError as exc:
            self._fail(exc)
        if encoding is not None:
            self._inflater = _Inflater(encoding, self.limits.max_decompressed_size)
        if not 200 <= status_code < 300:
            self._state = _ERROR_BODY
        elif self.stream:
            ctype = (header(hdrs, "content-type") or "").split(";")[0].strip().lower()
            if ctype in NDJSON_TYPES:
                self._start_stream(ndjson=True)
            else:
                # A missing type is let through (some relays omit it); JSON
                # lines are told by the first bytes; any other type means we
                # are not talking to a stream at all.
                self._state = _SNIFF
                self._sniff_fallback = (
                    _STREAM if ctype in ("", "text/event-stream") else _WRONG_TYPE
                )
        else:
            self._state = _JSON
        return events

    def receive_body(self, data: bytes) -> list[Event]:
        """Body bytes as they arrive; ``b""`` marks the end of the body.

        On bad input this raises the project's error; the events and text
        received before it stay reachable through ``exc.partial`` and
        ``exc.video``.
        """
        events: list[Event] = []
        self.receive_body_into(data, events)
        return events

    def receive_body_into(self, data: bytes, events: list[Event]) -> None:
        """Like :meth:`receive_body`, appending to ``events``; when it raises,
        ``events`` still holds what was completed before the error."""
        self._check_usable()
        if self._state is _HEADERS:
            raise LocalProtocolError("call receive_headers() before receive_body()")
        if self._state is _ENDED:
            if data:
                raise LocalProtocolError("the body already ended (receive_body(b'') was called)")
            return
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"receive_body() takes bytes, not {type(data).__name__}")
        try:
            if data:
                if self._inflater is not None:
                    for piece in self._inflater.feed(bytes(data)):
                        self._body_bytes(piece, events)
                else:
                    self._body_bytes(bytes(data), events)
            else:
                if self._inflater is not None:
                    for piece in self._inflater.finish():
                        self._body_bytes(piece, events)
                self._body_end(events)
        except SoraError as exc:
            self._fail(exc)

    # -- internals -------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state is _FAILED:
            raise LocalProtocolError(
                f"this response failed earlier ({self._error}); it cannot be used further"
            )

    def _fail(self, exc: SoraError) -> NoReturn:
        self._state = _FAILED
        if exc.partial is None:
            exc.partial = self.partial
        if exc.video is None:
            exc.video = self.video_result
        self._error = exc
        raise exc

    def _body_bytes(self, data: bytes, events: list[Event]) -> None:
        state = self._state
        if state is _STREAM:
            assert self._sse is not None
            self._events_json.scan(data)
            over: LimitExceeded | None = None
            try:
                raw = self._sse._feed_raw(data)
            except LimitExceeded as exc:
                raw, over = exc.events, exc
            # Over the limit, the events this read completed before it still
            # come first, as from a finer split: a bad one among them is the
            # error to report, and a "[DONE]" ends the stream, so the
            # over-long rest is ignored like anything else after it.
            self._on_events(raw, events)
            if over is not None and self._state is _STREAM:
                over.events = []  # handed out above, as this object's events
                raise over
        elif state is _STREAM_OVER:
            pass
        elif state is _SNIFF:
            self._sniff(data, events)
        elif state is _JSON:
            self._body_size += len(data)
            if self._body_size > self.limits.max_body_size:
                raise LimitExceeded(
                    f"response body larger than {self.limits.max_body_size} bytes "
                    "(Limits.max_body_size)"
                )
            self._body += data
        elif state is _ERROR_BODY:
            room = _MAX_ERROR_TEXT - len(self._body)
            if room > 0:
                self._body += data[:room]
        elif state is _WRONG_TYPE:
            room = _QUOTE * 4 - len(self._body)
            if room > 0:
                self._body += data[:room]
            if len(self._body) >= _QUOTE * 4:
                self._raise_wrong_type()

    def _start_stream(self, *, ndjson: bool) -> None:
        self._state = _STREAM
        self._ndjson = ndjson
        size = self.limits.max_event_size
        self._sse = (
            NDJSONDecoder(max_event_size=size) if ndjson else SSEDecoder(max_event_size=size)
        )

    def _sniff(self, data: bytes, events: list[Event], end: bool = False) -> None:
        """Hold the first bytes until the first non-blank one tells the format."""
        buf = self._sniffed
        buf += data
        head = bytes(buf[:_SNIFF_LIMIT])
        if not end and len(head) < 3 and _BOM.startswith(head):
            return  # may still be a byte order mark
        first = head[3:] if head.startswith(_BOM) else head
        first = first.lstrip(_BLANK)
        if not first and not end and len(head) < _SNIFF_LIMIT:
            return
        held, self._sniffed = bytes(buf), bytearray()
        if first[:1] in (b"{", b"\x1e"):
            self._start_stream(ndjson=True)
            if held.startswith(_BOM):
                held = held[3:]
        elif self._sniff_fallback is _STREAM:
            self._start_stream(ndjson=False)
        else:
            self._state = _WRONG_TYPE
        if held:
            self._body_bytes(held, events)

    def _raise_wrong_type(self) -> None:
        ctype = header(self.headers, "content-type")
        raise RemoteProtocolError(
            f"expected a text/event-stream answer to a streaming request, got "
            f"Content-Type {ctype!r} (HTTP {self.status_code}); the body starts "
            f"{_quote(bytes(self._body))}"
        )

    def _on_events(self, raw: list[tuple[str, bytes]], events: list[Event]) -> None:
        """The server-sent events one read completed: ``(type, data)``, the
        data as UTF-8 bytes (decoded only where text is needed: the JSON
        decoder reads the bytes). One call per read, not per event."""
        decoder = self._events_json
        loads = decoder.loads
        decode = decoder.decode  # without the limits check, for short events
        short = decoder.short
        acc = self._acc
        limits = self.limits
        tracker = self._tracker
        # The assembly and the video tracker read every field: built at once.
        whole = acc is not None or tracker is not None
        ndjson = self._ndjson
        append = events.append
        for kind, data in raw:
            try:
                try:
                    obj = decode(data) if len(data) <= short else loads(data)
                except ValueError:
                    obj = decoder.fallback(data)
            except ValueError:
                # An event without data, and "[DONE]" (white space around it
                # or not): never JSON, so looked for only here, off the path
                # every chunk takes.
                if not data:
                    continue
                if data.decode("utf-8", "replace").strip() == "[DONE]":
                    self._on_done(events)
                    return
                if kind not in ("message", "error"):
                    continue  # an event type we do not know, carrying text: not ours
                raise RemoteProtocolError(f"a stream event is not JSON: {_quote(data)}") from None
            except RecursionError:
                raise RemoteProtocolError("a stream event nests JSON too deeply") from None
            if (
                type(obj) is not dict
                or kind == "error"
                or ("error" in obj and not obj.get("choices"))
                or ndjson
            ):
                chunk = self._unusual_event(kind, obj, whole, events)
                if chunk is None:
                    continue
            else:
                chunk = _usual_chunk(obj, limits, whole) or structure_chunk(obj, limits)
            received = _DraftReceived()
            received.chunk = chunk
            received.__class__ = ChunkReceived
            append(received)
            if acc is not None:
                acc.add(chunk)
            if chunk.usage is not None:  # the usual chunk has none
                self._usage = chunk.usage
            for choice in chunk.choices:
                if choice.finish_reason is not None:
                    self._saw_finish = True
                    if choice.index == 0:
                        self._finish_reason = choice.finish_reason
                if tracker is not None and choice.index == 0:
                    delta = choice.delta
                    if delta.content or delta.reasoning_content:
                        tracker.feed_into(delta.content, delta.reasoning_content, events)
                    if delta.extra:  # fields the relay added: wm.task_id, output[0].url
                        tracker.feed_fields_into(delta.extra, events)

    def _unusual_event(
        self, kind: str, obj: Any, whole: bool, events: list[Event]
    ) -> ChatCompletionChunk | None:
        """An event that is not a plain chunk in a plain object: an error
        (``None``, its event added), a whole completion in a JSON-lines
        stream (as one chunk), or anything else (structured field by field,
        or refused)."""
        if isinstance(obj, dict) and "error" in obj and not obj.get("choices"):
            self._on_error_event(obj["error"], events)
            return None
        if kind == "error":
            self._on_error_event(obj, events)
            return None
        if self._ndjson and isinstance(obj, dict) and obj.get("object") == "chat.completion":
            obj = _completion_as_chunk(obj)
        if type(obj) is dict:
            return _usual_chunk(obj, self.limits, whole) or structure_chunk(obj, self.limits)
        return structure_chunk(obj, self.limits)

    def _on_done(self, events: list[Event]) -> None:
        self._finish_stream("done", events)
        self._state = _STREAM_OVER

    def _on_error_event(self, body: Any, events: list[Event]) -> None:
        error = structure_error(body)
        events.append(
            APIErrorReceived(
                status_code=self.status_code or 200,
                error=error,
                text=error.message,
                headers=self.headers,
                in_stream=True,
            )
        )
        if self._tracker is not None:
            events.extend(self._tracker.fail(error.message or "error event in the stream"))

    def _finish_stream(self, reason: EndReason, events: list[Event]) -> None:
        finish_reason = self._finish_reason
        completion = None
        if self._acc is not None:
            completion = self._acc.completion()
            finish_reason = completion.finish_reason
        if self._tracker is not None:
            events.extend(self._tracker.finish(finish_reason))
        self._end = StreamEnded(reason, completion, self.video_result)
        events.append(self._end)

    def _body_end(self, events: list[Event]) -> None:
        if self._state is _SNIFF:
            self._sniff(b"", events, end=True)
        state = self._state
        self._state = _ENDED
        if state is _STREAM:
            assert self._sse is not None
            last = self._sse._feed_raw(b"")  # NDJSON: a last line without its LF
            if last:
                self._state = _STREAM
                self._on_events(last, events)
                state, self._state = self._state, _ENDED
            if state is _STREAM:
                self._finish_stream("finish_reason" if self._saw_finish else "incomplete", events)
        elif state is _JSON:
            self._end_json(events)
        elif state is _ERROR_BODY:
            self._end_error_body(events)
        elif state is _WRONG_TYPE:
            self._state = _WRONG_TYPE
            self._raise_wrong_type()

    def _end_json(self, events: list[Event]) -> None:
        raw = bytes(self._body)
        self._body = bytearray()
        try:
            obj = _json.loads(raw, self.limits)
        except (ValueError, RecursionError):
            ctype = header(self.headers, "content-type")
            raise RemoteProtocolError(
                f"the response body is not JSON (Content-Type {ctype!r}): {_quote(raw)}"
            ) from None
        if isinstance(obj, dict) and "error" in obj and not obj.get("choices"):
            # Some relays answer an error with status 200.
            error = structure_error(obj["error"])
            events.append(
                APIErrorReceived(
                    self.status_code or 200,
                    error,
                    raw.decode("utf-8", "replace"),
                    self.headers,
                    in_stream=True,
                )
            )
            return
        completion = structure_completion(obj, self.limits)
        video = None
        if self._tracker is not None:
            choice = completion.choices[0] if completion.choices else None
            if choice is not None:
                content = choice.message.content
                events.extend(
                    self._tracker.feed(
                        content if isinstance(content, str) else None,
                        choice.message.reasoning_content,
                    )
                )
                events.extend(self._tracker.feed_fields(choice.message.extra))
            events.extend(self._tracker.finish(completion.finish_reason))
            video = self._tracker.result
        self._end = CompletionReceived(completion, video)
        events.append(self._end)

    def _end_error_body(self, events: list[Event]) -> None:
        raw = bytes(self._body)
        self._body = bytearray()
        text = raw.decode("utf-8", "replace")
        error = None
        try:
            obj = _json.loads(raw, self.limits) if raw.strip() else None
        except (ValueError, RecursionError, LimitExceeded):
            obj = None  # the page's text is kept; its JSON is not read
        error = structure_error_body(obj)
        assert self.status_code is not None
        events.append(APIErrorReceived(self.status_code, error, text, self.headers))


ChatResponse = ChatResponseReader
"""The earlier name of :class:`ChatResponseReader`."""
