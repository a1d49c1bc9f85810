"""The call machine: one call from start to result, with no I/O.

A transport asks :meth:`CallMachine.next_action` "what now?" (passing the
time on any monotonic clock) and does what the answer says, the way h11's
``next_event`` answers for one connection:

- :class:`Connect` -- open a connection to ``request.origin`` (or take an
  idle one, unless ``fresh``), then call :meth:`~CallMachine.connected`;
- :class:`Send` -- write ``data`` (wire level); at message level, where
  the transport frames HTTP itself, send ``request`` and report the final
  status and headers with :meth:`~CallMachine.receive_head`;
- :class:`Receive` -- read at most ``max_bytes`` within ``timeout`` and
  hand them to :meth:`~CallMachine.receive_data` (``b""`` at EOF);
- :class:`Sleep` -- sleep (before a retry);
- :class:`Release` -- the exchange is over: keep the connection for the
  next call when ``reusable``, else close it;
- :class:`Done` -- the call's ``result``;
- anything else is an event for the user (``ResponseStarted``,
  ``ChunkReceived``, video events, ``StreamEnded``, ...).

When an I/O step fails, the transport maps its runtime's exception to the
project's own (``ConnectError``, ``ConnectionLost``, or the action's
``timeout.error()`` when it ran out of time) and reports it with
:meth:`~CallMachine.failed`. ``next_action`` raises the call's error once
there is nothing left to do: retries, redirects, the error-page cut-off,
the "EOF before the head is a lost connection" rule, the success decision
and redaction all live here, once, for every transport.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from ._call import Budget, Call
from ._connection import ChatConnection
from ._errors import (
    ConnectionLost,
    LimitExceeded,
    LocalProtocolError,
    RemoteProtocolError,
    SoraError,
)
from ._events import (
    APIErrorReceived,
    ChunkReceived,
    CompletionReceived,
    Event,
    ExchangeComplete,
    ResponseStarted,
    StreamEnded,
    header,
)
from ._exchange import Exchange
from ._framing import check_head_framing
from ._limits import Limits
from ._proxy import Proxies, Proxy
from ._redact import redact
from ._request import HTTPRequest
from ._retry import RetryPolicy, _http_date
from ._tunnel import Tunnel

__all__ = [
    "READ_SIZE",
    "Action",
    "CallMachine",
    "Connect",
    "Done",
    "Receive",
    "Release",
    "Send",
    "Sleep",
    "StartTLS",
]

READ_SIZE = 64 * 1024
"""How much one :class:`Receive` asks for."""

DRAIN_SECONDS = 0.05
"""After ``data: [DONE]``, how long the body's end is awaited (so the
connection can be reused) before the connection is closed instead."""


class Action:
    """Base of the machine's instructions to the transport (events are not actions)."""

    __slots__ = ()


@attrs.frozen
class Connect(Action):
    """Open a TCP connection to ``host:port`` within ``timeout`` (then TLS
    with ``request.host`` when ``tls``), or reuse an idle one kept under
    ``key``, unless ``fresh`` (then drop the idle ones under ``key``: a
    kept-alive one just proved stale); then call
    :meth:`CallMachine.connected`. Through a proxy, ``host:port`` is the
    proxy's and ``tls`` is false: for an ``https`` request the machine opens
    a tunnel first, then asks for :class:`StartTLS`."""

    request: HTTPRequest
    timeout: Budget
    fresh: bool = False
    host: str = ""
    port: int = 0
    tls: bool = False
    key: tuple[Any, ...] = ()
    """What an idle connection is pooled under (the origin, and the proxy)."""


@attrs.frozen
class StartTLS(Action):
    """Run TLS with ``server_hostname`` over the open connection (a proxy
    tunnel) within ``timeout``; nothing to report unless it fails."""

    server_hostname: str
    timeout: Budget


@attrs.frozen
class Send(Action):
    """Wire level: write ``data`` within ``timeout``. Message level
    (``data is None``): send ``request`` (connecting within
    ``connect_timeout``) and report the head with
    :meth:`CallMachine.receive_head`."""

    request: HTTPRequest
    data: bytes | None
    timeout: Budget
    connect_timeout: Budget | None = None
    proxy: Proxy | None = None
    """Message level: the proxy to send ``request`` through (``None``: direct)."""


