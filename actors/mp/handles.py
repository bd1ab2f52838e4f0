"""What user code holds: a handle on a primitive's actor, and the one way
it asks (with a timeout that withdraws the request, see ``servers``)."""

from __future__ import annotations

import threading
from typing import Any

from actors.mp import context
from actors.mp.context import unpack
from actors.mp.servers import CANCELLED
from actors.ref import ActorRef

# A primitive per process this one told something (address -> ref): before
# exiting, it makes sure those messages arrived (see sync_told).
TOLD: dict[str, ActorRef] = {}


def sync_told() -> None:
    """Wait until everything this process told a primitive has arrived (a
    lock released just before exiting must not look held by the dead)."""
    for ref in list(TOLD.values()):
        try:
            ref.ask(("sync",), timeout=5.0)
        except Exception:
            pass


class Handle:
    """A primitive's handle: its actor's ref, plus state of this process
    only (dropped when the handle is pickled to another process)."""

    _server: type = object
    _local_fields: tuple[str, ...] = ()

    def __init__(self, ref: ActorRef) -> None:
        self._ref = ref
        self._init_local()

    def _init_local(self) -> None:
        """Per-process state (reset in every process the handle reaches)."""

    def _spawn(self, server: type, *args: Any) -> ActorRef:
        """Start this primitive's actor, named after its class (a deadlock
        report reads "Lock.4242.7 ... held by ...")."""
        return context.spawn(server, *args, name=context.unique_name(type(self).__name__))

    def _tell(self, message: tuple[Any, ...]) -> None:
        ref = context.bind(self._ref)
        TOLD[ref.address] = ref
        ref.tell(message)

    def _ask(self, message: tuple[Any, ...]) -> Any:
        return context.bind(self._ref).ask(message)

    def _wait(self, message: tuple[Any, ...], timeout: float | None,
              on_answer: Any = None) -> Any:
        """Ask for something that may be parked; ``message[1]`` is its
        token. Past ``timeout`` the request is withdrawn and CANCELLED
        returned, unless the answer came first (then it is returned). A
        request whose last field is False (``block=False``) is answered at
        once and never withdrawn."""
        ref = context.bind(self._ref)
        runtime = ref._runtime
        future = runtime.ask(ref, message, on_answer)
        if timeout is None or (timeout == 0 and message[-1] is False):
            return future.result()  # forever, or a request that does not wait
        if timeout > 0:  # a timed wait ends by itself: not a deadlock edge
            runtime.wait(future, timeout, track=False)
        if not future.done():
            runtime.ask(ref, ("cancel", message[1])).result()
        # The answer (or CANCELLED) left before the cancel's answer did.
        return future.result()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._local_fields}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_local()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._ref == self._ref  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._ref)


def check_timeout(block: bool, timeout: float | None) -> float | None:
    """The wait a (block, timeout) pair means: None forever, 0 no wait."""
    if not block:
        return 0.0
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be a number or None, got {timeout!r}")
    return max(0.0, float(timeout))


class LocalCounts:
    """Per-thread counts of what this process holds (lock ownership)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        tid = threading.get_ident()
        with self.lock:
            self.counts[tid] = self.counts.get(tid, 0) + n

    def take(self) -> bool:
        """One held by this thread, now released; False if it held none."""
        tid = threading.get_ident()
        with self.lock:
            n = self.counts.get(tid, 0)
            if n <= 0:
                return False
            if n == 1:
                del self.counts[tid]
            else:
                self.counts[tid] = n - 1
            return True

    def mine(self) -> int:
        return self.counts.get(threading.get_ident(), 0)

    def clear_mine(self) -> int:
        with self.lock:
            return self.counts.pop(threading.get_ident(), 0)


__all__ = ["CANCELLED", "Handle", "LocalCounts", "check_timeout", "unpack"]
