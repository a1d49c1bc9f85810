"""The typed shapes of the chat completions API.

Frozen, slotted attrs classes with one cattrs :data:`converter`. Each class
keeps the fields it does not know in ``extra``, so a relay's additions
survive a round trip (``converter.unstructure(converter.structure(d, C)) ==
d`` up to ``null`` fields) and nothing received is dropped.

The structure hooks are written by hand rather than generated: they run once
per streamed chunk, they must accept what real relays send (``content:
null``, ``choices: []`` or ``null``, ``finish_reason: "STOP"``, float
``created``), and they must turn a wrong shape (``"choices": "x"``) into a
:class:`~sora_core.RemoteProtocolError` that names the field, never a
``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs
import cattrs

from ._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "APIErrorBody",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "Delta",
    "FunctionCall",
    "FunctionCallDelta",
    "Message",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "converter",
    "image_part",
    "text_part",
]

JSON = Any
T = TypeVar("T")
A = TypeVar("A", bound=attrs.AttrsInstance)


def _extra() -> Any:
    # Unknown fields as received. Not part of the repr (it would drown the
    # fields people look at) but part of equality.
    return attrs.field(factory=dict, kw_only=True, repr=False)


# --------------------------------------------------------------------------
# Response shapes


@attrs.frozen
class FunctionCall:
    """The function part of an assembled tool call."""

    name: str | None = None
    arguments: str = ""
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class ToolCall:
    """A complete tool call (in a message or an assembled completion)."""

    id: str | None = None
    type: str | None = "function"
    function: FunctionCall = attrs.field(factory=FunctionCall)
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class FunctionCallDelta:
    """A piece of a streamed function call: ``arguments`` arrive in pieces."""

    name: str | None = None
    arguments: str | None = None
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class ToolCallDelta:
    """A piece of a streamed tool call, merged with others of the same ``index``."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta | None = None
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class Delta:
    """What one chunk adds to one choice."""

    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] | None = None
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class ChunkChoice:
    index: int = 0
    delta: Delta = attrs.field(factory=Delta)
    finish_reason: str | None = None
    logprobs: JSON = None
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class ChatCompletionChunk:
    """One ``chat.completion.chunk`` of a stream."""

    id: str | None = None
    object: str | None = "chat.completion.chunk"
    created: int | None = None
    model: str | None = None
    choices: tuple[ChunkChoice, ...] = ()
    usage: Usage | None = None
    system_fingerprint: str | None = None
    extra: Mapping[str, JSON] = _extra()


def _to_content(value: Any) -> str | tuple[Mapping[str, JSON], ...] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return tuple(value)
    raise LocalProtocolError(
        f"message content must be a str, a list of content parts or None, "
        f"not {type(value).__name__}; use text_part() / image_part() to build parts"
    )


def _to_tool_calls(value: Any) -> tuple[ToolCall, ...] | None:
    if value is None:
        return None
    return tuple(v if isinstance(v, ToolCall) else converter.structure(v, ToolCall) for v in value)


@attrs.frozen
class Message:
    """A chat message, sent in a request or received in a completion.

    ``content`` is text, a sequence of content parts (see :func:`text_part`
    and :func:`image_part`), or ``None``.
    """

    role: str = "assistant"
    content: str | tuple[Mapping[str, JSON], ...] | None = attrs.field(
        default=None, converter=_to_content
    )
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] | None = attrs.field(default=None, converter=_to_tool_calls)
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class Choice:
    index: int = 0
    message: Message = attrs.field(factory=Message)
    finish_reason: str | None = None
    logprobs: JSON = None
    extra: Mapping[str, JSON] = _extra()


@attrs.frozen
class ChatCompletion:
    """A whole ``chat.completion``: what ``stream: false`` returns, and what a
    stream assembles to."""

    id: str | None = None
    object: str | None = "chat.completion"
    created: int | None = None
    model: str | None = None
    choices: tuple[Choice, ...] = ()
    usage: Usage | None = None
    system_fingerprint: str | None = None
    extra: Mapping[str, JSON] = _extra()

    @property
    def text(self) -> str:
        """The first choice's content as text ("" when there is none)."""
        if not self.choices:
            return ""
        content = self.choices[0].message.content
        return content if isinstance(content, str) else ""

    @property
    def reasoning(self) -> str:
        """The first choice's reasoning_content ("" when there is none)."""
        if not self.choices:
            return ""
        return self.choices[0].message.reasoning_content or ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


