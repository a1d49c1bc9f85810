"""What the three clients share, written once.

The protocol lives in :mod:`sora_core` (``ChatResponse`` / ``ChatConnection``,
``RetryPolicy``, ``Call``); this module holds the rest of the glue that does
not depend on how bytes move: the client configuration, the TLS context,
the exception-mapping boundary, the request ``generate_video`` sends, and
the bookkeeping that turns one call's events into its result
(:class:`CallState`). The adapters (``requests``, ``trio``, ``asyncio``)
only move bytes, sleep and map their runtime's exceptions.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import mimetypes
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

from sora_core import (
    CallMachine,
    ChatCompletion,
    ChatExchange,
    ChatRequest,
    HTTPRequest,
    LimitExceeded,
    Limits,
    LocalProtocolError,
    Proxies,
    ResponseStarted,
    RetryPolicy,
    SoraError,
    TransportError,
    VideoResult,
    build_request,
    image_part,
    text_part,
)
from sora_core._exchange import Want
from sora_core._redact import REDACTED, redact, redact_headers

if TYPE_CHECKING:
    import ssl

    from typing_extensions import Self

    from sora_core._shapes import JSON

__all__ = [
    "REDACTED",
    "ClientBase",
    "ClientConfig",
    "StreamView",
    "check_head_size",
    "configure",
    "image_url",
    "logger",
    "map_exceptions",
    "redact",
    "resolve_config",
    "ssl_context",
    "video_request",
]

logger = logging.getLogger("sora_transports")


# -- configuration -------------------------------------------------------------


def resolve_config(
    base_url: str | None = None, api_key: str | None = None
) -> tuple[str, str | None]:
    """Base URL and token from the arguments, else ``SORA_BASE_URL`` /
    ``SORA_API_KEY``, else ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.

    The environment is read here, by the transports' configuration, never
    by ``sora_core``.
    """
    env = os.environ
    url = base_url or env.get("SORA_BASE_URL") or env.get("OPENAI_BASE_URL")
    if not url:
        raise LocalProtocolError(
            "no base URL: pass base_url='https://relay.example/v1' "
            "or set SORA_BASE_URL (or OPENAI_BASE_URL)"
        )
    key = api_key if api_key is not None else env.get("SORA_API_KEY") or env.get("OPENAI_API_KEY")
    return url, key


def resolve_proxies(proxy: str | None = None) -> Proxies:
    """The proxies of a client, the same on every transport.

    ``proxy=None``: from the environment, as curl and requests read it
    (``http_proxy`` / ``https_proxy`` / ``all_proxy`` / ``no_proxy``, lower
    case first, then upper case; ``HTTP_PROXY`` is ignored under CGI, where
    a request header could set it). A URL: every request goes through it.
    ``""``: no proxy, whatever the environment says.
    """
    if proxy is not None:
        if not isinstance(proxy, str):
            raise LocalProtocolError(f"proxy must be a URL string or None, not {proxy!r}")
        return Proxies.from_urls(proxy, proxy) if proxy else Proxies()
    env = os.environ

    def get(name: str) -> str | None:
        if name == "http_proxy" and "REQUEST_METHOD" in env:
            return env.get(name)  # httpoxy: only the lower-case name under CGI
        return env.get(name) or env.get(name.upper())

    every = get("all_proxy")
    return Proxies.from_urls(
        get("http_proxy") or every, get("https_proxy") or every, get("no_proxy")
    )


def _split_userinfo(url: str, api_key: str | None) -> tuple[str, str | None]:
    """A base URL without its ``user:password@``, and the Basic credentials
    they stand for (sent as ``Authorization: Basic``, never printed)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None  # build_request says what is wrong with it
    if parts.username is None and parts.password is None:
        return url, None
    if api_key:
        raise LocalProtocolError(
            "the base URL carries a user name or password and api_key is set too; "
            "use one: drop the user:password@ part, or pass api_key=None"
        )
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    host = parts.netloc.rpartition("@")[2]
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return clean, f"Basic {token}"


