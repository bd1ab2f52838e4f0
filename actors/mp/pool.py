"""Pool and Executor: tasks sent to supervised worker actors.

A Pool is a :class:`Supervisor` (hosted with the primitives) whose children
are ``processes`` PoolWorker actors, each in a process of its own, restarted
(``permanent``) whenever one dies. The dispatcher lives in the process that
made the pool: it sends *batches* of work units to each worker as asks, at
most two batches in flight per worker, and the reply carries the batch's
results. A unit is one task (``apply_async``) or one chunk (``map``).

A worker that dies (SIGKILL, ``os._exit``, a segfault) fails its in-flight
asks at once with ActorDeadError. The oldest in-flight batch of that worker
is the one that was running; the batches queued behind it are sent again
as they were. The running batch's tasks (a chunk split into single items)
are each sent again alone; a task that was alone when its worker died
counts an attempt, and a second one fails it with :class:`WorkerLost`. So
only the task that kills its worker fails; the others complete. Meanwhile the supervisor has started a new worker under the
same ref. A pool therefore never hangs on a dead worker.
"""

from __future__ import annotations

import collections
import functools
import itertools
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from actors.errors import ActorDeadError, ActorError, WorkerLost
from actors.mp import context
from actors.mp.poolresults import (ApplyResult, AsyncResult, Callbacks, IMapIterator, MapResult,
                                   TimeoutError, take_items)
from actors.mp.poolworker import (APPLY, MAP, STARMAP, MaybeEncodingError, PoolWorker,
                                  RemoteTraceback, Unit,
                                  WorkerProcess)
from actors.supervisor import ChildSpec, Supervisor
from transport.codec import Pickled

__all__ = ["CLOSE", "INIT", "RUN", "TERMINATE", "ApplyResult", "AsyncResult", "IMapIterator",
           "MapResult", "MaybeEncodingError", "Pool", "PoolWorker", "RemoteTraceback",
           "TimeoutError"]

INIT, RUN, CLOSE, TERMINATE = "INIT", "RUN", "CLOSE", "TERMINATE"  # a pool's states
WINDOW = 2        # batches in flight per worker, while batches come back fast:
FAST = 0.01       # within this many seconds
PAUSE = 0.02      # a worker between two incarnations is tried again this much later
MAX_BATCH = 64    # units per batch


class Slot:
    """One worker as the dispatcher sees it."""

    def __init__(self, name: str, ref: Any) -> None:
        self.name = name
        self.ref = ref
        self.inflight: collections.deque[list[Unit]] = collections.deque()
        self.done = 0           # units completed by this incarnation
        self.retiring = False   # maxtasksperchild reached: replaced before more work
        self.window = 1         # batches in flight: WINDOW while they come back fast
        self.sent: dict[int, float] = {}  # id of a batch -> when it left
        self.spared: set[int] = set()     # batches queued behind one that killed it
        self.paused_until = 0.0           # refused (restarting): nothing sent until then


