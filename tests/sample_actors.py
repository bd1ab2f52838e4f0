"""Actor classes used by the tests (importable, so spawned children find them)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass

import actors

log = logging.getLogger("sample")


class Counter(actors.Actor):
    def __init__(self, start: int = 0) -> None:
        self.n = start

    def receive(self, message):
        match message:
            case ("add", k):
                self.n += k
            case "get":
                return self.n
            case "pid":
                return os.getpid()
            case ("echo", value):
                return value
            case "boom":
                raise ValueError("boom!")
            case _:
                raise KeyError(message)

    def add(self, k: int) -> int:
        self.n += k
        return self.n

    def _private(self) -> None:  # not reachable through a proxy
        pass


class Recorder(actors.Actor):
    """Keeps every message it is told, in arrival order."""

    def __init__(self) -> None:
        self.seen: list = []

    def receive(self, message):
        if message == "seen":
            return self.seen
        if message == "count":
            return len(self.seen)
        self.seen.append(message)


class Forwarder(actors.Actor):
    """Tells ``count`` numbered messages to a target ref it is given."""

    def receive(self, message):
        match message:
            case ("send", target, count):
                for i in range(count):
                    target.tell(("n", i))
                return count
            case ("ask", target, payload):
                return target.ask(payload, timeout=10)


class AsyncActor(actors.Actor):
    def __init__(self) -> None:
        self.n = 0

    async def receive(self, message):
        match message:
            case ("sleep_then", value):
                await asyncio.sleep(0.01)  # simulated async work
                return value
            case ("ask", target, payload):
                return await target.ask_async(payload)
            case "get":
                return self.n
            case "inc":
                self.n += 1

    async def double(self, x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x


class Parent(actors.Actor):
    """Spawns children; reports their refs."""

    def __init__(self, log_path: str | None = None) -> None:
        self.children: list = []
        self.log_path = log_path

    def receive(self, message):
        match message:
            case ("spawn", name, start):
                child = self.spawn(Counter, start, name=name)
                self.children.append(child)
                return child
            case ("spawn_logger", name):
                child = self.spawn(StopLogger, self.log_path, name)
                self.children.append(child)
                return child
            case "children":
                return self.children
            case ("lookup", name):
                return self.system.lookup(name)

    def on_stop(self) -> None:
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(f"stop {self.ref.name}\n")


class StopLogger(actors.Actor):
    """Appends a line to a file on start and on stop."""

    def __init__(self, path: str, label: str) -> None:
        self.path = path
        self.label = label

    def on_start(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"start {self.label}\n")

    def on_stop(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"stop {self.label}\n")

    def receive(self, message):
        if message == "pid":
            return os.getpid()
        if message == ("spawn_logger", message[1] if isinstance(message, tuple) else None):
            return self.spawn(StopLogger, self.path, message[1], name=message[1])
        return None


class Blocker(actors.Actor):
    """Blocks in a handler until released or forever; used to kill it mid-ask."""

    def receive(self, message):
        match message:
            case "pid":
                return os.getpid()
            case "block":
                threading.Event().wait()  # never set: stays in the handler
            case "selfask":
                # waits on its own mailbox forever, while the process keeps
                # receiving (and queueing) messages
                return self.ref.ask("pid")
            case ("sleep", seconds):
                time.sleep(seconds)  # simulated work
                return "slept"


class BusyBudget(actors.Actor):
    """Says its host's busy-wait budget (``busy_wait`` as the host got it)."""

    def receive(self, message):
        from actors.host import running_host

        return running_host().runtime.loop.busy.budget


class Crasher(actors.Actor):
    def receive(self, message):
        match message:
            case "pid":
                return os.getpid()
            case "raise":
                raise RuntimeError("crash in tell")
            case ("exit", code):
                os._exit(code)


class Stubborn(actors.Actor):
    """Its on_stop never returns: it must be killed."""

    def receive(self, message):
        return os.getpid()

    def on_stop(self) -> None:
        threading.Event().wait()