def _headers_repr(headers: tuple[tuple[str, str], ...]) -> str:
    # A token passed in a custom header (X-Api-Key, api-key, ...) stays hidden.
    return repr(tuple(redact_headers(headers)))


def wants_video(request: ChatRequest) -> bool:
    """Whether the sora video layer runs for ``request`` (its model starts with sora)."""
    return str(request.model).lower().startswith("sora")


@attrs.frozen
class ClientConfig:
    """The settings of a client, checked once at construction."""

    base_url: str
    api_key: str | None = attrs.field(repr=False)
    headers: tuple[tuple[str, str], ...] = attrs.field(repr=lambda h: _headers_repr(h))
    connect_timeout: float
    idle_timeout: float
    deadline: float | None
    policy: RetryPolicy
    verify: bool | ssl.SSLContext
    follow_redirects: bool
    limits: Limits
    proxies: Proxies = attrs.field(factory=Proxies)

    def build(self, request: ChatRequest) -> HTTPRequest:
        """The HTTP request for ``request`` (a ``ChatRequest`` only)."""
        if not isinstance(request, ChatRequest):
            raise LocalProtocolError(
                f"expected a ChatRequest, got {type(request).__name__}; "
                "build one with ChatRequest(model=..., messages=[...])"
            )
        return build_request(
            request, base_url=self.base_url, api_key=self.api_key, headers=self.headers
        )

    def chat_exchange(
        self, request: ChatRequest, want: Want = "events", video: bool | None = None
    ) -> ChatExchange:
        """The exchange for ``request`` (the video layer on for sora models)."""
        return ChatExchange(
            self.build(request),
            video=wants_video(request) if video is None else video,
            want=want,
        )

    def machine(self, exchange: Any, now: float | None, *, wire: bool) -> CallMachine:
        """A :class:`~sora_core.CallMachine` for ``exchange`` with these settings."""
        return CallMachine(
            exchange,
            started=now,
            wire=wire,
            policy=self.policy,
            connect_timeout=self.connect_timeout,
            idle_timeout=self.idle_timeout,
            deadline=self.deadline,
            follow_redirects=self.follow_redirects,
            limits=self.limits,
            secret=self.api_key,
            proxies=self.proxies,
        )


def configure(
    base_url: str | None,
    api_key: str | None,
    *,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    connect_timeout: float,
    idle_timeout: float,
    deadline: float | None,
    max_retries: int,
    retry_policy: RetryPolicy | None,
    verify: bool | ssl.SSLContext,
    follow_redirects: bool,
    limits: Limits | None,
    proxy: str | None = None,
) -> ClientConfig:
    """Check the arguments every client takes and resolve the base URL and token
    (``SORA_BASE_URL`` / ``SORA_API_KEY``, then ``OPENAI_*``)."""
    url, key = resolve_config(base_url, api_key)
    url, basic = _split_userinfo(url, key)
    if not (verify is True or verify is False or is_ssl_context(verify)):
        raise LocalProtocolError(
            f"verify must be True, False or an ssl.SSLContext, not {type(verify).__name__}"
        )
    if verify is False and url.lower().startswith("https:"):
        # Explicit, and still said out loud: it is never off by accident.
        logger.warning(
            "TLS certificate verification is off (verify=False) for %s: anyone on the "
            "path can impersonate the server and read the token",
            url,
        )
    if retry_policy is None:
        retry_policy = RetryPolicy(max_retries=max_retries)
    elif not isinstance(retry_policy, RetryPolicy):
        raise LocalProtocolError("retry_policy must be a sora_core.RetryPolicy")
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    if basic is not None:
        pairs.append(("Authorization", basic))
    config = ClientConfig(
        base_url=url,
        api_key=key,
        headers=tuple((str(k), str(v)) for k, v in pairs),
        connect_timeout=connect_timeout,
        idle_timeout=idle_timeout,
        deadline=deadline,
        policy=retry_policy,
        verify=verify,
        follow_redirects=bool(follow_redirects),
        limits=limits or Limits(),
        proxies=resolve_proxies(proxy),
    )
    # Build a request and a machine once, so a bad URL, header or timeout
    # fails here, not at the first call.
    probe = ChatRequest(model="probe", messages=[{"role": "user", "content": "x"}])
    config.machine(config.chat_exchange(probe), 0.0, wire=True)
    return config


