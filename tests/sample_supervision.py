"""Actor classes spawned by tests/test_supervision.py.

They live in an importable module because children are started with the
*spawn* method: a fresh interpreter must be able to import them.

Most of them can write one line per lifecycle event to a log file whose
path the test passes as an argument (``"start a 1234"``, ``"stop a 1234"``):
processes append to the same file, and since a supervisor starts (and
stops) its children one after the other, the file's line order is the
order of the events.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from typing import Any

import actors


def append(path: str | None, line: str) -> None:
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def describe(exc: BaseException | None) -> dict[str, Any] | None:
    """What a test needs to know of ``on_restart``'s argument, as plain data."""
    if exc is None:
        return None
    return {"type": type(exc).__name__, "reason": getattr(exc, "reason", None),
            "text": str(exc), "is_dead_error": isinstance(exc, actors.ActorDeadError)}


class Worker(actors.Actor):
    """A supervised child that can count, crash in every way, watch others,
    and report how its incarnation began.

    Constructor: ``Worker(label, log_path=None, *extra)``; ``extra`` lets a
    simple_one_for_one template take arguments after its own.
    """

    def __init__(self, label: str, log_path: str | None = None, *extra: Any) -> None:
        self.label = label
        self.log_path = log_path
        self.extra = list(extra)
        self.count = 0
        self.restarted_with: Any = "not restarted"
        self.notices: list[tuple[Any, str, bool]] = []

    def on_start(self) -> None:
        append(self.log_path, f"start {self.label} {os.getpid()}")

    def on_stop(self) -> None:
        append(self.log_path, f"stop {self.label} {os.getpid()}")

    def on_restart(self, exc: BaseException | None) -> None:
        self.restarted_with = describe(exc)

    def receive(self, message: Any) -> Any:
        if isinstance(message, actors.Terminated):
            self.notices.append((message.ref, message.reason, message.crashed))
            return None
        match message:
            case "pid":
                return os.getpid()
            case "count":
                return self.count
            case ("add", k):
                self.count += k
            case "info":
                return {"label": self.label, "extra": self.extra, "pid": os.getpid(),
                        "restarted_with": self.restarted_with, "count": self.count}
            case "restarted_with":
                return self.restarted_with
            case ("sleep", seconds):
                append(self.log_path, f"sleeping {self.label} {os.getpid()}")
                time.sleep(seconds)  # simulated work
                return "slept"
            # ways to die (during a tell: nobody is waiting, so they crash it)
            case "raise":
                raise ValueError("x")
            case ("exit", code):
                os._exit(code)
            case "segv":
                ctypes.string_at(0)  # reads address 0: SIGSEGV
            case "oom":
                bytearray(1 << 62)  # MemoryError: no machine has 4 EiB
            case "stop":
                self.stop()
            # watching
            case ("watch", ref, link):
                self.watch(ref, link=link)
                return True
            case ("unwatch", ref):
                self.unwatch(ref)
                return True
            case "notices":
                return self.notices
            case _:
                raise KeyError(message)


class Stuck(Worker):
    """Its ``on_stop`` logs that it began, then never returns: an orderly
    stop must end in a kill after its child spec's ``shutdown`` seconds."""

    def on_stop(self) -> None:
        append(self.log_path, f"stopping {self.label} {os.getpid()}")
        threading.Event().wait()  # never set
        append(self.log_path, f"stop {self.label} {os.getpid()}")  # never reached


class SlowRestart(Worker):
    """Its ``on_restart`` takes ``delay`` seconds (simulated work), so a
    restart stays in progress long enough to be observed, and two crashes
    of it are always more than ``delay`` seconds apart."""

    def __init__(self, label: str, log_path: str | None = None, delay: float = 0.5) -> None:
        super().__init__(label, log_path)
        self.delay = delay

    def on_restart(self, exc: BaseException | None) -> None:
        time.sleep(self.delay)  # simulated work
        super().on_restart(exc)


class BadInitError(Exception):
    """Raised by :class:`BadInit`'s constructor (importable in the test
    process, so it comes back as itself)."""


class BadInit(actors.Actor):
    """A child that cannot start: its constructor logs its pid and raises."""

    def __init__(self, label: str, log_path: str | None = None) -> None:
        append(log_path, f"init {label} {os.getpid()}")
        raise BadInitError(f"{label} cannot start")


