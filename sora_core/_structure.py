"""Structuring: decoded JSON -> the typed shapes of ``_shapes``, and the
cattrs :data:`converter`.

The structure hooks are written by hand rather than generated: they run once
per streamed chunk, they must accept what real relays send (``content:
null``, ``choices: []`` or ``null``, ``finish_reason: "STOP"``, float
``created``), and they must turn a wrong shape (``"choices": "x"``) into a
:class:`~sora_core.RemoteProtocolError` that names the field, never a
``KeyError`` or ``TypeError``. More choices or tool calls than
:class:`~sora_core.Limits` allows are a :class:`~sora_core.LimitExceeded`,
found before any of them is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ._errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from ._limits import NO_LIMITS, Limits
from ._shapes import (
    APIErrorBody,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
    draft_class,
    lazy_variant,
    slot_constructor,
)

__all__ = [
    "structure_chunk",
    "structure_completion",
    "structure_error",
    "structure_error_body",
    "structure_message",
    "structure_tool_call",
]

T = TypeVar("T")

_DEFAULT_LIMITS = Limits()
# The builtin, for the functions below that have a parameter named "type".
_type = type


# --------------------------------------------------------------------------
# Building objects fast: the chunk path runs once per streamed chunk.

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


def _bounded(items: Sequence[Any], where: str, limits: Limits, field: str) -> Sequence[Any]:
    # ``items`` itself, or LimitExceeded when there are more than
    # ``limits.<field>`` of them (before any is built).
    limit: int = getattr(limits, field)
    if len(items) > limit:
        raise LimitExceeded(f"{where}: {len(items)} items, more than {limit} (Limits.{field})")
    return items


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


def _structure_function_call_delta(fn: Any, where: str) -> FunctionCallDelta:
    fn = _as_dict(fn, where)
    return _new_function_call_delta(
        name=_opt_str(fn, "name", where),
        arguments=_opt_str(fn, "arguments", where),
        extra=_extras(fn, _FUNCTION_KEYS),
    )


def _structure_tool_call_delta(d: Any, where: str) -> ToolCallDelta:
    d = _as_dict(d, where)
    fn = d.get("function")
    return _new_tool_call_delta(
        index=_index(d, where),
        id=_meta_str(d.get("id")),
        type=_meta_str(d.get("type")),
        function=None if fn is None else _structure_function_call_delta(fn, where + ".function"),
        extra=_extras(d, _TOOL_DELTA_KEYS),
    )


def _structure_delta(d: Any, where: str, limits: Limits = _DEFAULT_LIMITS) -> Delta:
    if d is None:
        return Delta()
    d = _as_dict(d, where)
    raw_calls = d.get("tool_calls")
    tool_calls = None
    if raw_calls is not None:
        calls = _as_list(raw_calls, where + ".tool_calls")
        _bounded(calls, where + ".tool_calls", limits, "max_tool_calls")
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


def _finish(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _structure_chunk_choice(c: Any, where: str, limits: Limits = _DEFAULT_LIMITS) -> ChunkChoice:
    c = _as_dict(c, where)
    return _new_chunk_choice(
        index=_index(c, where),
        delta=_structure_delta(c.get("delta"), where + ".delta", limits),
        finish_reason=_finish(c.get("finish_reason")),
        logprobs=c.get("logprobs"),
        extra=_extras(c, _CHUNK_CHOICE_KEYS),
    )


def _structure_chunk(d: Any, limits: Limits = _DEFAULT_LIMITS) -> ChatCompletionChunk:
    # The general path: any shape, coerced or refused field by field.
    d = _as_dict(d, "chunk")
    choices = [
        _structure_chunk_choice(c, f"chunk.choices[{i}]", limits)
        for i, c in enumerate(
            _bounded(
                _as_list(d.get("choices"), "chunk.choices"), "chunk.choices", limits, "max_choices"
            )
        )
    ]
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


# The usual chunk, checked now and built on first read. :func:`_usual_chunk`
# checks every value the general path could refuse (choices, index, delta,
# content, tool calls, usage...) for the exact type that path takes as it
# is, at every level, tool calls included; anything else (a value to coerce
# or to refuse, more choices or tool calls than the limits allow, a null
# delta) returns None, and the general path decides (and raises). What it
# accepts it builds as lazy objects (``_shapes.lazy_variant``) holding
# their JSON object: the chunk's choices and usage, each choice's
# finish_reason and delta, and the delta's content and reasoning_content at
# once (what a stream's reader reads on every chunk); the rest of a chunk, a
# choice or a delta on the first read of any of it, by the functions below
# (``_chunk_rest``, ``_choice_rest``, ``_delta_rest``), which use the general
# path's own rule for each field, so both paths give the same result.
# (The checks read "x is not None and type(x) is not str": most of these
# fields are null.)


# More choices than this in one chunk is not the usual chunk: the general
# path, linear in them, builds it (here each adds to a tuple, which copies).
_USUAL_CHOICES = 16
_LAZY_DELTA = ("role", "refusal", "tool_calls", "extra")
_LAZY_CHOICE = ("index", "logprobs", "extra")
_LAZY_CHUNK = ("id", "object", "created", "model", "system_fingerprint", "extra")


def _usual_chunk(
    d: dict[str, Any], limits: Limits = _DEFAULT_LIMITS, whole: bool = False
) -> ChatCompletionChunk | None:
    # One function for the chunk, its choices and their deltas: it runs once
    # per streamed chunk, and each call saved is a few percent of it. The
    # objects are built as drafts (``_shapes.draft_class``: plain slot
    # stores) and made frozen by setting their class last.
    # ``whole``: build every field now, for a reader that reads them all
    # (the stream's assembly): a first read that finds its slot empty costs
    # Python an AttributeError before the fill. ``d``: a dict (the caller
    # looked).
    choices = d.get("choices")
    if (
        type(choices) is not list
        or len(choices) > limits.max_choices
        or len(choices) > _USUAL_CHOICES
    ):
        return None
    usage = d.get("usage")
    if usage is not None:  # (the last chunk's, if any)
        if type(usage) is not dict:
            return None
        usage = _structure_usage(usage, "chunk.usage")
    # A tuple added to, not a list made a tuple: one object fewer for the
    # usual single choice (and never many: see _USUAL_CHOICES).
    built: tuple[ChunkChoice, ...] = ()
    for c in choices:
        try:
            index = c.get("index", 0)
            delta = c.get("delta")
            content = delta.get("content")
        except AttributeError:  # a choice or a delta that is not an object
            return None
        if type(index) is not int:
            return None
        if len(delta) == 1 and type(content) is str:
            # The usual delta, {"content": "..."}: nothing else to check.
            reasoning = None
        else:
            calls = delta.get("tool_calls")
            if calls is not None and len(delta) == 1:
                # The usual tool-call delta, {"tool_calls": [...]}: only
                # the calls to check.
                reasoning = None
            else:
                reasoning = delta.get("reasoning_content")
                refusal = delta.get("refusal")
                if (
                    (content is not None and type(content) is not str)
                    or (reasoning is not None and type(reasoning) is not str)
                    or (refusal is not None and type(refusal) is not str)
                ):
                    return None
            if calls is not None:
                if type(calls) is not list or len(calls) > limits.max_tool_calls:
                    return None
                # Each call: an object with an integer index (or none), and
                # a function that is null or an object of null-or-string
                # name and arguments. (Inline: a call per tool call cost
                # the tool-call chunk a sixth of its time.)
                for t in calls:
                    try:
                        call_index = t.get("index", 0)
                        fn = t.get("function")
                    except AttributeError:  # not an object
                        return None
                    if type(call_index) is not int:
                        return None
                    if fn is not None:
                        try:
                            name = fn.get("name")
                            arguments = fn.get("arguments")
                        except AttributeError:
                            return None
                        if (name is not None and type(name) is not str) or (
                            arguments is not None and type(arguments) is not str
                        ):
                            return None
        finish_reason = c.get("finish_reason")
        if finish_reason is not None and type(finish_reason) is not str:
            finish_reason = _finish(finish_reason)
        # The delta's text at once (what a stream's reader reads), the rest
        # of it and of its choice on first read, or now when ``whole``.
        if whole:
            built_delta = _DraftDelta()
            built_delta.role, built_delta.refusal, built_delta.tool_calls, built_delta.extra = (
                _delta_rest(**delta)
            )
            built_delta.content = content
            built_delta.reasoning_content = reasoning
            built_delta.__class__ = Delta
            choice = _DraftChunkChoice()
            choice.index, choice.logprobs, choice.extra = _choice_rest(**c)
            choice.finish_reason = finish_reason
            choice.delta = built_delta
            choice.__class__ = ChunkChoice
        else:
            built_delta = _DraftLazyDelta()
            built_delta._raw = delta
            built_delta.content = content
            built_delta.reasoning_content = reasoning
            built_delta.__class__ = _LazyDelta
            choice = _DraftLazyChunkChoice()
            choice._raw = c
            choice.finish_reason = finish_reason
            choice.delta = built_delta
            choice.__class__ = _LazyChunkChoice
        built += (choice,)
    # The chunk's usage at once either way: a stream's reader looks for it
    # on every chunk.
    if whole:
        chunk = _DraftChunk()
        (
            chunk.id,
            chunk.object,
            chunk.created,
            chunk.model,
            chunk.system_fingerprint,
            chunk.extra,
        ) = _chunk_rest(**d)
        chunk.choices = built
        chunk.usage = usage
        chunk.__class__ = ChatCompletionChunk
    else:
        chunk = _DraftLazyChunk()
        chunk._raw = d
        chunk.choices = built
        chunk.usage = usage
        chunk.__class__ = _LazyChunk
    return chunk  # type: ignore[no-any-return]  # (a draft no more)


# The fields the chunk path leaves empty, from the JSON object by the
# general path's own rule for each (values it checked are taken as they
# are): on the first read of a lazy object, or at once when ``whole``. Each
# takes the JSON object as keyword arguments (``_delta_rest(**raw)``):
# Python matches the keys to the fields in C and collects the unknown ones,
# in order, into ``extra``, which is what ``_extras`` gives. A value already
# of the type a rule returns as it is skips the call to the rule. They
# return the values of ``_LAZY_DELTA`` (``_LAZY_CHOICE``, ``_LAZY_CHUNK``)
# in order.


def _function_call_delta(
    name: Any = None, arguments: Any = None, **extra: Any
) -> FunctionCallDelta:
    return _new_function_call_delta(name=name, arguments=arguments, extra=extra)


def _tool_call_delta(
    index: Any = 0, id: Any = None, type: Any = None, function: Any = None, **extra: Any
) -> ToolCallDelta:
    return _new_tool_call_delta(
        index=index,
        id=id if id is None or _type(id) is str else _meta_str(id),
        type=type if type is None or _type(type) is str else _meta_str(type),
        function=None if function is None else _function_call_delta(**function),
        extra=extra,
    )


def _delta_rest(
    role: Any = None,
    content: Any = None,
    reasoning_content: Any = None,
    refusal: Any = None,
    tool_calls: Any = None,
    **extra: Any,
) -> tuple[Any, ...]:
    return (
        role if role is None or type(role) is str else _meta_str(role),
        refusal,
        None if tool_calls is None else tuple([_tool_call_delta(**t) for t in tool_calls]),
        extra,
    )


def _choice_rest(
    index: Any = 0, delta: Any = None, finish_reason: Any = None, logprobs: Any = None, **extra: Any
) -> tuple[Any, ...]:
    return index, logprobs, extra


def _chunk_rest(
    id: Any = None,
    object: Any = None,
    created: Any = None,
    model: Any = None,
    choices: Any = None,
    usage: Any = None,
    system_fingerprint: Any = None,
    **extra: Any,
) -> tuple[Any, ...]:
    return (
        id if id is None or type(id) is str else _meta_str(id),
        object if object is None or type(object) is str else _meta_str(object),
        created if created is None or type(created) is int else _opt_int(created),
        model if model is None or type(model) is str else _meta_str(model),
        system_fingerprint
        if system_fingerprint is None or type(system_fingerprint) is str
        else _meta_str(system_fingerprint),
        extra,
    )


_LazyDelta = lazy_variant(Delta, _LAZY_DELTA, _delta_rest)
_LazyChunkChoice = lazy_variant(ChunkChoice, _LAZY_CHOICE, _choice_rest)
_LazyChunk = lazy_variant(ChatCompletionChunk, _LAZY_CHUNK, _chunk_rest)
_DraftDelta = draft_class(Delta)
_DraftChunkChoice = draft_class(ChunkChoice)
_DraftChunk = draft_class(ChatCompletionChunk)
_DraftLazyDelta = draft_class(_LazyDelta)
_DraftLazyChunkChoice = draft_class(_LazyChunkChoice)
_DraftLazyChunk = draft_class(_LazyChunk)


def structure_chunk(d: Any, limits: Limits | None = None) -> ChatCompletionChunk:
    """A decoded JSON object -> :class:`ChatCompletionChunk` (the hot path).

    It runs once per streamed chunk, so the usual shape, tool calls included,
    takes a direct route (:func:`_usual_chunk`: checked whole now, fields
    built on first read); everything else goes field by field through the
    helpers, which coerce what relays bend and name the field they refuse.
    Both routes give the same result. ``limits``: the
    :class:`~sora_core.Limits` whose ``max_choices`` and ``max_tool_calls``
    apply (the defaults when ``None``).
    """
    if limits is None:
        limits = _DEFAULT_LIMITS
    chunk = _usual_chunk(d, limits) if type(d) is dict else None
    if chunk is not None:
        return chunk
    return _structure_chunk(d, limits)


def _completion_as_chunk(obj: dict[str, Any]) -> Any:
    """A whole ``chat.completion`` in a JSON-lines stream, read as one chunk
    whose deltas are its messages (a relay that answers in one record)."""
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return obj
    moved = [
        {k: v for k, v in c.items() if k != "message"} | {"delta": c["message"]}
        if isinstance(c, dict) and isinstance(c.get("message"), dict)
        else c
        for c in choices
    ]
    return obj | {"object": "chat.completion.chunk", "choices": moved}


def structure_tool_call(d: Any, where: str, local: bool = False) -> ToolCall:
    """A JSON object -> :class:`ToolCall` (of a message, not a delta)."""
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


def _structure_function_call(d: Any, where: str) -> FunctionCall:
    d = _as_dict(d, where)
    return FunctionCall(
        name=_opt_str(d, "name", where),
        arguments=_opt_str(d, "arguments", where) or "",
        extra=_extras(d, _FUNCTION_KEYS),
    )


def structure_message(
    d: Any, where: str = "message", local: bool = False, limits: Limits | None = None
) -> Message:
    """A JSON object -> :class:`Message` (errors are local when the caller
    built it; ``limits`` apply to what a peer sent, none to the caller's own)."""
    if limits is None:
        limits = NO_LIMITS if local else _DEFAULT_LIMITS
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
        calls = _as_list(raw_calls, where + ".tool_calls", local)
        _bounded(calls, where + ".tool_calls", limits, "max_tool_calls")
        tool_calls = tuple(
            structure_tool_call(c, f"{where}.tool_calls[{i}]", local) for i, c in enumerate(calls)
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


def _structure_choice(c: Any, where: str, limits: Limits = _DEFAULT_LIMITS) -> Choice:
    c = _as_dict(c, where)
    return Choice(
        index=_index(c, where),
        message=structure_message(c.get("message") or {}, where + ".message", limits=limits),
        finish_reason=_finish(c.get("finish_reason")),
        logprobs=c.get("logprobs"),
        extra=_extras(c, _CHOICE_KEYS),
    )


def structure_completion(d: Any, limits: Limits | None = None) -> ChatCompletion:
    """A decoded JSON object -> :class:`ChatCompletion` (``limits`` as for
    :func:`structure_chunk`)."""
    if limits is None:
        limits = _DEFAULT_LIMITS
    d = _as_dict(d, "completion")
    choices = [
        _structure_choice(c, f"completion.choices[{i}]", limits)
        for i, c in enumerate(
            _bounded(
                _as_list(d.get("choices"), "completion.choices"),
                "completion.choices",
                limits,
                "max_choices",
            )
        )
    ]
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


def structure_error_body(obj: Any) -> APIErrorBody | None:
    """The error an error body reports, or ``None``: ``{"error": ...}`` (an
    object or a string), else a top-level ``{"message"|"msg": ..., "code"?}``
    as some relays and gateways send. The one rule, for every reader."""
    if not isinstance(obj, Mapping):
        return None
    if obj.get("error") not in (None, "", {}):
        return structure_error(obj["error"])
    message = obj.get("message", obj.get("msg"))
    if isinstance(message, str) and message:
        return structure_error({**obj, "message": message})
    return None


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
