"""The emulator's routing: which handler answers a request, and the small routes.

:func:`dispatch` answers CORS preflights, checks the bearer token on
``/v1/`` routes, and hands the request to the chat playback, a task API
(:mod:`._task_routes`), a file, a tracking page or ``/v1/models``.
:func:`log_line` is the request log's line, secrets redacted by the
project's one rule (``is_secret_header``).
"""

from __future__ import annotations

import hmac
import html
import json
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import h11

from sora_core import REDACTED, is_secret_header

from ._faults import FaultError
from ._http import Exchange, Request, error, parse_query
from ._playback import chat
from ._task_routes import ROUTES, file_answer

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["FILES", "MODELS", "dispatch", "log_line", "parse"]

MODELS: tuple[str, ...] = ("sora-2", "sora-2-pro", "gpt-4o-mini", "emulator-chat")
"""The models ``GET /v1/models`` lists. Any model name is accepted: one that
starts with ``sora`` gets a video generation, any other a plain chat reply."""
FILES: dict[str, str] = {"sample.mp4": "video/mp4", "sample.webp": "image/webp"}
"""The files served under ``/files/`` (name: content type): the video and the
thumbnail every generation links to."""

_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_METHODS = "GET, POST, DELETE, HEAD, OPTIONS"
_ALLOW_HEADERS = (
    "Authorization, Content-Type, Accept, Range, X-Emulator-Fault, X-Emulator-Fault-Count, "
    "X-Emulator-Retry-After, X-Emulator-Style, X-Emulator-Disconnect-At, X-Emulator-Url-Field"
)
_COMPILED = [
    (re.compile("^" + re.escape(p).replace(re.escape("{id}"), "([^/]+)") + "$"), m, api)
    for p, m, api in ROUTES
]


def parse(req: h11.Request, body: bytes, fallback_netloc: str) -> Request:
    target = req.target.decode("ascii", "replace")
    parts = urlsplit(target)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers}
    host = headers.get("host", "")
    base = "http://" + (host if _HOST_RE.fullmatch(host) else fallback_netloc)
    return Request(
        method=req.method.decode("ascii", "replace"),
        target=target,
        path=unquote(parts.path),
        query=parse_query(parts.query),
        headers=headers,
        body=body,
        base=base,
    )


def log_line(req: h11.Request, status: int) -> str:
    """``METHOD target -> status [headers]``, every secret header redacted."""
    shown = []
    for key, value in req.headers:
        name = key.decode("latin-1")
        text = REDACTED if is_secret_header(name) else value.decode("latin-1")
        shown.append(f"{name}: {text}")
    method = req.method.decode("ascii", "replace")
    target = req.target.decode("ascii", "replace")
    return f"{method} {target} -> {status or '-'} [{', '.join(shown)}]"


async def dispatch(emu: Emulator, ex: Exchange, req: Request) -> None:
    try:
        await _route(emu, ex, req)
    except FaultError as exc:
        if ex.status == 0:
            await ex.json(400, error(str(exc), "invalid_request_error", exc.param))


async def _route(emu: Emulator, ex: Exchange, req: Request) -> None:
    method, path = req.method, req.path
    if method == "OPTIONS":
        return await _preflight(ex, req)
    if path.startswith("/files/"):
        if method not in ("GET", "HEAD"):
            return await _not_allowed(ex, method, path, "GET, HEAD")
        return await _file(emu, ex, req, path[len("/files/") :])
    if path.startswith("/tasks/"):
        return await _task_page(emu, ex, req, path)
    if path == "/v1/chat/completions":
        if method != "POST":
            return await _not_allowed(ex, method, path, "POST")
        if await _auth_ok(emu, ex, req):
            await chat(emu, ex, req)
        return None
    if path == "/v1/models" or path.startswith("/v1/models/"):
        if method not in ("GET", "HEAD"):
            return await _not_allowed(ex, method, path, "GET, HEAD")
        if await _auth_ok(emu, ex, req):
            await _models(ex, path[len("/v1/models/") :] if path != "/v1/models" else "")
        return None
    for pattern, methods, api in _COMPILED:
        m = pattern.match(path)
        if m is None:
            continue
        handler = methods.get(method)
        if handler is None:
            return await _not_allowed(ex, method, path, ", ".join(methods))
        req.api = api
        if await _auth_ok(emu, ex, req):
            await handler(emu, ex, req, unquote(m.group(1)) if m.groups() else "")
        return None
    msg = f"Invalid URL ({method} {path})"
    return await ex.json(404, error(msg, "invalid_request_error", None, "not_found"))


