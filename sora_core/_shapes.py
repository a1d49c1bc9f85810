"""The typed shapes of the chat completions API.

Frozen, slotted attrs classes. Each keeps the fields it does not know in
``extra``, so a relay's additions survive a round trip
(``C.from_dict(d).to_dict() == d`` up to ``null`` fields) and nothing
received is dropped.

Turning JSON into these objects (and the cattrs converter) lives in
``_structure``; this module only knows how to turn them back into JSON
(:meth:`Model.to_dict` and friends), so it imports no parsing code at import
time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs

from ._errors import LocalProtocolError, RemoteProtocolError
from ._limits import NO_LIMITS

__all__ = [
    "APIErrorBody",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "Delta",
    "ErrorObject",
    "FunctionCall",
    "FunctionCallDelta",
    "Message",
    "Model",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "draft_class",
    "image_part",
    "lazy_variant",
    "slot_constructor",
    "text_part",
]

JSON = Any
M = TypeVar("M", bound="Model")
A = TypeVar("A", bound=attrs.AttrsInstance)

# The keywords of openai's and pydantic's dump methods that mean nothing here
# (every value is JSON already, names are the API's own): accepted, ignored.
_IGNORED_OPTIONS = frozenset(
    {
        "mode",
        "by_alias",
        "use_api_names",
        "round_trip",
        "warnings",
        "serialize_as_any",
        "context",
        "fallback",
    }
)


def _extra() -> Any:
    # Unknown fields as received. Not part of the repr (it would drown the
    # fields people look at) but part of equality.
    return attrs.field(factory=dict, kw_only=True, repr=False)


# --------------------------------------------------------------------------
# Objects -> JSON. A ``None`` field is left out unless asked for (a relay may
# choke on ``"max_tokens": null``, and ``null`` is what an absent field reads
# as); ``extra`` is merged back in as received, nulls and all.

# class -> ((field name, default), ...), every field but ``extra``.
_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _register(cls: type[M]) -> type[M]:
    fields = []
    for f in attrs.fields(cast("type[attrs.AttrsInstance]", cls)):
        if f.name != "extra":
            default = f.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()
            fields.append((f.name, default))
    _FIELDS[cls] = tuple(fields)
    return cls


def dump(value: Any, drop_none: bool = True, drop_defaults: bool = False) -> JSON:
    """A model (or a value holding models) -> plain JSON values.

    Inside ``extra`` and other JSON-valued fields everything is copied as it
    is: only a model's own fields are dropped when ``None`` (``drop_none``)
    or equal to their default (``drop_defaults``).
    """
    fields = _FIELDS.get(type(value))
    if fields is not None:
        out: dict[str, JSON] = {}
        for name, default in fields:
            item = getattr(value, name)
            if (item is None and drop_none) or (drop_defaults and item == default):
                continue
            out[name] = dump(item, drop_none, drop_defaults)
        for key, item in value.extra.items():
            out[key] = dump(item, drop_none, drop_defaults)
        return out
    if isinstance(value, (list, tuple)):
        return [dump(item, drop_none, drop_defaults) for item in value]
    if isinstance(value, Mapping):
        return {key: dump(item, drop_none, drop_defaults) for key, item in value.items()}
    return value


def _pick(
    out: dict[str, JSON], include: Collection[str] | None, exclude: Collection[str] | None
) -> dict[str, JSON]:
    if include is not None:
        out = {k: v for k, v in out.items() if k in include}
    if exclude is not None:
        out = {k: v for k, v in out.items() if k not in exclude}
    return out


def _check_options(method: str, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - _IGNORED_OPTIONS)
    if unknown:
        raise LocalProtocolError(
            f"{method}() got an unknown keyword {unknown[0]!r}; it takes exclude_none, "
            "exclude_unset, exclude_defaults, include, exclude and indent (to_json), and "
            f"ignores {', '.join(sorted(_IGNORED_OPTIONS))}"
        )


class Model:
    """What every model offers, under its own names and the openai package's.

    - :meth:`to_dict` / :meth:`to_json`: the JSON the object stands for,
      ``None`` fields left out (``exclude_unset=False`` keeps them);
    - :meth:`model_dump` / :meth:`model_dump_json`: the same with every field
      (``exclude_none=True`` or ``exclude_unset=True`` leaves out ``None``
      fields: a field that was absent reads as ``None``, so the two mean the
      same here);
    - :meth:`from_dict` / :meth:`model_validate`, :meth:`from_json` /
      :meth:`model_validate_json`: JSON -> object, as received objects are
      built.

    Unknown fields (``extra``) go out as they came in, at every level, so
    ``C.from_dict(obj.to_dict()) == obj``.
    """

    __slots__ = ()

    def to_dict(
        self,
        *,
        exclude_none: bool = False,
        exclude_unset: bool = True,
        exclude_defaults: bool = False,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        **options: Any,
    ) -> dict[str, JSON]:
        """This object as a JSON object (``dict``), ``None`` fields left out."""
        _check_options("to_dict", options)
        out = dump(self, exclude_none or exclude_unset, exclude_defaults)
        return _pick(out, include, exclude)

    def model_dump(
        self,
        *,
        exclude_none: bool = False,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        **options: Any,
    ) -> dict[str, JSON]:
        """This object as a JSON object, every field included (pydantic's default)."""
        _check_options("model_dump", options)
        out = dump(self, exclude_none or exclude_unset, exclude_defaults)
        return _pick(out, include, exclude)

    def to_json(self, *, indent: int | None = 2, **options: Any) -> str:
        """:meth:`to_dict` as JSON text (indented by 2, as openai's ``to_json``)."""
        return _dumps(self.to_dict(**options), indent)

    def model_dump_json(self, *, indent: int | None = None, **options: Any) -> str:
        """:meth:`model_dump` as compact JSON text."""
        return _dumps(self.model_dump(**options), indent)

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, JSON]) -> M:
        """A JSON object -> this class, built as received objects are (unknown
        fields kept in ``extra``; a wrong shape is a
        :class:`~sora_core.LocalProtocolError` naming the field)."""
        from . import _convert  # lazy: the parsing modules import this one

        try:
            return _convert.structure_as(cls, data)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(f"{cls.__name__}.from_dict(): {exc}") from None

    @classmethod
    def model_validate(cls: type[M], obj: Any) -> M:
        """openai's (pydantic's) name for :meth:`from_dict`; an instance is returned as it is."""
        if isinstance(obj, cls):
            return obj
        return cls.from_dict(obj)

    @classmethod
    def from_json(cls: type[M], data: str | bytes) -> M:
        """JSON text -> this class."""
        from . import _json

        try:
            obj = _json.loads(data, NO_LIMITS)
        except (ValueError, RecursionError):
            raise LocalProtocolError(
                f"{cls.__name__}.from_json() takes JSON text: {str(data)[:80]!r}"
            ) from None
        return cls.from_dict(obj)

    @classmethod
    def model_validate_json(cls: type[M], data: str | bytes) -> M:
        """openai's (pydantic's) name for :meth:`from_json`."""
        return cls.from_json(data)


