"""The result of a command: the success decision, the JSON line, the error sentence.

Each command ends in one result object (printed as one JSON line with
``--json``) and, on failure, one short sentence on stderr. The sentence says
what failed in the user's terms; the runtime's own long text (urllib3's, for
one) goes to the debug log (``-v``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any, TextIO
from urllib.parse import urlsplit

import attrs

import sora_core

__all__ = [
    "VideoOutcome",
    "chat_result",
    "completion_dict",
    "error_sentence",
    "json_line",
    "usage_dict",
    "video_outcome",
]

logger = logging.getLogger("sora_transports.cli")

# Where a runtime's own text starts in a transport's message ("...: ConnectionError: ...").
_RUNTIME_TEXT = re.compile(
    r": (?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Disconnected|Group)\b.*\Z", re.S
)
_LONG = 160  # a message longer than this is shortened when its cause is known


def json_line(obj: object, out: TextIO, scrub: Callable[[str], str]) -> str:
    """One line of JSON for ``out`` (non-ASCII escaped unless ``out`` is UTF-8)."""
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    text = json.dumps(obj, ensure_ascii=encoding not in ("utf8", "utf8sig"), default=str)
    return scrub(text)


def usage_dict(usage: sora_core.Usage | None) -> Any:
    """The token usage as JSON-ready data (``None`` when not reported)."""
    return None if usage is None else sora_core.converter.unstructure(usage)


# -- the error sentence ---------------------------------------------------------------------


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: causes, contexts, arguments, urllib3's ``reason``, groups."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        inner += list(getattr(e, "exceptions", None) or ())
        todo += [c for c in inner if isinstance(c, BaseException)]


def _root_reason(exc: BaseException) -> str | None:
    """The operating system's short reason (``connection refused``), when there is one."""
    for e in _wrapped(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"the TLS certificate was not accepted ({e.verify_message})"
        if isinstance(e, socket.gaierror):
            return "the host name was not found"
        if isinstance(e, OSError) and e.errno:
            text = os.strerror(e.errno)  # not e.strerror: trio puts the address in it
            return text[:1].lower() + text[1:]
    return None


def _where(base_url: str | None) -> str:
    if not base_url:
        return "the relay"
    parts = urlsplit(base_url)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return parts.netloc
    host = parts.hostname or parts.netloc
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _url_hint(exc: BaseException, base_url: str | None) -> str:
    """What to change when a 404 comes from a base URL that is not the API root."""
    if not (isinstance(exc, sora_core.APIStatusError) and exc.status_code == 404 and base_url):
        return ""
    path = urlsplit(base_url).path.rstrip("/")
    if path.endswith("/chat/completions"):
        root = base_url.rstrip("/")[: -len("/chat/completions")]
        return f" (the base URL is the API root, without /chat/completions: try {root})"
    if not path.endswith("/v1"):
        root = base_url.rstrip("/") + "/v1"
        return f" (the base URL is the API root, which usually ends in /v1: try {root})"
    return ""


def error_sentence(exc: BaseException, base_url: str | None = None) -> str:
    """The one short sentence for ``exc``; a runtime's long text goes to the debug log."""
    message = str(exc).strip() or type(exc).__name__
    if isinstance(exc, sora_core.TransportError) and not isinstance(exc, sora_core.ConnectTimeout):
        reason = _root_reason(exc)
        head = _RUNTIME_TEXT.sub("", message)
        if isinstance(exc, sora_core.ConnectError) and not head.startswith("TLS"):
            short = f"cannot connect to {_where(base_url)}"
        else:
            short = head
        if reason is not None:
            short = f"{short}: {reason}"
        if short != message and (reason is not None or len(message) > _LONG):
            logger.debug("%s: %s", type(exc).__name__, message)
            message = short
    return message + _url_hint(exc, base_url)


# -- sora generate: did it succeed? --------------------------------------------------------


@attrs.frozen
class VideoOutcome:
    """A generation's result: the video, whether it is a success, the error line, a warning."""

    video: sora_core.VideoResult
    ok: bool
    message: str | None = None
    warning: str | None = None


def video_outcome(video: sora_core.VideoResult | None, message: str | None) -> VideoOutcome:
    """The one success decision of ``sora generate``: a video link and no error.

    A stream that broke after the link arrived is a success with a warning; an
    answer that finished without a link a failure; a success says 100%.
    """
    if video is None:
        video = sora_core.VideoResult(status="failed")
    warning = None
    if message is not None:
        if video.status == "succeeded" and video.video_url:
            # The link arrived before the stream broke: the video exists.
            warning, message = f"the stream broke after the video link arrived: {message}", None
        elif video.error is None:
            video = attrs.evolve(video, error=message)
    ok = message is None and video.status == "succeeded" and bool(video.video_url)
    if message is None and not ok:
        message = video.error or "the answer holds no video link"
    if not ok and video.status == "incomplete" and video.finish_reason is not None:
        # The answer finished, without a video: that is a failure, not a cut.
        video = attrs.evolve(video, status="failed", error=video.error or message)
    if ok and video.progress != 100:
        video = attrs.evolve(video, progress=100.0)
    return VideoOutcome(video, ok, message, warning)


# -- sora chat --------------------------------------------------------------------------------


def chat_result(
    completion: sora_core.ChatCompletion | None,
    error: BaseException | None,
    end: object,
    message: str | None,
) -> tuple[dict[str, Any], str | None]:
    """The JSON result of ``sora chat`` and its error line (``None`` on success).

    ``end`` is the stream's last event (a ``StreamEnded`` or the
    ``CompletionReceived``), ``message`` the error sentence of ``error``.
    """
    status = "succeeded"
    if error is not None:
        started = completion is not None or isinstance(error, sora_core.APIStreamError)
        lost = isinstance(error, sora_core.TransportError) and not isinstance(
            error, (sora_core.ConnectError, sora_core.ConnectTimeout)
        )
        status = "incomplete" if lost and started else "failed"
    elif isinstance(end, sora_core.StreamEnded) and end.reason == "incomplete":
        status = "incomplete"
        message = "the stream ended before a finish_reason: the answer may be cut short"
    elif end is None:  # pragma: no cover - the clients always end with one of them
        status, message = "failed", "the response ended without a completion"
    return completion_dict(status, completion, message), message


def completion_dict(
    status: str, completion: sora_core.ChatCompletion | None, error: str | None
) -> dict[str, Any]:
    """The fields of ``sora chat``'s JSON result."""
    c = completion
    return {
        "status": status,
        "text": c.text if c is not None else "",
        "reasoning": c.reasoning if c is not None else "",
        "finish_reason": c.finish_reason if c is not None else None,
        "usage": usage_dict(c.usage if c is not None else None),
        "error": error,
        "model": c.model if c is not None else None,
        "id": c.id if c is not None else None,
    }
