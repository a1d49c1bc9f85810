"""JSON decoding: the standard library, or orjson when it is installed.

orjson is several times faster on chunk-sized documents. It gives the same
result as :func:`json.loads` for nearly every input; where it does not, the
standard decoder decides:

- inputs orjson refuses (NaN and Infinity, lone surrogate escapes, numbers
  too large for a float) fall back to :func:`json.loads`;
- integers beyond 64 bits, which orjson silently turns into floats, are
  found before decoding: they take at least 19 digits in a row (the longest
  integer orjson keeps has 20 digits, the shortest it loses is
  ``-9223372036854775809``), and text with such a run is decoded by
  :func:`json.loads` (a long digit run inside a string goes there too,
  which costs time, not correctness).

So the result is the same with or without the extra installed.
:class:`StreamDecoder` does the same for the events of one stream, looking
for digit runs once per read rather than once per event.

Every decoder here checks the JSON limits of :class:`~sora_core.Limits`
(``max_json_depth``, ``max_json_items``) on the raw bytes first
(:func:`check_bounds`), because checking the decoded objects would come too
late: a 1.2 MB event of 400,000 empty objects is 30 MB of dicts before
anything could count them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate, repeat
from operator import sub
from typing import Any

from ._errors import LimitExceeded
from ._limits import Limits

__all__ = ["StreamDecoder", "check_bounds", "dumps", "loads", "loads_utf8"]

_DEFAULT_LIMITS = Limits()

JSONDecodeError = json.JSONDecodeError

try:
    import orjson
except ImportError:  # the extra is optional
    orjson = None  # type: ignore[assignment, unused-ignore]

# Digits -> "0", every other byte unchanged: a run of 19 zeros in the result
# is a run of 19 digits in the input.
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_RUN = 19
_DIGITS = b"0123456789"
_LONG_RUN = b"0" * _RUN


def _has_long_run(data: bytes) -> bool:
    return data.translate(_DIGITS_TO_ZERO).find(_LONG_RUN) >= 0


def _std_utf8(data: bytes) -> Any:
    return json.loads(data.decode("utf-8", "replace"))


def _fast_utf8(data: bytes) -> Any:
    # No digit-run check here: the caller made it.
    try:
        # orjson reads UTF-8 bytes as they are: no decode to str first.
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # Invalid JSON, an input only the standard decoder accepts, or bytes
        # that are not UTF-8 (decoded with U+FFFD for them, as json would be).
        return _std_utf8(data)


# --------------------------------------------------------------------------
# Bounds, checked on the text. A text too short to break a limit is not
# looked at; brackets and commas over the whole text (strings included)
# bound the depth and the values from above, and the quotes bound the
# values from below; only a text these leave undecided is read again with
# its strings taken out, a window at a time, so that a long text with
# commas inside its strings (a CSV answer) is not refused and nothing of the
# text's size is built but a copy or two of it.

_WINDOW = 64 * 1024
# A string once its escapes are gone (see _strings_only_quoted).
_STRING = re.compile(rb'"[^"]*"')
_SPACE = b" \t\r\n"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}[]")
# "{" and "[" -> 2, "}" and "]" -> 0: minus one each, the change of depth.
_STEPS = bytes.maketrans(b"{[}]", b"\x02\x02\x00\x00")


def check_bounds(data: str | bytes, limits: Limits, what: str = "a JSON document") -> None:
    """Raise :class:`~sora_core.LimitExceeded` when the JSON text ``data``
    nests deeper than ``limits.max_json_depth`` or holds more than
    ``limits.max_json_items`` values (array elements and object members, plus
    the document). Linear in ``len(data)``; builds nothing but a copy or two
    of the text."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    max_depth = limits.max_json_depth
    max_items = limits.max_json_items
    # Each value takes a byte at least, and each level an opener and a closer.
    deep = len(raw) > 2 * max_depth and _openers_over(raw, max_depth)
    many = len(raw) > max_items and (
        raw.count(b"{") + raw.count(b"[") + raw.count(b",") >= max_items
    )
    if not deep and not many:
        return
    # Each string is a key or a value, and each key has a value.
    if (raw.count(b'"') - raw.count(b'\\"')) // 2 > 2 * max_items:
        raise _too_many_values(what, max_items)
    _check_exactly(_strings_only_quoted(raw), max_depth, max_items, what)


def _openers_over(raw: bytes, limit: int) -> bool:
    # Whether raw holds more than ``limit`` of "{" and "[" together. find()
    # jumps to the next one at memchr speed, so an event of long text with a
    # handful of brackets costs a handful of calls, where counting would read
    # every byte twice; a bracket-heavy event stops at limit + 1.
    find = raw.find
    found = 0
    for opener in (b"{", b"["):
        at = find(opener)
        while at >= 0:
            found += 1
            if found > limit:
                return True
            at = find(opener, at + 1)
    return False


def _too_many_values(what: str, max_items: int) -> LimitExceeded:
    return LimitExceeded(f"{what} holds more than {max_items} JSON values (Limits.max_json_items)")


def _strings_only_quoted(raw: bytes) -> bytes:
    # The text with its escaped backslashes, then its escaped quotes taken
    # out (left to right, as a decoder reads them): every quote left opens or
    # closes a string.
    if b"\\" not in raw:
        return raw
    return raw.replace(b"\\\\", b"").replace(b'\\"', b"")