@attrs.frozen
class APIErrorBody:
    """The ``{"error": {...}}`` object of an API error."""

    message: str = ""
    type: str | None = None
    param: JSON = None
    code: JSON = None
    extra: Mapping[str, JSON] = _extra()


# --------------------------------------------------------------------------
# The request


def _to_messages(value: Any) -> tuple[Message, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise LocalProtocolError(
            "messages must be a list of Message objects or dicts like "
            '{"role": "user", "content": "..."}'
        )
    out = []
    for item in value:
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(structure_message(item, local=True))
        else:
            raise LocalProtocolError(
                f"each message must be a Message or a dict, not {type(item).__name__}"
            )
    return tuple(out)


def _to_tools(value: Any) -> tuple[Mapping[str, JSON], ...] | None:
    return None if value is None else tuple(value)


_REQUEST_FIELDS = frozenset(
    {"model", "messages", "max_tokens", "stream", "stream_options", "tools"}
)


def _check_extra(_inst: Any, _attr: Any, value: Mapping[str, JSON]) -> None:
    clash = _REQUEST_FIELDS.intersection(value)
    if clash:
        name = sorted(clash)[0]
        raise LocalProtocolError(f"pass {name!r} as ChatRequest({name}=...), not inside extra")


@attrs.frozen
class ChatRequest:
    """A ``POST /v1/chat/completions`` request.

    ``extra`` holds any other field (``size``, ``seconds``, ``n``,
    ``temperature``, ...); it is sent untouched.
    """

    model: str
    messages: tuple[Message, ...] = attrs.field(converter=_to_messages)
    max_tokens: int | None = None
    stream: bool = False
    stream_options: Mapping[str, JSON] | None = None
    tools: tuple[Mapping[str, JSON], ...] | None = attrs.field(default=None, converter=_to_tools)
    extra: Mapping[str, JSON] = attrs.field(
        factory=dict, kw_only=True, repr=False, validator=_check_extra
    )

    def to_dict(self) -> dict[str, JSON]:
        """The JSON object sent as the request body."""
        return converter.unstructure(self)  # type: ignore[no-any-return]


def text_part(text: str) -> dict[str, JSON]:
    """A text content part: ``{"type": "text", "text": text}``."""
    return {"type": "text", "text": text}


def image_part(url: str, *, detail: str | None = None) -> dict[str, JSON]:
    """An image content part; ``url`` may be an ``https:`` or a ``data:`` URL."""
    image: dict[str, JSON] = {"url": url}
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


# --------------------------------------------------------------------------
# Building objects fast: the chunk path runs once per streamed chunk.


def slot_constructor(cls: type[A]) -> Callable[..., A]:
    """A constructor for the frozen attrs class ``cls`` that fills its slots directly.

    attrs' ``__init__`` for a frozen class sets each field through a bound
    ``object.__setattr__`` (the class's own ``__setattr__`` refuses), and that
    alone cost more than the rest of turning a chunk's JSON into objects. The
    function made here, generated once per class the way attrs generates
    ``__init__``, writes the same slots through their member descriptors, so
    ``make(**fields) == cls(**fields)``: the same class, the same fields, still
    frozen. Every field is a required argument (no default or factory runs),
    so it only serves classes without validators, converters or
    ``__attrs_post_init__``; it refuses others.
    """
    fields = attrs.fields(cls)
    if (
        "__slots__" not in cls.__dict__
        or hasattr(cls, "__attrs_post_init__")
        or any(f.validator is not None or f.converter is not None for f in fields)
    ):
        raise TypeError(f"slot_constructor() cannot build {cls.__qualname__}")
    names = [f.name for f in fields]
    lines = [f"def make({', '.join(names)}):", "    self = _new(_cls)"]
    lines += [f"    _set_{name}(self, {name})" for name in names]
    lines.append("    return self")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": cls.__dict__[name].__set__ for name in names})
    exec(compile("\n".join(lines), f"<slot constructor of {cls.__qualname__}>", "exec"), namespace)
    make = namespace["make"]
    make.__qualname__ = f"{cls.__qualname__}.<slot constructor>"
    return cast("Callable[..., A]", make)


_new_function_call_delta = slot_constructor(FunctionCallDelta)
_new_tool_call_delta = slot_constructor(ToolCallDelta)
_new_delta = slot_constructor(Delta)
_new_chunk_choice = slot_constructor(ChunkChoice)
_new_usage = slot_constructor(Usage)
_new_chunk = slot_constructor(ChatCompletionChunk)


# --------------------------------------------------------------------------
# Structuring: JSON -> objects. Hand-written for speed and for honest errors.
#
# Each helper first checks for the type real streams send, with ``type(x) is
# ...`` (several times cheaper than ``isinstance`` against an ABC such as
# Mapping), takes such a value as it is, and only then coerces or fails.


def _fail(where: str, expected: str, value: Any, local: bool = False) -> Exception:
    got = "null" if value is None else type(value).__name__
    cls = LocalProtocolError if local else RemoteProtocolError
    return cls(f"{where}: expected {expected}, got {got}: {_short(value)}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _opt_str(d: Mapping[str, Any], key: str, where: str, local: bool = False) -> str | None:
    value = d.get(key)
    if value is None or type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise _fail(f"{where}.{key}", "a string or null", value, local)


def _meta_str(value: Any) -> str | None:
    # Metadata (id, model, object) is informative; a relay that sends a
    # number there should not break the stream.
    if value is None or type(value) is str:
        return value
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return str(value)
    return None


def _opt_int(value: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal():  # what int() takes, unlike "¹"
        try:
            return int(value)
        except ValueError:  # more digits than int() converts from text
            return None
    return None


def _index(d: Mapping[str, Any], where: str) -> int:
    value = d.get("index", 0)
    if type(value) is int:
        return value
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _fail(f"{where}.index", "an integer", value)


def _extras(d: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    if known.issuperset(d):  # no view object, unlike d.keys() <= known
        return {}
    return {k: v for k, v in d.items() if k not in known}


def _as_dict(value: Any, where: str, local: bool = False) -> Mapping[str, Any]:
    if type(value) is dict or isinstance(value, Mapping):
        return value
    raise _fail(where, "an object", value, local)


def _as_list(value: Any, where: str, local: bool = False) -> Sequence[Any]:
    if type(value) is list:
        return value
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    raise _fail(where, "a list", value, local)


_FUNCTION_KEYS = frozenset({"name", "arguments"})
_TOOL_DELTA_KEYS = frozenset({"index", "id", "type", "function"})
_DELTA_KEYS = frozenset({"role", "content", "reasoning_content", "refusal", "tool_calls"})
_CHUNK_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})
_USAGE_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})
_CHUNK_KEYS = frozenset(
    {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
)
_TOOL_CALL_KEYS = frozenset({"id", "type", "function"})
_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content", "refusal"}
)
_CHOICE_KEYS = frozenset({"index", "message", "finish_reason", "logprobs"})
_ERROR_KEYS = frozenset({"message", "type", "param", "code"})


