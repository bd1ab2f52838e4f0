"""What a Pool's calls return: AsyncResult (``apply_async``, ``map_async``)
and the iterators of ``imap`` and ``imap_unordered``. The pool puts each
unit's results in with ``_put`` (on its reading thread) and says when a
job is done through ``_job_done``."""

from __future__ import annotations

import collections
import queue
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

__all__ = ["ApplyResult", "AsyncResult", "Callbacks", "IMapIterator", "MapResult", "TimeoutError",
           "take_items"]

TimeoutError = __import__("multiprocessing").TimeoutError  # noqa: A001 (the stdlib's name)


class Jobs(Protocol):
    """What a result needs from its pool."""

    _callbacks: Callbacks

    def _job_done(self, job: Any) -> None: ...


class Callbacks:
    """The thread that runs a pool's callbacks, in the order results come;
    a result is ready once its callback has run. After :meth:`stop`,
    results are ready at once and callbacks no longer run."""

    def __init__(self) -> None:
        self.items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.closed = False
        self.thread = threading.Thread(target=self.run, name="actors-pool-callbacks",
                                       daemon=True)
        self.thread.start()

    def put(self, callback: Any, arg: Any, done: Any) -> None:
        self.items.put((callback, arg, done))
        if self.closed:  # its thread has stopped, or stops now (and drains)
            done()

    def run(self) -> None:
        while True:
            item = self.items.get()
            if item is None:
                self.closed = True  # what comes later is done at once
                while True:
                    try:
                        item = self.items.get_nowait()
                    except queue.Empty:
                        return
                    if item is not None:
                        item[2]()
            callback, arg, done = item
            try:
                callback(arg)
            except Exception:
                traceback.print_exc()
            finally:
                done()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.items.put(None)
            if threading.current_thread() is not self.thread:
                self.thread.join(5.0)


class AsyncResult:
    """The result of ``apply_async`` / ``map_async``."""

    def __init__(self, pool: Jobs, callback: Any, error_callback: Any, length: int,
                 single: bool) -> None:
        self._pool = pool
        self._callback = callback
        self._error_callback = error_callback
        self._single = single
        self._values: list[Any] = [None] * length
        self._left = length
        self._error: BaseException | None = None
        self._event = threading.Event()
        self._finished = False

    def _put(self, offset: int, size: int, ok: bool, value: Any) -> None:
        if self._finished:
            return
        if not ok:
            if self._error is None:
                self._error = value
            self._finish()
            return
        if self._single:
            self._values[0] = value
            self._left = 0
        else:
            self._values[offset:offset + len(value)] = value
            self._left -= len(value)
        if self._left <= 0:
            self._finish()

    def _abort(self, error: BaseException) -> None:
        if not self._finished:
            self._error = error
            self._finish()

    def _finish(self) -> None:
        """Ready once its callback has run, as in the standard library (a
        ``wait()`` that returns sees what the callback did)."""
        self._finished = True
        if self._error is None:
            callback, arg = self._callback, self._value() if self._callback else None
        else:
            callback, arg = self._error_callback, self._error
        if callback is None:
            self._event.set()
        else:
            self._pool._callbacks.put(callback, arg, self._event.set)
        self._pool._job_done(self)

    def _value(self) -> Any:
        return self._values[0] if self._single else self._values

    def ready(self) -> bool:
        return self._event.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._error is None

    def wait(self, timeout: float | None = None) -> None:
        self._event.wait(timeout)

    def get(self, timeout: float | None = None) -> Any:
        if not self._event.wait(timeout):
            raise TimeoutError
        if self._error is not None:
            raise self._error
        return self._value()

    def __class_getitem__(cls, item: Any) -> Any:
        return cls


ApplyResult = MapResult = AsyncResult


SKIP = (False, None)  # a position of a failed chunk after its first


class IMapIterator(Iterator[Any]):
    """The results of ``imap`` (in order) or ``imap_unordered``."""

    def __init__(self, pool: Jobs, length: int, ordered: bool,
                 failure: BaseException | None = None) -> None:
        self._pool = pool
        self._failure = failure  # raised after the last result (the iterable broke)
        self._length = length
        self._ordered = ordered
        self._cond = threading.Condition(threading.Lock())
        self._items: dict[int, tuple[bool, Any]] = {}
        self._arrived: collections.deque[tuple[bool, Any]] = collections.deque()
        self._next = 0       # next position to yield (in order)
        self._received = 0   # results (or failed chunks' positions) in
        self._aborted: BaseException | None = None
        if length == 0:
            pool._job_done(self)

    def _put(self, offset: int, size: int, ok: bool, value: Any) -> None:
        with self._cond:
            if ok:
                entries = [(True, v) for v in value]
            else:  # a failed chunk yields its error once; its other results never come
                entries = [(False, value)] + [SKIP] * (size - 1)
            if self._ordered:
                for i, entry in enumerate(entries):
                    self._items[offset + i] = entry
            else:
                self._arrived.extend(e for e in entries if e is not SKIP)
            self._received += size
            self._cond.notify_all()
            done = self._received >= self._length
        if done:
            self._pool._job_done(self)

    def _abort(self, error: BaseException) -> None:
        with self._cond:
            self._aborted = error
            self._cond.notify_all()

    def next(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._ordered:
                    while self._items.get(self._next) is SKIP:
                        del self._items[self._next]
                        self._next += 1
                    if self._next >= self._length:
                        self._end()
                    entry = self._items.pop(self._next, None)
                    if entry is not None:
                        self._next += 1
                        if entry[0]:
                            return entry[1]
                        raise entry[1]
                else:
                    if self._arrived:
                        ok, value = self._arrived.popleft()
                        if ok:
                            return value
                        raise value
                    if self._received >= self._length:
                        self._end()
                if self._aborted is not None:
                    raise self._aborted
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                self._cond.wait(left)

    __next__ = next

    def _end(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure
        raise StopIteration

    def __iter__(self) -> IMapIterator:
        return self


def take_items(iterable: Iterable[Any], chunksize: Any) -> tuple[list[Any], BaseException | None]:
    """The items of an iterable, and the exception that ended it early. As
    the standard library's, the iterator of imap raises it after the results
    of the whole chunks before it (the items of a broken chunk are dropped)."""
    items: list[Any] = []
    try:
        for item in iterable:
            items.append(item)
    except Exception as e:
        if isinstance(chunksize, int) and chunksize > 1:
            del items[len(items) - len(items) % chunksize:]
        return items, e
    return items, None
