"""Worker threads of the node: calls that may block run here, never on the loop.

Not ``ThreadPoolExecutor``: Python joins those at exit *before* atexit
handlers run, and the spawner thread's end fires ``PR_SET_PDEATHSIG`` (see
``actors.boot``); these threads live until :meth:`Workers.shutdown`.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Workers"]


class Workers:
    """Daemon threads running submitted calls; they live until ``shutdown``
    (the spawner's thread must outlive every child it started). The pool
    grows when every thread is busy: a spawn from ``on_start`` holds a thread
    while it waits for a nested spawn, and a fixed pool would starve."""

    def __init__(self, name: str, size: int, grow: bool = False) -> None:
        self._name = name
        self._grow = grow
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        for _ in range(size):
            self._start_thread()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._threads.append(thread)
        self._idle += 1
        thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._grow and self._idle == 0:
                self._start_thread()
            self._idle -= 1
        self._queue.put((future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as e:
                        future.set_exception(e)
            finally:
                with self._lock:
                    self._idle += 1

    def busy(self) -> int:
        """Calls submitted and not finished."""
        with self._lock:
            return len(self._threads) - self._idle

    def shutdown(self) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(5.0)
