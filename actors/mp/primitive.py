"""A primitive of ``actors.mp``: the actor that serves it, and the handle
user code holds.

Server side.
Each primitive (a lock, a queue...) is a :class:`Primitive` actor, and they
all share one host process (see ``actors.mp.context``). None of them ever
blocks: a request that must wait (an ``acquire`` of a held lock, a ``get``
from an empty queue) is *parked* with :meth:`Actor.defer_reply` and answered
when its turn comes. A parked request has a token chosen by its asker; the
asker whose timeout passes sends ``("cancel", token)``: if the request is
still parked it is answered with :data:`CANCELLED` (its asker then returns
False or raises ``Empty``), else the cancel comes too late and the asker
takes the answer already sent. Either way nothing is lost: an item or a lock
handed out is always received.

Owners that die. Every request names its asker (pid, thread, and the ref of
the actor whose process it is); primitives watch those refs, so a lock held
by a process that dies is released (and the next acquisition says so), a
pipe end held only by a dead process counts as closed, and a dead waiter's
parked requests are dropped.

Handle side. What user code holds is a :class:`Handle`: the actor's ref
plus state of its own process only (dropped when the handle is pickled to
another process), and the one way it asks for something that may be
parked (with a timeout that withdraws the request).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from actors.actor import Actor
from actors.errors import ActorDeadError
from actors.host import running_host
from actors.mp import batching, context
from actors.mp.context import unpack
from actors.notices import Terminated
from actors.protocol import SpawnOptions
from actors.ref import ActorRef, Reply

__all__ = ["CANCELLED", "EMPTY", "Handle", "LocalCounts", "Primitive", "PrimitiveLost",
           "check_timeout", "unpack"]

log = logging.getLogger("actors.mp")

class PrimitiveLost(ActorDeadError):
    """A primitive's actor is gone: the process that hosted it died (killed,
    say), and what it held (a queue's items, a lock's state) with it. The
    message names the primitive (``Queue.4242.7``); ``ref`` is its actor.
    Primitives made after the loss work (a new process hosts them)."""

    __module__ = "actors.mp"


# a primitive's death is not logged on its own: its host's is (see context)
QUIET = SpawnOptions(quiet=True)

CANCELLED = "\x00actors.mp:cancelled"
EMPTY = "\x00actors.mp:empty"


class Primitive(Actor):
    """Base: ``("op", *args)`` messages call ``do_op(*args)``; parked
    requests by token; watched owners."""

    label = "primitive"

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.parked: dict[int, tuple[Reply, Any]] = {}  # token -> (reply, info), FIFO
        self.watched: dict[int, ActorRef] = {}
        self.holds: dict[Any, Any] = {}  # member -> its wait record (begin_hold)

    def receive(self, message: Any) -> Any:
        if isinstance(message, Terminated):
            self.watched.pop(message.ref.uid, None)
            self.owner_gone(message.ref)
            return None
        return getattr(self, "do_" + message[0])(*message[1:])

    def park(self, token: int, info: Any = None, bound: bool = False) -> None:
        """Answer the request being handled later. ``bound``: only what a
        holder does answers it (the deadlock detector may follow it, see
        :meth:`begin_hold`)."""
        reply = self.defer_reply()
        reply.bound = bound
        self.parked[token] = (reply, info)

    def withdraw(self, reply: Reply) -> bool:
        """The deadlock detector withdraws a parked request (its asker gets
        DeadlockError instead of an answer)."""
        for token, (parked, info) in list(self.parked.items()):
            if parked is reply:
                del self.parked[token]
                self.cancelled(token, info)
                return True
        return False

    def begin_hold(self, member: Any, what: str) -> Any:
        """Report that this primitive's parked requests wait for ``member``
        (an actor uid, or a thread of the main program)."""
        tracker = running_host().runtime.waits
        return tracker.begin_hold(self.ref.uid, member, what) if tracker.enabled else None

    @staticmethod
    def end_hold(record: Any) -> None:
        if record is not None:
            running_host().runtime.waits.end(record)

    def answer(self, token: int, value: Any) -> Any:
        """Send the reply of a parked request; its info."""
        reply, info = self.parked.pop(token)
        reply.send(value)
        return info

    def fail(self, token: int, error: BaseException) -> None:
        reply, _ = self.parked.pop(token)
        reply.fail(error)

    def do_sync(self) -> bool:
        """Answered after everything the asker sent before (its process
        calls it before exiting, so its last told releases arrive before
        the news of its death)."""
        return True

    def do_cancel(self, token: int) -> bool:
        entry = self.parked.pop(token, None)
        if entry is None:
            return False  # answered already: the asker takes that answer
        entry[0].send(CANCELLED)
        self.cancelled(token, entry[1])
        return True

    def cancelled(self, token: int, info: Any) -> None:
        """A parked request was withdrawn by its asker."""

    def watch_owner(self, ref: ActorRef | None) -> None:
        if ref is not None and ref.uid not in self.watched:
            self.watched[ref.uid] = ref
            self.watch(ref)

    def owner_gone(self, ref: ActorRef) -> None:
        """The process of ``ref`` ended; drop what it was waiting for."""
        for token, (reply, info) in list(self.parked.items()):
            if isinstance(info, dict) and info.get("ref") == ref:
                del self.parked[token]
                reply.take()  # nobody is left to answer

    def describe(self) -> str:
        return self.ref.name or f"{self.label} #{self.ref.uid}"



# A primitive per process this one told something (address -> ref): before
# exiting, it makes sure those messages arrived (see sync_told).
TOLD: dict[str, ActorRef] = {}


def sync_told() -> None:
    """Wait until everything this process told a primitive has arrived (a
    lock released just before exiting must not look held by the dead)."""
    batching.send_all()
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

    def _proxy_repr(self) -> str | None:
        """For a primitive a manager made: its repr as the standard library's
        proxy (``<EventProxy object, typeid 'Event' at 0x...>``)."""
        proxy = self.__dict__.get("_proxy")
        if proxy is None:
            return None
        return f"<{proxy[0]} object, typeid {proxy[1]!r} at {id(self):#x}>"

    def _spawn(self, server: type, *args: Any) -> ActorRef:
        """Start this primitive's actor, named after its class (a deadlock
        report reads "Lock.4242.7 ... held by ...")."""
        return context.spawn(server, *args, name=context.unique_name(type(self).__name__),
                             options=QUIET)

    def _describe(self) -> str:
        return self._ref.name or f"{type(self).__name__} #{self._ref.uid}"

    def _lost(self, error: ActorDeadError) -> PrimitiveLost:
        """The error a handle raises once its primitive's actor is gone."""
        reason = error.reason or "dead"
        return PrimitiveLost(f"{self._describe()} is lost: the process that hosted it is gone "
                             f"({reason}), and the primitive with it", self._ref, reason)

    def _tell(self, message: tuple[Any, ...]) -> None:
        batching.send_first()  # puts before it leave before it
        self._tell_ref().tell(message)

    def _tell_ref(self) -> ActorRef:
        """The ref, bound here, for a one-way message (PrimitiveLost if the
        primitive is gone; remembered for sync_told)."""
        ref = context.bind(self._ref)
        reason = ref._runtime.dead.get(ref.uid)
        if reason is not None:
            raise self._lost(ActorDeadError("", ref, reason))
        TOLD[ref.address] = ref
        return ref

    def _ask(self, message: tuple[Any, ...]) -> Any:
        batching.send_first()
        try:
            return context.bind(self._ref).ask(message)
        except PrimitiveLost:
            raise
        except ActorDeadError as e:
            raise self._lost(e) from None

    def _wait(self, message: tuple[Any, ...], timeout: float | None,
              on_answer: Any = None) -> Any:
        """Ask for something that may be parked; ``message[1]`` is its
        token. Past ``timeout`` the request is withdrawn and CANCELLED
        returned, unless the answer came first (then it is returned). A
        request whose last field is False (``block=False``) is answered at
        once and never withdrawn."""
        try:
            return self._wait_for(message, timeout, on_answer)
        except PrimitiveLost:
            raise
        except ActorDeadError as e:
            raise self._lost(e) from None

    def _wait_for(self, message: tuple[Any, ...], timeout: float | None,
                  on_answer: Any) -> Any:
        batching.send_first()
        ref = context.bind(self._ref)
        runtime = ref._runtime
        future = runtime.ask(ref, message, on_answer)
        future.busy = False  # it may be parked: waits on another process (ActorFuture.busy)
        if timeout is None or (timeout == 0 and message[-1] is False):
            result = future.result()  # forever, or a request that does not wait
        else:
            if timeout > 0:  # a timed wait ends by itself: not a deadlock edge
                runtime.wait(future, timeout, track=False)
            if not future.done():
                runtime.ask(ref, ("cancel", message[1])).result()
            # The answer (or CANCELLED) left before the cancel's answer did.
            result = future.result()
        if on_answer is not None:
            # A future wakes its waiters before it runs its callbacks: the
            # reading thread may not have run on_answer yet (it must be
            # idempotent: both calls come)
            on_answer(future)
        return result

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
