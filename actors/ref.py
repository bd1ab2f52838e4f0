"""ActorRef, the future an ask returns, and method-call proxies.

A ref is a plain value (node id, actor uid, address, name): it can be sent
inside messages, compared and hashed. Whatever process decodes it gets a ref
bound to its own runtime, so ``tell``/``ask`` work from anywhere.

``ask`` is ``ask_async`` plus a wait: there is one code path for both.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import threading
import time
import weakref
from collections.abc import Generator, Iterator
from typing import Any, Protocol

from actors.errors import AskTimeout

__all__ = ["ActorFuture", "ActorRef", "Messenger", "Proxy", "Reply", "load_into", "unpickling_into"]


class Messenger(Protocol):
    """What a ref needs from the runtime of its process (``actors.runtime``
    implements it; this module does not import it)."""

    waits: Any

    def tell(self, ref: ActorRef, message: Any) -> None: ...
    def ask(self, ref: ActorRef, message: Any, on_done: Any = None) -> ActorFuture: ...
    def call(self, ref: ActorRef, method: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> ActorFuture: ...
    def reply(self, address: str, call_id: int, uid: int, ok: bool, value: Any) -> None: ...
    def wait(self, future: concurrent.futures.Future, timeout: float | None,
             track: bool = True) -> None: ...
    def foreign_wait(self, future: concurrent.futures.Future) -> None: ...
    def forget_call(self, call_id: int) -> None: ...
    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None: ...
    def waiter(self, thread: int, future: concurrent.futures.Future) -> Any: ...


_PENDING = concurrent.futures._base.PENDING
_FINISHED = concurrent.futures._base.FINISHED
_DONE = frozenset((concurrent.futures._base.CANCELLED,
                   concurrent.futures._base.CANCELLED_AND_NOTIFIED, _FINISHED))
_MAKING = threading.Lock()  # makes a future's Condition (ActorFuture._condition)


class ActorFuture(concurrent.futures.Future):
    """The reply to an ask: a ``concurrent.futures.Future`` that is also
    awaitable from asyncio. ``result(timeout)`` raises :class:`AskTimeout`
    when the reply does not come in time, :class:`ActorDeadError` as soon as
    the target dies, and the handler's own exception if it raised."""

    __module__ = "actors"
    # A thread waiting for it may busy-wait (``busy_wait``, MessageLoop.wait);
    # False for a request that waits on another process's progress (room in
    # a mailbox; actors.mp: a lock, a queue item, a join), which needs the
    # CPU more than the waiter does.
    busy = True

    def __init__(self, runtime: Messenger, call_id: int, target: ActorRef | None,
                 request: Any = None) -> None:
        # The base class's fields, but no Condition yet: a lock guards the
        # state, and the Condition (on that same lock) is made only when a
        # thread blocks on it (_condition). Most asks are read by the thread
        # that waits, so none is ever made (a Condition is ~1 us). The lock
        # is re-entrant, as the base class's: concurrent.futures.wait holds
        # it while it calls cancelled() and exception().
        self._lock = threading.RLock()
        self._cond: threading.Condition | None = None
        self._state = _PENDING
        self._result = None
        self._exception: BaseException | None = None
        self._done_callbacks: list[Any] = []
        self._runtime = runtime
        self.call_id = call_id
        self.target = target
        # the request (its wire array, or a service operation): deadlock
        # reports describe it
        self.request = request
        # when the request left: a deadlock's victim is the youngest request
        self.since = time.monotonic()
        self._waiting: _Waiters | None = None  # made on first use (_waiters)

    @property
    def _condition(self) -> threading.Condition:  # what the base class and concurrent.futures use
        cond = self._cond
        return cond if cond is not None else self._made(
            "_cond", lambda: threading.Condition(self._lock))

    @property
    def _waiters(self) -> _Waiters:  # concurrent.futures.wait and as_completed add theirs here
        waiting = self._waiting
        return waiting if waiting is not None else self._made("_waiting", lambda: _Waiters(self))

    def _made(self, attr: str, make: Any) -> Any:
        """The object in ``attr``, made on first use (once, whichever thread asks)."""
        with _MAKING:
            made = getattr(self, attr)
            if made is None:
                made = make()
                setattr(self, attr, made)
        return made

    def set_result(self, result: Any) -> None:
        self._settle(result, None, False)

    def set_exception(self, exception: BaseException | None) -> None:
        self._settle(None, exception, True)

    def _settle(self, result: Any, exception: BaseException | None, failed: bool) -> None:
        with self._lock:
            if self._state in _DONE:
                raise concurrent.futures.InvalidStateError(f"{self._state}: {self!r}")
            self._result, self._exception = result, exception
            self._state = _FINISHED
            if self._cond is not None:  # someone blocks, or waits through concurrent.futures
                for waiter in self._waiting or ():
                    if failed:
                        waiter.add_exception(self)
                    else:
                        waiter.add_result(self)
                self._cond.notify_all()
        if self._done_callbacks:
            self._invoke_callbacks()

    def add_done_callback(self, fn: Any) -> None:
        with self._lock:
            if self._state not in _DONE:
                self._done_callbacks.append(fn)
                return
        super().add_done_callback(fn)  # done: the base class calls it now

    def done(self) -> bool:
        # One attribute read: atomic under the GIL, so the base class's
        # condition lock is not needed for it (an ask checks done() ~6 times,
        # each a Python-level lock enter and exit).
        return self._state in _DONE

    def result(self, timeout: float | None = None) -> Any:
        if self._state not in _DONE:
            self._runtime.wait(self, timeout)
            if self._state not in _DONE:
                self._runtime.forget_call(self.call_id)
                raise AskTimeout(f"no reply from {self.target!r} within {timeout} s")
        if self._state == _FINISHED and self._exception is None:
            return self._result  # (no lock: a finished future never changes)
        return super().result(0)  # an error, or cancelled

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.done():
            self._runtime.wait(self, timeout)
        return super().exception(0)  # TimeoutError if still not done

    def __await__(self) -> Generator[Any, None, Any]:
        runtime = self._runtime
        record = None
        if runtime.waits.enabled and not self.done():
            # awaited inside an actor's async handler: its mailbox is blocked
            waiter = runtime.waiter(0, self)
            if waiter is not None:
                record = runtime.waits.begin(waiter, self, stacked=False)
        try:
            import asyncio  # loaded already: this is awaited on an asyncio loop

            return (yield from asyncio.wrap_future(self).__await__())
        finally:
            if record is not None:
                runtime.waits.end(record)


