"""Executor: ``concurrent.futures`` over an :class:`actors.mp.Pool`, as
``ProcessPoolExecutor`` is over the standard library's processes."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from actors.mp.pool import Pool

__all__ = ["Executor"]


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures`` executor over an :class:`actors.mp.Pool`:
    ``submit``, ``map``, ``shutdown``, like ``ProcessPoolExecutor``."""

    def __init__(self, max_workers: int | None = None, mp_context: Any = None,
                 initializer: Callable[..., Any] | None = None, initargs: Iterable[Any] = (),
                 *, max_tasks_per_child: int | None = None) -> None:
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._pool = Pool(max_workers, initializer, initargs, max_tasks_per_child)
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: concurrent.futures.Future = concurrent.futures.Future()

        # Running from now on: the pool gives no word of when a worker starts
        # it (so cancel() returns False, as for a running task).
        future.set_running_or_notify_cancel()

        def done(ok: bool, value: Any) -> None:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        self._pool.apply_async(fn, args, kwargs, callback=functools.partial(done, True),
                               error_callback=functools.partial(done, False))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # cancel_futures has nothing to cancel: a submitted task is running
        with self._lock:
            self._shutdown = True
        self._pool.close()
        if wait:
            self._pool.join()
        else:
            threading.Thread(target=self._pool.join, name="actors-executor-shutdown",
                             daemon=True).start()