class Logger(actors.Actor):
    def on_start(self) -> None:
        log.warning("hello from on_start in pid %d", os.getpid())

    def receive(self, message):
        if message == "pid":
            return os.getpid()
        if message == "error":
            try:
                raise LookupError("inside the child")
            except LookupError:
                log.exception("logged with a traceback")
        return None


class FailingInit(actors.Actor):
    def __init__(self) -> None:
        raise OSError("cannot start")


class LocalOnlyError(Exception):
    """Raised in the child; the parent imports this module too, so it is rebuilt."""


class RaisesCustom(actors.Actor):
    def receive(self, message):
        if message == "custom":
            raise LocalOnlyError("custom failure", 42)
        if message == "unsendable":
            return object()
        if message == "unbuildable":
            class Hidden(Exception):  # its class cannot be found by name elsewhere
                pass
            raise Hidden("no class to rebuild me with")
        return None


@actors.message
@dataclass(frozen=True)
class Point:
    x: int
    y: int


class Geometry(actors.Actor):
    def receive(self, message):
        if isinstance(message, Point):
            return Point(message.y, message.x)
        return None


class Chain(actors.Actor):
    """Spawns a child of its own kind from on_start, ``depth`` levels deep."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.child = None

    def on_start(self) -> None:
        if self.depth > 0:
            self.child = self.spawn(Chain, self.depth - 1)

    def receive(self, message):
        if message == "depth":
            return 1 + (self.child.ask("depth", timeout=30) if self.child else 0)
        return None


class Asker(actors.Actor):
    """Answers by asking another actor (a nested wait in its handler)."""

    def __init__(self, other=None) -> None:
        self.other = other

    def receive(self, message):
        if self.other is not None:
            return self.other.ask(message, timeout=30)
        return message


class Slow(actors.Actor):
    def receive(self, message):
        time.sleep(0.05)  # simulated work
        return message


class Relay(actors.Actor):
    """Forwards every message to a target; counts them."""

    def __init__(self, target) -> None:
        self.target = target
        self.n = 0

    def receive(self, message):
        if message == "n":
            return self.n
        if message == "target n":  # same sender as the tells: ordered after them
            return self.target.ask("n", timeout=60)
        self.n += 1
        self.target.tell(message)


class Sink(actors.Actor):
    def __init__(self) -> None:
        self.n = 0

    def receive(self, message):
        if message == "n":
            return self.n
        self.n += 1


class Greeter(actors.Actor):
    """Its on_start spawns a child that tells and asks it at once."""

    def __init__(self) -> None:
        self.got: list = []
        self.child = None

    def on_start(self) -> None:
        self.child = self.spawn(GreetBack, self.ref)

    def receive(self, message):
        if message == "got":
            return self.got
        if message == "child":
            return self.child
        self.got.append(message)
        return "welcome"


class GreetBack(actors.Actor):
    def __init__(self, parent) -> None:
        self.parent = parent
        self.reply = None

    def on_start(self) -> None:
        # (an ask here would wait for the parent, which waits in its own
        # on_start for this spawn to finish: a deadlock)
        self.parent.tell("hello")

    def receive(self, message):
        return self.reply


class Rebel(actors.Actor):
    """A child that stops its own parent."""

    def __init__(self, parent) -> None:
        self.parent = parent

    def receive(self, message):
        if message == "stop parent":
            self.parent.stop()
            return "scheduled"
        return os.getpid()


class RebelParent(actors.Actor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.kid = None

    def on_start(self) -> None:
        self.kid = self.spawn(Rebel, self.ref)

    def receive(self, message):
        return self.kid

    def on_stop(self) -> None:
        with open(self.path, "a") as f:
            f.write("parent stopped\n")


class TellThenStop(actors.Actor):
    """Tells a target some messages, then stops it."""

    def receive(self, message):
        target, count = message
        for i in range(count):
            target.tell(("add", 1))
        target.stop()
        return count


class DiesInOnStop(actors.Actor):
    def receive(self, message):
        return os.getpid()

    def on_stop(self) -> None:
        os._exit(3)


class AsyncSpawner(actors.Actor):
    async def receive(self, message):
        await asyncio.sleep(0.05)  # simulated async work, while a neighbour runs
        return self.spawn(Counter, 0)
