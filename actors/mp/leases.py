"""Lock leases, the holder's side: a lock that stays with this process.

A lock's server (``actors.mp.lockserver.LockServer``) grants a Lock or an RLock
to a process that reads its inbox on a thread of its own (the main
program, an ``actors.mp.Process``) as a *lease*: after the release the
lock stays here, free, and the next acquire and release in this process
are local (a ``threading.Lock`` and a count, no message), until the server
*recalls* the lease because another process (or another thread of this
one) asked for the lock::

    holder (this process)              server                 other process
      acquire/release: local    <--- ("mp.lease" recall) <---  acquire (parked)
      next release: give_back   ---> frees, grants FIFO  --->  granted (a lease)

The recall arrives on the reading thread (:func:`recall`), which decides
under the lease's ``state`` lock; local use takes only ``hold`` (a recall
gives back a lease whose ``hold`` it can take, so never one in use):

* the lock is free here: the lease goes back at once;
* it is held, and the lease was granted less than :data:`QUANTUM` ago: a
  *grace* (``GRACE``): this process goes on taking the lock locally until
  the quantum ends, so a process in a burst of short critical sections is
  not recalled on every release (two processes alternating would
  otherwise pay four messages per acquisition). At the quantum's end (a
  release after it, an acquire after it, or the keeper thread) the lease
  goes back, or, if the lock is held then, the server is told so
  (``lease_held``) and the release that follows gives it back (``FINAL``).
  It goes back before the quantum's end once the keeper finds the lock
  free and not released since its last look (:class:`Keeper`).
  So another process waits at most the quantum plus the messages, and
  its turn is FIFO among the waiters: this process, if it wants the lock
  again, queues like anyone else;
* it is held and the quantum is over: ``lease_held`` at once, then
  ``FINAL``.

The deadlock detector hears of a holder only through ``lease_held``: the
server reports a lock wait's edge to the holder only once the holder said
it holds the lock past its grace, so a lease that is merely kept (and
would be given back at the next recall) is never an edge.

A Value's number travels with its own lock's lease (``Lease.box``): read
and written here without a lock. Another process's read or write of it
calls it back at once (a "data" recall; the lock's lease stays), and this
process's next read asks for it again (``fetch``): lent once more, unless
others are waiting for it.

Death. Whether the lock is held is also written in this process's *board*
(``actors.mp.board``), and so is a leased Value's number with the number
of its lend: when a lease holder dies, the server reads its slot. Held:
the lock is released and the next acquirer sees ``owner_died``, as
without leases; merely leased: the lock is free. The number counts if it
is of the lend the server had out (else it never arrived, and the
server's stands).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Any

from actors.mp import board, context

__all__ = ["FINAL", "GRACE", "QUANTUM", "Lease", "lease_of", "recall"]

QUANTUM = 0.005  # seconds a fresh lease is kept under recall while in use
LOOK = 0.0005    # in a grace, the keeper looks this often whether it is still in use
GRACE, FINAL = 1, 2

log = logging.getLogger("actors.mp")
_now = time.monotonic
_ident = threading.get_ident


class Lease:
    """This process's side of one lock's lease (one per lock and process,
    shared by every handle on it here).

    ``hold`` is locked while the lock is held here; ``state`` guards the
    lease's coming and going. Lock order: a thread that blocks on ``hold``
    may hold ``state`` only while installing a grant (nothing else holds
    ``hold`` then but a thread that lets go of it at once); every other
    take of ``hold`` under ``state`` does not wait.
    """

    __slots__ = ("hold", "state", "uid", "epoch", "count", "owner", "recalled", "deadline",
                 "server", "slot", "at", "flag", "fmt", "box", "cell", "lend", "used")

    def __init__(self, uid: int) -> None:
        self.hold = threading.Lock()
        self.state = threading.Lock()
        self.uid = uid
        self.epoch = 0        # the lease this process has (0: none)
        self.count = 0        # an RLock's recursion count while held here
        self.owner = 0        # the thread that holds it (0: free here)
        self.recalled = 0     # 0, GRACE or FINAL
        self.deadline = 0.0   # the end of the grace
        self.used = 0.0       # the last release in a grace (the keeper's clue)
        self.server: Any = None
        self.slot = -1
        self.at = 0           # this lock's offset in the board
        self.flag: Any = bytearray(1)  # its held byte there (once the board is open)
        self.fmt: str | None = None  # a Value's struct format: its number travels too
        # A leased Value's number, while it is here: [number], else empty.
        # Only a thread holding ``state`` takes it away (``box.pop()``), so a
        # write (``box[0] = new``, which fails on an empty list) either
        # lands before the number leaves, and goes with it, or fails, and
        # goes by message; no lock is taken to read or write it.
        self.box: list[Any] = []
        self.cell: Any = None  # the number's place in the board
        self.lend: Any = None  # and which lend of it the board holds

    # -- local use (any thread; the fast paths are in actors.mp.locks) ---------------
    def keep(self, count: int) -> bool:
        """Holding ``hold`` under a recall (or a lease gone meanwhile):
        True if the grace lets this thread keep it, else the lease goes
        back (if it is still here) and ``hold`` is let go."""
        if not self.epoch:  # gone meanwhile (no state: see class doc)
            self.hold.release()
            return False
        with self.state:
            if self.epoch and (not self.recalled or
                               (self.recalled == GRACE and _now() < self.deadline)):
                self.owner, self.count = _ident(), count
                self.flag[0] = 1
                return True
            message = self.surrender(False) if self.epoch else None
            self.hold.release()
        send(self, message)
        return False

    def let_go(self) -> None:
        """After a release under a recall: give the lease back, unless the
        grace goes on or another thread here took the lock meanwhile."""
        with self.state:
            if not self.epoch or not self.recalled:
                return
            if self.recalled == GRACE and _now() < self.deadline:
                return
            if not self.hold.acquire(False):
                return  # taken here again: its release gives it back
            message = self.surrender(False)
            self.hold.release()
        send(self, message)

    def released(self) -> None:
        """A release here under a recall: in the grace the keeper hears the
        lock is still in use; past it, the lease goes back."""
        now = _now()
        if self.recalled == GRACE and now < self.deadline:
            self.used = now
        else:
            self.let_go()

    def mine(self) -> int:
        if self.epoch and self.owner == _ident():
            return self.count or 1
        return 0

    # -- the lease comes and goes --------------------------------------------------
    def granted(self, future: Any, count: int, tid: int) -> None:
        """An acquire's answer (on the reading thread, before any recall
        that follows it, and again on the acquiring thread: the first
        installs): a lease is now here, held by ``tid``."""
        if future.cancelled() or future.exception() is not None:
            return
        answer = future.result()
        if type(answer) is not list or not answer[0] or not answer[2]:
            return
        with self.state:
            if getattr(future, "kept", False):
                return
            future.kept = True
            if not self.hold.acquire(timeout=10.0):  # see class doc
                log.error("actors.mp: lease of lock #%s: installed while held here", self.uid)
            self.epoch, self.owner, self.count = answer[2], tid, count
            self.recalled = 0
            self.deadline = _now() + QUANTUM
            self.flag[0] = 1
            if answer[3] is not None and self.fmt is not None:
                self.install(*answer[3])  # [number, lend]

    def surrender(self, held: bool) -> tuple[Any, ...]:
        """Under ``state``: the lease leaves; the message that says so."""
        epoch, self.epoch, self.recalled = self.epoch, 0, 0
        self.owner = self.count = 0
        box = self.box
        data = box.pop() if box else None
        self.flag[0] = 0
        return ("give_back", epoch, held, data)

    def install(self, number: Any, lend: int) -> None:
        """Under ``state``: a Value's number is here, lent by the server as
        ``lend``. The board says which lend its number is of: a holder that
        dies before this one is installed leaves the server's number be."""
        if self.cell is None:
            self.cell = board.view(self.at + 8, self.at + 16).cast(self.fmt[1:])
            self.lend = board.view(self.at + 4, self.at + 8).cast("I")
        self.cell[0] = number
        self.lend[0] = lend
        self.box = [number]  # (the last box was emptied when the number left)

    def fetched(self, future: Any, epoch: int) -> None:
        """The answer to a read of a Value's number by a lease holder that
        had given it back (a "data" recall): [number, lend]; lent (lend >
        0), it is here again (installed as ``granted`` does, once, before
        any recall that follows)."""
        if future.cancelled() or future.exception() is not None:
            return
        answer = future.result()
        if not answer[1]:
            return
        with self.state:
            if getattr(future, "kept", False):
                return
            future.kept = True
            if self.epoch == epoch and not self.box:  # else it went back meanwhile: the
                self.install(answer[0], answer[1])    # server has it (give_back)

    def held_message(self) -> tuple[Any, ...]:
        self.recalled = FINAL
        return ("lease_held", self.epoch, self.owner, context.member_of(self.owner),
                self.count or 1)

    def request(self, server: Any) -> list[Any] | None:
        """What an acquire sent to the server says about leasing: [address,
        board file, slot, Value format], or None (no lease for this process)."""
        runtime = context.runtime()
        if self.slot < 0:
            slot = board.take_slot() if context.can_lend() else None
            if slot is None:
                return None
            self.slot, self.at = slot, slot * board.SLOT
            self.flag = board.view(self.at, self.at + 1)
        runtime.extensions["mp.lease"] = recall
        self.server = server
        return [runtime.address, board.path(), self.slot, self.fmt]