class LoggedSupervisor(actors.Supervisor):
    """A supervisor that logs its own start (with its pid) and stop, around
    its children's."""

    def __init__(self, label: str, log_path: str, children: list[actors.ChildSpec],
                 **options: Any) -> None:
        self.label = label
        self.log_path = log_path
        super().__init__(children, **options)

    def on_start(self) -> None:
        append(self.log_path, f"start {self.label} {os.getpid()}")
        super().on_start()

    def on_stop(self) -> None:
        append(self.log_path, f"stop {self.label} {os.getpid()}")


# -- supervisors declared with class attributes --------------------------------

class Trio(actors.Supervisor):
    """Three permanent workers, one for one (class-attribute form)."""

    strategy = "one_for_one"
    max_restarts = 10
    max_seconds = 60.0
    children = [
        actors.ChildSpec("a", Worker, args=("a",)),
        actors.ChildSpec("b", Worker, args=("b",), restart="transient"),
        actors.ChildSpec("c", Worker, args=("c",), restart="temporary", shutdown="brutal_kill"),
    ]


class Inner(actors.Supervisor):
    """The lower level of a two-level tree: gives up on its second restart."""

    strategy = "one_for_one"
    max_restarts = 1
    max_seconds = 60.0
    children = [
        actors.ChildSpec("w1", Worker, args=("w1",)),
        actors.ChildSpec("w2", Worker, args=("w2",)),
    ]


class Outer(actors.Supervisor):
    """The top of a two-level tree: restarts ``inner`` once, then gives up."""

    strategy = "one_for_one"
    max_restarts = 1
    max_seconds = 60.0
    children = [
        actors.ChildSpec("inner", Inner),
        actors.ChildSpec("side", Worker, args=("side",)),
    ]


class BadStrategy(actors.Supervisor):
    """Invalid class attributes: spawning it must fail at the call site."""

    strategy = "one_for_some"
    children = [actors.ChildSpec("a", Worker, args=("a",))]


class Pool(actors.Supervisor):
    """simple_one_for_one: the template's args come first, then start_child's."""

    strategy = "simple_one_for_one"
    max_restarts = 10
    max_seconds = 60.0
    children = [actors.ChildSpec("job", Worker, args=("job", None))]


class GatedWorker(actors.Actor):
    """A child whose restarts fail (``on_restart`` raises) until the file
    ``gate`` exists; each refused attempt appends a line to ``log_path``."""

    def __init__(self, gate: str, log_path: str) -> None:
        self.gate = gate
        self.log_path = log_path

    def on_restart(self, exc: BaseException | None) -> None:
        if not os.path.exists(self.gate):
            append(self.log_path, "refused")
            raise RuntimeError("the gate is closed")

    def receive(self, message: Any) -> Any:
        if message == "crash":
            os._exit(3)
        return os.getpid()


def running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie has ended; Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def slow_inbox_close(delay: float) -> None:
    """From now on, this thread sleeps ``delay`` s whenever it is about to
    close a zmq inbox (``transport.zmq.Inbox.close``): a process kept from
    running between its last answer and its exit, as on a loaded machine."""
    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_qualname == "Inbox.close" \
                and frame.f_globals.get("__name__") == "transport.zmq":
            time.sleep(delay)
    sys.setprofile(profile)


class Refuser(actors.Actor):
    """A child whose first ``refusals`` restarts fail (``on_restart``
    raises) and whose failed attempts are slow to close their inbox (the
    socket bound at the slot's address) as their process exits. Each
    incarnation and attempt appends a line ``"PID how"`` to ``log_path``
    as it begins (``on_start``): ``how`` is ``start`` for the first one,
    else whether the process of the one before was still ``running`` or
    ``gone`` by then."""

    def __init__(self, log_path: str, refusals: int, slow: float = 0.3) -> None:
        self.log_path = log_path
        self.refusals = refusals
        self.slow = slow

    def _lines(self) -> list[str]:
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return f.read().splitlines()

    def on_start(self) -> None:
        lines = self._lines()
        how = "start"
        if lines:
            how = "running" if running(int(lines[-1].split()[0])) else "gone"
        append(self.log_path, f"{os.getpid()} {how}")

    def on_restart(self, exc: BaseException | None) -> None:
        if len(self._lines()) <= 1 + self.refusals:  # the first start, then attempts
            slow_inbox_close(self.slow)
            raise RuntimeError("refused")

    def receive(self, message: Any) -> Any:
        if message == "crash":
            os._exit(3)
        return os.getpid()
