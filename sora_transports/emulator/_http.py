"""The emulator's HTTP plumbing: one h11 connection, response writers, request parsing.

Nothing here knows a route. :class:`Exchange` reads a request and writes a
response on one connection; :class:`Request` is what the routes see;
:func:`send_file` answers a file with ``Range`` support (and the download
faults); :func:`form_fields` reads a ``multipart/form-data`` body.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import http
import json
import re
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, NoReturn
from urllib.parse import parse_qs

import h11

__all__ = [
    "CORS_EXPOSE",
    "Closed",
    "Exchange",
    "Request",
    "error",
    "form_fields",
    "send_file",
    "sse",
]

MAX_BODY = 32 * 1024 * 1024
IDLE_TIMEOUT = 120.0  # seconds a connection may sit between or inside requests
SERVER = "sora-sansio-emulator/0.1"
# Headers a browser's script may read (CORS): progress, polling and download headers.
CORS_EXPOSE = (
    "openai-poll-after-ms, retry-after, retry-after-ms, x-request-id, content-length, "
    "content-range, accept-ranges, x-emulator-task-id"
)
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def error(message: str, type_: str, param: str | None = None, code: str | None = None) -> Any:
    """An OpenAI-shaped error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


class Closed(Exception):
    """The exchange ended the connection on purpose (a fault, or the client left)."""


@dataclass
class Request:
    """One parsed request, as the routes see it."""

    method: str
    target: str  # as sent, query included
    path: str  # percent-decoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # "http://host:port" as the client addressed the emulator
    api: str = ""  # which API answered (for the stats and the log)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def parse_query(raw: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


class Exchange:
    """One connection: h11 state, the streams, and how to write responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h = h11.Connection(h11.SERVER)
        self.head = False  # the current request is a HEAD
        self.status = 0  # the status of the current response, once started

    async def read_request(self) -> tuple[h11.Request, bytes] | None:
        request: h11.Request | None = None
        body = bytearray()
        self.status = 0
        while True:
            event = self.h.next_event()
            if event is h11.NEED_DATA:
                if self.h.they_are_waiting_for_100_continue:
                    await self.send(
                        h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
                    )
                try:
                    data = await asyncio.wait_for(self.reader.read(65536), IDLE_TIMEOUT)
                except asyncio.TimeoutError:
                    return None
                self.h.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                self.head = event.method == b"HEAD"
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    await self.json(413, error("Request body too large.", "invalid_request_error"))
                    raise Closed
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request, bytes(body)
            else:  # ConnectionClosed (or PAUSED, which cannot happen here)
                return None

    async def send(self, event: h11.Event) -> None:
        data = self.h.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        base = [
            ("Server", SERVER),
            ("Date", formatdate(usegmt=True)),
            ("x-request-id", "req_" + uuid.uuid4().hex),
            # CORS on every response, so a browser's fetch can read it.
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Expose-Headers", CORS_EXPOSE),
        ]
        self.status = status
        reason = http.HTTPStatus(status).phrase.encode()
        await self.send(h11.Response(status_code=status, headers=base + headers, reason=reason))

    async def body(self, data: bytes) -> None:
        if data and not self.head:
            await self.send(h11.Data(data=data))

    async def end(self) -> None:
        await self.send(h11.EndOfMessage())

    async def full(self, status: int, ctype: str, data: bytes) -> None:
        await self.start(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
        await self.body(data)
        await self.end()

    async def json(self, status: int, obj: Any, extra: list[tuple[str, str]] | None = None) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        await self.start(status, headers + (extra or []))
        await self.body(data)
        await self.end()

    async def empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        await self.start(status, headers)
        await self.end()

    def close_now(self) -> NoReturn:
        """Drop the connection (after what is already written) mid-message."""
        self.writer.close()
        raise Closed


async def send_file(
    ex: Exchange,
    data: bytes,
    ctype: str,
    range_: str | None,
    *,
    short: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """Answer ``data`` whole (200) or the asked ``Range`` (206; 416 when
    unsatisfiable). ``short``: announce the full length, send half, drop the
    connection (the short-body download fault)."""
    size = len(data)
    headers = [("Content-Type", ctype), ("Accept-Ranges", "bytes"), *(extra or [])]
    m = _RANGE_RE.fullmatch(range_.strip()) if range_ else None
    if m is None or m.group(1) == m.group(2) == "":
        start, end, status = 0, size - 1, 200
    else:
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            start, end = max(0, size - int(m.group(2))), size - 1
        if start > end or start >= size:
            return await ex.empty(
                416, [("Content-Range", f"bytes */{size}"), ("Content-Length", "0")]
            )
        status = 206
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    headers.append(("Content-Length", str(end - start + 1)))
    await ex.start(status, headers)
    piece = data[start : end + 1]
    if short and not ex.head:
        await ex.body(piece[: len(piece) // 2])
        ex.close_now()
    await ex.body(piece)
    await ex.end()


def form_fields(ctype: str, body: bytes) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body: text fields as ``str``,
    file parts as ``(filename, content_type, bytes)``. Raises ``ValueError``
    when the body is not multipart."""
    if "boundary=" not in ctype:
        raise ValueError("multipart/form-data without a boundary")
    head = f"Content-Type: {ctype}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("not a multipart body")
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            out[name] = (filename, part.get_content_type(), raw)
        else:
            out[name] = raw.decode("utf-8", "replace")
    return out