def send(lease: Lease, message: tuple[Any, ...] | None) -> None:
    if message is not None:
        context.bind(lease.server).tell(message)


# -- this process's leases, its board, and the keeper ------------------------------------

_leases: dict[int, Lease] = {}
_leases_lock = threading.Lock()


def lease_of(uid: int) -> Lease:
    """This process's lease record of lock ``uid`` (made on first use)."""
    lease = _leases.get(uid)
    if lease is None:
        with _leases_lock:
            lease = _leases.setdefault(uid, Lease(uid))
    return lease


def recall(runtime: Any, args: list[Any]) -> None:
    """The server wants lease ``args[1]`` of lock ``args[0]`` back
    (``args[2]``: "recall", "release" (a release by another process) or
    "data" (a Value's number is wanted there)); see module doc."""
    uid, epoch, kind, server = args
    lease = _leases.get(uid)
    if lease is None:
        return
    message: tuple[Any, ...] | None = None
    with lease.state:
        if lease.epoch != epoch:
            return  # given back already
        if kind == "data":
            box = lease.box
            if box:  # a write racing this one lands before the pop or fails
                message = ("data_back", epoch, box.pop())
        elif kind == "release":  # another process releases the Lock held here
            held = lease.hold.locked()
            message = lease.surrender(held)
            if held:
                lease.hold.release()
        elif not lease.recalled:
            # say it first: a release from now on sees it (see let_go)
            lease.recalled = GRACE if _now() < lease.deadline else FINAL
            if lease.hold.acquire(False):  # free here: back at once
                message = lease.surrender(False)
                lease.hold.release()
            elif lease.recalled == FINAL:
                message = lease.held_message()
            else:
                _keeper.add(lease)
    if message is not None:
        runtime.tell(server, message)


