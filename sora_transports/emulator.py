"""A local sora-2 relay emulator: an OpenAI-compatible HTTP/1.1 server on h11.

It speaks ``POST /v1/chat/completions`` (streamed or not), ``GET /v1/models``
and serves a bundled tiny video and thumbnail under ``/files/``, so a client
can run a whole generation, download included, over loopback::

    import openai

    from sora_transports.emulator import Emulator

    with Emulator(speed=0) as emu:
        client = openai.OpenAI(base_url=emu.base_url, api_key="k")
        answer = client.chat.completions.create(
            model="sora-2", messages=[{"role": "user", "content": "a cat surfing"}]
        )
        print(answer.choices[0].message.content)

A sora model (any name starting with ``sora``) streams a generation in one of
the house styles of :data:`STYLES`; any other model streams a short chat
reply word by word. Faults (:data:`FAULTS`) are switched on for the whole
emulator or per request with the ``X-Emulator-Fault`` header; the style per
request with ``X-Emulator-Style``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import html
import http
import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Callable
from email.utils import formatdate
from importlib import resources
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import h11

from ._emulator_styles import (
    POLICY_TEXT,
    STYLES,
    UPSTREAM_ERROR,
    Context,
    Generation,
    advance_task,
    build,
    fault_cut,
    prompt_of,
    usage_of,
)

__all__ = ["FAULTS", "FILES", "MODELS", "POLICY_TEXT", "STYLES", "Emulator", "serve_forever"]

FAULTS: tuple[str, ...] = ("429", "500", "disconnect", "error-event", "policy", "stall")
"""The faults the emulator can inject, for every request (``Emulator(fault=...)``)
or per request (the ``X-Emulator-Fault`` header):

- ``"429"`` / ``"500"``: that status with an error body (``429`` with
  ``Retry-After`` and ``retry-after-ms``), before anything is streamed;
- ``"disconnect"``: the connection drops mid-stream, after the task id and
  two progress updates (half the body of a non-streaming answer);
- ``"error-event"``: a ``data: {"error": ...}`` event inside the 200 stream
  (HTTP 502 for a non-streaming request);
- ``"policy"``: the generation fails with a content-policy message;
- ``"stall"``: one chunk, then silence for ``stall_seconds``, then the drop.
"""
MODELS: tuple[str, ...] = ("sora-2", "sora-2-pro", "gpt-4o-mini", "emulator-chat")
"""The models ``GET /v1/models`` lists. Any model name is accepted: one that
starts with ``sora`` gets a video generation, any other a plain chat reply."""
FILES: dict[str, str] = {"sample.mp4": "video/mp4", "sample.webp": "image/webp"}
"""The files served under ``/files/`` (name: content type): the video and the
thumbnail every generation links to."""

logger = logging.getLogger(__name__)

_MAX_BODY = 32 * 1024 * 1024
_IDLE_TIMEOUT = 120.0  # seconds a connection may sit between or inside requests
_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
_SERVER = b"sora-sansio-emulator/0.1"
_file_cache: dict[str, bytes] = {}


def _file_bytes(name: str) -> bytes:
    data = _file_cache.get(name)
    if data is None:
        data = (resources.files("sora_transports") / "data" / name).read_bytes()
        _file_cache[name] = data
    return data


def _error(message: str, type_: str, param: str | None = None, code: str | None = None) -> Any:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


class _Closed(Exception):
    """The exchange ended the connection on purpose (a fault, or the client left)."""


class _Exchange:
    """One connection: h11 state, the streams, and how to write responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h = h11.Connection(h11.SERVER)
        self.head = False  # the current request is a HEAD

    async def read_request(self) -> tuple[h11.Request, bytes] | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = self.h.next_event()
            if event is h11.NEED_DATA:
                if self.h.they_are_waiting_for_100_continue:
                    await self.send(
                        h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
                    )
                try:
                    data = await asyncio.wait_for(self.reader.read(65536), _IDLE_TIMEOUT)
                except asyncio.TimeoutError:
                    return None
                self.h.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                self.head = event.method == b"HEAD"
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > _MAX_BODY:
                    await self.json(413, _error("Request body too large.", "invalid_request_error"))
                    raise _Closed
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
            ("Server", _SERVER.decode()),
            ("Date", formatdate(usegmt=True)),
            ("x-request-id", "req_" + uuid.uuid4().hex),
        ]
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

    def close_now(self) -> NoReturn:
        """Drop the connection (after what is already written) mid-message."""
        self.writer.close()
        raise _Closed


