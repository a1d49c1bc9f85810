"""The requests transport: sync, at the message level.

requests frames HTTP; this module hands the status, the headers and the raw
body bytes to :class:`~sora_core.ChatResponse` as they arrive (``stream=True``
and ``read1``, so each event is handed out the moment its bytes are in, and
``decode_content=False``, so the core's bounded decoder inflates gzip)::

    from sora_transports.requests import Client

    with Client() as client:  # SORA_BASE_URL and SORA_API_KEY
        video = client.generate_video("a cat surfing")
        print(video.video_url)

Timeouts: the connect timeout and the idle timeout are requests' (connect,
read) timeout; before each read the socket's timeout is set to the smaller
of the idle timeout and what is left of the deadline, so a blocked read
cannot outlive the deadline. ``verify=True`` uses requests' CA bundle.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import requests
import requests.adapters
import requests.cookies
import urllib3
import urllib3.exceptions

from sora_core import (
    APIErrorReceived,
    APIStreamError,
    Budget,
    Call,
    ChatCompletion,
    ChatRequest,
    ChatResponse,
    ConnectError,
    ConnectionLost,
    Event,
    LimitExceeded,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseStarted,
    RetryPolicy,
    SoraError,
    TransportError,
    VideoResult,
)

from ._client_core import (
    READ_SIZE,
    CallState,
    ClientConfig,
    check_head_size,
    configure,
    describe,
    logger,
    video_request,
    wants_video,
)

__all__ = ["Client", "EventStream"]

if not hasattr(urllib3.HTTPResponse, "read1"):  # pragma: no cover - old urllib3
    raise ImportError("sora_transports.requests needs urllib3 >= 2.2 (HTTPResponse.read1)")


class _Adapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter that uses a given :class:`ssl.SSLContext` as it is."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self._context = context
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if self._context is not None:
            pool["ssl_context"] = self._context
            none = self._context.verify_mode == ssl.CERT_NONE
            pool["cert_reqs"] = "CERT_NONE" if none else "CERT_REQUIRED"
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if self._context is None:
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    # Passing an auth callable stops requests from replacing our Authorization
    # header with credentials from ~/.netrc.
    return request


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, arguments)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
        todo += [a for a in e.args if isinstance(a, BaseException)]


def _in_handshake(exc: BaseException) -> bool:
    return any("handshake" in str(e).lower() for e in _chain(exc))


def _framing_error(exc: BaseException) -> SoraError | None:
    """What http.client found wrong with the response's framing, as the
    project's error (requests hides it under ``ConnectionError``)."""
    for e in _chain(exc):
        if isinstance(e, http.client.LineTooLong):
            if "chunk" in str(e):
                return RemoteProtocolError(f"malformed HTTP response: chunk header too long ({e})")
            # http.client's own cap on one line of the head (64 KiB).
            return LimitExceeded(f"the response head is too large: {e} (http.client's limit)")
        if isinstance(e, http.client.HTTPException) and "more than" in str(e):
            return LimitExceeded(f"the response head is too large: {e} (http.client's limit)")
        if isinstance(e, http.client.RemoteDisconnected):
            return ConnectionLost("the server closed the connection without a response")
        if isinstance(e, http.client.BadStatusLine):
            line = str(e)[:100]
            return RemoteProtocolError(f"malformed HTTP response: invalid status line {line}")
        if isinstance(e, urllib3.exceptions.InvalidChunkLength):
            return RemoteProtocolError(f"malformed HTTP response: illegal chunk header ({e})")
        if isinstance(e, http.client.IncompleteRead):
            # http.client says this both when the body is cut short and when
            # the chunked framing is malformed (a bad size, no CRLF after the
            # data): it cannot tell them apart, so neither can we.
            return ConnectionLost(
                "the connection closed before the response was complete (the body was "
                f"cut short, or its chunked framing is malformed): {describe(e)}"
            )
    return None


