"""A generic exchange: one JSON answer turned into a typed result.

``GET /models``, ``GET /models/{id}`` and their kind: the request is built
by :func:`~sora_core.build_http_request`, a 2xx body is read whole (bounded
by ``Limits.max_body_size``, gzip/deflate inflated) and handed to ``build``;
a non-2xx body is read exactly as a chat answer's error body is (by
:class:`~sora_core.ChatResponse`), so it becomes the same
:class:`~sora_core.APIErrorReceived` and the same exception, retried by the
call machine under the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._errors import RemoteProtocolError
from ._events import APIErrorReceived, Event, ResponseStarted
from ._limits import Limits
from ._request import HTTPRequest
from ._response import ChatResponse, _normalise_headers
from ._tasks import _JSONExchange

__all__ = ["JSONExchange", "JSONReader", "Model", "ModelPage", "parse_model", "parse_model_page"]

T = TypeVar("T")


class _Body(_JSONExchange[T]):
    """A 2xx JSON body read whole, then built by ``build``."""

    def __init__(self, build: Callable[[Any], T], what: str, limits: Limits) -> None:
        super().__init__(limits=limits)
        self._builder = build
        self.what = what

    def _build(self, obj: Any) -> T:
        return self._builder(obj)


class JSONReader(Generic[T]):
    """The message-level reader of one attempt (the shape the machine reads)."""

    def __init__(self, build: Callable[[Any], T], what: str, limits: Limits) -> None:
        self._build = build
        self._what = what
        self._limits = limits
        self._body: _Body[T] | None = None
        self._error: ChatResponse | None = None
        self._ended = False
        self.result: T | None = None

    @property
    def ended(self) -> bool:
        return self._ended or (self._error is not None and self._error.ended)

    def receive_headers(
        self, status_code: int, headers: Any, reason: str | bytes = ""
    ) -> list[Event]:
        if 200 <= status_code < 300:
            self._body = body = _Body(self._build, self._what, self._limits)
            body.receive_headers(status_code, headers)
            text = reason.decode("latin-1") if isinstance(reason, bytes) else reason
            return [ResponseStarted(status_code, _normalise_headers(headers), text)]
        # An error answer: read as the chat answer reads one (one rule, one place).
        self._error = ChatResponse(stream=False, limits=self._limits)
        return self._error.receive_headers(status_code, headers, reason)

    def receive_body_into(self, data: bytes, events: list[Event]) -> None:
        if self._error is not None:
            self._error.receive_body_into(data, events)
            return
        if self._body is None:
            raise RemoteProtocolError("body bytes before the response head")
        if self._ended:
            return
        result = self._body.receive_body(data)
        if not data:
            self._ended = True
            self.result = result


@attrs.define
class JSONExchange(Generic[T]):
    """Any request whose 2xx answer is one JSON document -> ``build(obj)``.

    ``build`` turns the decoded JSON into the result (raising
    :class:`~sora_core.RemoteProtocolError` when it does not fit); ``what``
    names the answer in errors (``"a JSON model list"``).
    """

    request: HTTPRequest
    build: Callable[[Any], T]
    what: str = "a JSON answer"

    def reader(self, limits: Limits) -> JSONReader[T]:
        return JSONReader(self.build, self.what, limits)

    def result(self, reader: JSONReader[T], stream_error: APIErrorReceived | None) -> T:
        if reader.result is None:
            raise RemoteProtocolError(f"the response ended without {self.what}")
        return reader.result

    def partial_of(self, reader: Any) -> None:
        return None

    def video_of(self, reader: Any) -> None:
        return None


# -- GET /models -------------------------------------------------------------------

_MODEL_FIELDS = ("id", "object", "created", "owned_by")


@attrs.frozen
class Model:
    """One entry of ``GET /models`` (unknown fields kept in ``extra``)."""

    id: str
    object: str | None = "model"
    created: int | None = None
    owned_by: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, unknown fields included."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _MODEL_FIELDS}
        out.update(self.extra)
        return out

    model_dump = to_dict


@attrs.frozen
class ModelPage:
    """The answer to ``GET /models``: iterate it, or read ``.data``."""

    data: tuple[Model, ...] = ()
    object: str | None = "list"
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def parse_model(obj: Any, where: str = "model") -> Model:
    """A :class:`Model` out of decoded JSON; a wrong shape is a remote protocol error."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str):
        raise RemoteProtocolError(f"{where}: expected an object with a string id, got {obj!r:.200}")
    created = obj.get("created")
    if not (created is None or (isinstance(created, int) and not isinstance(created, bool))):
        raise RemoteProtocolError(f"{where}.created: expected an integer, got {created!r:.60}")
    for name in ("object", "owned_by"):
        if not (obj.get(name) is None or isinstance(obj.get(name), str)):
            raise RemoteProtocolError(f"{where}.{name}: expected a string, got {obj[name]!r:.60}")
    return Model(
        id=obj["id"],
        object=obj.get("object"),
        created=created,
        owned_by=obj.get("owned_by"),
        extra={k: v for k, v in obj.items() if k not in _MODEL_FIELDS},
    )


def parse_model_page(obj: Any) -> ModelPage:
    """A :class:`ModelPage` out of decoded JSON (``{"object": "list", "data": [...]}``)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("data"), list):
        raise RemoteProtocolError(f"expected a model list with a data array, got {obj!r:.200}")
    return ModelPage(
        data=tuple(parse_model(m, f"data[{i}]") for i, m in enumerate(obj["data"])),
        object=obj.get("object"),
        extra={k: v for k, v in obj.items() if k not in ("data", "object")},
    )