class Pool:
    """As ``multiprocessing.Pool`` (see the module doc for worker deaths)."""

    def __init__(self, processes: int | None = None, initializer: Callable[..., Any] | None = None,
                 initargs: Iterable[Any] = (), maxtasksperchild: int | None = None,
                 context_: Any = None, **kwargs: Any) -> None:
        if processes is None:
            processes = os.cpu_count() or 1
        if not isinstance(processes, int) or processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int)
                                             or maxtasksperchild <= 0):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        unknown = set(kwargs) - {"context"}
        if unknown:
            raise TypeError(f"Pool() got unexpected keyword arguments {sorted(unknown)}")
        self._processes = processes
        self._maxtasks = maxtasksperchild
        setup = Pickled((initializer, tuple(initargs)))
        setup.dump()
        from actors.mp.current import current_process
        parent = [current_process().name, os.getpid()]
        specs = [ChildSpec(f"worker-{i}", PoolWorker, args=(i + 1, setup, parent),
                           restart="permanent", shutdown=2.0)
                 for i in range(processes)]
        self._supervisor = context.spawn(
            Supervisor, specs, kwargs={"strategy": "one_for_one",
                                       "max_restarts": 1_000_000, "max_seconds": 1.0})
        infos = self._supervisor.proxy().which_children()
        self._slots = [Slot(info.name, info.ref) for info in infos]
        self._lock = threading.RLock()
        self._queue: collections.deque[Unit] = collections.deque()
        self._ids = itertools.count(1)
        self._jobs: set[Any] = set()
        self._state = RUN
        self._idle = threading.Condition(self._lock)
        self._callbacks = Callbacks()

    # -- submitting ------------------------------------------------------------
    def _check_running(self) -> None:
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _submit(self, job: Any, units: list[tuple[Any, int, Any, int]]) -> None:
        with self._lock:
            self._check_running()
            self._jobs.add(job)
            for func, kind, payload, offset in units:
                self._queue.append(Unit(next(self._ids), func, kind, payload, job, offset))
            self._pump()

    def apply(self, func: Callable[..., Any], args: Iterable[Any] = (),
              kwds: dict[str, Any] | None = None) -> Any:
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func: Callable[..., Any], args: Iterable[Any] = (),
                    kwds: dict[str, Any] | None = None, callback: Any = None,
                    error_callback: Any = None) -> AsyncResult:
        job = AsyncResult(self, callback, error_callback, 1, single=True)
        self._submit(job, [(func, APPLY, (tuple(args), dict(kwds or {})), 0)])
        return job

    def _chunks(self, func: Any, iterable: Iterable[Any] | list[Any], chunksize: int | None,
                kind: int) -> tuple[int, list[tuple[Any, int, Any, int]]]:
        items = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * 4)
            if extra:
                chunksize += 1
        if not isinstance(chunksize, int) or (chunksize < 1 and items):
            raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
        return len(items), [(func, kind, items[i:i + chunksize], i)
                            for i in range(0, len(items), max(chunksize, 1))]

    def map(self, func: Callable[[Any], Any], iterable: Iterable[Any],
            chunksize: int | None = None) -> list[Any]:
        return self.map_async(func, iterable, chunksize).get()

    def map_async(self, func: Callable[[Any], Any], iterable: Iterable[Any],
                  chunksize: int | None = None, callback: Any = None,
                  error_callback: Any = None) -> AsyncResult:
        return self._map(func, iterable, chunksize, callback, error_callback, MAP)

    def starmap(self, func: Callable[..., Any], iterable: Iterable[Iterable[Any]],
                chunksize: int | None = None) -> list[Any]:
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(self, func: Callable[..., Any], iterable: Iterable[Iterable[Any]],
                      chunksize: int | None = None, callback: Any = None,
                      error_callback: Any = None) -> AsyncResult:
        return self._map(func, iterable, chunksize, callback, error_callback, STARMAP)

    def _map(self, func: Any, iterable: Iterable[Any], chunksize: int | None, callback: Any,
             error_callback: Any, kind: int) -> AsyncResult:
        self._check_running()
        length, units = self._chunks(func, iterable, chunksize, kind)
        job = AsyncResult(self, callback, error_callback, length, single=False)
        if length == 0:
            job._finish()
            return job
        self._submit(job, units)
        return job

    def imap(self, func: Callable[[Any], Any], iterable: Iterable[Any],
             chunksize: int = 1) -> IMapIterator:
        self._check_running()
        items, failure = take_items(iterable, chunksize)
        length, units = self._chunks(func, items, chunksize, MAP)
        job = IMapIterator(self, length, ordered=True, failure=failure)
        if units:
            self._submit(job, units)
        return job

    def imap_unordered(self, func: Callable[[Any], Any], iterable: Iterable[Any],
                       chunksize: int = 1) -> IMapIterator:
        self._check_running()
        items, failure = take_items(iterable, chunksize)
        length, units = self._chunks(func, items, chunksize, MAP)
        job = IMapIterator(self, length, ordered=False, failure=failure)
        if units:
            self._submit(job, units)
        return job

    # -- dispatching (under the lock; replies arrive on the reading thread) ---------
    def _pump(self) -> None:
        """Send work to the least busy workers. A worker gets a second batch
        in flight (pipelining, for tiny tasks) only while its batches come
        back fast; otherwise a short task would wait behind a long one while
        another worker sits idle."""
        if self._state == TERMINATE:
            return
        now = time.monotonic()
        free = [s for s in self._slots if not s.retiring and s.paused_until <= now]
        while self._queue and free:
            slot = min(free, key=lambda s: len(s.inflight))
            window = 1 if self._maxtasks else slot.window
            if len(slot.inflight) >= window:
                return
            size = max(1, min(MAX_BATCH, len(self._queue) // (len(free) * WINDOW)))
            if self._maxtasks:
                size = min(size, self._maxtasks - slot.done)
            if self._queue[0].alone:
                size = 1  # a suspect runs alone: it may be the task that kills
            batch = []
            while self._queue and len(batch) < size and not self._queue[0].alone:
                batch.append(self._queue.popleft())
            if not batch:
                batch = [self._queue.popleft()]
            self._send(slot, batch)

    def _send(self, slot: Slot, batch: list[Unit]) -> None:
        slot.inflight.append(batch)
        slot.sent[id(batch)] = time.monotonic()
        payload = Pickled([(u.id, u.func, u.kind, u.payload) for u in batch])
        try:
            payload.dump()  # a task that cannot be pickled fails with its own error
            future = slot.ref.ask_async(("run", payload))
        except Exception as e:  # as the standard library, whose map raises it
            slot.inflight.remove(batch)
            slot.sent.pop(id(batch), None)
            for unit in batch:
                if len(batch) > 1:
                    self._queue.appendleft(unit)  # sent alone, it fails alone
                else:
                    unit.job._put(unit.offset, unit.size(), False, e)
            if len(batch) > 1:
                self._send(slot, [self._queue.popleft()])
            return
        if future.done() and isinstance(future.exception(), ActorDeadError):
            # refused before it left (the worker is between two
            # incarnations): not an attempt; try again in a moment
            slot.inflight.remove(batch)
            slot.sent.pop(id(batch), None)
            self._queue.extendleft(reversed(batch))
            slot.paused_until = time.monotonic() + PAUSE
            timer = threading.Timer(PAUSE, self._pump_later)
            timer.daemon = True
            timer.start()
            return
        future.add_done_callback(functools.partial(self._returned, slot, batch))

    def _pump_later(self) -> None:
        with self._lock:
            self._pump()

    def _returned(self, slot: Slot, batch: list[Unit], future: Any) -> None:
        error = future.exception()
        with self._lock:
            # The batch a dying worker was running is its oldest in flight;
            # the others of that moment were only queued behind it, even
            # if their failures come back first or last.
            running = (bool(slot.inflight) and slot.inflight[0] is batch
                       and id(batch) not in slot.spared)
            slot.spared.discard(id(batch))
            if isinstance(error, ActorDeadError) and running:
                slot.spared.update(id(b) for b in slot.inflight if b is not batch)
            took = time.monotonic() - slot.sent.pop(id(batch), 0.0)
            slot.window = WINDOW if took < FAST else 1
            try:
                slot.inflight.remove(batch)
            except ValueError:
                pass
            if isinstance(error, ActorDeadError):
                self._lost(slot, batch, running, error)
            elif error is not None:
                for unit in batch:
                    unit.job._put(unit.offset, unit.size(), False, error)
            else:
                try:
                    results = context.unpack(future.result())
                except Exception as e:
                    results = [(unit.id, False, e) for unit in batch]
                by_id = {unit.id: unit for unit in batch}
                for unit_id, ok, value in results:
                    unit = by_id[unit_id]
                    unit.job._put(unit.offset, unit.size(), ok, value)
                slot.done += len(batch)
                if self._maxtasks and slot.done >= self._maxtasks and not slot.retiring:
                    slot.retiring = True
                    threading.Thread(target=self._replace, args=(slot,),
                                     name="actors-pool-replace", daemon=True).start()
            self._pump()
            self._idle.notify_all()

    def _lost(self, slot: Slot, batch: list[Unit], running: bool, error: ActorDeadError) -> None:
        """The worker died with ``batch`` in flight (``running``: it was the
        batch being run; else it was only queued behind it).

        Only a task that ran *alone* when its worker died counts an attempt:
        a batch of several is split into single tasks, each run alone next
        (which one killed the worker is not known, and a batch that had
        finished can be failed with its worker when its reply was still
        unread). A task alone that dies twice fails with WorkerLost."""
        slot.done = 0
        if self._state == TERMINATE:
            for unit in batch:
                unit.job._put(unit.offset, unit.size(), False,
                              ActorError("the pool was terminated"))
            return
        retry: list[Unit] = []
        alone = len(batch) == 1 and (batch[0].kind == APPLY or len(batch[0].payload) == 1)
        for unit in batch:
            if running and alone:
                unit.attempts += 1
            if unit.attempts >= 2:
                unit.job._put(unit.offset, unit.size(), False, WorkerLost(
                    f"a pool worker died twice running this task ({error.reason}); "
                    f"it was retried once in a new worker"))
            elif running and unit.kind != APPLY and len(unit.payload) > 1:
                for i, item in enumerate(unit.payload):
                    retry.append(Unit(next(self._ids), unit.func, unit.kind, [item], unit.job,
                                      unit.offset + i, unit.attempts, alone=True))
            else:
                unit.alone = unit.alone or running
                retry.append(unit)
        self._queue.extendleft(reversed(retry))

    def _replace(self, slot: Slot) -> None:
        """maxtasksperchild: a worker that did its share is replaced."""
        sup = self._supervisor.proxy()
        try:
            while slot.inflight:  # what it still has in flight comes back first
                with self._lock:
                    self._idle.wait(0.1)
            sup.terminate_child(slot.name)
            ref = sup.restart_child(slot.name)
        except Exception:
            return  # the pool is going away
        with self._lock:
            slot.ref = ref
            slot.done = 0
            slot.retiring = False
            self._pump()

    def _job_done(self, job: Any) -> None:
        with self._lock:
            self._jobs.discard(job)
            self._idle.notify_all()

    # -- ending ------------------------------------------------------------
    def close(self) -> None:
        """No more tasks; the workers end once the submitted ones are done."""
        with self._lock:
            if self._state == RUN:
                self._state = CLOSE

    def terminate(self) -> None:
        """Stop the workers now; unfinished tasks fail."""
        with self._lock:
            if self._state == TERMINATE:
                return
            self._state = TERMINATE
            self._queue.clear()
            jobs = list(self._jobs)
        for job in jobs:
            job._abort(ActorError("the pool was terminated"))
        self._stop()

    def join(self) -> None:
        """Wait for the submitted tasks (after close) and the workers' end."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        with self._lock:
            while self._jobs and self._state != TERMINATE:
                self._idle.wait(0.5)
        self._stop()

    def _stop(self) -> None:
        try:
            self._supervisor.stop()
        except Exception:
            pass
        self._callbacks.stop()

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *args: Any) -> None:
        self.terminate()

    def __repr__(self) -> str:
        return f"<actors.mp.Pool state={self._state} pool_size={self._processes}>"

    def __del__(self) -> None:
        if getattr(self, "_state", None) == RUN:  # as the standard library warns
            warnings.warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning,
                          source=self)

    @property
    def _pool(self) -> list[WorkerProcess]:
        """The workers as they are now (their pids), as the standard
        library's private list of worker processes."""
        infos = self._supervisor.proxy().which_children()
        return [WorkerProcess(info.name, info.pid) for info in infos]

    def _repopulate_pool(self) -> None:
        """Wait (up to 10 s) until the pool is full again: the supervisor
        replaces a worker that ended by itself, and a worker that did its
        ``maxtasksperchild`` share is replaced in the background."""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and self._state == RUN:
            busy = any(slot.retiring for slot in self._slots)
            if not busy and all(w.pid is not None for w in self._pool):
                return
            with self._lock:
                self._idle.wait(0.05)