def _check_exactly(text: bytes, max_depth: int, max_items: int, what: str) -> None:
    values = 1  # the document itself
    depth = 0
    last = b""  # the last structural byte of the windows so far
    start, size = 0, len(text)
    while start < size:
        end = min(start + _WINDOW, size)
        if text.count(b'"', start, end) % 2:  # the window ends inside a string
            close = text.find(b'"', end)
            end = size if close < 0 else close + 1
        bare = _STRING.sub(b"0", text[start:end]).translate(None, _SPACE)
        start = end
        if not bare:
            continue
        openers = bare.count(b"{") + bare.count(b"[")
        # Each value but the document follows a comma or opens a non-empty
        # container. An opener that ends a window is counted in the next,
        # once its next byte shows whether it is empty.
        ends_open = bare[-1:] in (b"{", b"[")
        values += bare.count(b",") + openers - ends_open - bare.count(b"{}") - bare.count(b"[]")
        if last in (b"{", b"[") and last + bare[:1] not in (b"{}", b"[]"):
            values += 1
        if values > max_items:
            raise _too_many_values(what, max_items)
        if depth + openers > max_depth:  # it may go deeper than allowed: follow it
            steps = bare.translate(_STEPS, _NOT_BRACKETS)
            if max(accumulate(map(sub, steps, repeat(1)), initial=depth)) > max_depth:
                raise LimitExceeded(
                    f"{what} nests JSON more than {max_depth} levels deep (Limits.max_json_depth)"
                )
        depth += openers - bare.count(b"}") - bare.count(b"]")
        last = bare[-1:]


def loads(data: str | bytes, limits: Limits | None = None) -> Any:
    """JSON text (str, or bytes as :func:`json.loads` takes them) -> Python
    objects, within ``limits`` (the default :class:`~sora_core.Limits` when
    ``None``)."""
    bounds = _DEFAULT_LIMITS if limits is None else limits
    check_bounds(data, bounds, "a JSON body")
    if orjson is not None:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if not _has_long_run(raw):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # invalid, or only the standard decoder accepts it
    return json.loads(data)


def loads_utf8(data: bytes) -> Any:
    """UTF-8 bytes -> Python objects, as ``json.loads(data.decode("utf-8", "replace"))``
    (no limits: the caller checks them)."""
    if orjson is None or _has_long_run(data):
        return _std_utf8(data)
    return _fast_utf8(data)


class StreamDecoder:
    """:func:`loads_utf8` for the events of one stream, in two steps.

    Call :meth:`scan` with each read of the stream (every byte an event is
    made of passes through it first), then :attr:`loads` with each event's
    data, and :meth:`fallback` with the data :attr:`loads` refused (a
    ``ValueError``): together they give what :func:`loads_utf8` gives. The
    digit-run check orjson needs then runs once over each read, instead of
    once over each event, where it cost a third as much as the decoding
    itself; and :attr:`loads` calls orjson's own function directly. After a
    read with a run in it, every later event is checked on its own.

    :attr:`loads` checks the JSON limits of ``limits`` on each event's bytes
    first (:class:`~sora_core.LimitExceeded`, naming the field).
    """

    loads: Callable[[bytes], Any]
    """The function that decodes the next event's data (it changes after a
    read with a long digit run). A ``ValueError`` from it may be an input only
    the standard decoder accepts: see :meth:`fallback`."""

    short: int
    """Events of at most this many bytes are within the JSON limits as they
    are: :attr:`decode` may take them directly, one call fewer than
    :attr:`loads` (the hot path of a stream's reader)."""

    decode: Callable[[bytes], Any]
    """:attr:`loads` without the limits check, for events of at most
    :attr:`short` bytes (it changes with :attr:`loads`)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self._limits = _DEFAULT_LIMITS if limits is None else limits
        # orjson without a check, until a read shows a long digit run; the
        # standard decoder needs no check at all.
        self.decode = loads_utf8 if orjson is None else orjson.loads
        # Each value takes a byte at least, and each level of nesting two, so
        # an event this short is within both limits as it is: the usual
        # event costs one length check. Counting brackets in every event
        # would cost about half as much as decoding it.
        self.short = min(2 * self._limits.max_json_depth, self._limits.max_json_items)
        self.loads = self._bounded(self.decode)
        self._suspect = orjson is None
        # How many digits the reads so far end with: a run may go on.
        self._trailing = 0

    def _bounded(self, decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        limits = self._limits
        short = self.short

        def loads(data: bytes) -> Any:
            if len(data) > short:
                check_bounds(data, limits, "a stream event")
            return decode(data)

        return loads

    def fallback(self, data: bytes) -> Any:
        """The standard decoder, for data :attr:`loads` refused (raises ``ValueError``
        when that is not JSON either)."""
        if self.decode is loads_utf8:  # it tried the standard decoder already
            raise ValueError("not JSON")
        return _std_utf8(data)

    def scan(self, data: bytes) -> None:
        if self._suspect or not data:
            return
        if self._trailing and data[:1].isdigit():  # a run going on from the last read
            leading = len(data) - len(data.lstrip(_DIGITS))
            if self._trailing + leading >= _RUN:
                self._suspected()
                return
        # Look at every 6th byte first: a run of 19 digits always puts three
        # digits in a row there (19 >= 3 * 6), and that costs a sixth of
        # translating everything. Only then is the read searched in full.
        sample = data[::6].translate(_DIGITS_TO_ZERO)
        if 48 in sample and sample.find(b"000") >= 0 and _has_long_run(data):  # 48: "0"
            self._suspected()
            return
        # (rstrip returns the bytes themselves, no copy, when they end otherwise)
        trailing = len(data) - len(data.rstrip(_DIGITS))
        self._trailing = self._trailing + trailing if trailing == len(data) else trailing

    def _suspected(self) -> None:
        self._suspect = True
        self.decode = loads_utf8  # checks each event from now on
        self.loads = self._bounded(loads_utf8)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as sent on the wire."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
