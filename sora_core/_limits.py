"""Size limits: every buffer the core keeps has one, and so does every
parsed object.

Going over a limit raises :class:`~sora_core.LimitExceeded` (a
:class:`~sora_core.RemoteProtocolError`) instead of growing memory.
"""

from __future__ import annotations

import attrs

from ._errors import LocalProtocolError

__all__ = ["NO_LIMITS", "Limits"]

KiB = 1024
MiB = 1024 * KiB


def _positive(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value <= 0:
        raise LocalProtocolError(f"Limits.{attr.name} must be a positive int, not {value!r}")


@attrs.frozen
class Limits:
    """The size limits of one connection or response.

    - ``max_header_size``: the status line and header block (64 KiB); it
      also bounds a chunk-size line and a chunked body's trailer section.
    - ``max_event_size``: one server-sent event, including an unfinished
      line (16 MiB).
    - ``max_body_size``: a non-streaming body, JSON or error page (64 MiB).
    - ``max_decompressed_size``: the bytes a gzip or deflate body may inflate
      to (256 MiB), which stops a compression bomb.

    The byte limits alone let one event become far more memory once parsed
    (400,000 empty choices fit in 1.2 MB and take hundreds of MiB as
    objects), so what one JSON document (a stream event, a response body, an
    error body) may hold is bounded too. The JSON limits are checked on the
    raw bytes before decoding, in linear time, so nothing is built first
    (a document of at most ``2 * max_json_depth`` bytes is within both as it
    is, and is not looked at):

    - ``max_json_depth``: how deeply arrays and objects nest (512). It keeps
      whatever walks the values recursively (``repr``, ``json.dumps``,
      :meth:`~sora_core.ChatCompletion.to_dict`) within Python's default
      recursion limit, and lets the usual event (under 1 KiB) pass unscanned.
    - ``max_json_items``: the values in one document (200,000): every array
      element and every object member counts once (so the keys of one object
      count too), plus the document itself. Peak memory while parsing stays
      within that many small objects. Raise it for non-streaming answers
      with long ``logprobs``.
    - ``max_choices``: the choices of one chunk or completion (128, openai's
      largest ``n``).
    - ``max_tool_calls``: the tool calls of one delta or message (256).
    """

    max_header_size: int = attrs.field(default=64 * KiB, validator=_positive)
    max_event_size: int = attrs.field(default=16 * MiB, validator=_positive)
    max_body_size: int = attrs.field(default=64 * MiB, validator=_positive)
    max_decompressed_size: int = attrs.field(default=256 * MiB, validator=_positive)
    max_json_depth: int = attrs.field(default=512, validator=_positive)
    max_json_items: int = attrs.field(default=200_000, validator=_positive)
    max_choices: int = attrs.field(default=128, validator=_positive)
    max_tool_calls: int = attrs.field(default=256, validator=_positive)


NO_LIMITS = Limits(
    max_json_depth=2**62,
    max_json_items=2**62,
    max_choices=2**62,
    max_tool_calls=2**62,
)
"""Object limits switched off: for JSON the caller hands over itself
(``from_dict``, ``from_json``), which is not a peer's."""