class Emulator:
    """A local sora-2 relay. See the module docstring.

    ``speed`` compresses the timeline: 1.0 streams a generation in about 3
    seconds, 0 (or anything huge) does not wait at all. ``fault`` and
    ``fault_count`` switch on a fault for every request (``fault_count=N``:
    only the first N chat requests that ask for that fault get it).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        style: str = "markdown",
        speed: float = 1.0,
        fault: str | None = None,
        fault_count: int | None = None,
        retry_after: float = 1.0,
        stall_seconds: float = 600.0,
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be None or one of {FAULTS}, not {fault!r}")
        if not speed >= 0:
            raise ValueError("speed must be >= 0")
        if not retry_after >= 0 or not stall_seconds >= 0:
            raise ValueError("retry_after and stall_seconds must be >= 0")
        if fault_count is not None and fault_count < 0:
            raise ValueError("fault_count must be >= 0")
        self.host = host
        self.port = port  # the bound port once listening
        self._bind_port = port
        self.api_key = api_key
        self.style = style
        self.speed = speed
        self.fault = fault
        self.fault_count = fault_count
        self.retry_after = retry_after
        self.stall_seconds = stall_seconds
        self.requests_served = 0
        self.connections_accepted = 0
        self._fault_hits: collections.Counter[str] = collections.Counter()
        self._tasks: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._conns: set[asyncio.Task[Any]] = set()
        self._listening = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._serve_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._listening else "not listening"
        return f"<Emulator {where} style={self.style!r} fault={self.fault!r}>"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1`` once listening."""
        if not self._listening:
            raise RuntimeError("the emulator is not listening")
        return f"http://{self._netloc()}/v1"

    def _netloc(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def reset_faults(self) -> None:
        """Forget how many requests each counted fault has hit."""
        self._fault_hits.clear()

    # -- running ------------------------------------------------------------

    async def serve(self, *, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the running event loop until :meth:`stop` (or cancellation).

        ``ready(base_url)`` is called once listening.
        """
        if self._stop_event is not None:
            raise RuntimeError("the emulator is already serving")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop_event = stop = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._handle, self.host, self._bind_port, backlog=4096, reuse_address=True
            )
        except BaseException:
            self._stop_event = self._loop = None
            raise
        try:
            self.port = server.sockets[0].getsockname()[1]
            self._listening = True
            if ready is not None:
                ready(self.base_url)
            await stop.wait()
        finally:
            self._listening = False
            server.close()
            conns = list(self._conns)
            for task in conns:
                task.cancel()
            if conns:
                await asyncio.wait(conns, timeout=5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
            self._stop_event = self._loop = None

    def start(self) -> Emulator:
        """Serve from a daemon thread with its own event loop; return once listening."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the emulator is already running")
        self._started.clear()
        self._start_error = None

        def run() -> None:
            try:
                asyncio.run(self.serve(ready=lambda _url: self._started.set()))
            except BaseException as exc:  # reported by start()
                self._start_error = exc
            finally:
                self._started.set()

        self._thread = threading.Thread(target=run, name="sora-emulator", daemon=True)
        self._thread.start()
        if not self._started.wait(30) or not self._listening:
            error = self._start_error
            self.stop()
            raise RuntimeError(f"the emulator did not start: {error!r}") from error
        return self

    def stop(self) -> None:
        """Stop serving (open streams are cut) and join the thread, if any."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            if self._loop_thread == threading.get_ident():
                event.set()
            else:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(event.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(15)
            if thread.is_alive():
                logger.warning("the emulator thread did not stop within 15 s")
            else:
                self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        """Serve as a task of the running loop: ``async with Emulator() as emu``."""
        ready = asyncio.Event()
        task = asyncio.create_task(self.serve(ready=lambda _url: ready.set()))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # raises what went wrong
            raise RuntimeError("the emulator stopped before listening")
        self._serve_task = task
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop serving (from inside the loop it serves on) and wait until done."""
        if self._stop_event is not None:
            self._stop_event.set()
        task, self._serve_task = self._serve_task, None
        if task is not None:
            await task

    # -- connections ----------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        self.connections_accepted += 1
        ex = _Exchange(reader, writer)
        try:
            await self._serve_connection(ex)
        except (_Closed, ConnectionError, OSError, asyncio.CancelledError):
            pass  # the client left, a fault cut it, or the emulator is stopping
        except Exception:
            logger.exception("emulator: unexpected error")
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def _serve_connection(self, ex: _Exchange) -> None:
        while True:
            try:
                got = await ex.read_request()
            except h11.RemoteProtocolError as exc:
                if ex.h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    err = _error(f"Bad request: {exc}", "invalid_request_error")
                    await ex.json(status, err, [("Connection", "close")])
                return
            if got is None:
                return
            self.requests_served += 1
            await self._dispatch(ex, *got)
            if ex.h.our_state is not h11.DONE or ex.h.their_state is not h11.DONE:
                return  # MUST_CLOSE, or the response was cut short
            ex.h.start_next_cycle()

    # -- routing --------------------------------------------------------------

    async def _dispatch(self, ex: _Exchange, req: h11.Request, body: bytes) -> None:
        method = req.method.decode("ascii", "replace")
        path = unquote(urlsplit(req.target.decode("ascii", "replace")).path)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers}
        host = headers.get("host", "")
        base = "http://" + (host if _HOST_RE.fullmatch(host) else self._netloc())

        if path.startswith("/files/"):
            if method not in ("GET", "HEAD"):
                return await self._not_allowed(ex, method, path, "GET, HEAD")
            return await self._file(ex, path[len("/files/") :], headers.get("range"))
        if path.startswith("/tasks/"):
            return await self._task_page(ex, path, base)
        if path == "/v1/chat/completions":
            if method != "POST":
                return await self._not_allowed(ex, method, path, "POST")
            if await self._auth_ok(ex, headers):
                await self._chat(ex, body, headers, base)
            return None
        if path == "/v1/models" or path.startswith("/v1/models/"):
            if method not in ("GET", "HEAD"):
                return await self._not_allowed(ex, method, path, "GET, HEAD")
            if await self._auth_ok(ex, headers):
                await self._models(ex, path[len("/v1/models/") :] if path != "/v1/models" else "")
            return None
        msg = f"Invalid URL ({method} {path})"
        return await ex.json(404, _error(msg, "invalid_request_error", None, "not_found"))

    async def _not_allowed(self, ex: _Exchange, method: str, path: str, allow: str) -> None:
        msg = f"Method {method} not allowed for {path}"
        err = _error(msg, "invalid_request_error", None, "method_not_allowed")
        await ex.json(405, err, [("Allow", allow)])

    async def _auth_ok(self, ex: _Exchange, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )
        if not ok:
            err = _error(
                "Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key"
            )
            await ex.json(401, err, [("WWW-Authenticate", 'Bearer realm="sora-emulator"')])
        return ok

    async def _models(self, ex: _Exchange, one: str) -> None:
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
        return await ex.json(404, _error(msg, "invalid_request_error", "model", "model_not_found"))

    async def _file(self, ex: _Exchange, name: str, range_: str | None) -> None:
        ctype = FILES.get(name)
        if ctype is None:
            msg = f"No such file: {name}"
            return await ex.json(404, _error(msg, "invalid_request_error", None, "not_found"))
        data = _file_bytes(name)
        size = len(data)
        headers = [("Content-Type", ctype), ("Accept-Ranges", "bytes")]
        headers.append(("Cache-Control", "public, max-age=3600"))
        m = _RANGE_RE.fullmatch(range_.strip()) if range_ else None
        if m is None or m.group(1) == m.group(2) == "":
            start, end, status = 0, size - 1, 200
        else:
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start, end = max(0, size - int(m.group(2))), size - 1
            if start > end:
                headers = [("Content-Range", f"bytes */{size}"), ("Content-Length", "0")]
                await ex.start(416, headers)
                return await ex.end()
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        headers.append(("Content-Length", str(end - start + 1)))
        await ex.start(status, headers)
        await ex.body(data[start : end + 1])
        await ex.end()

    async def _task_page(self, ex: _Exchange, path: str, base: str) -> None:
        kind, _, task_id = path[len("/tasks/") :].partition("/")
        task = self._tasks.get(task_id)
        if task is None or kind not in ("web", "source"):
            msg = f"No such task: {task_id}"
            return await ex.json(404, _error(msg, "invalid_request_error", None, "not_found"))
        public = {k: v for k, v in task.items() if not k.startswith("_")}
        if kind == "source":
            return await ex.json(200, public)
        video = public["video_url"]
        player = f"<video src='{html.escape(video)}' controls></video>" if video else ""
        page = (
            f"<!doctype html><meta charset='utf-8'><title>{task_id}</title>"
            f"<h1>{task_id}</h1><p>{html.escape(str(public['status']))}, "
            f"{public['progress']}%</p>{player}"
            f"<pre>{html.escape(json.dumps(public, ensure_ascii=False, indent=2))}</pre>"
        )
        return await ex.full(200, "text/html; charset=utf-8", page.encode())

    # -- chat completions -----------------------------------------------------

    async def _chat(self, ex: _Exchange, raw: bytes, headers: dict[str, str], base: str) -> None:
        async def bad(message: str, param: str | None, code: str | None = None) -> None:
            await ex.json(400, _error(message, "invalid_request_error", param, code))

        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            msg = "We could not parse the JSON body of your request. (HINT: send valid JSON.)"
            return await bad(msg, None)
        if not isinstance(body, dict):
            return await bad("The request body must be a JSON object.", None)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return await bad("you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return await bad("'messages' must be a non-empty array", "messages")
        if not all(isinstance(m, dict) for m in messages):
            return await bad("each message must be an object", "messages")

        style = headers.get("x-emulator-style") or self.style
        if style not in STYLES:
            return await bad(f"X-Emulator-Style must be one of {STYLES}", "X-Emulator-Style")
        fault = headers.get("x-emulator-fault", self.fault or "") or None
        if fault == "none":
            fault = None
        if fault is not None and fault not in FAULTS:
            return await bad(f"X-Emulator-Fault must be one of {FAULTS}", "X-Emulator-Fault")
        try:
            count = _opt_number(headers.get("x-emulator-fault-count"), int, self.fault_count)
            retry_after = _opt_number(
                headers.get("x-emulator-retry-after"), float, self.retry_after
            )
        except ValueError:
            return await bad("bad X-Emulator-Fault-Count or X-Emulator-Retry-After", None)
        if fault is not None and count is not None:
            self._fault_hits[fault] += 1
            if self._fault_hits[fault] > count:
                fault = None

        if fault == "429":
            retry = max(0.0, retry_after or 0.0)
            extra = [
                ("Retry-After", str(math.ceil(retry))),
                ("retry-after-ms", str(round(retry * 1000))),
            ]
            msg = "Rate limit reached for requests (emulated). Please try again later."
            err = _error(msg, "rate_limit_error", None, "rate_limit_exceeded")
            return await ex.json(429, err, extra)
        if fault == "500":
            msg = "The server had an error while processing your request (emulated)."
            return await ex.json(500, _error(msg, "server_error"))

        ctx = Context(model, prompt_of(messages), base, body, policy=fault == "policy")
        gen = build(style, ctx)
        if gen.task is not None:
            self._remember(gen.task)
        options = body.get("stream_options")
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        if body.get("stream") is True:
            return await self._stream(ex, gen, fault, usage, messages)
        return await self._complete(ex, gen, fault, messages)

    def _remember(self, task: dict[str, Any]) -> None:
        self._tasks[task["id"]] = task
        while len(self._tasks) > 1000:
            self._tasks.popitem(last=False)

    def _delay(self, seconds: float) -> float:
        if self.speed == 0 or math.isinf(self.speed):
            return 0.0
        d = seconds / self.speed
        return d if d >= 0.0005 else 0.0

    async def _stall(self, ex: _Exchange) -> None:
        """Send nothing for stall_seconds (or until the client leaves), then drop it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stall_seconds
        while (left := deadline - loop.time()) > 0:
            if ex.reader.at_eof() or ex.writer.is_closing():
                break
            await asyncio.sleep(min(left, 0.25))
        ex.close_now()

    async def _stream(
        self, ex: _Exchange, gen: Generation, fault: str | None, usage: bool, messages: Any
    ) -> None:
        await ex.start(
            200,
            [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache"),
                ("X-Accel-Buffering", "no"),
            ],
        )
        steps = gen.steps[: fault_cut(gen.steps, fault)]
        task = gen.task
        for step in steps:
            delay = self._delay(step.delay)
            if delay:
                await asyncio.sleep(delay)
            if step.kind == "ping":
                await ex.body(b": PING\n\n")
                continue
            if task is not None:
                advance_task(task, step.status, step.progress)
            finish = gen.finish_reason if step.kind == "finish" else None
            await ex.body(_sse(gen.chunker.chunk(step, finish)))
        if fault == "disconnect":
            await asyncio.sleep(self._delay(0.2))
            ex.close_now()
        if fault == "stall":
            await self._stall(ex)
        if fault == "error-event":
            if task is not None:
                advance_task(task, "failed", None, UPSTREAM_ERROR)
            await ex.body(_sse(_error(UPSTREAM_ERROR, "server_error")))
        elif usage:
            await ex.body(_sse(gen.chunker.usage(usage_of(gen, messages))))
        await ex.body(b"data: [DONE]\n\n")
        await ex.end()

    async def _complete(
        self, ex: _Exchange, gen: Generation, fault: str | None, messages: Any
    ) -> None:
        upto = fault_cut(gen.steps, fault)
        delay = self._delay(gen.delay(upto))
        if delay:
            await asyncio.sleep(delay)
        if fault == "stall":
            await self._stall(ex)
        if fault == "error-event":
            if gen.task is not None:
                advance_task(gen.task, "failed", None, UPSTREAM_ERROR)
            return await ex.json(502, _error(UPSTREAM_ERROR, "server_error"))
        if gen.task is not None:
            for step in gen.steps:
                advance_task(gen.task, step.status, step.progress)
        message: dict[str, Any] = {"role": "assistant", "content": gen.text("content") or None}
        reasoning = gen.text("reasoning_content")
        if reasoning:
            message["reasoning_content"] = reasoning
        message["refusal"] = None
        completion = {
            "id": gen.chunker.id,
            "object": "chat.completion",
            "created": gen.chunker.created,
            "model": gen.chunker.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": gen.finish_reason,
                }
            ],
            "usage": usage_of(gen, messages),
        }
        data = json.dumps(completion, ensure_ascii=False).encode()
        if fault == "disconnect":
            await ex.start(
                200, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
            )
            await ex.body(data[: len(data) // 2])
            ex.close_now()
        await ex.full(200, "application/json", data)


def _opt_number(text: str | None, kind: Callable[[str], Any], default: Any) -> Any:
    if text is None or not text.strip():
        return default
    value = kind(text.strip())
    if not value >= 0:
        raise ValueError(text)
    return value


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Serve until interrupted (Ctrl-C); for ``sora serve``.

    ``ready(base_url)`` is called once listening. ``options`` are the other
    :class:`Emulator` arguments (``api_key``, ``style``, ``speed``, ``fault``,
    ...). KeyboardInterrupt stops it cleanly and returns.
    """
    emulator = Emulator(host=host, port=port, **options)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(emulator.serve(ready=ready))