@attrs.frozen
class Receive(Action):
    """Read at most ``max_bytes`` within ``timeout``; call
    :meth:`CallMachine.receive_data` (``b""`` at EOF)."""

    timeout: Budget
    max_bytes: int = READ_SIZE


@attrs.frozen
class Sleep(Action):
    """Sleep ``seconds``, then ask again."""

    seconds: float
    reason: str = ""
    """What is retried (``HTTP 429``, the error), for a log line."""


@attrs.frozen
class Release(Action):
    """The exchange is over: pool the connection when ``reusable``, else close it."""

    reusable: bool


@attrs.frozen
class Done(Action):
    """The call ended with ``result``."""

    result: Any


_ENDINGS = frozenset({StreamEnded, CompletionReceived, ExchangeComplete})

# States.
_START = "start"  # the next attempt begins at next_action
_CONNECTING = "connecting"  # Connect handed out; waiting for connected()/failed()
_SEND = "send"  # connected: Send is handed out at next_action
_HEAD = "head"  # message level: waiting for receive_head()/failed()
_READ = "read"  # reading the response
_TUNNEL = "tunnel"  # CONNECT sent to the proxy; reading its answer
_STARTTLS = "starttls"  # the tunnel is open: StartTLS, then the request
_DRAIN = "drain"  # after [DONE]: one short read for the body's end, then done
_DECIDE = "decide"  # an error response ended: redirect, retry or raise
_OVER = "over"  # Done handed out or the error raised


