"""Answers to the node's deadlock detector and quiescence check.

The detector confirms every edge of a cycle with the processes involved
before it reports one (``Probe``: is this wait still on, is that request
still unanswered?), withdraws the victim's request (``Cancel``) and fails
the victim's wait (``FailWait``). The opt-in quiescence check asks each
process whether anything can still move (``Quiet``). Each answer reads the
host's mailboxes and wait tracker as they are at that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.cell import START
from actors.errors import DeadlockError
from actors.mailbox import Mailboxes
from actors.runtime import Runtime
from actors.waits import ABSENT, QUEUED

__all__ = ["Probes"]


class Probes:
    """The deadlock-related service operations of one host."""

    def __init__(self, runtime: Runtime, mailboxes: Mailboxes,
                 answer: Callable[[Any, Any], None]) -> None:
        self.runtime = runtime
        self.mailboxes = mailboxes
        self._answer = answer
        self._probes = 0  # quiescence probes answered (not counted as traffic)

    def probe(self, op: P.Probe, envelope: Any) -> None:
        states = []
        for request in op.pending:
            cell = self.mailboxes.cells.get(request.uid)
            if cell is None:
                states.append(ABSENT)
            elif request.call_id is None:  # is it still starting?
                states.append(QUEUED if cell.envelope is START else ABSENT)
            else:
                states.append(cell.request_state(request.reply_to, request.call_id))
        self._answer(envelope, P.ProbeAnswer(self.runtime.waits.probe(op.wait_ids), states))

    def cancel(self, op: P.Cancel, envelope: Any) -> None:
        cell = self.mailboxes.cells.get(op.uid)
        found = False
        if cell is not None:
            found = cell.withdraw(op.reply_to, op.call_id)
            if found:
                self.mailboxes.counters.counts[1] += 1
            reply = cell.parked.get((op.reply_to, op.call_id))
            withdraw = getattr(cell.actor, "withdraw", None)
            if (not found and reply is not None and reply.bound and withdraw is not None
                    and withdraw(reply)):
                found = reply.take()  # never sent: the asker gets DeadlockError
        self._answer(envelope, found)

    def fail_wait(self, op: P.FailWait, envelope: Any) -> None:
        failed = self.runtime.waits.fail(op.wait_id, DeadlockError(op.message, op.cycle))
        self._answer(envelope, failed)

    def quiet(self, op: P.Quiet, envelope: Any) -> None:
        self._answer(envelope, self.quiet_report())

    def quiet_report(self) -> P.QuietReport:
        """For the node's quiescence check: whether every actor here is idle
        (empty mailbox) or blocked in a wait without deadline, with no
        asyncio timer pending and nothing unsent or unread; the message
        counts without this check's own traffic; the deferred replies held;
        and the waits."""
        runtime, tracker = self.runtime, self.runtime.waits
        idle = (runtime.idle(poll=True) and not self.mailboxes.timers_pending()
                and all((not cell.busy and not cell.mailbox)
                        or (cell.busy and tracker.blocked(uid))
                        for uid, cell in list(self.mailboxes.cells.items())))
        before, self._probes = self._probes, self._probes + 1
        held = [[uid, len(cell.parked)]
                for uid, cell in self.mailboxes.cells.items() if cell.parked]
        return P.QuietReport(idle, runtime.outboxes.sent_count() - before,
                             runtime.loop.received - before - 1, held, tracker.infos())
