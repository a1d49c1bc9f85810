"""Incremental, I/O-free decoder for Server-Sent Events (``text/event-stream``).

This follows the WHATWG HTML algorithm "interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
to the letter, fed with whatever byte chunks the transport happens to read.

Design notes (the "why"):

* Everything is done on bytes. The stream is UTF-8 by definition, and every
  character the parser cares about (CR, LF, ``:``, space) is ASCII, which never
  occurs inside a multi-byte UTF-8 sequence. So lines can be cut and fields
  compared as bytes, and text is decoded once per dispatched event (or per
  ``event``/``id`` line), never per feed: a character split across two reads is
  therefore decoded whole.
* The unfinished last line is kept in ``_pending`` and never contains a line
  end, so it is never searched again: each byte is scanned a constant number
  of times, which keeps the decoder linear in its input (as h11's
  ``ReceiveBuffer`` remembers how far it has searched).
* Memory is bounded by ``max_event_size``: the event being built (its data
  so far plus the line being read) may not exceed it, so an endless line is an
  error instead of an ever-growing buffer.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._errors import LimitExceeded, LocalProtocolError
from ._shapes import slot_constructor

__all__ = ["SSEDecoder", "ServerSentEvent"]

# Spec: "One leading U+FEFF BYTE ORDER MARK character must be ignored if any
# are present." In UTF-8 that is these three bytes.
_BOM = b"\xef\xbb\xbf"


@attrs.frozen
class ServerSentEvent:
    """One dispatched event.

    ``event`` is the event type (``"message"`` when the stream named none),
    ``data`` the data lines joined with ``"\\n"``, ``id`` the last event ID in
    force when the event was dispatched (``""`` if none was ever set) and
    ``retry`` the reconnection time (ms) given inside this event's block, or
    ``None`` when the block had no valid ``retry`` field.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


_new_event = slot_constructor(ServerSentEvent)