@contextlib.contextmanager
def _map_exceptions(budget: Budget, connecting: Budget | None = None) -> Iterator[None]:
    """requests' and urllib3's exceptions -> the project's, at one boundary."""
    try:
        yield
    except SoraError:
        raise
    except requests.ConnectTimeout as exc:
        raise (connecting or budget).error() from exc
    except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
        if connecting is not None and _in_handshake(exc):
            # urllib3 calls a TLS handshake that timed out a read timeout.
            raise connecting.error() from exc
        raise budget.error() from exc
    except requests.exceptions.SSLError as exc:
        raise ConnectError(f"TLS failed: {describe(exc)}") from exc
    except requests.ConnectionError as exc:
        framing = _framing_error(exc)
        if framing is not None:
            raise framing from exc
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, (urllib3.exceptions.ProtocolError, OSError)):
            raise ConnectionLost(f"the connection broke: {describe(exc)}") from exc
        raise ConnectError(f"cannot connect: {describe(exc)}") from exc
    except (
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.SSLError,
        http.client.HTTPException,
        OSError,
    ) as exc:
        framing = _framing_error(exc)
        if framing is not None:
            raise framing from exc
        raise ConnectionLost(f"the connection broke while reading: {describe(exc)}") from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise TransportError(describe(exc)) from exc