def _dumps(obj: JSON, indent: int | None) -> str:
    if indent is None:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(obj, ensure_ascii=False, indent=indent)


# --------------------------------------------------------------------------
# Fields built on first read. A streamed chunk is checked whole when it
# arrives, but most of its fields (id, model, extra, logprobs, a role nobody
# reads) are never looked at: the chunk path can build a *lazy* object, of a
# private subclass that holds the decoded JSON object in ``_raw`` and only
# the fields the reader itself needs; the first read of any other field
# builds them all, by the function ``_structure`` gave, keeps them in their
# slots and moves the object to a second private subclass, *filled*, whose
# reads are plain slot reads again. The fields left empty are the only
# names the lazy subclass overrides (with :class:`_LazyField`), so reading
# the others costs what it costs on the class itself (a ``__getattr__``
# hook would cost CPython its fast attribute reads on every field). Both
# subclasses bear the class's name and module, compare equal to an object
# of the class built whole (both ways), print, dump, copy and pickle as one
# (a copy or an unpickled object is of the class itself).

_set_class = object.__setattr__


def _rebuild(cls: type[M], fields: dict[str, Any]) -> M:
    """What a lazy object pickles to: ``cls`` built whole from its fields."""
    return cls(**fields)


class _LazyField:
    """A field a lazy object left empty: read, it builds them all first."""

    __slots__ = ("_fill", "_get", "_set")

    def __init__(self, member: Any, fill: Callable[[Any], None]) -> None:
        self._get = member.__get__
        self._set = member.__set__
        self._fill = fill

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        try:
            return self._get(obj)
        except AttributeError:  # empty: not built yet
            self._fill(obj)
            return self._get(obj)

    def __set__(self, obj: Any, value: Any) -> None:
        # Only for attrs' own __init__ (``attrs.evolve`` of a lazy object):
        # the frozen class refuses every other write before this is reached.
        self._set(obj, value)