class SSEDecoder:
    """Turn the bytes of an event stream into :class:`ServerSentEvent` objects.

    Call :meth:`feed` with each chunk as it arrives and ``feed(b"")`` at the
    end of the stream. Each call returns the events its chunk completed.

    ``last_event_id`` is the stream's last event ID (what to send as
    ``Last-Event-ID`` when reconnecting) and ``retry`` the reconnection time
    in milliseconds the server asked for (``None`` until it asks).

    An event whose data plus current line exceeds ``max_event_size`` bytes
    raises :class:`~sora_core.LimitExceeded`; the events the same call
    completed before it are in the error's ``events`` (so any split of the
    same bytes gives the same events, then the same error). After any error,
    or after the end of the stream, the decoder refuses further input.
    """

    last_event_id: str
    retry: int | None

    def __init__(self, *, max_event_size: int = 16 * 1024 * 1024) -> None:
        if max_event_size < 0:
            raise ValueError(f"max_event_size must be >= 0, not {max_event_size}")
        self.last_event_id = ""
        self.retry = None
        self._max = max_event_size
        # The first bytes of the stream while they may still be the start of
        # a BOM (it can arrive split across reads); None once decided.
        self._head: bytes | None = b""
        # The unfinished last line. Never contains CR or LF.
        self._pending = bytearray()
        # The previous chunk ended with CR: a LF starting this one is the
        # second half of that CRLF, not another (empty) line.
        self._skip_lf = False
        # The buffers of the event being built (spec: "data buffer", "event
        # type buffer", "last event ID buffer"), plus this block's retry.
        self._data: list[bytes] = []
        self._size = 0  # bytes of the data buffer (values plus their LFs)
        self._event_type = b""
        self._id_buffer = ""
        self._event_retry: int | None = None
        # Why feed() must refuse to run (None while it may).
        self._refusal: str | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Process a chunk; ``b""`` means end of stream. Returns completed events."""
        return self._run(data, True)

    def _feed_raw(self, data: bytes) -> list[tuple[str, bytes]]:
        """Like :meth:`feed`, but each event is ``(event type, data)`` with the
        data left as UTF-8 bytes, for a caller that hands it to a decoder that
        reads bytes (:class:`~sora_core.ChatResponse` and its JSON decoder).
        The bytes decode with ``errors="replace"`` to what :meth:`feed` gives."""
        return self._run(data, False)

    def _run(self, data: bytes, decode: bool) -> list[Any]:
        if self._refusal is not None:
            raise LocalProtocolError(self._refusal)
        if not data:
            # Spec: "Once the end of the file is reached, any pending data
            # must be discarded. (If the file ends in the middle of an event,
            # before the final empty line, the incomplete event is not
            # dispatched.)" That includes an unterminated last line.
            self._refusal = (
                'this SSEDecoder already saw the end of the stream (feed(b"")); '
                "create a new one for a new stream"
            )
            self._head = None
            self._pending = bytearray()
            self._data = []
            return []
        try:
            return self._feed(data if type(data) is bytes else bytes(data), decode)
        except BaseException as exc:
            # State may be half-updated: never continue from it.
            self._refusal = (
                f"this SSEDecoder failed earlier ({type(exc).__name__}: {exc}); create a new one"
            )
            raise

    def _too_big(self, events: list[Any]) -> LimitExceeded:
        # ``events``: what this call completed before the limit. They arrived
        # whole, and a finer split would have returned them from an earlier
        # call, so they go out with the error rather than being lost.
        return LimitExceeded(
            f"server-sent event larger than {self._max} bytes (max_event_size); "
            "raise max_event_size if the server really sends events this large",
            events=events,
        )

    def _feed(self, data: bytes, decode: bool) -> list[Any]:
        if self._head is not None:
            data = self._head + data
            if len(data) < 3 and _BOM.startswith(data):
                # Could still become a BOM. None of these bytes is a line end,
                # so holding them delays no event.
                self._head = data
                return []
            self._head = None
            if data.startswith(_BOM):
                data = data[3:]
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if 13 in data:  # a CR (an int needle is a plain memchr)
            # Spec: lines end with CRLF, a lone LF or a lone CR. Normalise to
            # LF. A CR ending the chunk is a line end right now (its line is
            # processed, its event dispatched, without waiting for another
            # read); remember to drop a LF that may start the next chunk.
            self._skip_lf = data[-1] == 13
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[Any] = []
        if (
            self._pending
            and not (self._data or self._event_type or self._event_retry is not None)
            and 10 in data  # 10: LF
        ):
            # A line was cut by the last read (a read rarely ends where an
            # event does) and this read ends it: it goes before this read's
            # bytes, as the line loop would put it, and the read may still
            # take the usual path. (Only when it ends here: a line that goes
            # on for many reads is added to, never copied again each read.)
            data = b"".join((self._pending, data))
            self._pending.clear()
        if len(data) > self._max:
            return self._lines(data, decode, events)
        if self._pending or self._data or self._event_type or self._event_retry is not None:
            # An event is being built (a read rarely ends where an event
            # does): the loop finishes it, up to the first blank line; the
            # rest of the read may then take the usual path.
            blank = data.find(b"\n\n")
            if blank < 0:
                return self._lines(data, decode, events)
            self._lines(data[: blank + 2], decode, events)
            data = data[blank + 2 :]
            if self._pending or self._data or self._event_type or self._event_retry is not None:
                return self._lines(data, decode, events)
        # The usual read: whole events of one ``data: `` line each, from the
        # start of a block. ``end``: after the last blank line.
        end = data.rfind(b"\n\n") + 2
        if end > 1 and data.startswith(b"data: "):
            # Cut on the blank line plus the next data field: the parts are
            # the events' data, and the read up to ``end`` is "data: " + part
            # + LF LF for each part in turn. A part without a LF is an event
            # of one data line, as the line-by-line loop would give it: built
            # at once. A part with one (a comment, an id or an event type
            # after its data, data on two lines) is a run of whole blocks,
            # which the loop takes, each on its own: each ends with a blank
            # line, so the loop ends it where it began, between events.
            # (Joined, the parts are searched by memchr; counting LFs in the
            # read went byte by byte, at 6 instructions a byte.)
            values = data[6 : end - 2].split(b"\n\ndata: ")
            data = data[end:]
            if 10 in b"".join(values):  # 10: LF
                start = 0
                for i, v in enumerate(values):
                    if 10 in v:
                        self._one_line_events(values[start:i], decode, events)
                        self._lines(b"data: " + v + b"\n\n", decode, events)
                        start = i + 1
                values = values[start:]
            self._one_line_events(values, decode, events)
        return self._lines(data, decode, events)

    def _one_line_events(self, values: list[bytes], decode: bool, events: list[Any]) -> None:
        # The events of one ``data:`` line each, between events: dispatched
        # as the loop dispatches them.
        if not values:
            return
        last_event_id = self.last_event_id = self._id_buffer
        if decode:
            events += [
                _new_event("message", v.decode("utf-8", "replace"), last_event_id, None)
                for v in values
            ]
        else:
            events += [("message", v) for v in values]

    def _lines(self, data: bytes, decode: bool, events: list[Any]) -> list[Any]:
        """The spec's loop, line by line over ``data`` (LF line ends only),
        appending the events it completes to ``events``."""
        limit = self._max
        pending = self._pending
        # Only LF is a line end here: never str.splitlines(), which would also
        # split at U+2028, U+0085, form feed and so on.
        lines = data.split(b"\n")
        rest = lines.pop()
        if not lines:  # no line end in this chunk
            pending += rest
            if self._size + len(pending) > limit:
                raise self._too_big(events)
            return events
        # No line of this chunk can be longer than the chunk plus the pending
        # line, and dispatching only shrinks the data buffer; so when even
        # that sum fits, the per-line limit check can be skipped.
        check = self._size + len(pending) + len(data) > limit
        if pending:
            pending += lines[0]
            lines[0] = bytes(pending)
            pending.clear()

        data_lines = self._data
        size = self._size
        event_type = self._event_type
        id_buffer = self._id_buffer
        event_retry = self._event_retry
        last_event_id = self.last_event_id
        for line in lines:
            if check and size + len(line) > limit:
                # As a finer split would have left it: the events before
                # this line were dispatched, with their last event ID.
                self.last_event_id = last_event_id
                raise self._too_big(events)
            if not line:
                # Spec: "If the line is empty (a blank line): Dispatch the
                # event". The last event ID is set even if nothing is
                # dispatched; an empty data buffer dispatches nothing.
                last_event_id = id_buffer
                if data_lines:
                    # Joining with LF equals "append value + LF, then remove
                    # one trailing LF". One decode per event (none for a
                    # caller that reads the bytes).
                    kind = event_type.decode("utf-8", "replace") if event_type else "message"
                    value = b"\n".join(data_lines)
                    if decode:
                        events.append(
                            _new_event(
                                kind, value.decode("utf-8", "replace"), last_event_id, event_retry
                            )
                        )
                    else:
                        events.append((kind, value))
                    data_lines = []
                    size = 0
                # The data and event type buffers are reset either way; the
                # last event ID buffer is not.
                event_type = b""
                event_retry = None
            elif line[:6] == b"data: ":
                # The common case, before the general field parsing.
                data_lines.append(line[6:])
                size += len(line) - 5
            elif line[0] != 58:  # a line starting with ":" is a comment
                # Spec: the field name is up to the first ":", the value after
                # it minus one leading space; no ":" means the whole line is
                # the name and the value is empty. Names are case-sensitive.
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    data_lines.append(value)
                    size += len(value) + 1
                elif name == b"event":
                    event_type = value
                elif name == b"id":
                    # Spec: "If the field value does not contain U+0000 NULL".
                    # Only the byte 0 decodes to U+0000.
                    if b"\0" not in value:
                        id_buffer = value.decode("utf-8", "replace")
                elif name == b"retry" and value.isdigit():  # ASCII digits only
                    try:
                        event_retry = int(value.lstrip(b"0") or b"0")
                    except ValueError:  # more digits than int() accepts: ignore
                        pass
                    else:
                        self.retry = event_retry
                # Spec: any other field is ignored.
        self._data = data_lines
        self._size = size
        self._event_type = event_type
        self._id_buffer = id_buffer
        self._event_retry = event_retry
        self.last_event_id = last_event_id
        pending += rest
        if size + len(pending) > limit:
            raise self._too_big(events)
        return events
