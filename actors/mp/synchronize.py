"""Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier:
handles on the actors of ``actors.mp.servers``, with the signatures and
semantics of ``multiprocessing.synchronize``."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from actors.mp import context
from actors.mp.handles import CANCELLED, Handle, LocalCounts, check_timeout
from actors.mp.servers import BarrierServer, ConditionServer, EventServer, LockServer

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "Semaphore"]


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
        try:
            value, holders = self._ask(("state",))
        except Exception:
            return f"<{type(self).__name__}(unknown)>"
        if type(self) in (Lock, RLock):
            if not holders:
                return f"<{type(self).__name__}(owner=None)>"
            pid, _, count = holders[0]
            owner = "MainProcess" if pid == os.getpid() and context.running_host() is None \
                else f"pid {pid}"
            suffix = f", count={count}" if type(self) is RLock else ""
            return f"<{type(self).__name__}(owner={owner}{suffix})>"
        return f"<{type(self).__name__}(value={value})>"


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


class Event(Handle):
    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__(self._spawn(EventServer))

    def is_set(self) -> bool:
        return self._ask(("is_set",))

    def set(self) -> None:
        self._ask(("set",))

    def clear(self) -> None:
        self._ask(("clear",))

    def wait(self, timeout: float | None = None) -> bool:
        wait = check_timeout(True, timeout)
        answer = self._wait(("wait", context.token(), context.me(), wait != 0), wait)
        return answer is True


class Condition(Handle):
    """A condition variable over a Lock or RLock (an RLock by default)."""

    _local_fields = ()

    def __init__(self, lock: Lock | RLock | None = None, *, ctx: Any = None) -> None:
        if lock is None:
            lock = RLock()
        elif not isinstance(lock, SemLock):
            raise TypeError(f"Condition() takes an actors.mp Lock or RLock, got {lock!r}")
        super().__init__(self._spawn(ConditionServer))
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("acquire", None)
        state.pop("release", None)
        return state

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *args: Any) -> None:
        self._lock.__exit__(*args)

    def wait(self, timeout: float | None = None) -> bool:
        if not self._lock._is_mine():
            raise AssertionError("must acquire() condition before using wait()")
        wait = check_timeout(True, timeout)
        who = context.me()
        token = context.token()
        cond = context.bind(self._ref)
        # Register as a sleeper before letting go of the lock: a notify by
        # whoever takes the lock next then finds us (both actors share one
        # host and one inbox, so the order holds).
        future = cond._runtime.ask(cond, ("sleep", token, who))
        lock = self._lock
        count = lock._held.clear_mine()
        lock._ask(("release_all", who))
        notified = True
        try:
            if wait is None:
                future.result()
            else:
                if wait > 0:
                    cond._runtime.wait(future, wait, track=False)
                if not future.done():
                    cond.ask(("cancel", token))
                notified = future.result() is True
        finally:
            answer = lock._wait(("acquire", context.token(), who, count, True), None)
            lock.owner_died = bool(answer[1])
            lock._held.add(count if isinstance(lock, RLock) else 1)
        return notified

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        result = predicate()
        if result:
            return result
        deadline = None if timeout is None else _now() + timeout
        while not result:
            left = None
            if deadline is not None:
                left = deadline - _now()
                if left <= 0:
                    break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        if not self._lock._is_mine():
            raise AssertionError("lock is not owned")
        self._ask(("notify", n))

    def notify_all(self) -> None:
        if not self._lock._is_mine():
            raise AssertionError("lock is not owned")
        self._ask(("notify_all",))

    def __repr__(self) -> str:
        return f"<Condition({self._lock!r})>"


def _now() -> float:
    import time
    return time.monotonic()


class Barrier(Handle):
    """As ``threading.Barrier`` across processes: ``wait()`` returns the
    arrival index (0 to parties-1); the last arrival runs ``action``."""

    def __init__(self, parties: int, action: Callable[[], Any] | None = None,
                 timeout: float | None = None, *, ctx: Any = None) -> None:
        if not isinstance(parties, int) or parties < 1:
            raise ValueError("parties must be >= 1")
        super().__init__(self._spawn(BarrierServer, parties, action is not None))
        self._parties = parties
        self._action = action
        self._timeout = timeout

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            timeout = self._timeout
        wait = check_timeout(True, timeout)
        token = context.token()
        answer = self._wait(("wait", token, context.me()), wait)
        if answer == CANCELLED:
            raise threading.BrokenBarrierError
        kind, index = answer
        if kind == "action":
            try:
                self._action()  # type: ignore[misc]
            except BaseException:
                self._ask(("action_done", False))
                raise
            self._ask(("action_done", True))
        return index

    def abort(self) -> None:
        self._ask(("abort",))

    def reset(self) -> None:
        self._ask(("reset",))

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def n_waiting(self) -> int:
        return self._ask(("state",))[0]

    @property
    def broken(self) -> bool:
        return self._ask(("state",))[1]

    def __repr__(self) -> str:
        return f"<Barrier parties={self._parties}>"

