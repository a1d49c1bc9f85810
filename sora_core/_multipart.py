"""A small, pure ``multipart/form-data`` encoder (RFC 7578).

For ``POST /videos`` with an ``input_reference`` image. Pure: the boundary
is passed in, or derived from the content (a hash of every part), never
drawn from the operating system's randomness, so the same form always
encodes to the same bytes and tests can compare them.

Names and file names are escaped the way browsers do (WHATWG HTML, "multipart
form data"): ``"`` -> ``%22``, CR -> ``%0D``, LF -> ``%0A``; other text goes
as UTF-8, which every server this project meets accepts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

import attrs

from ._errors import LocalProtocolError
from ._request import check_header

__all__ = ["FilePart", "encode_multipart"]

# RFC 2046 §5.1.1: 1-70 characters from bchars, not ending with a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_ESCAPES = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})


def _check_bytes(_inst: object, attr: attrs.Attribute[bytes], value: object) -> None:
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"FilePart.{attr.name} must be bytes, not {type(value).__name__}")


def _check_text(_inst: object, attr: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"FilePart.{attr.name} must be a str, not {type(value).__name__}")


@attrs.frozen
class FilePart:
    """One file field of a form: ``name`` (the field), ``filename``, the
    ``content`` bytes and their ``content_type``."""

    name: str = attrs.field(validator=_check_text)
    filename: str = attrs.field(validator=_check_text)
    content: bytes = attrs.field(validator=_check_bytes, repr=lambda b: f"<{len(b)} bytes>")
    content_type: str = attrs.field(default="application/octet-stream", validator=_check_text)


def _quoted(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _parts(
    fields: Iterable[tuple[str, str]], files: Iterable[FilePart]
) -> list[tuple[bytes, bytes]]:
    """Each part as (its header block, its content)."""
    out = []
    for name, value in fields:
        if not isinstance(name, str) or not isinstance(value, str):
            raise LocalProtocolError(
                f"form fields are str: str, got {type(name).__name__}: {type(value).__name__}"
            )
        head = f"Content-Disposition: form-data; name={_quoted(name)}\r\n\r\n"
        out.append((head.encode("utf-8"), value.encode("utf-8")))
    for part in files:
        if not isinstance(part, FilePart):
            raise LocalProtocolError(f"files must be FilePart objects, got {type(part).__name__}")
        check_header("Content-Type", part.content_type)
        head = (
            f"Content-Disposition: form-data; name={_quoted(part.name)}; "
            f"filename={_quoted(part.filename)}\r\n"
            f"Content-Type: {part.content_type}\r\n\r\n"
        )
        out.append((head.encode("utf-8"), part.content))
    return out


def _derived_boundary(parts: list[tuple[bytes, bytes]]) -> str:
    digest = hashlib.sha256()
    for head, content in parts:
        digest.update(len(head).to_bytes(8, "big") + head)
        digest.update(len(content).to_bytes(8, "big") + content)
    salt = 0
    while True:
        seed = digest.copy()
        seed.update(salt.to_bytes(8, "big"))
        boundary = "sora-" + seed.hexdigest()[:40]
        if not _collides(boundary, parts):
            return boundary
        salt += 1  # (a content that holds its own hash: astronomically rare)


def _collides(boundary: str, parts: list[tuple[bytes, bytes]]) -> bool:
    marker = b"--" + boundary.encode("ascii")
    return any(marker in head or marker in content for head, content in parts)


def encode_multipart(
    fields: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    files: Iterable[FilePart] = (),
    *,
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """The body and the ``Content-Type`` value of a ``multipart/form-data`` form.

    ``fields`` (text, in order) come before ``files``. Without ``boundary``
    one is derived from the content, guaranteed not to occur in it. A
    ``boundary`` passed in must be valid (RFC 2046: 1-70 characters of
    letters, digits and ``'()+_,-./:=?`` or space, not ending in a space) and
    must not occur in the content, else :class:`~sora_core.LocalProtocolError`.
    """
    pairs = list(fields.items() if isinstance(fields, Mapping) else fields)
    parts = _parts(pairs, files)
    if boundary is None:
        boundary = _derived_boundary(parts)
    else:
        if not isinstance(boundary, str) or not _BOUNDARY.fullmatch(boundary):
            raise LocalProtocolError(
                f"invalid multipart boundary {boundary!r}: use 1-70 letters, digits "
                "or '()+_,-./:=? (RFC 2046)"
            )
        if _collides(boundary, parts):
            raise LocalProtocolError(
                f"the multipart boundary {boundary!r} occurs in the content; pick another "
                "(or pass none, and one is derived)"
            )
    delimiter = b"--" + boundary.encode("ascii")
    body = bytearray()
    for head, content in parts:
        body += delimiter + b"\r\n" + head + content + b"\r\n"
    body += delimiter + b"--\r\n"
    quoted = f'"{boundary}"' if not re.fullmatch(r"[0-9A-Za-z'+_\-.]+", boundary) else boundary
    return bytes(body), f"multipart/form-data; boundary={quoted}"
