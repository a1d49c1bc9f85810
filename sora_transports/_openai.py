"""The openai-shaped surface: ``client.chat.completions.create(...)``, ``client.models``.

A thin layer over the clients' call machine: each verb builds a request
(the chat request, or a ``GET /models`` through
:func:`~sora_core.build_http_request`), derives the call's settings
(``timeout=``, ``extra_headers=``, ``extra_query=``) from the client's with
:func:`derive_config`, and runs one exchange. Nothing here moves bytes, and
nothing is written per runtime: the sync and async resources differ only in
``await``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from sora_core import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatExchange,
    ChatRequest,
    ChunkReceived,
    Event,
    HTTPRequest,
    LocalProtocolError,
    ResponseStarted,
    VideoResult,
)
from sora_core._exchange import Want
from sora_core._json_exchange import (
    JSONExchange,
    Model,
    ModelPage,
    parse_model,
    parse_model_page,
)
from sora_core._request import build_http_request, encode_query, path_segment

from ._client_core import ClientConfig, derive_config, wants_video

if TYPE_CHECKING:
    from ._async_client import AsyncClient, AsyncEventStream
    from ._sync import EventStream, SyncClient

__all__ = [
    "AsyncChat",
    "AsyncCompletions",
    "AsyncModels",
    "AsyncStream",
    "Chat",
    "Completions",
    "Models",
    "Stream",
    "Timeout",
    "chat_create_request",
]

# The ChatRequest fields; every other keyword goes to ``extra``, sent untouched.
_FIELDS = ("max_tokens", "stream_options", "tools")


@attrs.frozen
class Timeout:
    """Per-phase timeouts in seconds, shaped like httpx's: ``connect`` (each
    connection attempt), ``read`` (between two reads), ``total`` (the whole
    call, retries included). ``None`` keeps the client's setting."""

    connect: float | None = None
    read: float | None = None
    total: float | None = None


def chat_create_request(
    model: str,
    messages: Iterable[Any],
    *,
    stream: bool = False,
    extra_body: Mapping[str, Any] | None = None,
    **fields: Any,
) -> ChatRequest:
    """The :class:`~sora_core.ChatRequest` for ``chat.completions.create``'s
    arguments: ``max_tokens``, ``stream_options`` and ``tools`` are its fields;
    the rest (``temperature``, ``tool_choice``, ``response_format``, ``n``,
    ``seed``, ``user``, ...) and ``extra_body`` go to ``extra``."""
    known = {name: fields.pop(name) for name in _FIELDS if name in fields}
    extra = dict(fields)
    extra.update(extra_body or {})
    for name in ("model", "messages", "stream", *_FIELDS):
        if name in extra:
            if name in _FIELDS and name not in known:
                known[name] = extra.pop(name)
            else:
                raise LocalProtocolError(f"pass {name!r} as create()'s own argument")
    return ChatRequest(
        model=model,
        messages=list(messages),
        stream=bool(stream),
        extra=extra,
        **known,
    )


def _with_query(request: HTTPRequest, query: Mapping[str, Any] | None) -> HTTPRequest:
    text = encode_query(query) if query else ""
    if not text:
        return request
    sep = "&" if "?" in request.target else "?"
    return attrs.evolve(request, target=request.target + sep + text, url=request.url + sep + text)


