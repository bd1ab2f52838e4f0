"""Lock, RLock, Semaphore and BoundedSemaphore: the handles programs hold,
with the signatures and semantics of ``multiprocessing.synchronize``
(the actor that serves them is ``actors.mp.lockserver.LockServer``).

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
from actors.mp.lockserver import LockServer
from actors.mp.primitive import CANCELLED, Handle, LocalCounts, check_timeout

_ident = threading.get_ident
_now = time.monotonic

__all__ = ["BoundedSemaphore", "Lock", "RLock", "SemLock", "Semaphore",
           "value_lock"]


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