class StreamView:
    """What an event stream shows of its call, sync or async: the head, the
    completion so far and the video so far (kept after any error)."""

    machine: CallMachine

    @property
    def response(self) -> ResponseStarted | None:
        """The status and headers, once they arrived."""
        return self.machine.response

    @property
    def partial(self) -> ChatCompletion | None:
        """The completion assembled from what arrived so far."""
        partial: ChatCompletion | None = self.machine.partial
        return partial

    @property
    def video(self) -> VideoResult | None:
        """The sora result so far (task id and links survive a dropped connection)."""
        video: VideoResult | None = self.machine.video
        return video


StreamT = TypeVar("StreamT")


class ClientBase(Generic[StreamT]):
    """What every client is built from, sync or async: its checked settings,
    and the verbs that only build an exchange for :meth:`run` (``StreamT`` is
    the sync or async event stream).

    ``base_url`` and ``api_key`` default to ``SORA_BASE_URL`` /
    ``SORA_API_KEY`` (then ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
    Timeouts in seconds: ``connect_timeout`` per connection attempt,
    ``idle_timeout`` between two reads (:class:`~sora_core.IdleTimeout`),
    ``deadline`` for the whole call including retries and the stream
    (:class:`~sora_core.DeadlineExceeded`); or ``timeout``, as the openai
    package takes it (a number: connect and read; or an object with
    ``connect`` / ``read`` / ``total``). ``max_retries`` / ``retry_policy``:
    retries before the response began (never once a 2xx response started),
    ``Retry-After`` honoured. ``verify``: ``True`` (the system's CAs),
    ``False`` or an ``ssl.SSLContext``. ``follow_redirects``: at most 5,
    without the token across origins. ``limits``: the core's size limits.
    ``proxy``: an ``http://`` proxy URL, ``""`` for none, or ``None`` for
    the environment's (``http_proxy`` / ``https_proxy`` / ``all_proxy`` /
    ``no_proxy``). ``headers`` / ``default_headers`` and ``default_query``
    go with every request.
    """

    _wire = True

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
        proxy: str | None = None,
        timeout: Any = None,
        default_headers: Mapping[str, str | None] | None = None,
        default_query: Mapping[str, Any] | None = None,
    ) -> None:
        from ._openai import apply_options

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
            proxy=proxy,
        )
        apply_options(
            self, timeout=timeout, default_headers=default_headers, default_query=default_query
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self._config.base_url!r}>"

    @property
    def config(self) -> ClientConfig:
        """The resolved settings (the token is kept out of its repr)."""
        return self._config

    def run(self, exchange: Any, *, config: ClientConfig | None = None) -> StreamT:
        """A stream of events running ``exchange`` (any :class:`~sora_core.Exchange`),
        with ``config`` for this call only when given."""
        raise NotImplementedError

    def stream(self, request: ChatRequest, *, assemble: bool = True) -> StreamT:
        """The events of ``request`` as they arrive (``with`` / ``async with``).

        ``assemble=False`` builds no completion as the chunks arrive (the
        result is then ``None``), so a long stream stays small in memory.
        """
        exchange = self._config.chat_exchange(request)
        exchange.assemble = assemble
        return self.run(exchange)

    def with_options(self, **options: Any) -> Self:
        """A copy with ``base_url``, ``api_key``, ``timeout``, ``max_retries``,
        ``default_headers`` or ``default_query`` changed (connections shared)."""
        from ._openai import with_options

        clone: Self = with_options(self, **options)
        return clone

    @property
    def generate_video(self) -> Any:
        """Run a sora generation to its :class:`~sora_core.VideoResult`:
        ``client.generate_video(prompt, model=, image=, size=, seconds=,
        stream=, on_event=, extra=, endpoint=)`` (awaited on an async client).

        The same verb as ``client.videos.generate_video`` (which takes a few
        more options): ``on_event`` sees every event (progress among them);
        ``stream=False`` waits for one whole answer; ``endpoint="videos"`` uses
        the relay's task API instead of the chat stream. A stream that breaks
        after the task id is followed by polling the task, never submitted
        again. Raises :class:`~sora_core.VideoGenerationError` (``.video``
        set) when the relay reports a failure; any error keeps ``.video``, so
        the task id and links survive.
        """
        return getattr(self, "videos").generate_video  # noqa: B009 - defined per runtime


