"""The events the core hands out (video events are in :mod:`sora_core.video`)."""

from __future__ import annotations

from ._events import (
    NEED_DATA,
    APIErrorReceived,
    ChunkReceived,
    CompletionReceived,
    Event,
    ExchangeComplete,
    Headers,
    ResponseStarted,
    StreamEnded,
)

__all__ = [
    "NEED_DATA",
    "APIErrorReceived",
    "ChunkReceived",
    "CompletionReceived",
    "Event",
    "ExchangeComplete",
    "Headers",
    "ResponseStarted",
    "StreamEnded",
]
