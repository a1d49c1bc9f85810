"""The call machine: one call from start to result, asked "what now?".

A transport asks :meth:`CallMachine.next_action` and does what the answer
says (:class:`Connect`, :class:`Send`, :class:`Receive`, :class:`StartTLS`,
:class:`Sleep`, :class:`Release`, :class:`Done`), handing every other answer
(an event) to the user. An :class:`Exchange` describes one kind of
exchange (:class:`ChatExchange` for chat; video tasks and downloads in
:mod:`sora_core.tasks`); :class:`Call` and :class:`Budget` keep its time.
"""

from __future__ import annotations

from ._call import (
    REDIRECT_STATUSES,
    Budget,
    Call,
)
from ._exchange import (
    ChatExchange,
    Exchange,
    ResponseReader,
)
from ._machine import (
    READ_SIZE,
    Action,
    CallMachine,
    Connect,
    Done,
    Receive,
    Release,
    Send,
    Sleep,
    StartTLS,
)

__all__ = [
    "READ_SIZE",
    "REDIRECT_STATUSES",
    "Action",
    "Budget",
    "Call",
    "CallMachine",
    "ChatExchange",
    "Connect",
    "Done",
    "Exchange",
    "Receive",
    "Release",
    "ResponseReader",
    "Send",
    "Sleep",
    "StartTLS",
]