class _Waiters(list):  # type: ignore[type-arg]
    """An ActorFuture's ``_waiters``: ``concurrent.futures.wait`` and
    ``as_completed`` add theirs here, and its runtime makes sure the reply
    gets read meanwhile (``actors.relief``). It refers to its future weakly:
    no reference cycle, so an ask's objects are freed when it ends, not by
    the garbage collector."""

    __slots__ = ("future",)

    def __init__(self, future: ActorFuture) -> None:
        super().__init__()
        self.future = weakref.ref(future)

    def append(self, waiter: Any) -> None:
        super().append(waiter)
        future = self.future()
        if future is not None:
            future._runtime.foreign_wait(future)


class ActorRef:
    """The address of an actor; the only way to talk to it."""

    __module__ = "actors"
    __slots__ = ("node", "uid", "address", "name", "_runtime")

    def __init__(self, node: str, uid: int, address: str, name: str | None,
                 runtime: Messenger | None) -> None:
        self.node = node
        self.uid = uid
        self.address = address
        self.name = name
        self._runtime = runtime

    def tell(self, message: Any) -> None:
        """Send ``message`` and return at once (fire and forget).

        Raises:
            SerializationError: ``message`` holds a value that cannot be sent.
        """
        self._runtime.tell(self, message)

    def ask(self, message: Any, timeout: float | None = None) -> Any:
        """Send ``message`` and wait for the handler's return value.

        Raises:
            AskTimeout: no reply within ``timeout`` seconds (None: no limit).
            ActorDeadError: the actor is dead or dies before replying.
            SerializationError: ``message`` cannot be sent.
            Exception: whatever the handler raised, as its own class.
        """
        return self._runtime.ask(self, message).result(timeout)

    def ask_async(self, message: Any) -> ActorFuture:
        """Send ``message``; the reply arrives in the returned future."""
        return self._runtime.ask(self, message)

    def proxy(self, timeout: float | None = None) -> Proxy:
        """An object whose method calls are sent to the actor and waited for."""
        return Proxy(self, timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the actor after the messages you sent it before (its children
        first, the last started first; then its ``on_stop``) and wait for it
        to end; its process is killed if it takes longer than ``timeout``
        (default: the system's ``stop_timeout``) per actor. Stopping a dead
        actor does nothing. From inside an actor this only schedules the stop
        and returns at once (the caller may be the target or its child)."""
        self._runtime.stop_actor(self, timeout)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and self.uid == other.uid and self.node == other.node

    def __hash__(self) -> int:
        return hash((self.node, self.uid))

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<ActorRef{name} #{self.uid} at {self.address}>"

    def __reduce__(self) -> Any:
        return (rebuild_ref, (self.node, self.uid, self.address, self.name))

    def __copy__(self) -> ActorRef:
        return self  # a ref is an immutable value

    def __deepcopy__(self, memo: dict[int, Any]) -> ActorRef:
        return self


def rebuild_ref(node: str, uid: int, address: str, name: str | None) -> ActorRef:
    """Unpickle a ref: bound to the runtime whoever unpickles named with
    :func:`unpickling_into`, else to none (bind it before use)."""
    return ActorRef(node, uid, address, name, _UNPICKLING.get())


_UNPICKLING: contextvars.ContextVar[Messenger | None] = contextvars.ContextVar(
    "actors_unpickling_into", default=None)


def load_into(pickled: Any, runtime: Messenger) -> Any:
    """``pickled.load()`` with the refs inside bound to ``runtime`` (as
    :func:`unpickling_into`, without a generator: it runs per queue item)."""
    token = _UNPICKLING.set(runtime)
    try:
        return pickled.load()
    finally:
        _UNPICKLING.reset(token)


@contextlib.contextmanager
def unpickling_into(runtime: Messenger) -> Iterator[None]:
    """Refs unpickled inside this block are bound to ``runtime`` (refs that
    arrive through the codec are always bound to the runtime that decoded
    them; pickle, used by ``actors.mp`` on local links, needs this)."""
    token = _UNPICKLING.set(runtime)
    try:
        yield
    finally:
        _UNPICKLING.reset(token)


class Proxy:
    """Calls public methods of a remote actor: ``ref.proxy().add(1)``.

    Each call waits for the result (``timeout`` from ``ref.proxy``);
    ``proxy.add.future(1)`` returns an :class:`ActorFuture` instead.
    """

    __module__ = "actors"

    def __init__(self, ref: ActorRef, timeout: float | None) -> None:
        self._ref = ref
        self._timeout = timeout

    def __getattr__(self, name: str) -> ProxyMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return ProxyMethod(self._ref, name, self._timeout)

    def __repr__(self) -> str:
        return f"<Proxy of {self._ref!r}>"


class ProxyMethod:
    __slots__ = ("_ref", "_name", "_timeout")

    def __init__(self, ref: ActorRef, name: str, timeout: float | None) -> None:
        self._ref = ref
        self._name = name
        self._timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.future(*args, **kwargs).result(self._timeout)

    def future(self, *args: Any, **kwargs: Any) -> ActorFuture:
        return self._ref._runtime.call(self._ref, self._name, args, kwargs)


class Reply:
    """The reply to an ask, promised by its handler (``Actor.defer_reply``)
    and sent later: from a later handler of the same actor (when a message
    it was waiting for arrives), or from any thread of its process.

    The asker keeps waiting meanwhile; the actor is free to handle other
    messages. If the actor ends before replying, the asker gets
    :class:`ActorDeadError`. Send exactly once.
    """

    __module__ = "actors"
    __slots__ = ("_runtime", "_parked", "_to", "_call_id", "_uid", "_done", "bound")

    def __init__(self, runtime: Messenger, parked: dict[Any, Reply], to: str,
                 call_id: int, uid: int) -> None:
        self._runtime = runtime
        self._parked = parked
        self._to = to
        self._call_id = call_id
        self._uid = uid  # the actor that answers
        self._done = False
        # Only what a holder does sends it (actors.mp: a lock's release): the
        # deadlock detector may then follow the asker's wait through it.
        self.bound = False

    @property
    def done(self) -> bool:
        """True once the reply was sent (or failed)."""
        return self._done

    def send(self, value: Any = None) -> None:
        """Answer the ask with ``value`` (the asker's ``ask`` returns it).

        Raises:
            RuntimeError: the reply was already sent.
            SerializationError: ``value`` cannot be sent (the asker then
                gets that error instead).
        """
        self._finish(True, value)

    def fail(self, error: BaseException) -> None:
        """Answer the ask with ``error`` (the asker's ``ask`` raises it)."""
        if not isinstance(error, BaseException):
            raise TypeError(f"fail() takes an exception, got {error!r}")
        self._finish(False, error)

    def take(self) -> bool:
        """Mark the reply sent; False if it already was (runtime use)."""
        if self._done:
            return False
        self._done = True
        self._parked.pop((self._to, self._call_id), None)
        return True

    def _finish(self, ok: bool, value: Any) -> None:
        if not self.take():
            raise RuntimeError("this reply was already sent")
        self._runtime.reply(self._to, self._call_id, self._uid, ok, value)

    def __repr__(self) -> str:
        return f"<Reply to call {self._call_id} at {self._to}{' (sent)' if self._done else ''}>"