def is_ssl_context(value: object) -> bool:
    """Whether ``value`` is an :class:`ssl.SSLContext` (without importing ssl:
    Pyodide has no ssl module, and where it is not loaded no context exists)."""
    module = sys.modules.get("ssl")
    return module is not None and isinstance(value, module.SSLContext)


def ssl_context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context of the wire-level clients.

    ``True``: :func:`ssl.create_default_context` (the system's CAs, hostname
    checked). ``False``: no verification at all (say so explicitly). A
    context: used as it is.
    """
    import ssl

    if isinstance(verify, ssl.SSLContext):
        return verify
    ctx = ssl.create_default_context()
    if verify is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# -- limits the HTTP layer does not keep ----------------------------------------------


def check_head_size(limits: Limits, reason: str, headers: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`~sora_core.LimitExceeded` when a response head that
    arrived whole is larger than ``Limits.max_header_size``.

    h11 (and http.client) bound a head only while it is incomplete, so one
    that arrives in a single read passes whatever its size; this check, on
    the parsed head ("HTTP/1.1 200 reason" CRLF, "name: value" CRLF each,
    CRLF), makes the limit hold however the bytes were split.
    """
    size = len("HTTP/1.1 200 ") + len(reason) + 2 + 2
    size += sum(len(name) + len(value) + 4 for name, value in headers)
    if size > limits.max_header_size:
        raise LimitExceeded(
            f"the response head is larger than {limits.max_header_size} bytes "
            "(Limits.max_header_size)"
        )


# -- the exception boundary ------------------------------------------------------


@contextlib.contextmanager
def map_exceptions(
    mapping: Mapping[type[BaseException], type[TransportError]], what: str
) -> Iterator[None]:
    """Re-raise a runtime's exception as the project's own, chained.

    ``mapping`` is tried in order (put subclasses first); the project's own
    errors and exceptions not in it (bugs, cancellation) pass unchanged.
    """
    try:
        yield
    except SoraError:
        raise
    except Exception as exc:
        for source, target in mapping.items():
            if isinstance(exc, source):
                raise target(f"{what}: {describe(exc)}") from exc
        raise


def describe(exc: BaseException) -> str:
    """A short text for a runtime exception (its type when it has no message)."""
    text = str(exc).strip()
    if not text and exc.__cause__ is not None:
        return describe(exc.__cause__)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- generate_video ---------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def _sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return None


