"""Event, Condition and Barrier: the handles and the actors that serve
them, with the signatures and semantics of ``multiprocessing.synchronize``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from actors.mp import context
from actors.mp.locks import Lock, RLock, SemLock
from actors.mp.primitive import CANCELLED, Handle, Primitive, check_timeout
from actors.ref import ActorRef

__all__ = ["Barrier", "Condition", "Event"]


class EventServer(Primitive):
    label = "Event"

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.flag = False

    def do_set(self) -> None:
        self.flag = True
        for token in list(self.parked):
            self.answer(token, True)

    def do_clear(self) -> None:
        self.flag = False

    def do_is_set(self) -> bool:
        return self.flag

    def do_wait(self, token: int, who: list[Any], block: bool) -> Any:
        if self.flag or not block:
            return self.flag
        self.watch_owner(who[2])
        self.park(token, {"ref": who[2]})
        return None


class ConditionServer(Primitive):
    """The sleepers of a Condition (its lock is a LockServer of its own)."""

    label = "Condition"

    def do_sleep(self, token: int, who: list[Any]) -> None:
        self.watch_owner(who[2])
        self.park(token, {"ref": who[2]})

    def do_notify(self, n: int) -> int:
        woken = 0
        for token in list(self.parked)[:max(0, n)]:
            self.answer(token, True)
            woken += 1
        return woken

    def do_notify_all(self) -> int:
        return self.do_notify(len(self.parked))

    def do_sleepers(self) -> int:
        return len(self.parked)


class BarrierServer(Primitive):
    """A Barrier: the last of ``parties`` arrivals releases the others (after
    running the action, in its own process, as ``threading.Barrier`` does)."""

    label = "Barrier"

    def __init__(self, parties: int, has_action: bool, name: str = "") -> None:
        super().__init__(name)
        self.parties = parties
        self.has_action = has_action
        self.broken = False
        self.arrived: list[int] = []   # tokens, in arrival order
        self.releasing = False         # the last arrival runs the action

    def do_wait(self, token: int, who: list[Any]) -> Any:
        from threading import BrokenBarrierError
        ref = who[2]
        if self.broken or self.releasing:
            raise BrokenBarrierError
        index = len(self.arrived)
        if index == self.parties - 1:
            if self.has_action:
                self.releasing = True
                return ["action", index]
            self.release_all()
            return ["go", index]
        self.arrived.append(token)
        self.watch_owner(ref)
        self.park(token, {"index": index, "ref": ref})
        return None

    def release_all(self) -> None:
        for token in self.arrived:
            if token in self.parked:
                self.answer(token, ["go", self.parked[token][1]["index"]])
        self.arrived = []
        self.releasing = False

    def do_action_done(self, ok: bool) -> None:
        if ok:
            self.release_all()
        else:
            self.do_abort()

    def do_abort(self) -> None:
        from threading import BrokenBarrierError
        self.broken = True
        self.releasing = False
        for token in self.arrived:
            if token in self.parked:
                self.fail(token, BrokenBarrierError())
        self.arrived = []

    def do_reset(self) -> None:
        if self.arrived:
            self.do_abort()
        self.broken = False

    def cancelled(self, token: int, info: Any) -> None:
        # a wait that timed out breaks the barrier for everyone
        if token in self.arrived:
            self.arrived.remove(token)
        self.do_abort()

    def owner_gone(self, ref: ActorRef) -> None:
        if any(info.get("ref") == ref for _, info in self.parked.values()):
            super().owner_gone(ref)
            self.do_abort()

    def do_state(self) -> list[Any]:
        return [len(self.arrived), self.broken]


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

    def __repr__(self) -> str:
        if (proxied := self._proxy_repr()) is not None:
            return proxied
        try:
            status = "set" if self.is_set() else "unset"
        except Exception:
            status = "unknown"
        return f"<{type(self).__qualname__} at {id(self):#x} {status}>"


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
        future.busy = False  # (a sleeper waits on a notify: ActorFuture.busy)
        lock = self._lock
        count = lock._release_all()
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
            lock._reacquire(count)
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

    # The standard library's Condition counts with three semaphores, which
    # its tests read: here the sleepers are the requests parked at the
    # Condition's actor, a notify wakes them at once (nothing is "woken but
    # not yet running"), and no wake-up is ever left pending.
    @property
    def _sleeping_count(self) -> _Count:
        return _Count(lambda: self._ask(("sleepers",)))

    @property
    def _woken_count(self) -> _Count:
        return _Count(lambda: 0)

    @property
    def _wait_semaphore(self) -> _Count:
        return _Count(lambda: 0)

    def __repr__(self) -> str:
        if (proxied := self._proxy_repr()) is not None:
            return proxied
        try:
            waiters: Any = self._ask(("sleepers",))
        except Exception:
            waiters = "unknown"
        return f"<{type(self).__name__}({self._lock!r}, {waiters})>"


class _Count:
    """A count read as a semaphore's value (``get_value()``)."""

    def __init__(self, read: Callable[[], int]) -> None:
        self.get_value = read


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
        if (proxied := self._proxy_repr()) is not None:
            return proxied
        cls = type(self)
        where = f"{cls.__module__}.{cls.__qualname__} at {id(self):#x}"
        if self.broken:
            return f"<{where}: broken>"
        return f"<{where}: waiters={self.n_waiting}/{self.parties}>"