def lazy_variant(
    cls: type[M], names: tuple[str, ...], fill: Callable[..., tuple[Any, ...]]
) -> type[M]:
    """The lazy subclass of the frozen, slotted ``cls`` (see above): the
    fields ``names`` are the ones the chunk path leaves empty, and
    ``fill(**raw)`` gives their values, in that order, from the object's
    JSON object ``raw`` (used by ``_structure``)."""
    fields = tuple(f.name for f in attrs.fields(cast("type[attrs.AttrsInstance]", cls)))
    members = {n: cls.__dict__[n] for n in names}
    setters = tuple(m.__set__ for m in members.values())

    def build(obj: Any) -> None:
        # Every field left empty, then the class whose reads are plain. A
        # second thread doing the same at the same time writes the same
        # values: ``_raw`` is never changed.
        for set_field, value in zip(setters, fill(**obj._raw), strict=True):
            set_field(obj, value)
        _set_class(obj, "__class__", filled)

    def __eq__(self: Any, other: Any) -> Any:
        # attrs' __eq__ wants the same class: a lazy object equals one of
        # ``cls`` (or another lazy one) with equal fields.
        if not isinstance(other, cls):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in fields)

    def __ne__(self: Any, other: Any) -> Any:
        equal = __eq__(self, other)
        return equal if equal is NotImplemented else not equal

    def __reduce_ex__(self: Any, protocol: Any) -> Any:
        # Copied and pickled as ``cls`` itself, every field built.
        return _rebuild, (cls, {n: getattr(self, n) for n in fields})

    common = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    namespace = {
        **common,
        "__slots__": ("_raw",),
        "__eq__": __eq__,
        "__ne__": __ne__,
        "__hash__": cls.__hash__,
        "__reduce_ex__": __reduce_ex__,
        **{n: _LazyField(m, build) for n, m in members.items()},
    }
    lazy = cast("type[M]", type(cls.__name__, (cls,), namespace))
    # Filled: the class's own slot descriptors again, for the same names.
    filled = type(cls.__name__, (lazy,), {**common, "__slots__": (), **members})
    _FIELDS[lazy] = _FIELDS[filled] = _FIELDS[cls]
    return lazy


# --------------------------------------------------------------------------
# Building objects fast: the chunk path builds several per streamed chunk.
#
# A frozen attrs class refuses ``obj.x = v`` (its ``__setattr__`` raises), so
# its ``__init__`` sets each field through ``object.__setattr__``, and code
# that builds objects itself must call a slot's setter: a call each, about
# 650 instructions, and the chunk path made eight or more per chunk. A
# *draft* class is a subclass of the frozen class that adds no slot, keeps
# ``object``'s own ``__setattr__``, ``__delattr__`` and ``__init__``: an
# object made as a draft takes plain ``obj.x = v`` (which CPython runs as a
# direct slot store, a few dozen instructions) and, once every field is set,
# ``obj.__class__ = cls`` makes it an object of the frozen class, the same
# layout, frozen from then on. A draft never leaves the function that
# builds it; nobody else ever holds one.


def draft_class(cls: type) -> type[Any]:
    """The draft class of the frozen, slotted attrs class ``cls`` (see above).
    Typed ``Any``: a draft takes the writes its class refuses."""
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"draft_class() needs a slotted class, not {cls.__qualname__}")
    namespace = {
        "__slots__": (),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__ + ".<draft>",
        "__init__": object.__init__,
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
    }
    return type(cls.__name__, (cls,), namespace)


