"""Lock leases, the holder's side: a lock that stays with this process.

A lock's server (``actors.mp.locks.LockServer``) grants a Lock or an RLock
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
under the lease's lock, so recall and local use never race:

* the lock is free here: the lease goes back at once;
* it is held, and the lease was granted less than :data:`QUANTUM` ago: a
  *grace* (``GRACE``): this process goes on taking the lock locally until
  the quantum ends, so a process in a burst of short critical sections is
  not recalled on every release (two processes alternating would
  otherwise pay four messages per acquisition). At the quantum's end (a
  release after it, an acquire after it, or the keeper thread) the lease
  goes back, or, if the lock is held then, the server is told so
  (``lease_held``) and the release that follows gives it back (``FINAL``).
  So another process waits at most the quantum plus the messages, and
  its turn is FIFO among the waiters: this process, if it wants the lock
  again, queues like anyone else;
* it is held and the quantum is over: ``lease_held`` at once, then
  ``FINAL``.

The deadlock detector hears of a holder only through ``lease_held``: the
server reports a lock wait's edge to the holder only once the holder said
it holds the lock past its grace, so a lease that is merely kept (and
would be given back at the next recall) is never an edge.

Death. Whether the lock is held is also written in this process's *board*
(a small file in the node's private folder, one slot per lock), and so is
a leased Value's number: when a lease holder dies, the server reads its
slot. Held: the lock is released and the next acquirer sees
``owner_died``, as without leases; merely leased: the lock is free.
"""

from __future__ import annotations

import heapq
import mmap
import os
import struct
import threading
import time
from typing import Any

from actors.mp import context

__all__ = ["FINAL", "GRACE", "QUANTUM", "Lease", "board_read", "lease_of", "recall"]

QUANTUM = 0.005  # seconds a fresh lease is kept under recall while in use
GRACE, FINAL = 1, 2
SLOT = 16        # board bytes per lock: [0] held, [8:16] a leased Value's number
SLOTS = 4096     # locks per process that can be leased (the others go by messages)

_now = time.monotonic
_ident = threading.get_ident


class Lease:
    """This process's side of one lock's lease (one per lock and process,
    shared by every handle on it here)."""

    __slots__ = ("lock", "uid", "epoch", "count", "owner", "recalled", "deadline",
                 "server", "slot", "fmt", "data", "data_here")

    def __init__(self, uid: int) -> None:
        self.lock = threading.Lock()
        self.uid = uid
        self.epoch = 0        # the lease this process has (0: none)
        self.count = 0        # held: the recursion count (0: free here)
        self.owner = 0        # the thread that holds it
        self.recalled = 0     # 0, GRACE or FINAL
        self.deadline = 0.0   # the end of the grace
        self.server: Any = None
        self.slot = -1
        self.fmt: str | None = None  # a Value's struct format: its number travels too
        self.data: Any = None
        self.data_here = False

    # -- local use (any thread) ----------------------------------------------------
    def take(self, recursive: bool, block: bool, count: int = 1) -> bool | None:
        """Acquire locally: True, False (held here, block=False) or None
        (ask the server)."""
        tid = _ident()
        with self.lock:
            if not self.epoch:
                return None
            if self.count:
                if recursive and self.owner == tid:
                    self.count += 1
                    return True
                return None if block else False
            if not self.recalled or (self.recalled == GRACE and _now() < self.deadline):
                self.count = count
                self.owner = tid
                _board[self.slot * SLOT] = 1
                return True
            message = self.surrender(False)
        send(self, message)
        return None

    def put(self, recursive: bool) -> bool:
        """Release locally; False if the lease is not here (ask the server)."""
        with self.lock:
            if not self.epoch:
                return False
            if not self.count:
                if recursive:
                    raise AssertionError("attempt to release recursive lock not owned by thread")
                raise ValueError("semaphore or lock released too many times")
            if recursive and self.owner != _ident():
                raise AssertionError("attempt to release recursive lock not owned by thread")
            self.count -= 1
            if self.count:
                return True
            _board[self.slot * SLOT] = 0
            if not self.recalled or (self.recalled == GRACE and _now() < self.deadline):
                return True
            message = self.surrender(False)
        send(self, message)
        return True

    def put_all(self) -> int:
        """Condition.wait: release completely; the count it had (0: the
        lease is not here, or not held by this thread)."""
        with self.lock:
            if not self.epoch or not self.count or self.owner != _ident():
                return 0
            count, self.count = self.count, 0
            _board[self.slot * SLOT] = 0
            if not self.recalled or (self.recalled == GRACE and _now() < self.deadline):
                return count
            message = self.surrender(False)
        send(self, message)
        return count

    def mine(self) -> int:
        return self.count if self.epoch and self.owner == _ident() else 0

    def set_data(self, value: Any) -> bool:
        """A leased Value's new number, locally; False if it is not here."""
        with self.lock:
            if not self.data_here:
                return False
            self.data = value
            struct.pack_into(self.fmt, _board, self.slot * SLOT + 8, value)  # type: ignore[arg-type]
            return True

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
        with self.lock:
            if getattr(future, "kept", False):
                return
            future.kept = True
            self.epoch, self.count, self.owner = answer[2], count, tid
            self.recalled = 0
            self.deadline = _now() + QUANTUM
            _board[self.slot * SLOT] = 1
            if answer[3] is not None and self.fmt is not None:
                self.data, self.data_here = answer[3], True
                struct.pack_into(self.fmt, _board, self.slot * SLOT + 8, answer[3])

    def surrender(self, held: bool) -> tuple[Any, ...]:
        """Under ``self.lock``: the lease leaves; the message that says so."""
        epoch, self.epoch, self.recalled, self.count = self.epoch, 0, 0, 0
        data = self.data if self.data_here else None
        self.data_here = False
        _board[self.slot * SLOT] = 0
        return ("give_back", epoch, held, data)

    def held_message(self) -> tuple[Any, ...]:
        self.recalled = FINAL
        return ("lease_held", self.epoch, self.owner, context.member_of(self.owner), self.count)

    def request(self, server: Any) -> list[Any] | None:
        """What an acquire sent to the server says about leasing: [address,
        board file, slot, Value format], or None (no lease for this process)."""
        if self.slot < 0:
            if not context.can_lend() or not _open_board():
                return None
            global _next_slot
            if _next_slot >= SLOTS:
                return None
            self.slot, _next_slot = _next_slot, _next_slot + 1
        runtime = context.runtime()
        runtime.extensions["mp.lease"] = recall
        self.server = server
        return [runtime.address, _board_path, self.slot, self.fmt]