def _merge_query(*queries: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for query in queries:
        out.update(query or {})
    return out


class _Call:
    """The parts of one facade call: its settings and its exchange."""

    def __init__(
        self,
        client: SyncClient | AsyncClient,
        timeout: Any,
        extra_headers: Mapping[str, str | None] | None,
        extra_query: Mapping[str, Any] | None,
    ) -> None:
        self.config: ClientConfig = derive_config(
            client.config, timeout=timeout, headers=extra_headers
        )
        self.query = _merge_query(getattr(client, "_default_query", None), extra_query)

    def chat(self, request: ChatRequest) -> ChatExchange:
        http = _with_query(self.config.build(request), self.query)
        want: Want = "events" if request.stream else "completion"
        return ChatExchange(http, video=wants_video(request), want=want)

    def get(self, path: str, build: Any, what: str) -> JSONExchange[Any]:
        config = self.config
        http = build_http_request(
            "GET",
            config.base_url,
            path,
            api_key=config.api_key,
            headers=config.headers,
            query=self.query or None,
        )
        return JSONExchange(http, build, what)

    def models(self) -> JSONExchange[Any]:
        """``GET /models``."""
        return self.get("/models", parse_model_page, "a JSON model list")

    def model(self, model: str) -> JSONExchange[Any]:
        """``GET /models/{model}``."""
        return self.get("/models/" + path_segment(model, "model id"), parse_model, "a model")


# -- streams ---------------------------------------------------------------------------


class _StreamBase:
    _events: Any

    @property
    def response(self) -> ResponseStarted | None:
        """The status and headers (``.status_code``, ``.headers``), once they arrived."""
        response: ResponseStarted | None = self._events.response
        return response

    @property
    def completion(self) -> ChatCompletion | None:
        """The assembled completion: whole once the stream ended, else what
        arrived so far (also after an error)."""
        result = self._events.result
        if isinstance(result, ChatCompletion):
            return result
        partial: ChatCompletion | None = self._events.partial
        return partial

    @property
    def video(self) -> VideoResult | None:
        """The sora result so far (task id and links survive a dropped connection)."""
        video: VideoResult | None = self._events.video
        return video


class Stream(_StreamBase):
    """A streamed chat answer: iterate it for :class:`~sora_core.ChatCompletionChunk`.

    ``with`` closes it; :meth:`events` iterates the typed events instead
    (video progress among them); :meth:`get_final_completion` reads the rest
    and returns the assembled completion.
    """

    def __init__(self, events: EventStream) -> None:
        self._events = events

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        for event in self._events:
            if event.__class__ is ChunkReceived:
                yield event.chunk

    def events(self) -> Iterator[Event]:
        """Every typed event of the call, as it arrives."""
        return iter(self._events)

    def close(self) -> None:
        """Stop reading; the connection is closed unless the response was read whole."""
        self._events.close()

    def until_done(self) -> Stream:
        """Read the stream to its end (the openai name); returns the stream."""
        for _ in self._events:
            pass
        return self

    def get_final_completion(self) -> ChatCompletion:
        """Read the rest and return the assembled :class:`~sora_core.ChatCompletion`."""
        self.until_done()
        completion = self.completion
        if completion is None:  # pragma: no cover - a stream that ended assembles
            raise LocalProtocolError("the stream holds no completion")
        return completion


class AsyncStream(_StreamBase):
    """The async :class:`Stream`: ``async for chunk in stream``, ``async with``."""

    def __init__(self, events: AsyncEventStream) -> None:
        self._events = events

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        async for event in self._events:
            if event.__class__ is ChunkReceived:
                yield event.chunk

    def events(self) -> AsyncIterator[Event]:
        """Every typed event of the call, as it arrives."""
        events: AsyncIterator[Event] = self._events.__aiter__()
        return events

    async def aclose(self) -> None:
        """Stop reading; the connection is closed unless the response was read whole."""
        await self._events.aclose()

    async def close(self) -> None:
        """The same as :meth:`aclose`."""
        await self.aclose()

    async def until_done(self) -> AsyncStream:
        """Read the stream to its end; returns the stream."""
        async for _ in self._events:
            pass
        return self

    async def get_final_completion(self) -> ChatCompletion:
        """Read the rest and return the assembled :class:`~sora_core.ChatCompletion`."""
        await self.until_done()
        completion = self.completion
        if completion is None:  # pragma: no cover - a stream that ended assembles
            raise LocalProtocolError("the stream holds no completion")
        return completion


# -- resources ----------------------------------------------------------------------


class Completions:
    """``client.chat.completions``."""

    def __init__(self, client: SyncClient) -> None:
        self._client = client

    def create(
        self,
        *,
        model: str,
        messages: Iterable[Any],
        stream: bool = False,
        timeout: Any = None,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Any:
        """A :class:`~sora_core.ChatCompletion`, or with ``stream=True`` a
        :class:`Stream` of chunks (see the module's docs for the arguments)."""
        request = chat_create_request(
            model, messages, stream=stream, extra_body=extra_body, **fields
        )
        call = _Call(self._client, timeout, extra_headers, extra_query)
        exchange = call.chat(request)
        if stream:
            return Stream(self._client.run(exchange, config=call.config))
        return self._client._call(exchange, config=call.config)


class Chat:
    """``client.chat``: ``.completions``; calling it runs a ``ChatRequest`` as before."""

    def __init__(self, client: SyncClient) -> None:
        self._client = client
        self.completions = Completions(client)

    def __call__(self, request: ChatRequest) -> ChatCompletion:
        """The completion for ``request`` (a streaming request is assembled)."""
        exchange = self._client.config.chat_exchange(_checked(request), "completion")
        result: ChatCompletion = self._client._call(exchange)
        return result


class Models:
    """``client.models``: ``list()`` and ``retrieve(id)``."""

    def __init__(self, client: SyncClient) -> None:
        self._client = client

    def list(
        self,
        *,
        timeout: Any = None,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, Any] | None = None,
    ) -> ModelPage:
        """``GET /models``: a :class:`ModelPage` (iterate it, or ``.data``)."""
        call = _Call(self._client, timeout, extra_headers, extra_query)
        page: ModelPage = self._client._call(call.models(), config=call.config)
        return page

    def retrieve(
        self,
        model: str,
        *,
        timeout: Any = None,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, Any] | None = None,
    ) -> Model:
        """``GET /models/{model}``: one :class:`Model`."""
        call = _Call(self._client, timeout, extra_headers, extra_query)
        found: Model = self._client._call(call.model(model), config=call.config)
        return found