def image_url(image: str | bytes | os.PathLike[str]) -> str:
    """The ``image_url`` to send for ``image``.

    An ``http(s):`` or ``data:`` URL is sent as it is; a file path or raw
    bytes become a base64 ``data:`` URL, its MIME type from the content (PNG,
    JPEG, GIF, WebP, BMP) or else the file name.
    """
    if isinstance(image, str) and image.split(":", 1)[0].lower() in ("http", "https", "data"):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        data, name = bytes(image), ""
    elif isinstance(image, (str, os.PathLike)):
        name = os.fspath(image)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise LocalProtocolError(f"cannot read the image {name!r}: {exc}") from exc
    else:
        raise LocalProtocolError(
            f"image must be a URL, a file path or bytes, not {type(image).__name__}"
        )
    mime = _sniff(data) or (mimetypes.guess_type(name)[0] if name else None)
    if mime is None:
        raise LocalProtocolError(
            "cannot tell the image type (not PNG, JPEG, GIF, WebP or BMP); "
            "pass a data: URL with the right MIME type"
        )
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def video_request(
    prompt: str,
    *,
    model: str = "sora-2",
    image: str | bytes | os.PathLike[str] | None = None,
    size: str | None = None,
    seconds: int | str | None = None,
    stream: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> ChatRequest:
    """The request ``generate_video`` sends.

    With ``image``, the user message is ``[text part, image_url part]``
    (image-to-video); ``size``, ``seconds`` and ``extra`` are sent as extra
    request fields, except ``max_tokens``, ``tools`` and ``stream_options``,
    which go to the :class:`~sora_core.ChatRequest` fields of those names
    (relays often want ``max_tokens``). ``stream=False`` asks for one
    ``chat.completion`` instead of a stream (the relay then answers when
    the video is ready).
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise LocalProtocolError("generate_video needs a non-empty prompt")
    content: str | list[dict[str, JSON]] = prompt
    if image is not None:
        content = [text_part(prompt), image_part(image_url(image))]
    fields: dict[str, Any] = {}
    if size is not None:
        fields["size"] = size
    if seconds is not None:
        fields["seconds"] = seconds
    fields.update(extra or {})
    for reserved in ("model", "messages", "stream"):
        if reserved in fields:
            raise LocalProtocolError(
                f"pass {reserved!r} as generate_video's own argument, not in extra"
            )
    known = {k: fields.pop(k) for k in ("max_tokens", "tools", "stream_options") if k in fields}
    return ChatRequest(
        model=model,
        messages=[{"role": "user", "content": content}],
        stream=stream,
        extra=fields,
        **known,
    )


# -- per-call settings (the openai-shaped facade) ------------------------------------


def timeout_fields(timeout: Any) -> dict[str, float | None]:
    """``connect_timeout`` / ``idle_timeout`` / ``deadline`` for an openai-style
    ``timeout``: a number (connect and read, as httpx takes one), or an object
    or mapping with ``connect``, ``read`` and ``total`` (each optional;
    httpx's ``Timeout`` fits). ``None``: nothing changes."""
    if timeout is None:
        return {}
    if isinstance(timeout, bool):
        raise LocalProtocolError("timeout must be a number of seconds or a Timeout, not a bool")
    if isinstance(timeout, (int, float)):
        return {"connect_timeout": float(timeout), "idle_timeout": float(timeout)}

    def part(name: str) -> Any:
        if isinstance(timeout, Mapping):
            return timeout.get(name)
        return getattr(timeout, name, None)

    if not any(
        hasattr(timeout, n) or (isinstance(timeout, Mapping) and n in timeout)
        for n in ("connect", "read", "total")
    ):
        raise LocalProtocolError(
            f"timeout must be a number or have connect/read/total, not {type(timeout).__name__}"
        )
    out: dict[str, float | None] = {}
    for name, field in (("connect", "connect_timeout"), ("read", "idle_timeout")):
        value = part(name)
        if value is not None:
            out[field] = float(value)
    if part("total") is not None:
        out["deadline"] = float(part("total"))
    return out


def derive_config(
    config: ClientConfig,
    *,
    timeout: Any = None,
    headers: Mapping[str, str | None] | None = None,
    max_retries: int | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> ClientConfig:
    """``config`` with per-call (or ``with_options``) changes, checked like the original.

    ``headers`` replace headers of the same name (case-insensitive); a
    ``None`` value removes one, as in the openai package.
    """
    changes: dict[str, Any] = dict(timeout_fields(timeout))
    if headers:
        drop = {str(k).lower() for k in headers}
        kept = [(k, v) for k, v in config.headers if k.lower() not in drop]
        kept += [(str(k), str(v)) for k, v in headers.items() if v is not None]
        changes["headers"] = tuple(kept)
    if max_retries is not None:
        changes["policy"] = attrs.evolve(config.policy, max_retries=max_retries)
    if base_url is not None:
        changes["base_url"] = base_url
    if api_key is not None:
        changes["api_key"] = api_key
    if not changes:
        return config
    derived = attrs.evolve(config, **changes)
    probe = ChatRequest(model="probe", messages=[{"role": "user", "content": "x"}])
    derived.machine(derived.chat_exchange(probe), 0.0, wire=True)
    return derived
