"""Actor classes spawned by tests/test_deadlocks.py.

They live in an importable module because actors are started with the
*spawn* method: a fresh interpreter must be able to import them.

Most of them record every message they handle (``handled``), so a test can
tell that a request withdrawn by the deadlock detector was never handled.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import actors

# What a handler that asks waits at most: far longer than any test waits, so
# a test that sees a DeadlockError knows the detector sent it, not a timeout.
INNER_TIMEOUT = 30.0


def caught(label: str, error: actors.DeadlockError) -> tuple[Any, ...]:
    """What a member that catches the DeadlockError of its ask returns."""
    return ("caught", label, list(error.cycle), str(error))


class Peer(actors.Actor):
    """A member of ask chains and cycles.

    - ``("chain", route, catch)``: ask ``route[0]`` with
      ``("chain", route[1:], catch)``; an empty route ends the chain with
      ``("end", label)``. With ``catch``, a DeadlockError of its own ask is
      returned as :func:`caught`'s tuple instead of raised.
    - ``relay(route, catch)``: the same through proxy calls.
    - ``("via", target, payload)``: ask ``target`` ``payload`` (catching a
      DeadlockError the same way).
    - ``("compute", on)``: start (or stop) a thread that computes, holding
      the GIL most of the time.
    - ``"handled"``: what it handled so far (queries excluded);
      ``"outcomes"``: how each of its chain asks ended (``"answered"`` or
      ``"deadlock"``).
    """

    def __init__(self, label: str, timeout: float = INNER_TIMEOUT) -> None:
        self.label = label
        self.timeout = timeout
        self.handled: list[Any] = []
        self.outcomes: list[str] = []
        self.computing = False

    def receive(self, message: Any) -> Any:
        if message == "handled":
            return self.handled
        if message == "outcomes":
            return self.outcomes
        if message == "pid":
            return os.getpid()
        self.handled.append(message[0] if isinstance(message, tuple) else message)
        match message:
            case ("chain", route, catch):
                return self._forward(route, catch, lambda: route[0].ask(
                    ("chain", route[1:], catch), timeout=self.timeout))
            case ("via", target, payload):
                try:
                    return target.ask(payload, timeout=self.timeout)
                except actors.DeadlockError as e:
                    return caught(self.label, e)
            case ("value", value):
                return value
            case ("compute", on):
                self.computing = on
                if on:
                    threading.Thread(target=self._compute, daemon=True).start()
        return None

    def _compute(self) -> None:
        n = 0
        while self.computing:  # CPU-bound work that holds the GIL
            n += 1

    def relay(self, route: list[actors.ActorRef], catch: bool) -> Any:
        self.handled.append("relay")
        return self._forward(route, catch, lambda: route[0].proxy(
            timeout=self.timeout).relay(route[1:], catch))

    def _forward(self, route: list[actors.ActorRef], catch: bool,
                 send: Callable[[], Any]) -> Any:
        """Pass a chain on to ``route[0]`` with ``send`` (an ask or a call),
        recording how that wait ended."""
        if not route:
            return ("end", self.label)
        try:
            answer = send()
        except actors.DeadlockError as e:
            self.outcomes.append("deadlock")
            if not catch:
                raise
            return caught(self.label, e)
        self.outcomes.append("answered")
        return answer


class AsyncPeer(actors.Actor):
    """:class:`Peer`'s chain with an ``async def`` handler that awaits
    ``ask_async`` (the actor stays busy, so its mailbox waits too)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.handled: list[Any] = []
        self.outcomes: list[str] = []

    async def receive(self, message: Any) -> Any:
        if message == "handled":
            return self.handled
        if message == "outcomes":
            return self.outcomes
        self.handled.append(message[0])
        match message:
            case ("chain", route, catch):
                if not route:
                    return ("end", self.label)
                try:
                    answer = await route[0].ask_async(("chain", route[1:], catch))
                except actors.DeadlockError as e:
                    self.outcomes.append("deadlock")
                    if not catch:
                        raise
                    return caught(self.label, e)
                self.outcomes.append("answered")
                return answer
        return None


class Holder(actors.Actor):
    """Defers the replies to ``"hold"`` and answers them when told to.

    - ``"hold"``: defer the reply (its return value is ignored).
    - ``"held"``: how many deferred replies are still unsent.
    - ``("release", value)``: send the oldest one; returns how many remain.
    - ``("fail", text)``: fail the oldest one with ``ValueError(text)``.
    - ``("release_twice", value)``: send the oldest one, then try again;
      returns what the second send raised and ``done`` before and after.
    - ``("from_thread", value)``: defer, and send from another thread.
    - ``("defer_then_raise", text)``: defer, then raise ``KeyError(text)``.
    - ``("tell_defer",)`` as a tell: call ``defer_reply`` where no ask is
      handled (``on_start`` does too); ``"errors"`` lists what those calls
      raised.
    """

    def __init__(self) -> None:
        self.parked: list[actors.Reply] = []
        self.errors: list[tuple[str, str]] = []

    def on_start(self) -> None:
        self._try_defer("on_start")

    def receive(self, message: Any) -> Any:
        match message:
            case "hold":
                self.parked.append(self.defer_reply())
                return "not the reply"
            case "held":
                return len(self.parked)
            case "ping":
                return "pong"
            case ("release", value):
                self.parked.pop(0).send(value)
                return len(self.parked)
            case ("fail", text):
                self.parked.pop(0).fail(ValueError(text))
                return len(self.parked)
            case ("release_twice", value):
                reply = self.parked.pop(0)
                before = reply.done
                reply.send(value)
                try:
                    reply.send(value)
                except RuntimeError as e:
                    return {"before": before, "after": reply.done, "error": type(e).__name__,
                            "text": str(e)}
                return {"before": before, "after": reply.done, "error": None}
            case ("from_thread", value):
                reply = self.defer_reply()
                threading.Thread(target=reply.send, args=(value,)).start()
                return "not the reply"
            case ("defer_then_raise", text):
                self.defer_reply()
                raise KeyError(text)
            case ("tell_defer",):  # arrives as a tell: no ask to defer
                self._try_defer("tell")
            case "errors":
                return self.errors
        return None

    def _try_defer(self, where: str) -> None:
        try:
            self.defer_reply()
        except actors.ActorError as e:
            self.errors.append((where, type(e).__name__))
        else:
            self.errors.append((where, "no error"))