class EventStream:
    """The events of one call: ``with client.stream(request) as events``.

    Iterate it for the core's events (``ResponseStarted``, ``ChunkReceived``,
    video events, ``StreamEnded`` / ``CompletionReceived``, and
    ``APIErrorReceived`` for an error event inside the stream, which is then
    raised as :class:`~sora_core.APIStreamError` after the stream ended).
    Leaving the block early closes the connection. :attr:`partial` and
    :attr:`video` keep what arrived, also after an error.
    """

    def __init__(self, events: Iterator[Event], state: CallState) -> None:
        self._events = events
        self.state = state

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        try:
            return next(self._events)
        except SoraError as exc:
            self.state.redact(exc)  # a relay may echo the token in its error
            raise

    def close(self) -> None:
        """Stop reading; the connection is closed unless the response was read whole."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    @property
    def response(self) -> ResponseStarted | None:
        """The status and headers, once they arrived."""
        return self.state.started

    @property
    def partial(self) -> ChatCompletion | None:
        """The completion assembled from what arrived so far."""
        return self.state.partial

    @property
    def video(self) -> VideoResult | None:
        """The sora result so far (task id and links survive a dropped connection)."""
        return self.state.video


class Client:
    """A sync client over requests.

    ``base_url`` and ``api_key`` default to ``SORA_BASE_URL`` /
    ``SORA_API_KEY`` (then ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
    Timeouts in seconds: ``connect_timeout`` per connection attempt,
    ``idle_timeout`` between two reads (raises
    :class:`~sora_core.IdleTimeout`), ``deadline`` for the whole call
    including retries and the stream (:class:`~sora_core.DeadlineExceeded`).
    ``max_retries`` / ``retry_policy``: retries before the response began
    (never once a 2xx response started). ``verify``: ``True`` (requests' CA
    bundle), ``False`` or an :class:`ssl.SSLContext`. ``follow_redirects``:
    at most 5, without the token across origins. ``clock`` (monotonic) and
    ``sleep`` are injectable for tests; ``session`` lets you bring your own
    :class:`requests.Session` (its adapters are then yours).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        deadline: float | None = None,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        verify: bool | ssl.SSLContext = True,
        follow_redirects: bool = False,
        limits: Limits | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._config: ClientConfig = configure(
            base_url,
            api_key,
            headers=headers,
            connect_timeout=connect_timeout,
            idle_timeout=idle_timeout,
            deadline=deadline,
            max_retries=max_retries,
            retry_policy=retry_policy,
            verify=verify,
            follow_redirects=follow_redirects,
            limits=limits,
        )
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._own_session = session is None
        if session is not None and isinstance(verify, ssl.SSLContext):
            raise LocalProtocolError(
                "verify=SSLContext needs the client's own session; with session=..., "
                "configure TLS on your session's adapters"
            )
        if session is None:
            session = requests.Session()
            context = verify if isinstance(verify, ssl.SSLContext) else None
            for prefix in ("http://", "https://"):
                session.mount(prefix, _Adapter(context))
        self._session = session
        self._verify = verify if isinstance(verify, bool) else True
        self._closed = False

    def __repr__(self) -> str:
        return f"<sora_transports.requests.Client {self._config.base_url!r}>"

    @property
    def config(self) -> ClientConfig:
        """The resolved settings (the token is kept out of its repr)."""
        return self._config

    # -- public verbs ---------------------------------------------------------------

    def stream(self, request: ChatRequest) -> EventStream:
        """The events of ``request`` as they arrive: ``with client.stream(r) as s``."""
        return self._stream(request, wants_video(request))

    def chat(self, request: ChatRequest) -> ChatCompletion:
        """The completion for ``request``; a streaming request is assembled.

        Raises :class:`~sora_core.APIStatusError` subclasses,
        :class:`~sora_core.APIStreamError` or transport errors, each with
        ``.partial``.
        """
        with self.stream(request) as events:
            for _ in events:
                pass
            return events.state.completion()

    def generate_video(
        self,
        prompt: str,
        *,
        model: str = "sora-2",
        image: str | bytes | os.PathLike[str] | None = None,
        size: str | None = None,
        seconds: int | str | None = None,
        stream: bool = True,
        on_event: Callable[[Event], None] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> VideoResult:
        """Run a sora generation to its :class:`~sora_core.VideoResult`.

        ``on_event`` sees every event (progress among them). The video layer
        runs whatever the model is called. ``stream=False`` waits for one
        whole answer instead of streaming progress. Raises
        :class:`~sora_core.VideoGenerationFailed` (``.video`` set) when the
        relay reports a failure; a transport error keeps ``.video`` too, so
        the task id and links survive a dropped connection.
        """
        request = video_request(
            prompt, model=model, image=image, size=size, seconds=seconds, stream=stream, extra=extra
        )
        with self._stream(request, True) as events:
            try:
                for event in events:
                    if on_event is not None:
                        on_event(event)
            except APIStreamError as exc:
                raise events.state.video_failure(exc) from exc
            return events.state.video_result()

    def close(self) -> None:
        """Close the connections (of the session, when the client made it)."""
        self._closed = True
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- one call ------------------------------------------------------------------------

    def _stream(self, request: ChatRequest, video: bool) -> EventStream:
        state = CallState(self._config.api_key)
        return EventStream(self._events(request, video, state), state)

    def _send(self, call: Call, video: bool, state: CallState) -> requests.Response:
        if self._closed:
            raise LocalProtocolError("this client is closed")
        http = call.request
        now = self._clock()
        connecting, reading = call.connect_budget(now), call.read_budget(now)
        state.response = ChatResponse(stream=http.stream, video=video, limits=self._config.limits)
        state.started = None
        logger.debug("%s %s", http.method, http.url)
        session = self._session
        with _map_exceptions(reading, connecting):
            prepared = session.prepare_request(
                requests.Request(
                    http.method,
                    http.url,
                    headers=dict(http.headers),
                    data=http.body,
                    auth=_no_netrc,
                )
            )
            url = prepared.url or http.url
            settings = session.merge_environment_settings(url, {}, True, self._verify, None)
            # Straight to the adapter, not through Session.send: even with
            # allow_redirects=False, Session.send reads the whole body of any
            # 3xx answer into memory (inflating gzip, with no limit) to prepare
            # a redirect nobody asked for. Redirects are Call.redirect's job.
            response = session.get_adapter(url).send(
                prepared,
                stream=True,
                timeout=(connecting.seconds, reading.seconds),
                verify=settings["verify"] if settings["verify"] is not None else True,
                cert=settings["cert"],
                proxies=settings["proxies"],
            )
            requests.cookies.extract_cookies_to_jar(  # type: ignore[no-untyped-call]
                session.cookies, prepared, response.raw
            )
            return response

    def _read(self, response: requests.Response, call: Call) -> bytes:
        """The next body bytes as soon as any arrived (``b""`` at the end)."""
        budget = call.read_budget(self._clock())
        raw = response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(budget.seconds)
        with _map_exceptions(budget):
            return raw.read1(READ_SIZE, decode_content=False) or b""

    def _read_head(self, response: requests.Response, state: CallState) -> list[Event]:
        chat = state.response
        assert chat is not None
        headers = list(response.raw.headers.items())
        # http.client caps each line of the head (64 KiB) and their number
        # (100); Limits.max_header_size caps the head as a whole.
        check_head_size(self._config.limits, response.reason or "", headers)
        events = chat.receive_headers(response.status_code, headers, response.reason or "")
        state.started = events[0] if isinstance(events[0], ResponseStarted) else None
        logger.debug("HTTP %d from %s", response.status_code, response.url)
        return events

    def _head(
        self, call: Call, video: bool, state: CallState
    ) -> tuple[requests.Response, list[Event]]:
        """Send; read the head, and the whole body of an error response."""
        response = self._send(call, video, state)
        try:
            events = self._read_head(response, state)
            if 200 <= response.status_code < 300:
                return response, events
            chat = state.response
            assert chat is not None
            received, cap = 0, self._config.limits.max_body_size
            while not chat.ended:
                data = self._read(response, call)
                received += len(data)
                events += chat.receive_body(data)
                if received > cap and not chat.ended:
                    # An error page that does not end: keep its start (the
                    # core keeps 64 KiB of it), stop reading, drop the
                    # connection rather than read it for ever to reuse it.
                    logger.debug("error body over %d bytes: cut", cap)
                    events += chat.receive_body(b"")
        except BaseException:
            response.close()
            raise
        response.close()  # read whole, the connection goes back to the pool; or cut
        return response, events

    def _open(
        self, call: Call, video: bool, state: CallState
    ) -> tuple[requests.Response, list[Event]]:
        """Send until a 2xx head arrives, retrying and following redirects; an
        error response is raised. Nothing was handed out yet."""
        while True:
            try:
                response, events = self._head(call, video, state)
            except SoraError as exc:
                state.attach(exc)
                delay = call.retry_delay(now=self._clock(), wall=time.time(), error=exc)
                if delay is None:
                    raise
                logger.debug("retry %d in %.2f s after %s", call.attempt, delay, exc)
                self._sleep(delay)
                continue
            if 200 <= response.status_code < 300:
                return response, events
            head, error = events[0], events[-1]
            if not isinstance(head, ResponseStarted) or not isinstance(error, APIErrorReceived):
                raise RemoteProtocolError(f"HTTP {response.status_code} without an error report")
            if call.redirect(head.status_code, head.headers) is not None:
                logger.debug("redirected to %s", call.request.url)
                continue
            delay = call.retry_delay(
                now=self._clock(),
                wall=time.time(),
                status_code=head.status_code,
                headers=head.headers,
            )
            if delay is None:
                raise error.exception()
            logger.debug("retry %d in %.2f s after HTTP %d", call.attempt, delay, head.status_code)
            self._sleep(delay)

    def _events(self, request: ChatRequest, video: bool, state: CallState) -> Iterator[Event]:
        call = self._config.new_call(request, self._clock())
        response, events = self._open(call, video, state)
        chat = state.response
        assert chat is not None
        try:
            while True:
                for event in events:
                    if state.see(event):
                        yield event
                if chat.ended:
                    break
                events = []
                chat.receive_body_into(self._read(response, call), events)
        except SoraError as exc:
            response.close()
            state.attach(exc)
            # The events completed before the error are handed out first.
            for event in events:
                if state.see(event):
                    yield event
            raise
        except BaseException:
            response.close()
            raise
        response.close()
        state.finish()
