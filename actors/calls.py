"""Pending calls: the asks of one process that wait for their replies.

Every ask registers its :class:`ActorFuture` under a call id before the
request leaves; the REPLY envelope names the id and the uid that answers,
and :meth:`Calls.resolve` completes the future only if that uid is the one
the request went to. Call ids are drawn at random (62 bits, from a
generator seeded with ``os.urandom``), so a peer that does not see our
traffic cannot guess one, and an answer cannot be forged by trying ids. Deaths complete them too: :meth:`fail_where` fails
every pending ask whose target matches, at once (death is never found out
by a timeout). A future is completed by whoever pops it from the table
first, so a reply racing a death or a timeout is settled exactly once.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
from collections.abc import Callable
from typing import Any

from actors.errors import ActorDeadError, SerializationError
from actors.protocol import Answer
from actors.ref import ActorFuture, ActorRef
from actors.wire import find_undecodable

__all__ = ["Calls"]


class Calls:
    """The pending asks of one process, by call id."""

    def __init__(self) -> None:
        self.pending: dict[int, ActorFuture] = {}
        self._random = random.Random(os.urandom(32))
        self.forged = 0  # answers refused: no pending call from that uid

    def next_id(self) -> int:
        call_id = self._random.getrandbits(62)
        while call_id in self.pending or not call_id:
            call_id = self._random.getrandbits(62)
        return call_id

    def add(self, future: ActorFuture) -> None:
        self.pending[future.call_id] = future

    def pop(self, call_id: int) -> ActorFuture | None:
        return self.pending.pop(call_id, None)

    def resolve(self, answer: Answer, undecodable: bool) -> bool:
        """Complete the ask ``answer`` replies to (a late reply, after a
        timeout or a death, is dropped). ``undecodable``: the frame held
        values that could not be rebuilt; look for them in this one. False
        if the answer names a uid the call did not go to (it is dropped)."""
        future = self.pending.get(answer.call_id)
        if future is None:
            return True
        target = future.target
        if target is None or target.uid != answer.uid:
            self.forged += 1
            return False
        value = answer.result  # (a malformed value raises here: the call stays pending)
        if self.pending.pop(answer.call_id, None) is None:
            return True
        bad = find_undecodable(value) if undecodable else None
        try:
            if bad is not None:
                future.set_exception(SerializationError(f"reply could not be decoded: {bad.error}"))
            elif answer.ok:
                future.set_result(value)
            else:
                future.set_exception(value if isinstance(value, BaseException)
                                     else SerializationError(f"bad error reply {value!r:.200}"))
        except concurrent.futures.InvalidStateError:
            pass
        return True

    def fail(self, call_id: int, error: BaseException) -> bool:
        """Fail one pending ask; False if it was settled already."""
        future = self.pending.pop(call_id, None)
        if future is None:
            return False
        try:
            future.set_exception(error)
        except concurrent.futures.InvalidStateError:
            return False
        return True

    def fail_where(self, matches: Callable[[ActorRef], bool], reason: str) -> None:
        """Every pending ask whose target ``matches`` fails with
        :class:`ActorDeadError` (``reason`` says why)."""
        for call_id, future in list(self.pending.items()):
            target = future.target
            if target is not None and matches(target):
                self.fail(call_id, ActorDeadError(
                    f"{target!r} died before replying ({reason})", target, reason))

    def fail_dead(self, uids: set[int], reason: str) -> None:
        self.fail_where(lambda target: target.uid in uids, reason)

    def statistics(self) -> dict[str, Any]:
        return {"pending": len(self.pending), "forged": self.forged}
