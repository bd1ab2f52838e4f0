"""A cell: one actor instance in its host process, and its mailbox.

Besides envelopes a mailbox holds two runtime marks: :class:`StopMark`
(stop here, behind what was sent before) and :class:`LinkMark` (a linked
actor crashed: crash before the next message). How mailboxes are filled
and run: ``actors.mailbox``.
"""

from __future__ import annotations

import collections
from typing import Any, NamedTuple

from actors import protocol as P
from actors.actor import Actor
from actors.ref import ActorRef, Reply
from actors.waits import ABSENT, BOUND, DEFERRED, QUEUED

__all__ = ["START", "Cell", "LinkMark", "StopMark"]


class StopMark(NamedTuple):
    """Stop the actor here; answer ``(reply_to, call_id)`` once it ended."""
    reply_to: str | None
    call_id: int | None


class LinkMark(NamedTuple):
    """A linked actor crashed: crash now, with this reason."""
    reason: str


START = "start"  # Cell.envelope while on_start / on_restart run


class Cell:
    """An actor instance and its mailbox."""

    __slots__ = (
        "actor",
        "alive",
        "busy",
        "deferred",
        "envelope",
        "handled",
        "hang",
        "mailbox",
        "parked",
        "peak",
        "queued",
        "ref",
        "since",
        "stop_waiters",
        "task",
    )

    def __init__(self, actor: Actor, ref: ActorRef) -> None:
        self.actor = actor
        self.ref = ref
        self.mailbox: collections.deque[Any] = collections.deque()
        self.busy = False
        self.queued = False
        self.stop_waiters: list[tuple[str, int]] = []
        self.alive = True
        self.envelope: Any = None   # what it handles now (START while starting)
        self.since = 0.0            # when it began handling it
        self.deferred: Reply | None = None  # the reply its current handler deferred
        self.parked: dict[tuple[str, int], Reply] = {}  # deferred replies not sent yet
        self.hang: float | None = None  # hang_timeout from its child spec
        self.task: Any = None  # the asyncio task of its running async handler
        self.handled = 0  # messages taken from its mailbox (statistics)
        self.peak = 0     # the most messages its mailbox ever held

    @property
    def label(self) -> str:
        return self.ref.name or f"#{self.ref.uid}"

    def request_state(self, reply_to: str, call_id: int) -> int:
        """Where the request (reply_to, call_id) is: QUEUED (in the mailbox
        or being handled: only a handler of this actor can answer it),
        DEFERRED (its reply was deferred: any thread may send it), BOUND
        (deferred, and only what a holder of this actor's resource does
        sends it: ``Reply.bound``) or ABSENT (answered, or not arrived yet)."""
        reply = self.parked.get((reply_to, call_id))
        if reply is not None:
            return BOUND if reply.bound else DEFERRED
        if _is_request(self.envelope, reply_to, call_id):
            return QUEUED if self.deferred is None else ABSENT
        if any(_is_request(e, reply_to, call_id) for e in self.mailbox):
            return QUEUED
        return ABSENT

    def withdraw(self, reply_to: str, call_id: int) -> bool:
        """Take the request out of the mailbox, in place (a dispatch loop may
        hold this very deque); False if it is not there."""
        for e in self.mailbox:
            if _is_request(e, reply_to, call_id):
                self.mailbox.remove(e)
                return True
        return False


def _is_request(envelope: Any, reply_to: str, call_id: int) -> bool:
    return (isinstance(envelope, P.REQUESTS) and envelope.call_id == call_id
            and envelope.reply_to == reply_to)
