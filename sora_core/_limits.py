"""Size limits: every buffer the core keeps has one.

Going over a limit raises :class:`~sora_core.LimitExceeded` (a
:class:`~sora_core.RemoteProtocolError`) instead of growing memory.
"""

from __future__ import annotations

import attrs

from ._errors import LocalProtocolError

__all__ = ["Limits"]

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
    """

    max_header_size: int = attrs.field(default=64 * KiB, validator=_positive)
    max_event_size: int = attrs.field(default=16 * MiB, validator=_positive)
    max_body_size: int = attrs.field(default=64 * MiB, validator=_positive)
    max_decompressed_size: int = attrs.field(default=256 * MiB, validator=_positive)