class CallMachine:
    """Drives one call of ``exchange`` from start to result; no I/O.

    ``started`` is the time the call began on the clock later passed to
    :meth:`next_action` (``None``: at the first ``next_action``).
    ``wire=True`` for transports that move raw bytes (the machine frames
    HTTP/1.1 through h11), ``False`` for those that frame HTTP themselves.
    ``secret`` (the token) is taken out of every error the call raises.
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        started: float | None = None,
        wire: bool = True,
        policy: RetryPolicy | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        deadline: float | None = None,
        follow_redirects: bool = False,
        max_redirects: int = 5,
        limits: Limits | None = None,
        secret: str | None = None,
        read_size: int = READ_SIZE,
        proxies: Proxies | None = None,
    ) -> None:
        self.exchange = exchange
        self._unstarted = started is None
        self._call = Call(
            exchange.request,
            started=started or 0.0,
            policy=policy or RetryPolicy(),
            connect_timeout=connect_timeout,
            idle_timeout=idle_timeout,
            deadline=deadline,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
        )
        self._wire = wire
        self._proxies = proxies
        self._proxy: Proxy | None = None
        self._tunnel: Tunnel | None = None
        self.limits = limits or Limits()
        self._secret = secret
        self._read_size = read_size
        # Without a deadline every read has the same budget: one action, made
        # once (a stream of 100,000 reads need not build 200,000 objects).
        self._receive: Receive | None = None
        if deadline is None:
            idle = self._call.read_budget(0.0)
            self._receive = Receive(idle, read_size)
        self._queue: deque[Action | Event] = deque()
        self._state = _START
        self._fresh = False
        self._reused = False
        self._holding = False  # a connection is held (Release owed)
        self._reader: Any = None
        self._conn: ChatConnection | None = None
        self._data = b""
        self._head: ResponseStarted | None = None  # this attempt's head
        self._error_event: APIErrorReceived | None = None
        self._stream_error: APIErrorReceived | None = None
        self._received = 0
        self._failure: SoraError | None = None  # to decide at the next next_action
        self._raise: SoraError | None = None  # to raise once the queue is empty
        self.response: ResponseStarted | None = None
        """The status and headers of the successful response, once they came."""
        self.attempts = 0
        """Requests sent so far (retries and redirects included)."""

    def __repr__(self) -> str:
        return f"<CallMachine {self._call.request.method} {self._call.request.url} {self._state}>"

    # -- what the call holds --------------------------------------------------------

    @property
    def request(self) -> HTTPRequest:
        """The request of the current attempt (after redirects)."""
        return self._call.request

    @property
    def reader(self) -> Any:
        """The message-level reader of the current attempt (``None`` before it)."""
        return self._reader

    @property
    def partial(self) -> Any:
        """What was received so far (for chat: the assembled completion)."""
        return self.exchange.partial_of(self._reader) if self._reader is not None else None

    @property
    def video(self) -> Any:
        """The sora result so far (task id and links survive any failure)."""
        return self.exchange.video_of(self._reader) if self._reader is not None else None

    @property
    def over(self) -> bool:
        """True once the call ended (its result handed out or its error raised)."""
        return self._state is _OVER

    # -- the one question ------------------------------------------------------------

    def next_action(self, now: float) -> Action | Event:
        """What the transport does next (see the module's documentation)."""
        queue = self._queue
        if queue:
            return queue.popleft()
        if self._unstarted:
            self._unstarted = False
            self._call.started = now
        if self._raise is None:
            if self._state is _OVER:
                raise LocalProtocolError("this call is over; start another one")
            try:
                self._advance(now)
            except SoraError as exc:
                self._fail(exc, now)
            if queue:
                return queue.popleft()
        error = self._raise
        if error is None:  # pragma: no cover - every state queues or raises
            raise LocalProtocolError(f"the call machine is stuck in state {self._state!r}")
        self._state = _OVER
        raise error

    def _advance(self, now: float) -> None:
        state = self._state
        if self._failure is not None:
            failure, self._failure = self._failure, None
            self._fail(failure, now)
        elif state is _READ:
            receive = self._receive
            if receive is None:  # a deadline: each read gets what is left of it
                receive = Receive(self._call.read_budget(now), self._read_size)
            self._queue.append(receive)
        elif state is _START:
            self._begin(now)
        elif state is _SEND:
            self._state = _TUNNEL if self._tunnel is not None and self._conn is None else _READ
            self._queue.append(Send(self._call.request, self._data, self._call.read_budget(now)))
            self._data = b""
        elif state is _TUNNEL:
            self._queue.append(Receive(self._call.read_budget(now), 4096))
        elif state is _STARTTLS:
            request = self._call.request
            self._queue.append(StartTLS(request.host, self._call.connect_budget(now)))
            self._tunnel = None
            self._prepare()
        elif state is _DRAIN:
            self._queue.append(Receive(Budget(DRAIN_SECONDS, "idle", DRAIN_SECONDS), 4096))
        elif state is _DECIDE:
            self._decide(now)
        else:
            raise LocalProtocolError(
                "the last action is not answered yet: call "
                + (
                    "connected() or failed()"
                    if state is _CONNECTING
                    else "receive_head() or failed()"
                )
            )

    # -- what the transport reports ----------------------------------------------------

    def connected(self, reused: bool = False) -> None:
        """The connection asked for by :class:`Connect` is open (``reused``: from the pool)."""
        self._expect(_CONNECTING, "connected")
        self._reused = reused
        self._holding = True
        request, proxy = self._call.request, self._proxy
        if proxy is not None and request.scheme == "https" and not reused:
            self._tunnel = Tunnel(proxy, request.host, request.port, self.limits.max_header_size)
            self._data = self._tunnel.request()
            self._state = _SEND
            return
        self._prepare()

    def _prepare(self) -> None:
        """The connection (or tunnel) is ready: the request's bytes, to send next."""
        request = self._call.request
        if self._proxy is not None and request.scheme == "http":
            # RFC 9112 §3.2.2: to a proxy, the target is the absolute URL.
            headers = request.headers
            if self._proxy.authorization:
                headers += (("Proxy-Authorization", self._proxy.authorization),)
            request = attrs.evolve(request, target=request.url, headers=headers)
        conn = self._conn = ChatConnection(limits=self.limits)
        try:
            self._data = conn.send(request, response=self._reader)
        except SoraError as exc:
            self._failure = exc
            return
        self.attempts += 1
        self._state = _SEND

    def receive_head(
        self,
        status_code: int,
        headers: Any,
        reason: str | bytes = "",
        http_version: str | None = None,
    ) -> None:
        """Message level: the status and headers of the response (1xx are
        skipped); ``http_version`` as the library reports it, when it does."""
        self._expect(_HEAD, "receive_head")
        if isinstance(status_code, int) and 100 <= status_code < 200:
            return  # an interim response (102, 103): the final one follows
        self._state = _READ
        try:
            headers = list(headers)
            check_head_framing(headers, http_version)
            self._take(self._reader.receive_headers(status_code, headers, reason))
        except SoraError as exc:
            self._failure = exc

    def receive_data(self, data: bytes) -> None:
        """Bytes read for :class:`Receive`; ``b""`` means the peer closed."""
        if self._state is _TUNNEL:
            assert self._tunnel is not None
            try:
                if self._tunnel.receive(data):
                    self._state = _STARTTLS
            except SoraError as exc:
                self._failure = exc
            return
        draining = self._state is _DRAIN
        if not draining:
            self._expect(_READ, "receive_data")
        self._received += len(data)
        try:
            if self._conn is not None:
                self._wire_data(data)
            else:
                out: list[Event] = []
                try:
                    self._reader.receive_body_into(data, out)
                except SoraError:
                    self._take_before_error(out)
                    raise
                self._take(out)
                if self._reader.ended and self._state in (_READ, _DRAIN):
                    self._exchange_over(True)
            if self._state is _READ and self._head is not None and not self._success:
                self._cut_error_body()
        except SoraError as exc:
            if not draining:
                self._failure = exc
        if draining and self._state is _DRAIN:
            self._exchange_over(False)  # the body did not end: close, not pool

    def failed(self, error: BaseException) -> None:
        """The last I/O step failed with ``error`` (already the project's own)."""
        if not isinstance(error, SoraError):
            raise LocalProtocolError(
                f"failed() takes the project's own error (map {type(error).__name__} "
                "to ConnectError, ConnectionLost or the action's timeout.error() first)"
            )
        if self._state is _OVER:
            raise LocalProtocolError("this call is over; start another one")
        if self._state in (_START, _DECIDE):
            # A failed Sleep or Release changes nothing the machine decides.
            return
        if self._state is _DRAIN:
            self._exchange_over(False)  # the answer is whole; only reuse is lost
            return
        self._failure = error

    # -- internals ----------------------------------------------------------------------

    @property
    def _success(self) -> bool:
        head = self._head
        return head is not None and 200 <= head.status_code < 300

    def _expect(self, state: str, verb: str) -> None:
        if self._state is not state:
            raise LocalProtocolError(
                f"{verb}() does not answer the last action (the call is in state "
                f"{self._state!r}); do what next_action() said"
            )

    def _begin(self, now: float) -> None:
        call = self._call
        self._head = self._error_event = self._stream_error = None
        self._received = 0
        self._conn = None
        self._reader = self.exchange.reader(self.limits)
        self._tunnel = None
        request = call.request
        proxy = self._proxy = (
            self._proxies.select(request.scheme, request.host, request.port)
            if self._proxies is not None
            else None
        )
        if not self._wire:
            self._state = _HEAD
            self._holding = True
            self.attempts += 1
            budget = call.connect_budget(now)
            self._queue.append(Send(request, None, call.read_budget(now), budget, proxy))
        elif proxy is None:
            self._state = _CONNECTING
            self._queue.append(
                Connect(
                    request,
                    call.connect_budget(now),
                    self._fresh,
                    request.host,
                    request.port,
                    request.scheme == "https",
                    request.origin,
                )
            )
        else:
            self._state = _CONNECTING
            key = (*request.origin, *proxy.origin)
            self._queue.append(
                Connect(
                    request,
                    call.connect_budget(now),
                    self._fresh,
                    proxy.host,
                    proxy.port,
                    False,
                    key,
                )
            )
        self._fresh = False

    def _wire_data(self, data: bytes) -> None:
        conn = self._conn
        assert conn is not None
        conn.receive_data(data)
        out: list[Event] = []
        try:
            out.extend(conn.events())
        except RemoteProtocolError as exc:
            self._take_before_error(out)
            reader = self._reader
            if not data and not isinstance(exc, LimitExceeded) and not reader.ended:
                # At EOF a response that did not end is a lost connection,
                # whatever h11 called it.
                lost = ConnectionLost(
                    "the server closed the connection before the response was complete"
                    if self._head is not None
                    else "the server closed the connection without a response"
                )
                lost.__cause__ = exc
                raise lost from exc
            raise
        self._take(out)

    def _take(self, events: list[Event]) -> None:
        """Sort one batch of the reader's events: the user's, and the call's own."""
        queue = self._queue
        done = False
        for event in events:
            cls = event.__class__
            if cls is ChunkReceived:
                queue.append(event)
            elif cls is ExchangeComplete:
                assert isinstance(event, ExchangeComplete)
                self._exchange_over(event.reusable)
                return
            elif cls is ResponseStarted:
                assert isinstance(event, ResponseStarted)
                self._head = event
                if 200 <= event.status_code < 300:
                    self.response = event
                    queue.append(event)
            elif not self._success:
                if cls is APIErrorReceived:
                    assert isinstance(event, APIErrorReceived)
                    self._error_event = event
            else:
                queue.append(event)
                if cls is APIErrorReceived and self._stream_error is None:
                    assert isinstance(event, APIErrorReceived)
                    self._stream_error = event
                elif cls is StreamEnded and event.reason == "done":  # type: ignore[union-attr]
                    done = True
        if done and self._state is _READ:
            # ``data: [DONE]`` ends the answer: a relay that leaves the body
            # open must not hold the call until the idle timeout. One short
            # read (DRAIN_SECONDS) gives the body's end a chance to arrive so
            # the connection can be reused; else it is closed, not pooled.
            self._state = _DRAIN

    def _take_before_error(self, events: list[Event]) -> None:
        """The events completed before an error: handed out, but for the end
        of the answer (the call did not end well, whatever the body said)."""
        self._take([e for e in events if e.__class__ not in _ENDINGS])

    def _cut_error_body(self) -> None:
        if self._received <= self.limits.max_body_size or self._reader.ended:
            return
        # An error page that does not end: keep its start (the reader keeps
        # 64 KiB of it), stop reading and drop the connection.
        out: list[Event] = []
        self._reader.receive_body_into(b"", out)
        self._take(out)
        if self._state is _READ:
            self._exchange_over(False)

    def _exchange_over(self, reusable: bool) -> None:
        if self._conn is not None:
            self._conn.close()
        self._holding = False
        self._queue.append(Release(reusable))
        if not self._success:
            self._state = _DECIDE
            return
        self._state = _OVER
        try:
            result = self.exchange.result(self._reader, self._stream_error)
        except SoraError as exc:
            self._raise = self._attach(exc)
            return
        self._queue.append(Done(result))

    def _decide(self, now: float) -> None:
        """An error response ended: follow a redirect, retry, or raise it."""
        head, event = self._head, self._error_event
        assert head is not None
        call = self._call
        if call.redirect(head.status_code, head.headers) is not None:
            self._state = _START
            self._begin(now)
            return
        if event is None:  # pragma: no cover - the reader always reports one
            raise RemoteProtocolError(f"HTTP {head.status_code} without an error report")
        date = header(head.headers, "date")
        delay = call.retry_delay(
            now=now,
            wall=_http_date(date) if date else None,
            status_code=head.status_code,
            headers=head.headers,
        )
        if delay is None:
            raise event.exception()
        self._retry(delay, f"HTTP {head.status_code}")

    def _retry(self, delay: float, reason: str) -> None:
        self._state = _START
        self._queue.append(Sleep(delay, reason))

    def _fail(self, exc: SoraError, now: float) -> None:
        """Retry the call after ``exc`` if nothing of a response was handed out, else raise it."""
        self._attach(exc)
        if self._holding:
            self._holding = False
            if self._conn is not None:
                self._conn.close()
            self._queue.append(Release(False))
        if self.response is None and not isinstance(exc, LocalProtocolError):
            if (
                self._reused
                and self._head is None
                and self._received == 0
                and isinstance(exc, ConnectionLost)
            ):
                # A kept-alive connection the server closed meanwhile: the
                # request never reached it. Try a fresh one, once per reused
                # connection (a fresh one is never "reused": this cannot loop).
                self._reused = False
                self._fresh = True
                self._state = _START
                return
            delay = self._call.retry_delay(now=now, error=exc)
            if delay is not None:
                self._reused = False
                self._retry(delay, f"{type(exc).__name__}: {exc.message}")
                return
        self._raise = exc

    def _attach(self, exc: SoraError) -> SoraError:
        """Give ``exc`` what this call received, without the token.

        Only a successful response holds any of the answer: an error
        response's body is not a partial result."""
        if self._reader is not None and self.response is not None:
            if exc.partial is None:
                exc.partial = self.partial
            if exc.video is None:
                exc.video = self.video
        redact(exc, self._secret)
        return exc