async def _preflight(ex: Exchange, req: Request) -> None:
    """CORS preflight: any origin, the API's methods, the headers asked for."""
    asked = req.header("access-control-request-headers") or ""
    allow = _ALLOW_HEADERS + (", " + asked if asked.strip() else "")
    await ex.empty(
        204,
        [
            ("Access-Control-Allow-Methods", _METHODS),
            ("Access-Control-Allow-Headers", allow),
            ("Access-Control-Max-Age", "600"),
            ("Allow", _METHODS),
            ("Vary", "Access-Control-Request-Headers"),
        ],
    )


async def _not_allowed(ex: Exchange, method: str, path: str, allow: str) -> None:
    msg = f"Method {method} not allowed for {path}"
    err = error(msg, "invalid_request_error", None, "method_not_allowed")
    await ex.json(405, err, [("Allow", allow)])


async def _auth_ok(emu: Emulator, ex: Exchange, req: Request) -> bool:
    if emu.api_key is None:
        return True
    scheme, _, token = (req.header("authorization") or "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), emu.api_key.encode()
    )
    if not ok:
        err = error("Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key")
        await ex.json(401, err, [("WWW-Authenticate", 'Bearer realm="sora-emulator"')])
    return ok


async def _models(ex: Exchange, one: str) -> None:
    created = 1760000000
    data = [
        {"id": m, "object": "model", "created": created, "owned_by": "sora-emulator"}
        for m in MODELS
    ]
    if not one:
        return await ex.json(200, {"object": "list", "data": data})
    for item in data:
        if item["id"] == one:
            return await ex.json(200, item)
    msg = f"The model '{one}' does not exist"
    return await ex.json(404, error(msg, "invalid_request_error", "model", "model_not_found"))


async def _file(emu: Emulator, ex: Exchange, req: Request, name: str) -> None:
    """A CDN-style link: no token needed; ``?expires=`` in the past is 410."""
    emu._counters.add("download")
    ctype = FILES.get(name)
    if ctype is None:
        msg = f"No such file: {name}"
        return await ex.json(404, error(msg, "invalid_request_error", None, "not_found"))
    expires: int | None = None
    raw = req.query.get("expires")
    if raw is not None:
        try:
            expires = int(raw)
        except ValueError:
            expires = 0
    await file_answer(emu, ex, req, name, ctype, expires)


async def _task_page(emu: Emulator, ex: Exchange, req: Request, path: str) -> None:
    kind, _, task_id = path[len("/tasks/") :].partition("/")
    task = emu.tasks.get(task_id)
    if task is None or kind not in ("web", "source"):
        msg = f"No such task: {task_id}"
        return await ex.json(404, error(msg, "invalid_request_error", None, "not_found"))
    emu._counters.add("poll:source")
    public = task.source()
    if kind == "source":
        return await ex.json(200, public)
    video = public["video_url"]
    player = f"<video src='{html.escape(video)}' controls></video>" if video else ""
    page = (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(task.id)}</title>"
        f"<h1>{html.escape(task.id)}</h1><p>{html.escape(str(public['status']))}, "
        f"{public['progress']}%</p>{player}"
        f"<pre>{html.escape(json.dumps(public, ensure_ascii=False, indent=2))}</pre>"
        f"<!-- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} -->"
    )
    return await ex.full(200, "text/html; charset=utf-8", page.encode())
