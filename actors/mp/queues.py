"""Queue, JoinableQueue and SimpleQueue as handles on a QueueServer actor.

A put to an unbounded queue is a tell: it returns at once, like the standard
library's (whose feeder thread sends later), and the items of one producer
arrive in order. Unlike the standard library, an item that cannot be pickled
fails at the ``put`` that was given it, not later in a feeder thread.
"""

from __future__ import annotations

import queue
from typing import Any

from actors.mp import context
from actors.mp.handles import CANCELLED, Handle, check_timeout, unpack
from actors.mp.servers import EMPTY, QueueServer

__all__ = ["JoinableQueue", "Queue", "SimpleQueue"]


class Queue(Handle):
    _joinable = False
    _local_fields = ("_closed",)

    def __init__(self, maxsize: int = 0, *, ctx: Any = None) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool):
            raise TypeError(f"maxsize must be an int, got {maxsize!r}")
        super().__init__(self._spawn(QueueServer, maxsize, self._joinable))
        self._maxsize = maxsize if maxsize > 0 else 0

    def _init_local(self) -> None:
        self._closed = False

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
        answer = self._wait(("get", context.token(), context.me(), wait != 0), wait)
        if answer == EMPTY or answer == CANCELLED:
            raise queue.Empty
        return unpack(answer[0])

    def get_nowait(self) -> Any:
        return self.get(False)

    def qsize(self) -> int:
        return self._ask(("qsize",))

    def empty(self) -> bool:
        return self._ask(("qsize",)) == 0

    def full(self) -> bool:
        size, maxsize = self._ask(("state",))
        return bool(maxsize) and size >= maxsize

    def close(self) -> None:
        """This process will put no more (further puts and gets here raise
        ValueError); what it put is still delivered."""
        self._closed = True

    def join_thread(self) -> None:
        """Wait until every item this process put has reached the queue."""
        self._ask(("sync",))

    def cancel_join_thread(self) -> None:
        """Nothing to cancel: puts never keep a process from exiting."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} #{self._ref.uid}>"


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
        return unpack(self._wait(("get", context.token(), context.me(), True), None)[0])

    def empty(self) -> bool:
        return self._ask(("qsize",)) == 0

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<SimpleQueue #{self._ref.uid}>"