def _structure_tool_call_delta(d: Any, where: str) -> ToolCallDelta:
    d = _as_dict(d, where)
    fn = d.get("function")
    function = None
    if fn is not None:
        fn = _as_dict(fn, where + ".function")
        function = _new_function_call_delta(
            name=_opt_str(fn, "name", where + ".function"),
            arguments=_opt_str(fn, "arguments", where + ".function"),
            extra=_extras(fn, _FUNCTION_KEYS),
        )
    return _new_tool_call_delta(
        index=_index(d, where),
        id=_meta_str(d.get("id")),
        type=_meta_str(d.get("type")),
        function=function,
        extra=_extras(d, _TOOL_DELTA_KEYS),
    )


def _structure_delta(d: Any, where: str) -> Delta:
    if d is None:
        return Delta()
    d = _as_dict(d, where)
    raw_calls = d.get("tool_calls")
    tool_calls = None
    if raw_calls is not None:
        calls = _as_list(raw_calls, where + ".tool_calls")
        tool_calls = tuple(
            _structure_tool_call_delta(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(calls)
        )
    return _new_delta(
        role=_meta_str(d.get("role")),
        content=_opt_str(d, "content", where),
        reasoning_content=_opt_str(d, "reasoning_content", where),
        refusal=_opt_str(d, "refusal", where),
        tool_calls=tool_calls,
        extra=_extras(d, _DELTA_KEYS),
    )


def _structure_usage(d: Any, where: str) -> Usage | None:
    if d is None:
        return None
    d = _as_dict(d, where)
    return _new_usage(
        prompt_tokens=_opt_int(d.get("prompt_tokens")),
        completion_tokens=_opt_int(d.get("completion_tokens")),
        total_tokens=_opt_int(d.get("total_tokens")),
        extra=_extras(d, _USAGE_KEYS),
    )


def _structure_chunk_choice(c: Any, where: str) -> ChunkChoice:
    c = _as_dict(c, where)
    finish = c.get("finish_reason")
    return _new_chunk_choice(
        index=_index(c, where),
        delta=_structure_delta(c.get("delta"), where + ".delta"),
        finish_reason=finish if finish is None or type(finish) is str else str(finish),
        logprobs=c.get("logprobs"),
        extra=_extras(c, _CHUNK_CHOICE_KEYS),
    )


def _structure_chunk(d: Any) -> ChatCompletionChunk:
    # The general path: any shape, coerced or refused field by field.
    d = _as_dict(d, "chunk")
    choices = []
    for i, c in enumerate(_as_list(d.get("choices"), "chunk.choices")):
        choices.append(_structure_chunk_choice(c, f"chunk.choices[{i}]"))
    return _new_chunk(
        id=_meta_str(d.get("id")),
        object=_meta_str(d.get("object")),
        created=_opt_int(d.get("created")),
        model=_meta_str(d.get("model")),
        choices=tuple(choices),
        usage=_structure_usage(d.get("usage"), "chunk.usage"),
        system_fingerprint=_meta_str(d.get("system_fingerprint")),
        extra=_extras(d, _CHUNK_KEYS),
    )


# The usual chunk, built directly. Each function below takes one JSON object
# as keyword arguments (``_usual_delta(**d)``): Python itself matches the keys
# to the parameters, in C, and collects the unknown ones, in order, into
# ``extra``. Every value is then checked to have the exact type the general
# path takes as it is (a str or null, an int, a dict, a list); anything else
# (a value to coerce or to refuse, tool calls, a null delta) returns None, and
# the general path decides. So both paths give the same result. (The checks
# read "x is not None and type(x) is not str": most of these fields are null.)


def _usual_delta(
    role: Any = None,
    content: Any = None,
    reasoning_content: Any = None,
    refusal: Any = None,
    tool_calls: Any = None,
    **extra: Any,
) -> Delta | None:
    if (
        (role is not None and type(role) is not str)
        or (content is not None and type(content) is not str)
        or (reasoning_content is not None and type(reasoning_content) is not str)
        or (refusal is not None and type(refusal) is not str)
        or tool_calls is not None
    ):
        return None
    return _new_delta(role, content, reasoning_content, refusal, None, extra)


def _usual_chunk_choice(
    index: Any = 0,
    delta: Any = None,
    finish_reason: Any = None,
    logprobs: Any = None,
    **extra: Any,
) -> ChunkChoice | None:
    if (
        type(index) is not int
        or type(delta) is not dict
        or (finish_reason is not None and type(finish_reason) is not str)
    ):
        return None
    usual_delta = _usual_delta(**delta)
    if usual_delta is None:
        return None
    return _new_chunk_choice(index, usual_delta, finish_reason, logprobs, extra)


def _usual_chunk(
    id: Any = None,
    object: Any = None,
    created: Any = None,
    model: Any = None,
    choices: Any = None,
    usage: Any = None,
    system_fingerprint: Any = None,
    **extra: Any,
) -> ChatCompletionChunk | None:
    if (
        type(choices) is not list
        or (id is not None and type(id) is not str)
        or (object is not None and type(object) is not str)
        or (created is not None and type(created) is not int)
        or (model is not None and type(model) is not str)
        or (usage is not None and type(usage) is not dict)
        or (system_fingerprint is not None and type(system_fingerprint) is not str)
    ):
        return None
    usual_choices = []
    for c in choices:
        choice = _usual_chunk_choice(**c) if type(c) is dict else None
        if choice is None:
            return None
        usual_choices.append(choice)
    return _new_chunk(
        id,
        object,
        created,
        model,
        tuple(usual_choices),
        None if usage is None else _structure_usage(usage, "chunk.usage"),
        system_fingerprint,
        extra,
    )


def structure_chunk(d: Any) -> ChatCompletionChunk:
    """A decoded JSON object -> :class:`ChatCompletionChunk` (the hot path).

    It runs once per streamed chunk, so the usual shape takes a direct route
    (:func:`_usual_chunk`); everything else goes field by field through the
    helpers, which coerce what relays bend and name the field they refuse.
    Both routes give the same result.
    """
    if type(d) is dict:
        try:
            chunk = _usual_chunk(**d)
        except TypeError:  # a key that is not a string: not from JSON, not usual
            chunk = None
        if chunk is not None:
            return chunk
    return _structure_chunk(d)


def _structure_tool_call(d: Any, where: str, local: bool = False) -> ToolCall:
    d = _as_dict(d, where, local)
    fn = _as_dict(d.get("function") or {}, where + ".function", local)
    return ToolCall(
        id=_meta_str(d.get("id")),
        type=_meta_str(d.get("type")),
        function=FunctionCall(
            name=_opt_str(fn, "name", where + ".function", local),
            arguments=_opt_str(fn, "arguments", where + ".function", local) or "",
            extra=_extras(fn, _FUNCTION_KEYS),
        ),
        extra=_extras(d, _TOOL_CALL_KEYS),
    )


def structure_message(d: Any, where: str = "message", local: bool = False) -> Message:
    """A JSON object -> :class:`Message` (errors are local when the caller built it)."""
    d = _as_dict(d, where, local)
    content = d.get("content")
    if content is not None and not isinstance(content, str):
        content = tuple(
            _as_dict(p, f"{where}.content[{i}]", local)
            for i, p in enumerate(_as_list(content, where + ".content", local))
        )
    raw_calls = d.get("tool_calls")
    tool_calls = None
    if raw_calls is not None:
        tool_calls = tuple(
            _structure_tool_call(c, f"{where}.tool_calls[{i}]", local)
            for i, c in enumerate(_as_list(raw_calls, where + ".tool_calls", local))
        )
    role = d.get("role", "assistant")
    return Message(
        role=role if isinstance(role, str) else "assistant",
        content=content,
        name=_opt_str(d, "name", where, local),
        tool_calls=tool_calls,
        tool_call_id=_opt_str(d, "tool_call_id", where, local),
        reasoning_content=_opt_str(d, "reasoning_content", where, local),
        refusal=_opt_str(d, "refusal", where, local),
        extra=_extras(d, _MESSAGE_KEYS),
    )


def structure_completion(d: Any) -> ChatCompletion:
    """A decoded JSON object -> :class:`ChatCompletion`."""
    d = _as_dict(d, "completion")
    choices = []
    for i, c in enumerate(_as_list(d.get("choices"), "completion.choices")):
        where = f"completion.choices[{i}]"
        c = _as_dict(c, where)
        finish = c.get("finish_reason")
        choices.append(
            Choice(
                index=_index(c, where),
                message=structure_message(c.get("message") or {}, where + ".message"),
                finish_reason=finish if finish is None or type(finish) is str else str(finish),
                logprobs=c.get("logprobs"),
                extra=_extras(c, _CHOICE_KEYS),
            )
        )
    return ChatCompletion(
        id=_meta_str(d.get("id")),
        object=_meta_str(d.get("object")),
        created=_opt_int(d.get("created")),
        model=_meta_str(d.get("model")),
        choices=tuple(choices),
        usage=_structure_usage(d.get("usage"), "completion.usage"),
        system_fingerprint=_meta_str(d.get("system_fingerprint")),
        extra=_extras(d, _CHUNK_KEYS),
    )


def structure_error(d: Any) -> APIErrorBody:
    """The value of an ``"error"`` key -> :class:`APIErrorBody`.

    Relays send a string there as often as an object; both are accepted.
    """
    if isinstance(d, str):
        return APIErrorBody(message=d)
    if not isinstance(d, Mapping):
        return APIErrorBody(message=_short(d, 500))
    message = d.get("message")
    if not isinstance(message, str):
        message = "" if message is None else _short(message, 500)
    kind = d.get("type")
    return APIErrorBody(
        message=message,
        type=kind if kind is None or isinstance(kind, str) else str(kind),
        param=d.get("param"),
        code=d.get("code"),
        extra=_extras(d, _ERROR_KEYS),
    )


def _structure_request(d: Any) -> ChatRequest:
    d = _as_dict(d, "request", local=True)
    if not isinstance(d.get("model"), str):
        raise _fail("request.model", "a string", d.get("model"), local=True)
    return ChatRequest(
        model=d["model"],
        messages=d.get("messages", ()),
        max_tokens=d.get("max_tokens"),
        stream=bool(d.get("stream", False)),
        stream_options=d.get("stream_options"),
        tools=d.get("tools"),
        extra={k: v for k, v in d.items() if k not in _REQUEST_FIELDS},
    )


# --------------------------------------------------------------------------
# Unstructuring: objects -> JSON. ``None`` fields are left out (a relay may
# choke on ``"max_tokens": null``); ``extra`` is merged back in.


def _unstructure_attrs(obj: Any) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    for a in attrs.fields(type(obj)):
        if a.name == "extra":
            continue
        value = getattr(obj, a.name)
        if value is None:
            continue
        out[a.name] = converter.unstructure(value)
    out.update(obj.extra)
    return out


converter = cattrs.Converter()
"""The one cattrs converter: ``converter.structure(d, ChatCompletionChunk)``,
``converter.unstructure(obj)``."""


def _hook(fn: Callable[[Any, str], T], where: str) -> Callable[[Any, Any], T]:
    return lambda d, _t: fn(d, where)


converter.register_structure_hook(ChatCompletionChunk, lambda d, _t: structure_chunk(d))
converter.register_structure_hook(ChatCompletion, lambda d, _t: structure_completion(d))
converter.register_structure_hook(Message, _hook(structure_message, "message"))
converter.register_structure_hook(ToolCall, _hook(_structure_tool_call, "tool_call"))
converter.register_structure_hook(ToolCallDelta, _hook(_structure_tool_call_delta, "tool_call"))
converter.register_structure_hook(Delta, _hook(_structure_delta, "delta"))
converter.register_structure_hook(Usage, _hook(_structure_usage, "usage"))
converter.register_structure_hook(APIErrorBody, lambda d, _t: structure_error(d))
converter.register_structure_hook(ChatRequest, lambda d, _t: _structure_request(d))
for _cls in (
    FunctionCall,
    ToolCall,
    FunctionCallDelta,
    ToolCallDelta,
    Delta,
    ChunkChoice,
    Usage,
    ChatCompletionChunk,
    Message,
    Choice,
    ChatCompletion,
    APIErrorBody,
    ChatRequest,
):
    converter.register_unstructure_hook(_cls, _unstructure_attrs)
converter.register_unstructure_hook(tuple, lambda t: [converter.unstructure(v) for v in t])
converter.register_unstructure_hook(
    Mapping, lambda m: {k: converter.unstructure(v) for k, v in m.items()}
)
