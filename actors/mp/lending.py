"""Lock leases, the server's side: what a ``LockServer`` knows of the lease
it granted (see ``actors.mp.leases`` for the protocol and the holder's side).

At most one lease of a lock is out at a time (a :class:`Loan`); while it
is out the lock counts as taken. The server recalls it (an ``Ext("mp.lease")``
service tell to the holder's process) when someone else wants the lock,
its state, or a Value's number, and the holder answers with ``give_back``
(the lock is free again, and granted in FIFO order), ``lease_held`` (it
holds the lock past its grace: lock waits then wait for it, as the
deadlock detector is told) or ``data_back`` (a Value's number; the lease
stays). When the holder dies, its board says whether it held the lock.
"""

from __future__ import annotations

from typing import Any

from actors.host import running_host
from actors.mp.board import board_read
from actors.mp.primitive import log
from actors.protocol import Ext
from actors.ref import ActorRef, Reply

__all__ = ["Lending", "Loan"]


class Loan:
    """A lease out: to whom, and what the server knows of it."""

    __slots__ = ("epoch", "address", "ref", "pid", "board", "slot", "fmt", "recalled", "held",
                 "data_out", "data_recalled")

    def __init__(self, epoch: int, who: list[Any], request: list[Any]) -> None:
        self.epoch = epoch
        self.address, self.board, self.slot, self.fmt = request
        self.ref, self.pid = who[2], who[0]
        self.recalled = False
        self.held: list[Any] | None = None  # [thread, member, count] once it says so
        self.data_out = False               # a Value's number went with it
        self.data_recalled = False


class Lending:
    """The lease half of ``LockServer`` (a mixin: it works on the server's
    ``value``, ``parked``, ``owner_died`` and ``wake``)."""

    loan: Loan | None
    value: int
    owner_died: bool
    ref: ActorRef

    def init_lending(self) -> None:
        self.loan = None
        self.epochs = 0
        self.queries: list[tuple[Reply, str]] = []  # state asked while a loan is unclear
        self.forced: list[Reply | None] = []         # releases by others of a lent Lock

    def lend(self, who: list[Any], request: list[Any], died: bool) -> list[Any]:
        """Grant the lock as a lease (the answer to the acquire)."""
        self.epochs += 1
        self.loan = Loan(self.epochs, who, request)
        return [True, died, self.epochs, self.lend_data(self.loan)]

    def lend_data(self, loan: Loan) -> Any:
        """What goes with a lease besides the lock (a Value's number)."""
        return None

    def data_back(self, loan: Loan, data: Any) -> None:
        """A Value's number back from a lease (None: it came before)."""

    def recall(self, kind: str = "recall") -> None:
        loan = self.loan
        if loan is None or (loan.recalled and kind == "recall"):
            return
        if kind == "recall":
            loan.recalled = True
        running_host().runtime.tell_service(loan.address, Ext("mp.lease", [
            self.ref.uid, loan.epoch, kind, self.ref]))

    def do_give_back(self, epoch: int, held: bool, data: Any) -> None:
        """The lease holder gives the lock back, free (``held``: a release
        by another process took it from the holder)."""
        loan = self.loan
        if loan is None or loan.epoch != epoch:
            return  # a lease given back before (its holder died, say)
        self.end_loan(loan, data, held)
        self.wake()

    def end_loan(self, loan: Loan, data: Any, held: bool) -> None:
        self.loan = None
        self.data_back(loan, data)
        self.value += 1
        for reply in self.forced:  # releases by others: the first takes a held lock
            if reply is None:
                continue
            if held:
                reply.send(0)
                held = False
            else:
                reply.fail(ValueError("semaphore or lock released too many times"))
        self.forced = []

    def do_lease_held(self, epoch: int, thread: int, member: Any, count: int) -> None:
        """The lease holder holds the lock past its grace: it gives it
        back at its release (until then, lock waits wait for it)."""
        loan = self.loan
        if loan is not None and loan.epoch == epoch:
            loan.held = [thread, member, count]
            self.wake()

    def release_lent(self, told: bool) -> None:
        """A release by another process of a Lock lent to one: the
        holder's hold ends (its answer settles this release)."""
        self.forced.append(None if told else self.defer_reply())  # type: ignore[attr-defined]
        self.recall("release")

    def unclear(self, op: str) -> bool:
        """A question about the lock's state while a lease is out and not
        known to be held: answered once the holder says (see settle)."""
        loan = self.loan
        if loan is None or loan.held is not None:
            return False
        self.queries.append((self.defer_reply(), op))  # type: ignore[attr-defined]
        self.recall()
        return True

    def settle(self) -> None:
        """After a change: what waited for a lease to be clear."""
        loan = self.loan
        if loan is None or loan.held is not None:  # taken: the nowait ones fail
            for token, (_, info) in list(self.parked.items()):  # type: ignore[attr-defined]
                if info["nowait"]:
                    self.answer(token, [False, False, 0, None])  # type: ignore[attr-defined]
            queries, self.queries = self.queries, []
            for reply, op in queries:
                reply.send(getattr(self, "do_" + op)())
        if self.parked:  # type: ignore[attr-defined]
            self.recall()

    def loan_gone(self, ref: ActorRef) -> bool:
        """The process of ``ref`` died: if it had the lease, the lock is
        free again, with owner_died if its board says it held it."""
        loan = self.loan
        if loan is None or loan.ref != ref:
            return False
        held, data = board_read(loan.board, loan.slot, loan.fmt if loan.data_out else None)
        self.end_loan(loan, data, held)
        if held:
            self.owner_died = True
            log.warning("%s was held by pid %d, which died: released (the next acquirer "
                        "sees owner_died=True)", self.describe(), loan.pid)  # type: ignore[attr-defined]
        return True

    def do_loan(self) -> list[Any] | None:
        """[pid, held, leases granted so far] of the process the lock is
        lent to (held: it said it holds it past its grace), or None (for
        tests and statistics)."""
        loan = self.loan
        return None if loan is None else [loan.pid, loan.held is not None, self.epochs]
