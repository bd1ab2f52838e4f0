"""Lock, RLock, Semaphore and BoundedSemaphore: the handles and the actor
that serves them (``LockServer``), with the signatures and semantics of
``multiprocessing.synchronize``."""

from __future__ import annotations

import os
import threading
from typing import Any

from actors.mp import context
from actors.mp.current import current_process
from actors.mp.primitive import CANCELLED, Handle, LocalCounts, Primitive, check_timeout, log
from actors.ref import ActorRef

__all__ = ["BoundedSemaphore", "Lock", "LockServer", "RLock", "SemLock", "Semaphore",
           "value_lock"]


class LockServer(Primitive):
    """Lock, RLock, Semaphore and BoundedSemaphore.

    ``holders`` maps (pid, thread) to [count, ref]. A Lock may be released
    by anyone (as ``multiprocessing.Lock``); an RLock only by its owner.
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

    def do_acquire(self, token: int, who: list[Any], count: int, block: bool) -> list[Any]:
        key = (who[0], who[1])
        if self.kind == "rlock" and key in self.holders:
            self.holders[key][0] += count
            return [True, False]
        if self.value > 0 and not self.parked:
            return self.grant(key, who, count)
        if not block:
            return [False, False]
        self.watch_owner(who[2])
        # Bound (the deadlock detector follows it to the holder) for locks:
        # semaphores are often released by others, as signals.
        self.park(token, {"key": key, "ref": who[2], "who": who, "count": count},
                  bound=self.kind in ("lock", "rlock"))
        self.sync_holds()
        return None  # answered later

    def grant(self, key: tuple[int, int], who: list[Any], count: int) -> list[Any]:
        self.value -= 1
        entry = self.holders.get(key)
        if entry is None:
            self.holders[key] = [count if self.kind == "rlock" else 1, who[2], who[3]]
        else:
            entry[0] += 1
        self.watch_owner(who[2])
        died, self.owner_died = self.owner_died, False
        return [True, died]

    def do_release(self, who: list[Any], told: bool = False) -> int:
        key, pid = (who[0], who[1]), who[0]
        error: Exception | None = None
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

    def do_release_all(self, who: list[Any]) -> int:
        """Condition.wait: release an RLock completely; the count it had."""
        key = (who[0], who[1])
        entry = self.holders.get(key)
        if self.kind != "rlock":
            self.do_release(who)
            return 1
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
            self.answer(token, self.grant(info["key"], info["who"], info["count"]))
        self.sync_holds()

    def cancelled(self, token: int, info: Any) -> None:
        self.sync_holds()

    def sync_holds(self) -> None:
        """Tell the deadlock detector who the parked acquirers wait for: the
        holder, when there is exactly one (with several, any of them may
        release, and the graph has no OR edges)."""
        members = {entry[2] for entry in self.holders.values()}
        wanted = None
        if self.parked and len(members) == 1:
            wanted = next(iter(members))
        for member in [m for m in self.holds if m != wanted]:
            self.end_hold(self.holds.pop(member))
        if wanted is not None and wanted not in self.holds:
            pid = next(iter(self.holders))[0]
            self.holds[wanted] = self.begin_hold(wanted, f"held by pid {pid}")

    def owner_gone(self, ref: ActorRef) -> None:
        super().owner_gone(ref)
        freed = [key for key, (_, owner, _) in self.holders.items() if owner == ref]
        for key in freed:
            count = self.holders.pop(key)[0]
            self.value += 1 if self.kind == "rlock" else count
            self.owner_died = True
            log.warning("%s was held by pid %d, which died: released (the next acquirer "
                        "sees owner_died=True)", self.describe(), key[0])
        if freed:
            self.wake()

    def do_state(self) -> list[Any]:
        """[free permits, holders as [pid, tid, count], initial permits]."""
        return [self.value, [[k[0], k[1], v[0]] for k, v in self.holders.items()],
                self.maximum]

    def do_get_value(self) -> int:
        return self.value


class SemLock(Handle):
    """Common to Lock, RLock and the semaphores."""

    _kind = "lock"
    _local_fields = ("_held", "owner_died")

    def __init__(self, value: int = 1, *, ctx: Any = None) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        super().__init__(self._spawn(LockServer, self._kind, value))

    def _init_local(self) -> None:
        self._held = LocalCounts()
        #: True when the last acquisition in this process took over from a
        #: holder that died holding it (the lock was released for it).
        self.owner_died = False

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        wait = check_timeout(block, timeout)
        answer = self._wait(("acquire", context.token(), context.me(), 1, wait != 0), wait)
        if answer == CANCELLED or not answer[0]:
            return False
        self.owner_died = bool(answer[1])
        self._held.add()
        return True

    def release(self) -> None:
        if self._held.take():
            # held by this thread, so the release is valid: no need to wait
            self._tell(("release", context.me(), True))
        else:
            self._ask(("release", context.me()))

    __enter__ = acquire

    def __exit__(self, *args: Any) -> None:
        self.release()

    def _is_mine(self) -> bool:
        return self._held.mine() > 0

    def get_value(self) -> int:
        return self._ask(("get_value",))

    def __repr__(self) -> str:
        """As the standard library's: ``<Lock(owner=None)>``, ``<RLock(None, 0)>``,
        ``<Semaphore(value=1)>``, ``<BoundedSemaphore(value=1, maxvalue=1)>``."""
        if (proxied := self._proxy_repr()) is not None:
            return proxied
        cls = type(self).__name__
        try:
            value, holders, maximum = self._ask(("state",))
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


class RLock(SemLock):
    """A recursive lock: its owner (process and thread) may acquire it again;
    only the owner may release it."""

    _kind = "rlock"

    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__(1)

    def release(self) -> None:
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
