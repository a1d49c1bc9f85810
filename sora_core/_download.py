"""The rules of fetching a video file, for every transport.

Pure: :class:`Download` is fed the response head and body pieces and hands
back the bytes to write; the transport does the writing. The rules:

- **Resume.** With ``have`` bytes already saved, the request asks for the
  rest (``Range: bytes=have-``, :func:`resume_headers`). A ``206`` whose
  ``Content-Range`` starts at ``have`` is appended; a ``200`` is the whole
  file, which replaces the partial one; a ``206`` that starts elsewhere (or
  is compressed) cannot be used: the download restarts without ``Range``.
  A ``416`` whose ``Content-Range: bytes */N`` equals ``have`` means the
  partial file is already complete.
- **Length.** The body is checked against ``Content-Length`` (and the
  ``Content-Range`` of a 206): short is :class:`~sora_core.IncompleteDownload`,
  never a complete file. Without either (chunked, close-delimited), the end
  of the body is trusted.
- **Size.** At most ``max_size`` bytes (default :data:`DEFAULT_MAX_DOWNLOAD`,
  4 GiB), checked against the announced size before any body byte and
  against the bytes as they come: :class:`~sora_core.LimitExceeded`.
- **Type.** An HTML page or a JSON error where a file was expected is
  refused with its title or error message
  (:class:`~sora_core.UnexpectedContent`), before any byte is handed out:
  the first bytes are sniffed (:func:`sniff_media_type`: MP4/MOV ``ftyp``,
  WebM EBML, ``#EXTM3U``, WebP, JPEG, PNG) and a known file signature wins
  over a text ``Content-Type``.
- **Encoding.** ``gzip`` / ``deflate`` are undone (bounded, incremental);
  other content codings are refused.
- **Token.** ``Authorization`` goes only to the base URL's origin
  (``/videos/{id}/content``); a CDN link never gets it
  (:func:`download_request`; :func:`~sora_core.redirect_request` drops it
  when a redirect leaves the origin).
- **URLs and names.** Odd URLs (non-ASCII or control characters, broken
  IPv6, other schemes) are refused (:func:`check_url`); file names from the
  URL or ``Content-Disposition`` are sanitised (:func:`safe_filename`).

File operations (exclusive creation, no symlink following, no overwrite) are
the transport helper's; see ``docs`` for the rules it keeps.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NoReturn
from urllib.parse import unquote, urlsplit

import attrs

from . import _json
from ._errors import (
    IncompleteDownload,
    LimitExceeded,
    LocalProtocolError,
    RemoteProtocolError,
    SoraError,
    UnexpectedContent,
)
from ._events import APIErrorReceived, Headers, _summarise, header
from ._request import HeaderArg, HTTPRequest, _split_url, build_http_request
from ._response import _MAX_ERROR_TEXT, _Inflater, _normalise_headers, _quote, content_encoding

__all__ = [
    "DEFAULT_MAX_DOWNLOAD",
    "Download",
    "DownloadStart",
    "check_url",
    "download_request",
    "resume_headers",
    "safe_filename",
    "sniff_media_type",
]

GiB = 1024**3
DEFAULT_MAX_DOWNLOAD = 4 * GiB
"""The default size cap of one downloaded file: 4 GiB (a 20 s 1080p sora
clip is tens of MiB; the cap only stops a runaway or hostile server)."""

Variant = Literal["video", "thumbnail", "spritesheet"]
Action = Literal["append", "replace", "restart", "complete", "error"]

_SNIFF = 16  # bytes held back until the file type is known
_SAMPLE = 4096  # bytes of a refused body quoted in the error
_EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    "video": (".mp4", ".webm", ".mov", ".m3u8", ".m4v", ".mkv"),
    "thumbnail": (".webp", ".jpg", ".jpeg", ".png", ".gif"),
    "spritesheet": (".jpg", ".jpeg", ".png", ".webp"),
}
_MEDIA_EXTENSIONS = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "application/vnd.apple.mpegurl": ".m3u8",
    "application/x-mpegurl": ".m3u8",
    "image/webp": ".webp",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
}
_TEXT_TYPES = re.compile(r"text/.*|application/(?:json|xml|xhtml\+xml|.*\+json|.*\+xml)")
_PLAYLIST_TYPES = ("application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl")
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", re.ASCII | re.I)
_WINDOWS_RESERVED = re.compile(r"(?:con|prn|aux|nul|com\d|lpt\d)(?:\..*)?", re.I)


def _media(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def sniff_media_type(data: bytes) -> str | None:
    """The media type the first bytes of a file show, or ``None``.

    Files: MP4 (``ftyp``; ``video/quicktime`` for the ``qt`` brand and for a
    leading ``moov``/``mdat``/``wide`` atom), WebM/Matroska (EBML), HLS
    playlists (``#EXTM3U``), WebP, JPEG, PNG, GIF. Text: ``text/html`` for a
    body starting with ``<`` and ``application/json`` for ``{`` or ``[``
    (after white space and a BOM).
    """
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "video/quicktime"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if data.startswith(b"#EXTM3U"):
        return "application/vnd.apple.mpegurl"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    text = data.lstrip(b" \t\r\n\x0c").removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if text[:1] == b"<":
        return "text/html"
    if text[:1] in (b"{", b"["):
        return "application/json"
    return None


def resume_headers(have: int) -> list[tuple[str, str]]:
    """The header that asks for the rest of a file of which ``have`` bytes are saved."""
    if isinstance(have, bool) or not isinstance(have, int) or have < 0:
        raise LocalProtocolError(f"have is the number of bytes already saved (>= 0), not {have!r}")
    return [("Range", f"bytes={have}-")] if have else []


def check_url(url: object, *, from_peer: bool = True) -> str:
    """``url`` if it is an ``http(s)`` URL this project will fetch, else the
    project's own error: :class:`~sora_core.RemoteProtocolError` for a URL the
    server sent (``from_peer``), :class:`~sora_core.LocalProtocolError` for
    one the caller gave. Refused: non-ASCII, spaces and control characters
    (percent-encode them), other schemes, no host, a broken IPv6 literal or
    port."""
    error = RemoteProtocolError if from_peer else LocalProtocolError
    whose = "the URL the server sent" if from_peer else "the URL"
    if not isinstance(url, str):
        raise error(f"{whose} must be a str, not {type(url).__name__}")
    shown = repr(url[:200])
    if not url.isascii() or re.search(r"[\x00-\x20\x7f]", url):
        raise error(f"{whose} {shown} has a non-ASCII, space or control character")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        raise error(f"{whose} {shown} is not an http:// or https:// URL")
    try:
        _split_url(url)
    except LocalProtocolError as exc:
        raise error(f"{whose} {shown} is not usable: {exc}") from None
    return url


def _origin(url: str) -> tuple[str, str, int]:
    scheme, host, port, _ = _split_url(url)
    return scheme, host.lower(), port


def download_request(
    url: str,
    *,
    base_url: str,
    api_key: str | None = None,
    have: int = 0,
    headers: HeaderArg | None = None,
    from_peer: bool = True,
) -> HTTPRequest:
    """``GET url`` for a file, with ``Range`` when ``have`` bytes are saved.

    The token is sent only when ``url`` has the origin (scheme, host, port)
    of ``base_url``: the API's own ``/content`` endpoint needs it, a CDN
    link must never see it. ``from_peer``: whether ``url`` came from the
    server (a task's ``video_url``) or from the caller (see :func:`check_url`).
    """
    check_url(url, from_peer=from_peer)
    same_origin = _origin(url) == _origin(base_url)
    extra = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    return build_http_request(
        "GET",
        url,
        api_key=api_key if same_origin else None,
        headers=resume_headers(have) + extra,
        accept="*/*",
        accept_encoding="identity",
        stream=True,
    )


def _disposition_name(value: str) -> str | None:
    """The file name of a ``Content-Disposition`` value (RFC 6266): the
    ``filename*`` (RFC 8187) form first, then ``filename``."""
    m = re.search(r"filename\*\s*=\s*([^';\s]*)'[^']*'([^;\s]*)", value, re.I)
    if m:
        charset = m.group(1).lower() or "utf-8"
        try:
            return unquote(m.group(2), encoding=charset, errors="replace")
        except LookupError:  # an unknown charset
            return unquote(m.group(2), errors="replace")
    m = re.search(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', value, re.I)
    if m:
        return re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
    return None


def safe_filename(
    url: str | None = None,
    content_disposition: str | None = None,
    *,
    variant: Variant = "video",
    media_type: str | None = None,
    default: str = "video",
    max_bytes: int = 120,
) -> str:
    """A file name to save a download under, safe on every file system.

    Taken from ``content_disposition`` (its ``filename*`` / ``filename``),
    else from the last segment of ``url``'s path (percent-decoded), else
    ``default`` (pass the task id); a name ``content`` (the API endpoint) also
    gives ``default``. Then: only the part after the last ``/`` or ``\\``;
    control and format characters removed; ``<>:"|?*`` replaced by ``_``;
    no leading dots or spaces, no trailing dots or spaces; Windows device
    names (``CON``, ``NUL``, ``COM1``…) prefixed with ``_``; at most
    ``max_bytes`` bytes of UTF-8, the extension kept. The extension must suit
    ``variant`` (video: ``.mp4 .webm .mov .m3u8 .m4v .mkv``); otherwise one is
    added, from ``media_type`` or the variant's usual one.
    """
    if variant not in _EXTENSIONS:
        raise LocalProtocolError(f"variant is one of {tuple(_EXTENSIONS)}, not {variant!r}")
    name = _disposition_name(content_disposition) if content_disposition else None
    if not name and url:
        try:
            path = urlsplit(url).path
        except ValueError:
            path = ""
        name = unquote(path.rsplit("/", 1)[-1], errors="replace")
    name = _clean(name or "")
    if not name or name.lower() in ("content", "download"):
        name = _clean(default) or "video"
    stem, dot, ext = name.rpartition(".")
    suffix = "." + ext if dot and stem else ""
    if suffix.lower() not in _EXTENSIONS[variant]:
        wanted = _MEDIA_EXTENSIONS.get(_media(media_type), "")
        if wanted not in _EXTENSIONS[variant]:
            wanted = _EXTENSIONS[variant][0]
        stem, suffix = name, wanted
    stem = stem or "video"
    while len((stem + suffix).encode("utf-8")) > max_bytes and len(stem) > 1:
        stem = stem[:-1]
    stem = stem.rstrip(". ") or "video"
    if _WINDOWS_RESERVED.fullmatch(stem + suffix) or _WINDOWS_RESERVED.fullmatch(stem):
        stem = "_" + stem
    return stem + suffix


def _clean(name: str) -> str:
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        "_" if ch in '<>:"|?*' else ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )
    name = " ".join(name.split())
    return name.lstrip(". ").rstrip(". ")


@attrs.frozen
class DownloadStart:
    """What to do with the response, decided from its head.

    ``action``:

    - ``"append"``: the server sent the rest (206): write the bytes after the
      ``offset`` bytes already saved;
    - ``"replace"``: the server sent the whole file (200): truncate the
      partial file (if any) and write from 0;
    - ``"restart"``: this response cannot be used (a 206 at another offset,
      or compressed, or a 416 that does not confirm the file): drop it and
      ask again with ``have=0``;
    - ``"complete"``: 416 confirming that the ``offset`` bytes saved are the
      whole file: nothing to read;
    - ``"error"``: feed the body; ``receive_body(b"")`` raises the error it
      carries (the API's status error, or what was wrong with the file).

    ``total``: the file's full size when the server said it. ``media_type``:
    from ``Content-Type`` (refined by sniffing as the body comes).
    ``filename``: from ``Content-Disposition``, unsanitised (pass it to
    :func:`safe_filename`).
    """

    action: Action
    offset: int = 0
    total: int | None = None
    media_type: str | None = None
    filename: str | None = None


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``(first, last, total)`` of a ``Content-Range`` value, ``None`` parts
    for ``*``; ``None`` when it does not parse."""
    if value is None:
        return None
    m = _CONTENT_RANGE.fullmatch(value)
    if m is None:
        return None
    first, last, total = m.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total != "*" else None,
    )


def _length(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not (value.isdecimal() and value.isascii()):
        raise RemoteProtocolError(f"invalid Content-Length {value[:40]!r}")
    return int(value)


# States of one download response.
_HEAD = "awaiting headers"
_SNIFFING = "sniffing"  # holding the first bytes back until the type is known
_WRITING = "writing"
_REFUSING = "refusing"  # collecting a refused body to quote it
_ERROR = "error"  # collecting a non-2xx body
_IGNORING = "ignoring"  # restart / complete: the body is not used
_ENDED = "ended"
_FAILED = "failed"


class Download:
    """One file download response, at the message level.

    ``have``: bytes already saved from an earlier attempt (the request asked
    for the rest with :func:`resume_headers`). ``variant``: what is expected
    (``video``, ``thumbnail``, ``spritesheet``), for the messages.
    ``max_size``: the size cap. ``decode_content=False`` when the transport
    already undid ``Content-Encoding``.

    Call :meth:`receive_headers` with the final response (after redirects),
    act on the :class:`DownloadStart` it returns, then feed
    :meth:`receive_body` the body pieces: each call returns the bytes to
    write next (possibly ``b""`` while the first bytes are sniffed);
    ``receive_body(b"")`` ends the body, checks the length, and returns the
    last bytes to write. :attr:`complete` is then true: only now may the file
    get its final name.
    """

    def __init__(
        self,
        *,
        have: int = 0,
        variant: Variant = "video",
        max_size: int = DEFAULT_MAX_DOWNLOAD,
        decode_content: bool = True,
    ) -> None:
        resume_headers(have)  # checks it
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0:
            raise LocalProtocolError(f"max_size is a positive int, not {max_size!r}")
        if variant not in _EXTENSIONS:
            raise LocalProtocolError(f"variant is one of {tuple(_EXTENSIONS)}, not {variant!r}")
        self.have = have
        self.variant = variant
        self.max_size = max_size
        self.decode_content = decode_content
        self.status_code: int | None = None
        self.headers: Headers = ()
        self.start: DownloadStart | None = None
        self.media_type: str | None = None
        self.received = 0  # body bytes as they came (encoded)
        self.written = 0  # file bytes handed out
        self.complete = False
        self._state = _HEAD
        self._expected: int | None = None  # body bytes announced (encoded)
        self._total: int | None = None  # whole-file size announced
        self._offset = 0
        self._inflater: _Inflater | None = None
        self._held = bytearray()
        self._error: SoraError | None = None

    @property
    def position(self) -> int:
        """The file size once the bytes handed out so far are written."""
        return self._offset + self.written

    # -- head -------------------------------------------------------------------

    def receive_headers(
        self, status_code: int, headers: Iterable[tuple[Any, Any]]
    ) -> DownloadStart:
        """The final status and headers; returns what to do with the body."""
        self._check_usable()
        if self._state is not _HEAD:
            raise LocalProtocolError("receive_headers() was already called for this download")
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise LocalProtocolError(f"the status is an int, not {status_code!r}")
        if not 200 <= status_code <= 999:
            raise LocalProtocolError(f"receive_headers() takes the final status, not {status_code}")
        self.status_code = status_code
        self.headers = hdrs = _normalise_headers(headers)
        self.media_type = _media(header(hdrs, "content-type")) or None
        name = header(hdrs, "content-disposition")
        filename = _disposition_name(name) if name else None
        try:
            start = self._decide(status_code, hdrs)
        except SoraError as exc:
            self._fail(exc)
        self.start = attrs.evolve(start, media_type=self.media_type, filename=filename)
        return self.start

    def _decide(self, status: int, hdrs: Headers) -> DownloadStart:
        refused: RemoteProtocolError | None = None
        try:
            encoding = content_encoding(hdrs, self.decode_content, f" for the {self.variant} file")
        except RemoteProtocolError as exc:  # refused below, once the status is known
            encoding, refused = "identity", exc
        encoded = encoding is not None or refused is not None
        crange = _content_range(header(hdrs, "content-range"))
        if status == 416:
            self._state = _IGNORING
            if crange is not None and crange[0] is None and crange[2] == self.have and self.have:
                self.complete = True
                return DownloadStart("complete", self.have, self.have)
            return DownloadStart("restart", 0, crange[2] if crange else None)
        if status not in (200, 206):
            self._state = _ERROR
            return DownloadStart("error")
        if refused is not None:
            raise refused
        length = _length(header(hdrs, "content-length"))
        if status == 206:
            if crange is None or crange[0] is None or crange[1] is None or crange[1] < crange[0]:
                raise RemoteProtocolError(
                    f"a 206 answer with a bad Content-Range {header(hdrs, 'content-range')!r}"
                )
            first, last, total = crange
            assert first is not None and last is not None
            part = last - first + 1
            if first != self.have or encoded:
                self._state = _IGNORING
                return DownloadStart("restart", 0, total)
            if length is not None and length != part:
                raise RemoteProtocolError(
                    f"Content-Length {length} disagrees with Content-Range "
                    f"{header(hdrs, 'content-range')!r}"
                )
            self._expected, self._offset = part, first
            self._total = total if total is not None else None
            end = first + part
            if total is not None and end > total:
                raise RemoteProtocolError(f"Content-Range ends past the file's size {total}")
            action: Action = "append"
        else:
            self._expected, self._offset = length, 0
            self._total = None if encoded else length
            action = "replace"
        announced = (
            self._total
            if self._total is not None
            else (
                self._offset + self._expected
                if self._expected is not None and not encoded
                else None
            )
        )
        if announced is not None and announced > self.max_size:
            raise LimitExceeded(
                f"the {self.variant} file is {announced} bytes, over the download cap of "
                f"{self.max_size} bytes (max_size)"
            )
        if encoding is not None:
            self._inflater = _Inflater(encoding, self.max_size - self._offset)
        # A resumed part cannot be sniffed (it starts mid-file): its type
        # must not be text. A whole file is sniffed before any byte goes out.
        if self._offset and self._text_type():
            self._state = _REFUSING
        else:
            self._state = _SNIFFING if not self._offset else _WRITING
        return DownloadStart(action, self._offset, self._total)

    def _text_type(self) -> bool:
        media = self.media_type or ""
        return bool(_TEXT_TYPES.fullmatch(media)) and media not in _PLAYLIST_TYPES

    # -- body -------------------------------------------------------------------

    def receive_body(self, data: bytes) -> bytes:
        """Body bytes as they arrive -> the file bytes to write now; ``b""``
        ends the body (the length is checked, :attr:`complete` set)."""
        self._check_usable()
        if self._state is _HEAD:
            raise LocalProtocolError("call receive_headers() before receive_body()")
        if self._state is _ENDED:
            if data:
                raise LocalProtocolError("the body already ended (receive_body(b'') was called)")
            return b""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"receive_body() takes bytes, not {type(data).__name__}")
        try:
            return self._body(bytes(data))
        except SoraError as exc:
            self._fail(exc)

    def _body(self, data: bytes) -> bytes:
        state = self._state
        if state is _IGNORING:
            if not data:
                self._state = _ENDED
            return b""
        if state is _ERROR or state is _REFUSING:
            if data:
                room = _MAX_ERROR_TEXT - len(self._held)
                self._held += data[: max(room, 0)]
                if state is _REFUSING and len(self._held) >= _SAMPLE:
                    self._refuse()  # no need to read a whole page to quote its title
                return b""
            if state is _ERROR:
                self._raise_status_error()
            self._refuse()
        if data:
            self.received += len(data)
            if self._expected is not None and self.received > self._expected:
                raise RemoteProtocolError(
                    f"the server sent more than the {self._expected} bytes it announced"
                )
            out = b"".join(self._inflater.feed(data)) if self._inflater else data
            return self._out(out)
        out = b"".join(self._inflater.finish()) if self._inflater else b""
        last = self._out(out, end=True)
        self._check_length()
        self._state = _ENDED
        self.complete = True
        return last

    def _out(self, data: bytes, *, end: bool = False) -> bytes:
        if self._state is _SNIFFING:
            self._held += data
            if len(self._held) < _SNIFF and not end:
                return b""
            self._sniffed()
            data, self._held = bytes(self._held), bytearray()
            if self._state is _REFUSING:
                self._held += data
                if end:
                    self._refuse()
                return b""
        if self.position + len(data) > self.max_size:
            raise LimitExceeded(
                f"the {self.variant} file goes over the download cap of {self.max_size} bytes "
                "(max_size)"
            )
        self.written += len(data)
        return data

    def _sniffed(self) -> None:
        sniffed = sniff_media_type(bytes(self._held))
        self._state = _WRITING
        if sniffed in ("text/html", "application/json"):
            self._state = _REFUSING
        elif sniffed is not None:
            self.media_type = sniffed
        elif self._text_type():
            self._state = _REFUSING

    def _check_length(self) -> None:
        if self._expected is not None and self.received < self._expected:
            raise IncompleteDownload(
                f"the {self.variant} file was cut short: the body ended after "
                f"{self.received} of {self._expected} bytes",
                received=self.written,
                expected=self._total,
            )
        if self._total is not None and self.position != self._total:
            raise IncompleteDownload(
                f"the {self.variant} file has {self.position} bytes, not the announced "
                f"{self._total}",
                received=self.written,
                expected=self._total,
            )

    def _refuse(self) -> None:
        raw = bytes(self._held)
        text = raw.decode("utf-8", "replace")
        said = ""
        try:
            obj = _json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            error = obj.get("error")
            if isinstance(error, dict):
                error = error.get("message")
            said = error if isinstance(error, str) else str(obj.get("message") or "")
        if not said:
            said = _summarise(text) if "<" in text[:200] else _quote(raw)
        raise UnexpectedContent(
            f"expected a {self.variant} file, got Content-Type {self.media_type!r} "
            f"(HTTP {self.status_code}): {said[:300]}",
            received=self.written,
        )

    def _raise_status_error(self) -> None:
        raw = bytes(self._held)
        text = raw.decode("utf-8", "replace")
        from ._tasks import _error_body

        try:
            obj = _json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            obj = None
        assert self.status_code is not None
        raise APIErrorReceived(self.status_code, _error_body(obj), text, self.headers).exception()

    def _check_usable(self) -> None:
        if self._state is _FAILED:
            raise LocalProtocolError(
                f"this download failed earlier ({self._error}); it cannot be used further"
            )

    def _fail(self, exc: SoraError) -> NoReturn:
        self._state = _FAILED
        self._error = exc
        raise exc
