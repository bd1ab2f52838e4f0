"""Relief: reading a host's inbox while its main thread runs a handler.

A host's handlers all run on its main thread, which is also what reads its
inbox. A handler that waits for an ask with ``result()`` or ``await`` keeps
reading (``MessageLoop.pump_until``). But a handler may wait otherwise:

    futures = [ref.ask_async(x) for ref in refs]
    concurrent.futures.wait(futures, timeout=3)      # or as_completed(...)

or hand work to threads of its own (a ``ThreadPoolExecutor``) that ask and
wait. Nobody would read the replies: the handler would wait for ever (or
for its whole timeout). So in a host, while the main thread is not polling,
another thread may take the reading (the loop's ``_io`` lock) for a while:

- a thread of the process that waits on an ask's ``result()`` reads until
  its own reply has come (:meth:`Relief.read_until`);
- a future waited on with ``concurrent.futures.wait`` / ``as_completed``
  (which reach into the future's ``_waiters``, see ``ActorFuture``) wakes
  the relief thread, which reads until every such future is done
  (:meth:`Relief.watch`).

A reliever completes replies only; every other envelope it reads (tells,
asks, service operations) is set aside, in the order read, and the main
thread takes them first when it polls again. The main thread takes the
reading back at once when it wants it (``io_wanted`` and the wake pipe).

Not seen by the deadlock detector: a wait inside ``concurrent.futures.wait``
is not an edge of the wait-for graph (``hang_timeout`` still catches it).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import deque
from typing import Any

__all__ = ["Relief"]

SLICE = 0.05  # a reliever polls this long at a time, then looks around


class Relief:
    """The relief readers of one host's loop (see module doc)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._watched: set[Any] = set()
        self._lock = threading.Lock()
        self._armed = threading.Event()
        self._thread: threading.Thread | None = None
        self.closed = False

    def read_until(self, future: Any, deadline: float | None) -> None:
        """Read (when the main thread does not) until ``future`` is done."""
        loop = self.loop
        backlog: deque[bytes] = deque()
        while not future.done() and not self.closed:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            step = SLICE if left is None else min(SLICE, left)
            if not loop._io.acquire(False):  # the main thread reads: let it
                _wait(future, step)
                continue
            try:
                while not future.done() and not loop.io_wanted and not self.closed:
                    loop.poll_into(backlog, step, busy=False)  # (home's busy wait)
                    while backlog:
                        loop.on_frame(backlog.popleft(), relief=True)
                    loop.outboxes.flush_all()
                    if deadline is not None and time.monotonic() >= deadline:
                        break
            finally:
                loop._io.release()
                if loop.aside:
                    loop.wake()  # the main thread has envelopes to take

    def watch(self, future: Any) -> None:
        """``future`` is waited on by other means than our own: read for it."""
        if future.done() or self.closed:
            return
        with self._lock:
            self._watched.add(future)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="actors-relief",
                                                daemon=True)
                self._thread.start()
        self._armed.set()

    def _run(self) -> None:
        while not self.closed:
            self._armed.wait()
            self._armed.clear()
            while not self.closed:
                with self._lock:
                    self._watched = {f for f in self._watched if not f.done()}
                    pending = next(iter(self._watched), None)
                if pending is None:
                    break
                try:
                    self.read_until(pending, None)
                except Exception:  # the process is closing under us
                    return

    def close(self) -> None:
        self.closed = True
        self._armed.set()


def _wait(future: Any, timeout: float) -> None:
    try:
        concurrent.futures.Future.exception(future, timeout)
    except (TimeoutError, concurrent.futures.CancelledError):
        pass
