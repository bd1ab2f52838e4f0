"""Lock, RLock, Semaphore and BoundedSemaphore: the handles and the actor
that serves them (``LockServer``), with the signatures and semantics of
``multiprocessing.synchronize``.

A Lock or RLock is lent to the process that takes it, when that process
can be recalled at any time (``actors.mp.leases``, ``actors.mp.lending``):
then its acquire and release are local until another process asks. The
local paths are in ``Lock`` and ``RLock``; everything else is a message to
the server."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from actors.mp import context
from actors.mp.current import current_process
from actors.mp.leases import GRACE, lease_of
from actors.mp.lending import Lending
from actors.mp.primitive import CANCELLED, Handle, LocalCounts, Primitive, check_timeout, log
from actors.ref import ActorRef

_ident = threading.get_ident
_now = time.monotonic

__all__ = ["BoundedSemaphore", "Lock", "LockServer", "RLock", "SemLock", "Semaphore",
           "value_lock"]


class LockServer(Lending, Primitive):
    """Lock, RLock, Semaphore and BoundedSemaphore.

    ``holders`` maps (pid, thread) to [count, ref, member]. A Lock may be
    released by anyone (as ``multiprocessing.Lock``); an RLock only by its
    owner. A Lock or RLock acquired by a process that can take a lease is
    *lent* (``loan``; see ``actors.mp.leases``): it stays with that process
    until another asks for it.
    """

    def __init__(self, kind: str, value: int = 1, name: str = "") -> None:
        super().__init__(name)
        self.kind = kind          # "lock", "rlock", "semaphore", "bounded"
        self.label = {"lock": "Lock", "rlock": "RLock", "semaphore": "Semaphore",
                      "bounded": "BoundedSemaphore"}[kind]
        self.value = value        # free permits
        self.maximum = value
        self.holders: dict[tuple[int, int], list[Any]] = {}
        self.owner_died = False   # the next acquisition takes over a dead holder's lock
        self.init_lending()

    def do_acquire(self, token: int, who: list[Any], count: int, lease: list[Any] | None,
                   block: bool) -> list[Any]:
        key = (who[0], who[1])
        if self.kind == "rlock" and key in self.holders:
            self.holders[key][0] += count
            return [True, False, 0, None]
        if self.value > 0 and not self.parked:
            return self.grant(key, who, count, lease)
        if not block and (self.loan is None or self.loan.held is not None):
            return [False, False, 0, None]
        self.watch_owner(who[2])
        # Bound (the deadlock detector follows it to the holder) for locks:
        # semaphores are often released by others, as signals.
        self.park(token, {"key": key, "ref": who[2], "who": who, "count": count,
                          "lease": lease, "nowait": not block},
                  bound=block and self.kind in ("lock", "rlock"))
        if self.loan is not None:
            self.recall()
        self.sync_holds()
        return None  # answered later

    def grant(self, key: tuple[int, int], who: list[Any], count: int,
              lease: list[Any] | None) -> list[Any]:
        self.value -= 1
        died, self.owner_died = self.owner_died, False
        self.watch_owner(who[2])
        if lease is not None and self.kind in ("lock", "rlock"):
            return self.lend(who, lease, died)
        entry = self.holders.get(key)
        if entry is None:
            self.holders[key] = [count if self.kind == "rlock" else 1, who[2], who[3]]
        else:
            entry[0] += 1
        return [True, died, 0, None]

    def do_release(self, who: list[Any], told: bool = False) -> int | None:
        key, pid = (who[0], who[1]), who[0]
        error: Exception | None = None
        if self.loan is not None and self.kind == "lock":
            self.release_lent(told)
            return None
        if self.kind == "rlock":
            entry = self.holders.get(key)
            if entry is None:
                error = RuntimeError("cannot release un-acquired lock")
            else:
                entry[0] -= 1
                if entry[0] > 0:
                    return entry[0]
                del self.holders[key]
                self.value += 1
        elif self.value >= self.maximum and self.kind != "semaphore":
            error = ValueError("semaphore or lock released too many times")
        else:
            self.value += 1
            owner = key if key in self.holders else next(iter(self.holders), None)
            if owner is not None:
                entry = self.holders[owner]
                entry[0] -= 1
                if entry[0] <= 0:
                    del self.holders[owner]
        if error is not None:
            if told:  # nobody waits for the answer: say it here
                log.error("%s: release by pid %s: %s", self.describe(), pid, error)
                return 0
            raise error
        self.wake()
        return 0

    def do_release_all(self, who: list[Any]) -> int | None:
        """Condition.wait: release an RLock completely; the count it had."""
        key = (who[0], who[1])
        entry = self.holders.get(key)
        if self.kind != "rlock":
            return None if self.do_release(who) is None else 1
        if entry is None:
            raise AssertionError("attempt to release recursive lock not owned by thread")
        del self.holders[key]
        self.value += 1
        self.wake()
        return entry[0]

    def wake(self) -> None:
        while self.value > 0 and self.parked:
            token = next(iter(self.parked))
            info = self.parked[token][1]
            self.answer(token, self.grant(info["key"], info["who"], info["count"],
                                          info["lease"]))
        self.settle()
        self.sync_holds()

    def cancelled(self, token: int, info: Any) -> None:
        self.sync_holds()

    def sync_holds(self) -> None:
        """Tell the deadlock detector who the parked acquirers wait for: the
        holder, when there is exactly one (with several, any of them may
        release, and the graph has no OR edges). A lease holder counts
        once it said it holds the lock past its grace."""
        members = {entry[2]: key[0] for key, entry in self.holders.items()}
        loan = self.loan
        if loan is not None and loan.held is not None:
            members[loan.held[1]] = loan.pid
        wanted = None
        if self.parked and len(members) == 1:
            wanted = next(iter(members))
        for member in [m for m in self.holds if m != wanted]:
            self.end_hold(self.holds.pop(member))
        if wanted is not None and wanted not in self.holds:
            self.holds[wanted] = self.begin_hold(wanted, f"held by pid {members[wanted]}")

    def owner_gone(self, ref: ActorRef) -> None:
        super().owner_gone(ref)
        freed = [key for key, (_, owner, _) in self.holders.items() if owner == ref]
        for key in freed:
            count = self.holders.pop(key)[0]
            self.value += 1 if self.kind == "rlock" else count
            self.owner_died = True
            log.warning("%s was held by pid %d, which died: released (the next acquirer "
                        "sees owner_died=True)", self.describe(), key[0])
        if self.loan_gone(ref) or freed:
            self.wake()

    def do_state(self) -> list[Any] | None:
        """[free permits, holders as [pid, tid, count], initial permits]."""
        if self.unclear("state"):
            return None
        loan = self.loan
        holders = [[k[0], k[1], v[0]] for k, v in self.holders.items()]
        if loan is not None and loan.held is not None:
            holders.append([loan.pid, loan.held[0], loan.held[2]])
        return [self.value, holders, self.maximum]

    def do_get_value(self) -> int | None:
        return None if self.unclear("get_value") else self.value


class SemLock(Handle):
    """Common to Lock, RLock and the semaphores."""

    _kind = "lock"
    _recursive = False
    _local_fields = ("_held", "owner_died", "_lease")

    def __init__(self, value: int = 1, *, ctx: Any = None) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        super().__init__(self._spawn(LockServer, self._kind, value))

    def _init_local(self) -> None:
        self._held = LocalCounts()
        #: True when the last acquisition in this process took over from a
        #: holder that died holding it (the lock was released for it).
        self.owner_died = False
        # a Lock or RLock may be lent to this process (actors.mp.leases)
        self._lease = lease_of(self._ref.uid) if self._kind in ("lock", "rlock") else None

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        return self._acquire(check_timeout(block, timeout), 1)

    def _reacquire(self, count: int) -> bool:
        """Condition.wait: take the lock back with the count it had."""
        lease = self._lease
        if lease is not None and lease.epoch and lease.hold.acquire(False) and lease.keep(count):
            self.owner_died = False
            return True
        return self._acquire(None, count)

    def _acquire(self, wait: float | None, count: int) -> bool:
        """Acquire at the server (``count``: an RLock's recursion, given
        back after Condition.wait)."""
        lease = self._lease
        request = lease.request(self._ref) if lease is not None else None
        on_answer = None
        if request is not None:
            tid = threading.get_ident()
            on_answer = lambda future: lease.granted(future, count, tid)  # noqa: E731
        answer = self._wait(("acquire", context.token(), context.me(), count, request,
                             wait != 0), wait, on_answer)
        if answer == CANCELLED or not answer[0]:
            return False
        self.owner_died = bool(answer[1])
        if not answer[2]:  # held, not lent: the server keeps the count
            self._held.add(count if self._recursive else 1)
        return True

    def release(self) -> None:
        if self._held.take():
            # held by this thread, so the release is valid: no need to wait
            self._tell(("release", context.me(), True))
        else:
            self._ask(("release", context.me()))

    def _release_all(self) -> int:
        """Condition.wait: let go of the lock completely; the count held."""
        lease = self._lease
        if lease is not None and lease.epoch and lease.owner == _ident():
            count = lease.count if self._recursive else 1
            lease.owner = lease.count = 0
            lease.flag[0] = 0
            lease.hold.release()
            if lease.recalled:  # (a wait follows: not "in use")
                lease.let_go()
            return count
        count = self._held.clear_mine()
        self._ask(("release_all", context.me()))
        return count

    __enter__ = acquire

    def __exit__(self, *args: Any) -> None:
        self.release()

    def _is_mine(self) -> bool:
        lease = self._lease
        return self._held.mine() > 0 or (lease is not None and lease.mine() > 0)

    def get_value(self) -> int:
        lease = self._lease
        if lease is not None and lease.epoch:
            return 0 if lease.hold.locked() else 1
        return self._ask(("get_value",))

    def _state(self) -> list[Any]:
        lease = self._lease
        if lease is not None and lease.epoch:
            with lease.state:
                if lease.epoch:
                    held = lease.hold.locked()
                    holders = [[os.getpid(), lease.owner, lease.count or 1]] if held else []
                    return [0 if held else 1, holders, 1]
        return self._ask(("state",))

    def __repr__(self) -> str:
        """As the standard library's: ``<Lock(owner=None)>``, ``<RLock(None, 0)>``,
        ``<Semaphore(value=1)>``, ``<BoundedSemaphore(value=1, maxvalue=1)>``."""
        if (proxied := self._proxy_repr()) is not None:
            return proxied
        cls = type(self).__name__
        try:
            value, holders, maximum = self._state()
        except Exception:
            return f"<{cls}(unknown)>" if isinstance(self, Lock) else \
                f"<{cls}(unknown, unknown)>" if isinstance(self, RLock) else f"<{cls}(value=unknown)>"
        if isinstance(self, (Lock, RLock)):
            count: Any = 0
            if not holders:
                owner = "None"
            elif holders[0][0] == os.getpid() and holders[0][1] == threading.get_ident():
                owner, count = current_process().name, holders[0][2]
                if threading.current_thread().name != "MainThread":
                    owner += "|" + threading.current_thread().name
            else:
                owner = "SomeOtherThread" if holders[0][0] == os.getpid() else "SomeOtherProcess"
                count = "nonzero"
            return f"<{cls}(owner={owner})>" if isinstance(self, Lock) else \
                f"<{cls}({owner}, {count})>"
        if isinstance(self, BoundedSemaphore):
            return f"<{cls}(value={value}, maxvalue={maximum})>"
        return f"<{cls}(value={value})>"


class Lock(SemLock):
    """A non-recursive lock, as ``multiprocessing.Lock``: any process may
    release it; releasing it unlocked raises ValueError."""

    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__(1)

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        lease = self._lease
        if lease.epoch:  # lent here: local (actors.mp.leases)
            if lease.hold.acquire(False):
                if lease.epoch and (not lease.recalled or (lease.recalled == GRACE
                                                           and _now() < lease.deadline)):
                    lease.owner = _ident()
                    lease.flag[0] = 1
                    if self.owner_died:
                        self.owner_died = False
                    return True
                if lease.keep(1):
                    self.owner_died = False
                    return True
            elif not block:
                return False  # held by another thread here
        return self._acquire(check_timeout(block, timeout), 1)

    __enter__ = acquire

    def release(self) -> None:
        lease = self._lease
        if lease.epoch:
            if not lease.hold.locked():
                raise ValueError("semaphore or lock released too many times")
            lease.owner = 0
            lease.flag[0] = 0
            lease.hold.release()
            if lease.recalled:
                lease.released()
            return
        super().release()

    def __exit__(self, *args: Any) -> None:
        self.release()


class RLock(SemLock):
    """A recursive lock: its owner (process and thread) may acquire it again;
    only the owner may release it."""

    _kind = "rlock"
    _recursive = True

    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__(1)

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        lease = self._lease
        if lease.epoch:  # lent here: local (actors.mp.leases)
            if lease.hold.acquire(False):
                if lease.epoch and (not lease.recalled or (lease.recalled == GRACE
                                                           and _now() < lease.deadline)):
                    lease.owner, lease.count = _ident(), 1
                    lease.flag[0] = 1
                    if self.owner_died:
                        self.owner_died = False
                    return True
                if lease.keep(1):
                    self.owner_died = False
                    return True
            elif lease.owner == _ident():  # held by this thread: once more
                lease.count += 1
                return True
            elif not block:
                return False  # held by another thread here
        return self._acquire(check_timeout(block, timeout), 1)

    __enter__ = acquire

    def release(self) -> None:
        self.__exit__()

    def __exit__(self, kind: object = None, error: object = None, tb: object = None) -> None:
        """The release (``release()`` calls it), inline for ``with`` (a
        Value's counter loop)."""
        lease = self._lease
        if lease.epoch and lease.owner == _ident():
            lease.count -= 1
            if lease.count:
                return
            lease.owner = 0
            lease.flag[0] = 0
            lease.hold.release()
            if lease.recalled:
                lease.released()
            return
        if not self._held.take():  # as multiprocessing.RLock says it
            raise AssertionError("attempt to release recursive lock not owned by thread")
        self._tell(("release", context.me(), True))


class Semaphore(SemLock):
    _kind = "semaphore"

    def __init__(self, value: int = 1, *, ctx: Any = None) -> None:
        super().__init__(value)

    def release(self) -> None:
        self._held.take()
        self._ask(("release", context.me()))


class BoundedSemaphore(Semaphore):
    _kind = "bounded"


def value_lock(ref: Any) -> RLock:
    """The RLock of a Value or Array (served by the value's own actor)."""
    lock = RLock.__new__(RLock)
    Handle.__init__(lock, ref)
    return lock