class Busy(actors.Actor):
    """Busy for a while on ``("work", seconds)`` without waiting on anything."""

    def receive(self, message: Any) -> Any:
        match message:
            case ("work", seconds):
                time.sleep(seconds)  # simulated work: busy, not blocked
                return "worked"
        return None


class Spawner(actors.Actor):
    """Spawns a :class:`Kid` whose ``on_start`` asks this actor back."""

    def __init__(self) -> None:
        self.handled: list[Any] = []

    def receive(self, message: Any) -> Any:
        match message:
            case ("spawn_kid", name, catch):
                self.handled.append("spawn_kid")
                return self.spawn(Kid, self.ref, catch, name=name)
            case "hello":
                self.handled.append("hello")
                return "hi"
            case "handled":
                return self.handled
        return None


class Kid(actors.Actor):
    """Asks its parent from ``on_start`` (while the parent waits for that
    very ``on_start``). With ``catch`` it keeps the DeadlockError's cycle
    and starts anyway."""

    def __init__(self, parent: actors.ActorRef, catch: bool) -> None:
        self.parent = parent
        self.catch = catch
        self.caught: Any = None

    def on_start(self) -> None:
        try:
            self.parent.ask("hello", timeout=INNER_TIMEOUT)
        except actors.DeadlockError as e:
            if not self.catch:
                raise
            self.caught = caught("kid", e)

    def receive(self, message: Any) -> Any:
        if message == "caught":
            return self.caught
        return None


class Pinger(actors.Actor):
    """Plays ``n`` rounds with a :class:`Ponger`: it asks ``("ping", i)``;
    the ponger replies, then at once asks ``("poke", i)`` back, so each of
    the two waits starts while the other's reply is still in flight. No
    wait is ever circular: the next ping is sent only after the poke was
    answered. The ask ``("run", ponger, n)`` is answered after the last
    round with ``[rounds, mismatches]``.

    Meanwhile a thread of this process keeps computing: it holds the GIL
    most of the time, so this actor reads each pong late and its ping wait
    looks alive (it is: the pong is unread) while the ponger's poke wait is
    already reported. The node then sees both edges at once."""

    def __init__(self) -> None:
        self.ponger: actors.ActorRef | None = None
        self.n = 0
        self.rounds = 0
        self.mismatches = 0
        self.done: actors.Reply | None = None
        self.computing = False

    def receive(self, message: Any) -> Any:
        match message:
            case ("run", ponger, n):
                self.ponger, self.n, self.rounds, self.mismatches = ponger, n, 0, 0
                self.done = self.defer_reply()
                self.computing = True
                threading.Thread(target=self._compute, daemon=True).start()
                self.ref.tell("go")
            case "go":
                assert self.ponger is not None
                if self.ponger.ask(("ping", self.rounds), timeout=INNER_TIMEOUT) != self.rounds:
                    self.mismatches += 1
            case ("poke", i):
                if i != self.rounds:
                    self.mismatches += 1
                self.rounds += 1
                if self.rounds < self.n:
                    self.ref.tell("go")
                else:
                    assert self.done is not None
                    self.computing = False
                    self.done.send([self.rounds, self.mismatches])
                return i
        return None

    def _compute(self) -> None:
        n = 0
        while self.computing:  # CPU-bound work that holds the GIL
            n += 1


class Ponger(actors.Actor):
    """See :class:`Pinger`."""

    def __init__(self, pinger: actors.ActorRef) -> None:
        self.pinger = pinger
        self.pokes = 0

    def receive(self, message: Any) -> Any:
        match message:
            case ("ping", i):
                self.defer_reply().send(i)  # the reply leaves first ...
                self.pinger.ask(("poke", i), timeout=INNER_TIMEOUT)  # ... then we ask back
                self.pokes += 1
            case "pokes":
                return self.pokes
        return None


def describe(exc: BaseException | None) -> dict[str, Any] | None:
    """``on_restart``'s argument as plain data."""
    if exc is None:
        return None
    return {"type": type(exc).__name__, "reason": getattr(exc, "reason", None)}


def lock_twice() -> str:
    """A threading deadlock: a plain Lock acquired twice by one thread."""
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # never returns: this thread already holds the lock
    return "unreachable"


def spin_forever() -> int:
    """An endless loop that never waits on anything."""
    n = 0
    while n >= 0:
        n += 1
    return n


class Hanger(actors.Actor):
    """A supervised child that can get stuck for good in a handler."""

    def __init__(self) -> None:
        self.restarted_with: Any = "not restarted"

    def on_restart(self, exc: BaseException | None) -> None:
        self.restarted_with = describe(exc)

    def receive(self, message: Any) -> Any:
        match message:
            case "pid":
                return os.getpid()
            case "restarted_with":
                return self.restarted_with
            case "lock_twice":
                return lock_twice()
            case "spin":
                return spin_forever()
        return None
