"""Incremental, I/O-free decoder for newline-delimited JSON streams.

Some relays (and the clients written for them) stream chat chunks as bare
JSON lines instead of server-sent events: ``application/x-ndjson``,
``application/jsonl``, ``application/json-seq`` (RFC 7464: each record
starts with RS, 0x1E), ``application/stream+json``, or a body that simply
starts with ``{``. :class:`NDJSONDecoder` cuts such a body into records
with the same guarantees as :class:`~sora_core.SSEDecoder`:

* Split-proof: only LF ends a record (a CR before it is white space to
  JSON), so any split of the same bytes gives the same records; a UTF-8
  character is never cut, as LF never occurs inside one.
* Linear: the unfinished last line is kept aside and never searched again.
* Bounded: a record (with its unfinished line) longer than
  ``max_event_size`` bytes raises :class:`~sora_core.LimitExceeded`, with
  the records the same call completed before it in ``exc.events``.
* Tolerant: blank lines, RS separators, ``data:`` prefixes and SSE comment
  or field lines (``: ping``, ``event: x``) mixed in are read as a relay
  means them. A last record without its LF counts at the end of the body.

Records come out as ``("message", bytes)``, the shape
:class:`~sora_core.ChatResponse` reads from the SSE decoder.
"""

from __future__ import annotations

from ._errors import LimitExceeded, LocalProtocolError

__all__ = ["NDJSON_TYPES", "NDJSONDecoder"]

NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonl",
        "application/jsonlines",
        "application/x-jsonlines",
        "application/json-seq",
        "application/stream+json",
        "application/x-json-stream",
    }
)
"""Content types of newline-delimited JSON streams (compared in lower case)."""

_STRIP = b" \t\r\x1e\x0b\x0c"  # JSON white space, RS (json-seq) and stray form feeds
_SSE_FIELDS = (b"event:", b"id:", b"retry:")


def _record(line: bytes) -> bytes | None:
    """The JSON text of one line, or ``None`` for a line that carries none."""
    line = line.strip(_STRIP)
    if not line or line[0] == 58:  # blank, or an SSE comment (":")
        return None
    if line[:5] == b"data:":
        return line[5:].strip(_STRIP) or None
    if line.startswith(_SSE_FIELDS):
        return None
    return line


class NDJSONDecoder:
    """Cut a newline-delimited JSON body into records; ``b""`` ends the body."""

    def __init__(self, *, max_event_size: int = 16 * 1024 * 1024) -> None:
        if max_event_size < 0:
            raise ValueError(f"max_event_size must be >= 0, not {max_event_size}")
        self._max = max_event_size
        self._pending = bytearray()  # the unfinished last line: never holds a LF
        self._refusal: str | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """The JSON text of each record ``data`` completed (``b""``: the end)."""
        return [record for _, record in self._feed_raw(data)]

    def _feed_raw(self, data: bytes) -> list[tuple[str, bytes]]:
        if self._refusal is not None:
            raise LocalProtocolError(self._refusal)
        if not data:
            self._refusal = (
                'this NDJSONDecoder already saw the end of the body (feed(b"")); '
                "create a new one for a new stream"
            )
            record = _record(bytes(self._pending))
            self._pending = bytearray()
            return [("message", record)] if record is not None else []
        try:
            return self._feed(bytes(data))
        except BaseException as exc:
            self._refusal = (
                f"this NDJSONDecoder failed earlier ({type(exc).__name__}: {exc}); create a new one"
            )
            raise

    def _too_big(self, events: list[tuple[str, bytes]]) -> LimitExceeded:
        return LimitExceeded(
            f"JSON line larger than {self._max} bytes (max_event_size); "
            "raise max_event_size if the server really sends records this large",
            events=events,
        )

    def _feed(self, data: bytes) -> list[tuple[str, bytes]]:
        pending = self._pending
        lines = data.split(b"\n")
        rest = lines.pop()
        events: list[tuple[str, bytes]] = []
        if lines:
            if pending:
                pending += lines[0]
                lines[0] = bytes(pending)
                pending.clear()
            limit = self._max
            for line in lines:
                if len(line) > limit:
                    raise self._too_big(events)
                record = _record(line)
                if record is not None:
                    events.append(("message", record))
        pending += rest
        if len(pending) > self._max:
            raise self._too_big(events)
        return events