def _checked(request: Any) -> ChatRequest:
    if isinstance(request, Mapping):
        raise LocalProtocolError(
            "client.chat(...) takes a ChatRequest; for a dict, call "
            "client.chat.completions.create(**request)"
        )
    if not isinstance(request, ChatRequest):
        raise LocalProtocolError(
            f"expected a ChatRequest, got {type(request).__name__}; "
            "build one with ChatRequest(model=..., messages=[...])"
        )
    return request


class AsyncCompletions:
    """``client.chat.completions`` of an async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Any],
        stream: bool = False,
        timeout: Any = None,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Any:
        """``await``: a :class:`~sora_core.ChatCompletion`, or with
        ``stream=True`` an :class:`AsyncStream` of chunks."""
        request = chat_create_request(
            model, messages, stream=stream, extra_body=extra_body, **fields
        )
        call = _Call(self._client, timeout, extra_headers, extra_query)
        exchange = call.chat(request)
        if stream:
            return AsyncStream(self._client.run(exchange, config=call.config))
        return await self._client._call(exchange, config=call.config)


class AsyncChat:
    """``client.chat`` of an async client; ``await client.chat(request)`` as before."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.completions = AsyncCompletions(client)

    async def __call__(self, request: ChatRequest) -> ChatCompletion:
        """The completion for ``request`` (a streaming request is assembled)."""
        exchange = self._client.config.chat_exchange(_checked(request), "completion")
        result: ChatCompletion = await self._client._call(exchange)
        return result


class AsyncModels:
    """``client.models`` of an async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        timeout: Any = None,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, Any] | None = None,
    ) -> ModelPage:
        """``GET /models``: a :class:`ModelPage`."""
        call = _Call(self._client, timeout, extra_headers, extra_query)
        page: ModelPage = await self._client._call(call.models(), config=call.config)
        return page

    async def retrieve(
        self,
        model: str,
        *,
        timeout: Any = None,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, Any] | None = None,
    ) -> Model:
        """``GET /models/{model}``: one :class:`Model`."""
        call = _Call(self._client, timeout, extra_headers, extra_query)
        found: Model = await self._client._call(call.model(model), config=call.config)
        return found


# -- client options -----------------------------------------------------------------


def client_options(
    config: ClientConfig,
    *,
    timeout: Any = None,
    default_headers: Mapping[str, str | None] | None = None,
    max_retries: int | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> ClientConfig:
    """A client's settings with the openai-named options applied."""
    return derive_config(
        config,
        timeout=timeout,
        headers=default_headers,
        max_retries=max_retries,
        base_url=base_url,
        api_key=api_key,
    )


def apply_options(
    client: Any,
    *,
    timeout: Any = None,
    default_headers: Mapping[str, str | None] | None = None,
    default_query: Mapping[str, Any] | None = None,
) -> None:
    """Apply the constructor's openai-named options to a new client."""
    client._config = client_options(
        client._config, timeout=timeout, default_headers=default_headers
    )
    client._default_query = dict(default_query or {})


def with_options(client: Any, **options: Any) -> Any:
    """A copy of ``client`` with some settings changed (``base_url``,
    ``api_key``, ``timeout``, ``max_retries``, ``default_headers``,
    ``default_query``); it shares the connections of ``client``."""
    import copy

    known = {"base_url", "api_key", "timeout", "max_retries", "default_headers", "default_query"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise LocalProtocolError(
            f"with_options() takes {', '.join(sorted(known))}; not {', '.join(unknown)}"
        )
    query = options.pop("default_query", None)
    clone = copy.copy(client)
    clone._config = client_options(client._config, **options)
    clone._default_query = {**getattr(client, "_default_query", {}), **(query or {})}
    return clone