def give_back_all() -> None:
    """At exit: every lease whose lock is free here goes back now (a lock
    still held stays so: its server finds it held when this process is
    gone). Nothing is left for the keeper or a recall to send while the
    process exits (a frame cut short by the exit would spoil a pipe)."""
    for lease in list(_leases.values()):
        message = None
        with lease.state:
            if lease.epoch and lease.hold.acquire(False):
                message = lease.surrender(False)
                lease.hold.release()
        try:
            send(lease, message)
        except Exception:  # noqa: BLE001 - the server is gone: nothing to give back
            pass


class Keeper:
    """Ends graces that no release or acquire ends (one thread per
    process, started the first time a grace begins): at the deadline, or
    before it once the lock is free and was not released since the last
    look (every :data:`LOOK`): this process stopped using it (a program
    whose loop ended, say), so the waiter need not wait the quantum out.
    (While the program's thread runs, this one gets the GIL only every
    switch interval, so a busy loop is looked at rarely.)"""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.heap: list[tuple[float, int, Lease, int, float]] = []
        self.thread: threading.Thread | None = None
        self.n = 0

    def add(self, lease: Lease) -> None:
        """Under ``lease.state``: look at it after LOOK."""
        with self.cond:
            self.n += 1
            at = min(lease.deadline, _now() + LOOK)
            heapq.heappush(self.heap, (at, self.n, lease, lease.epoch, lease.used))
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="actors-mp-leases",
                                               daemon=True)
                self.thread.start()
            self.cond.notify()

    def run(self) -> None:
        while True:
            with self.cond:
                while not self.heap or self.heap[0][0] > _now():
                    self.cond.wait(None if not self.heap else self.heap[0][0] - _now())
                _, _, lease, epoch, used = heapq.heappop(self.heap)
            message = None
            with lease.state:
                if lease.epoch == epoch and lease.recalled == GRACE:
                    over = _now() >= lease.deadline
                    if lease.hold.acquire(False):
                        if over or lease.used == used:
                            message = lease.surrender(False)
                        else:
                            self.add(lease)  # in use: look again
                        lease.hold.release()
                    elif over:
                        message = lease.held_message()
                    else:
                        self.add(lease)
            try:
                send(lease, message)
            except Exception:  # noqa: BLE001 - the server is gone: nothing to give back
                pass


_keeper = Keeper()
context.EXIT_HOOKS.append(give_back_all)
