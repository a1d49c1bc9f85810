"""The emulator's server: options, the h11 connection loop, threads, start and stop.

The routes live in :mod:`._routes` (and :mod:`._task_routes`,
:mod:`._playback`); this module owns the listening socket, one asyncio task
per connection, and the state every route shares (tasks, counters, log).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import threading
from collections.abc import Callable
from importlib import resources
from types import TracebackType
from typing import Any

import h11

from ._faults import FAULTS, Counters, Stats
from ._http import Closed, Exchange, error
from ._routes import dispatch, log_line, parse
from ._styles import POLICY_REASON, STYLES
from ._task_routes import URL_FIELDS
from ._tasks import Task, TaskStore

__all__ = ["Emulator", "serve_forever"]

logger = logging.getLogger("sora_transports.emulator")
_file_cache: dict[str, bytes] = {}


class Emulator:
    """A local sora-2 relay. See the package docstring and ``docs/emulator.md``.

    ``speed`` compresses the timeline: 1.0 streams a generation in about 3
    seconds (a task-API generation takes ``task_seconds``), 0 (or anything
    huge) does not wait at all. ``fault`` and ``fault_count`` switch on a
    fault for every request of its kind (``fault_count=N``: only the first N
    requests that ask for that fault get it). ``poll_429`` / ``submit_429``
    answer a burst of 429s to polls / submissions after ``*_after`` of them.
    ``disconnect_at`` is the progress percent at which the ``disconnect``
    fault cuts a chat stream. ``link_ttl`` makes file links expire that many
    seconds after their task was created (410 after). ``url_field`` is where
    new-api's task record puts the video URL (``url``, ``output`` or
    ``metadata.url``).
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
        task_seconds: float = 3.0,
        disconnect_at: int | None = None,
        poll_429: int = 0,
        poll_429_after: int = 0,
        submit_429: int = 0,
        submit_429_after: int = 0,
        link_ttl: float | None = None,
        url_field: str = "url",
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be None or one of {FAULTS}, not {fault!r}")
        if not speed >= 0:
            raise ValueError("speed must be >= 0")
        if not retry_after >= 0 or not stall_seconds >= 0 or not task_seconds >= 0:
            raise ValueError("retry_after, stall_seconds and task_seconds must be >= 0")
        if fault_count is not None and fault_count < 0:
            raise ValueError("fault_count must be >= 0")
        if min(poll_429, poll_429_after, submit_429, submit_429_after) < 0:
            raise ValueError("poll_429, submit_429 and their *_after must be >= 0")
        if disconnect_at is not None and not 0 <= disconnect_at <= 100:
            raise ValueError("disconnect_at must be None or 0 to 100")
        if link_ttl is not None and not link_ttl >= 0:
            raise ValueError("link_ttl must be None or >= 0")
        if url_field not in URL_FIELDS:
            raise ValueError(f"url_field must be one of {URL_FIELDS}, not {url_field!r}")
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
        self.task_seconds = task_seconds
        self.disconnect_at = disconnect_at
        self.poll_429 = poll_429
        self.poll_429_after = poll_429_after
        self.submit_429 = submit_429
        self.submit_429_after = submit_429_after
        self.link_ttl = link_ttl
        self.url_field = url_field
        self.requests_served = 0
        self.connections_accepted = 0
        self.tasks = TaskStore()
        self._counters = Counters()
        self._log: collections.deque[str] = collections.deque(maxlen=1000)
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
        """Forget how many requests each counted fault (and burst) has hit."""
        self._counters.reset_faults()

    def reset_stats(self) -> None:
        """Start the counters of :attr:`stats` over."""
        self._counters.reset()

    @property
    def stats(self) -> Stats:
        """A snapshot of what the server saw (safe from any thread): chat
        submissions, task creations per API, polls, downloads, 429s, and
        accepted submissions per prompt."""
        return self._counters.snapshot()

    @property
    def request_log(self) -> list[str]:
        """The last 1,000 requests, one line each: ``METHOD target -> status
        [headers]``, with every secret header shown as ``<redacted>``. The
        same lines go to the ``sora_transports.emulator`` logger at DEBUG."""
        return list(self._log)

    def task(self, task_id: str) -> dict[str, Any] | None:
        """A task as ``GET /v1/videos/{id}`` shows it (any API's id form)."""
        task = self.tasks.get(task_id)
        return None if task is None else task.openai()

    # -- what the routes use ----------------------------------------------------

    def scaled(self, seconds: float) -> float:
        """``seconds`` of the timeline at this speed (0 when not waiting)."""
        if self.speed == 0 or math.isinf(self.speed):
            return 0.0
        d = seconds / self.speed
        return d if d >= 0.0005 else 0.0

    def poll_after_ms(self) -> int:
        """The ``openai-poll-after-ms`` hint: a tenth of a task's time, at most 1 s."""
        return int(min(1000.0, self.scaled(self.task_seconds) * 100))

    def file_bytes(self, name: str) -> bytes:
        data = _file_cache.get(name)
        if data is None:
            data = (resources.files("sora_transports") / "data" / name).read_bytes()
            _file_cache[name] = data
        return data

    def new_task(
        self,
        origin: str,
        model: str,
        prompt: str,
        base: str,
        duration: float,
        *,
        policy: bool = False,
        body: dict[str, Any] | None = None,
        task_id: str | None = None,
        created: float | None = None,
        reference: tuple[str, str, int] | None = None,
        remixed_from: Any = None,
    ) -> Task:
        """Register a generation; every task API can read it from now on."""
        body = body or {}
        seconds = body.get("seconds")
        size = body.get("size")
        task = Task(
            id=task_id or self.tasks.new_id(),
            model=model,
            prompt=prompt,
            origin=origin,
            video_url=f"{base}/files/sample.mp4",
            thumbnail_url=f"{base}/files/sample.webp",
            duration=duration,
            seconds=str(seconds) if isinstance(seconds, (str, int)) and str(seconds) else "4",
            size=size if isinstance(size, str) and size else "720x1280",
            fail=POLICY_REASON if policy else None,
            remixed_from=remixed_from if isinstance(remixed_from, str) else None,
            reference=reference,
            link_ttl=self.link_ttl,
        )
        if created is not None:
            task.created = created
        return self.tasks.add(task)

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
        ex = Exchange(reader, writer)
        try:
            await self._serve_connection(ex)
        except (Closed, ConnectionError, OSError, asyncio.CancelledError):
            pass  # the client left, a fault cut it, or the emulator is stopping
        except Exception:
            logger.exception("emulator: unexpected error")
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def _serve_connection(self, ex: Exchange) -> None:
        while True:
            try:
                got = await ex.read_request()
            except h11.RemoteProtocolError as exc:
                if ex.h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    err = error(f"Bad request: {exc}", "invalid_request_error")
                    await ex.json(status, err, [("Connection", "close")])
                return
            if got is None:
                return
            self.requests_served += 1
            request, body = got
            try:
                await dispatch(self, ex, parse(request, body, self._netloc()))
            finally:
                self._log_request(request, ex.status)
            if ex.h.our_state is not h11.DONE or ex.h.their_state is not h11.DONE:
                return  # MUST_CLOSE, or the response was cut short
            ex.h.start_next_cycle()

    def _log_request(self, request: h11.Request, status: int) -> None:
        line = log_line(request, status)
        self._log.append(line)
        logger.debug("emulator: %s", line)


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