def send(lease: Lease, message: tuple[Any, ...] | None) -> None:
    if message is not None:
        context.bind(lease.server).tell(message)


# -- this process's leases, its board, and the keeper ------------------------------------

_leases: dict[int, Lease] = {}
_leases_lock = threading.Lock()
_board: Any = bytearray(SLOT)  # until the board is open: slot -1 writes land here
_board_path = ""
_next_slot = 0


def lease_of(uid: int) -> Lease:
    """This process's lease record of lock ``uid`` (made on first use)."""
    lease = _leases.get(uid)
    if lease is None:
        with _leases_lock:
            lease = _leases.setdefault(uid, Lease(uid))
    return lease


def _open_board() -> bool:
    global _board, _board_path
    with _leases_lock:
        if _board_path:
            return True
        try:
            path = os.path.join(context.rundir(), f"leases.{os.getpid()}")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.ftruncate(fd, SLOT * SLOTS)
                board = mmap.mmap(fd, SLOT * SLOTS)
            finally:
                os.close(fd)
        except OSError:
            return False
        _board, _board_path = board, path
        return True


def board_read(path: str, slot: int, fmt: str | None) -> tuple[bool, Any]:
    """(held, Value number or None) from a dead holder's board."""
    try:
        with open(path, "rb") as f:
            f.seek(slot * SLOT)
            raw = f.read(SLOT)
    except OSError:
        return True, None  # unknown: say held (the next acquirer is warned)
    if len(raw) < SLOT:
        return True, None
    value = struct.unpack_from(fmt, raw, 8)[0] if fmt else None
    return raw[0] != 0, value


def recall(runtime: Any, args: list[Any]) -> None:
    """The server wants lease ``args[1]`` of lock ``args[0]`` back
    (``args[2]``: "recall", "release" (a release by another process) or
    "data" (a Value's number is wanted there)); see module doc."""
    uid, epoch, kind, server = args
    lease = _leases.get(uid)
    if lease is None:
        return
    message: tuple[Any, ...] | None = None
    with lease.lock:
        if lease.epoch != epoch:
            return  # given back already
        if kind == "data":
            if lease.data_here:
                lease.data_here = False
                message = ("data_back", epoch, lease.data)
        elif kind == "release":
            message = lease.surrender(lease.count > 0)
        elif not lease.count:
            message = lease.surrender(False)
        elif lease.recalled:
            return
        elif _now() >= lease.deadline:
            message = lease.held_message()
        else:
            lease.recalled = GRACE
            _keeper.add(lease)
    if message is not None:
        runtime.tell(server, message)


class Keeper:
    """Ends graces that no release or acquire ends (one thread per
    process, started the first time a grace begins)."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.heap: list[tuple[float, int, Lease, int]] = []
        self.thread: threading.Thread | None = None
        self.n = 0

    def add(self, lease: Lease) -> None:
        with self.cond:
            self.n += 1
            heapq.heappush(self.heap, (lease.deadline, self.n, lease, lease.epoch))
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
                _, _, lease, epoch = heapq.heappop(self.heap)
            message = None
            with lease.lock:
                if lease.epoch == epoch and lease.recalled == GRACE:
                    message = lease.held_message() if lease.count else lease.surrender(False)
            try:
                send(lease, message)
            except Exception:  # noqa: BLE001 - the server is gone: nothing to give back
                pass


_keeper = Keeper()
