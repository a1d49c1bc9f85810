"""Chunks -> one :class:`ChatCompletion`, equal to what ``stream: false``
returns for the same answer.

Text fields are collected as lists of pieces and joined once, so adding a
chunk is O(size of the chunk) and assembling is linear. Tool calls are
merged by ``index``: ``id``, ``type`` and ``name`` are set (a relay that
repeats them must not double them) and ``arguments`` are concatenated.
"""

from __future__ import annotations

from typing import Any

from ._shapes import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    FunctionCall,
    Message,
    ToolCall,
    Usage,
)

__all__ = ["ChunkAccumulator"]


class _ToolCallState:
    __slots__ = ("arguments", "extra", "fn_extra", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []
        self.extra: dict[str, Any] = {}
        self.fn_extra: dict[str, Any] = {}


class _ChoiceState:
    __slots__ = (
        "content",
        "extra",
        "finish_reason",
        "logprobs",
        "message_extra",
        "reasoning",
        "refusal",
        "role",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.role: str | None = None
        self.content: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tool_calls: dict[int, _ToolCallState] = {}
        self.finish_reason: str | None = None
        self.logprobs: Any = None
        self.extra: dict[str, Any] = {}
        self.message_extra: dict[str, Any] = {}


class ChunkAccumulator:
    """Collects chunks; :meth:`completion` assembles them (at any moment)."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.created: int | None = None
        self.model: str | None = None
        self.system_fingerprint: str | None = None
        self.usage: Usage | None = None
        self.finished = False
        self.chunks = 0
        self._choices: dict[int, _ChoiceState] = {}
        self._extra: dict[str, Any] = {}

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.chunks += 1
        # Some relays change the id on every chunk: the first one names the
        # completion, as the official SDK's stream state does.
        if self.id is None:
            self.id = chunk.id
        if self.created is None:
            self.created = chunk.created
        if self.model is None:
            self.model = chunk.model
        if chunk.system_fingerprint is not None:
            self.system_fingerprint = chunk.system_fingerprint
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.extra:
            self._extra.update(chunk.extra)
        for choice in chunk.choices:
            state = self._choices.get(choice.index)
            if state is None:
                state = self._choices[choice.index] = _ChoiceState()
            delta = choice.delta
            if delta.role is not None:
                state.role = delta.role
            if (content := delta.content) is not None:
                if state.content is None:
                    state.content = [content]
                else:
                    state.content.append(content)
            if (reasoning := delta.reasoning_content) is not None:
                if state.reasoning is None:
                    state.reasoning = [reasoning]
                else:
                    state.reasoning.append(reasoning)
            if (refusal := delta.refusal) is not None:
                if state.refusal is None:
                    state.refusal = [refusal]
                else:
                    state.refusal.append(refusal)
            if delta.tool_calls:
                for piece in delta.tool_calls:
                    call = state.tool_calls.get(piece.index)
                    if call is None:
                        call = state.tool_calls[piece.index] = _ToolCallState()
                    if piece.id is not None:
                        call.id = piece.id
                    if piece.type is not None:
                        call.type = piece.type
                    if piece.extra:
                        call.extra.update(piece.extra)
                    fn = piece.function
                    if fn is not None:
                        if fn.name is not None:
                            call.name = fn.name
                        if fn.arguments is not None:
                            call.arguments.append(fn.arguments)
                        if fn.extra:
                            call.fn_extra.update(fn.extra)
            if delta.extra:
                state.message_extra.update(delta.extra)
            if choice.finish_reason is not None:
                state.finish_reason = choice.finish_reason
                self.finished = True
            if choice.logprobs is not None:
                state.logprobs = _merge_logprobs(state.logprobs, choice.logprobs)
            if choice.extra:
                state.extra.update(choice.extra)

    def completion(self) -> ChatCompletion:
        """The completion assembled from the chunks added so far."""
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            tool_calls = None
            if state.tool_calls:
                tool_calls = tuple(
                    ToolCall(
                        id=call.id,
                        type=call.type or "function",
                        function=FunctionCall(
                            name=call.name, arguments="".join(call.arguments), extra=call.fn_extra
                        ),
                        extra=call.extra,
                    )
                    for _, call in sorted(state.tool_calls.items())
                )
            message = Message(
                role=state.role or "assistant",
                content=None if state.content is None else "".join(state.content),
                tool_calls=tool_calls,
                reasoning_content=None if state.reasoning is None else "".join(state.reasoning),
                refusal=None if state.refusal is None else "".join(state.refusal),
                extra=dict(state.message_extra),
            )
            choices.append(
                Choice(
                    index=index,
                    message=message,
                    finish_reason=state.finish_reason,
                    logprobs=state.logprobs,
                    extra=dict(state.extra),
                )
            )
        return ChatCompletion(
            id=self.id,
            object="chat.completion",
            created=self.created,
            model=self.model,
            choices=tuple(choices),
            usage=self.usage,
            system_fingerprint=self.system_fingerprint,
            extra=dict(self._extra),
        )


def _merge_logprobs(old: Any, new: Any) -> Any:
    """Extend ``content`` / ``refusal`` token lists, as the SDK's stream state does."""
    if not isinstance(new, dict):
        return new if old is None else old
    if not isinstance(old, dict):
        return {k: list(v) if isinstance(v, list) else v for k, v in new.items()}
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + value
        elif value is not None or key not in merged:
            merged[key] = value
    return merged
