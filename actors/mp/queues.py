"""Queue, JoinableQueue and SimpleQueue as handles on a QueueServer actor.

A put to an unbounded queue is a tell: it returns at once, like the standard
library's (whose feeder thread sends later), and the items of one producer
arrive in order. Unlike the standard library, an item that cannot be pickled
fails at the ``put`` that was given it, not later in a feeder thread.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
import weakref
from typing import Any

from actors.mp import context
from actors.mp.handles import CANCELLED, Handle, check_timeout, unpack
from actors.mp.servers import EMPTY, QueueServer

__all__ = ["JoinableQueue", "Queue", "SimpleQueue"]


class Queue(Handle):
    _joinable = False
    _local_fields = ("_closed", "_buffer", "_lock", "_handle", "_want")

    def __init__(self, maxsize: int = 0, *, ctx: Any = None) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool):
            raise TypeError(f"maxsize must be an int, got {maxsize!r}")
        super().__init__(self._spawn(QueueServer, maxsize, self._joinable))
        self._maxsize = maxsize if maxsize > 0 else 0

    def _init_local(self) -> None:
        self._closed = False
        # items lent to this process (see QueueServer), still packed
        self._buffer: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._handle = context.token()
        self._want = 1  # how many to ask for: doubles while the queue has plenty
        _handles[self._handle] = self

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        self._check_open()
        item = context.pack(obj)
        if not self._maxsize:
            context.bind(self._ref)._runtime.tell(self._ref, ("put", item))
            return
        wait = check_timeout(block, timeout)
        answer = self._wait(("put_wait", context.token(), item, context.me(), wait != 0),
                            wait)
        if answer is not True:
            raise queue.Full

    def put_nowait(self, obj: Any) -> None:
        self.put(obj, False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self._check_open()
        wait = check_timeout(block, timeout)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            with self._lock:
                if self._buffer:
                    return unpack(self._buffer.popleft())
            address = None
            if context.can_lend():
                runtime = context.runtime()
                runtime.extensions["mp.recall"] = recall  # we may be recalled
                address = runtime.address
            message = ("get", context.token(), context.me(), self._want, self._handle, address,
                       wait != 0)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            answer = self._wait(message, left, self._received)
            if answer == EMPTY or answer == CANCELLED:
                raise queue.Empty

    def _received(self, future: Any) -> None:
        """On the reading thread, before any recall that follows: keep the
        items (a recall then finds them here)."""
        if future.cancelled() or future.exception() is not None:
            return
        answer = future.result()
        if type(answer) is list:
            with self._lock:
                self._buffer.extend(answer)
            if len(answer) >= self._want:
                self._want = min(self._want * 2, 256)
            else:
                self._want = max(1, len(answer))

    def _give_back(self, recalled: bool = False) -> None:
        with self._lock:
            items = list(self._buffer)
            self._buffer.clear()
        if items or recalled:  # a recall is always answered, if only with []
            self._tell(("give_back", self._handle, items))

    def get_nowait(self) -> Any:
        return self.get(False)

    def qsize(self) -> int:
        self._give_back()
        return self._ask(("qsize",))

    def empty(self) -> bool:
        with self._lock:
            if self._buffer:
                return False
        return self._ask(("qsize",)) == 0

    def full(self) -> bool:
        self._give_back()
        size, maxsize = self._ask(("state",))
        return bool(maxsize) and size >= maxsize

    def close(self) -> None:
        """This process will put no more (further puts and gets here raise
        ValueError); what it put is still delivered, and what was lent to it
        goes back."""
        self._closed = True
        self._give_back()

    def join_thread(self) -> None:
        """Wait until every item this process put has reached the queue."""
        self._ask(("sync",))

    def cancel_join_thread(self) -> None:
        """Nothing to cancel: puts never keep a process from exiting."""

    def __del__(self) -> None:
        try:
            if self._buffer:
                self._give_back()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} #{self._ref.uid}>"


# This process's queue handles, by handle number (for recalls).
_handles: weakref.WeakValueDictionary[int, Queue] = weakref.WeakValueDictionary()


def recall(runtime: Any, args: list[Any]) -> None:
    """A queue wants back what it lent to one of our handles."""
    handle = _handles.get(args[0])
    if handle is not None:
        handle._give_back(recalled=True)
    else:  # collected: it gave its items back as it went
        runtime.tell(args[1], ("give_back", args[0], []))


def give_back_all() -> None:
    """At exit: every handle returns what it was lent."""
    for handle in list(_handles.values()):
        try:
            handle._give_back()
        except Exception:
            pass




class JoinableQueue(Queue):
    _joinable = True

    def task_done(self) -> None:
        self._ask(("task_done",))

    def join(self) -> None:
        self._wait(("join", context.token(), context.me()), None)


class SimpleQueue(Handle):
    """An unbounded queue with get, put, empty and close."""

    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__(self._spawn(QueueServer, 0, False))

    def put(self, obj: Any) -> None:
        context.bind(self._ref)._runtime.tell(self._ref, ("put", context.pack(obj)))

    def get(self) -> Any:
        return unpack(self._wait(("get", context.token(), context.me(), 1, 0, None, True),
                                 None)[0])

    def empty(self) -> bool:
        return self._ask(("qsize",)) == 0

    def close(self) -> None:
        """Nothing to release (kept for the standard library's API)."""

    def __repr__(self) -> str:
        return f"<SimpleQueue #{self._ref.uid}>"


context.EXIT_HOOKS.append(give_back_all)
