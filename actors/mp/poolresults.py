"""What a Pool's calls return: AsyncResult (``apply_async``, ``map_async``)
and the iterators of ``imap`` and ``imap_unordered``. The pool puts each
unit's results in with ``_put`` (on its reading thread) and says when a
job is done through ``_job_done``."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["ApplyResult", "AsyncResult", "IMapIterator", "MapResult", "TimeoutError"]

TimeoutError = __import__("multiprocessing").TimeoutError  # noqa: A001 (the stdlib's name)


class Jobs(Protocol):
    """What a result needs from its pool."""

    _callbacks: Any

    def _job_done(self, job: Any) -> None: ...


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

    def _put(self, offset: int, size: int, ok: bool, value: Any) -> None:
        if self._event.is_set():
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
        if not self._event.is_set():
            self._error = error
            self._finish()

    def _finish(self) -> None:
        self._event.set()
        if self._error is None:
            if self._callback is not None:
                self._pool._callbacks.put((self._callback, self._value()))
        elif self._error_callback is not None:
            self._pool._callbacks.put((self._error_callback, self._error))
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

    def __init__(self, pool: Jobs, length: int, ordered: bool) -> None:
        self._pool = pool
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
                        raise StopIteration
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
                        raise StopIteration
                if self._aborted is not None:
                    raise self._aborted
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                self._cond.wait(left)

    __next__ = next

    def __iter__(self) -> IMapIterator:
        return self