def slot_constructor(cls: type[A]) -> Callable[..., A]:
    """A constructor for the frozen attrs class ``cls`` that builds a draft.

    ``make(**fields) == cls(**fields)``: the same class, the same fields,
    still frozen, generated once per class the way attrs generates
    ``__init__``, at a fraction of the cost (see :func:`draft_class`). Every
    field is a required argument (no default or factory runs), so it only
    serves classes without validators, converters or
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
    lines = [f"def make({', '.join(names)}):", "    self = _draft()"]
    lines += [f"    self.{name} = {name}" for name in names]
    lines += ["    self.__class__ = _cls", "    return self"]
    namespace: dict[str, Any] = {"_draft": draft_class(cls), "_cls": cls}
    exec(compile("\n".join(lines), f"<slot constructor of {cls.__qualname__}>", "exec"), namespace)
    make = namespace["make"]
    make.__qualname__ = f"{cls.__qualname__}.<slot constructor>"
    return cast("Callable[..., A]", make)


# --------------------------------------------------------------------------
# Response shapes


@_register
@attrs.frozen
class FunctionCall(Model):
    """The function part of an assembled tool call."""

    name: str | None = None
    arguments: str = ""
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class ToolCall(Model):
    """A complete tool call (in a message or an assembled completion)."""

    id: str | None = None
    type: str | None = "function"
    function: FunctionCall = attrs.field(factory=FunctionCall)
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class FunctionCallDelta(Model):
    """A piece of a streamed function call: ``arguments`` arrive in pieces."""

    name: str | None = None
    arguments: str | None = None
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class ToolCallDelta(Model):
    """A piece of a streamed tool call, merged with others of the same ``index``."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta | None = None
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class Delta(Model):
    """What one chunk adds to one choice."""

    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] | None = None
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class ChunkChoice(Model):
    index: int = 0
    delta: Delta = attrs.field(factory=Delta)
    finish_reason: str | None = None
    logprobs: JSON = None
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class Usage(Model):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class ChatCompletionChunk(Model):
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
    if all(isinstance(v, ToolCall) for v in value):
        return tuple(value)
    from . import _structure  # lazy: the parsing module imports this one

    return tuple(
        v if isinstance(v, ToolCall) else _structure.structure_tool_call(v, "tool_call")
        for v in value
    )


@_register
@attrs.frozen
class Message(Model):
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


@_register
@attrs.frozen
class Choice(Model):
    index: int = 0
    message: Message = attrs.field(factory=Message)
    finish_reason: str | None = None
    logprobs: JSON = None
    extra: Mapping[str, JSON] = _extra()


@_register
@attrs.frozen
class ChatCompletion(Model):
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


@_register
@attrs.frozen
class ErrorObject(Model):
    """The ``{"error": {...}}`` object of an API error (openai's name for it).

    Not an exception: :class:`~sora_core.APIError` carries one in ``.body``,
    and the event :class:`~sora_core.APIErrorReceived` in ``.error``.
    ``APIErrorBody`` is the same class, under its earlier name."""

    message: str = ""
    type: str | None = None
    param: JSON = None
    code: JSON = None
    extra: Mapping[str, JSON] = _extra()


APIErrorBody = ErrorObject
"""The earlier name of :class:`ErrorObject`."""


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
            from . import _structure  # lazy: the parsing module imports this one

            out.append(_structure.structure_message(item, local=True))
        else:
            raise LocalProtocolError(
                f"each message must be a Message or a dict, not {type(item).__name__}"
            )
    return tuple(out)


def _to_tools(value: Any) -> tuple[Mapping[str, JSON], ...] | None:
    return None if value is None else tuple(value)


REQUEST_FIELDS = frozenset({"model", "messages", "max_tokens", "stream", "stream_options", "tools"})


def _check_extra(_inst: Any, _attr: Any, value: Mapping[str, JSON]) -> None:
    clash = REQUEST_FIELDS.intersection(value)
    if clash:
        name = sorted(clash)[0]
        raise LocalProtocolError(f"pass {name!r} as ChatRequest({name}=...), not inside extra")


@_register
@attrs.frozen
class ChatRequest(Model):
    """A ``POST /v1/chat/completions`` request.

    ``extra`` holds any other field (``size``, ``seconds``, ``n``,
    ``temperature``, ...); it is sent untouched. :meth:`to_dict` is the
    request body.
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


def text_part(text: str) -> dict[str, JSON]:
    """A text content part: ``{"type": "text", "text": text}``."""
    return {"type": "text", "text": text}


def image_part(url: str, *, detail: str | None = None) -> dict[str, JSON]:
    """An image content part; ``url`` may be an ``https:`` or a ``data:`` URL."""
    image: dict[str, JSON] = {"url": url}
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}
