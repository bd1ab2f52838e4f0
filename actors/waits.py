"""The blocking waits of one process: the raw material of the wait-for graph.

Every process (the node and each host) keeps a :class:`WaitTracker`. A
*wait* is recorded when a thread blocks on an ask whose waiting blocks an
actor's mailbox (an ask from a handler, on the host's loop thread or inside
an ``async def`` handler) or, in the node, when a thread of the main
program blocks on an ask. Recording costs a small object and a dict entry;
nothing is sent.

Waits are *reported* to the node only once they are older than
``report_after`` (a quarter of the detection delay): almost every ask is
answered well before that, so the detector costs nearly nothing on the
message path. A reported wait that ends is withdrawn with one more message.
The node's own waits are read directly by its detector.

Nested waits on a host's loop thread form a *stack*: while one handler
waits, the loop runs other actors' handlers, and one of those may wait in
turn. The lower handler cannot resume before the upper one returns, even
when its own reply has come: the detector turns the stack into edges
(lower waiter -> upper waiter). ``async def`` handlers push a *frame* on
that stack while they run, for the same reason.
"""

from __future__ import annotations

import itertools
import math
import reprlib
import threading
import time
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.calls import Calls
from actors.protocol import WaitInfo

# what a wait is for, as reported to the node
ASK = "ask"
CALL = "call"
TELL = "tell"         # a tell waiting for room in its target's mailbox (actors.flow)
SERVICE = "service"   # a request to the node's service (spawn, restart, stop ...)
FRAME = "frame"       # an async handler running on the loop thread's stack
HELD = "held"         # an actor's deferred replies wait for a holder (actors.mp locks)

SERVICE_OPS: dict[type, str] = {P.Spawn: "spawn", P.Restart: "restart",
                                P.StopChildren: "stop children", P.Terminate: "terminate",
                                P.Lookup: "lookup", P.Tree: "tree"}


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3
# a ref reads as its name (its address is noise in a deadlock message)
_REPR.repr_ActorRef = lambda ref, level: f"<ref {ref.name or '#' + str(ref.uid)}>"  # type: ignore[attr-defined]


def short(value: Any, limit: int = 80) -> str:
    """A bounded repr that never raises (it runs on the runtime's path)."""
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__} (repr failed)>"
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def safe_repr(value: Any, limit: int | None = None) -> str:
    """``repr(value)`` (cut at ``limit`` characters, as ``f"{value!r:.N}"``
    would), or a placeholder naming its type if the repr raises."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} (repr failed)>"
    return text if limit is None else text[:limit]


def thread_name(ident: int) -> str:
    """The name of the thread ``ident`` ("" for 0: not a thread's wait)."""
    if not ident:
        return ""
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return f"thread {ident}"


def describe(future: Any, brief: dict[str, str]) -> tuple[str, str]:
    """(kind, what) of the request a future waits for, as text. ``brief``
    reads requests by their first element alone (a layer's own asks)."""
    if future is None:
        return FRAME, ""
    request = future.request
    if type(request) is list:  # a request's wire array, as it was sent
        try:
            request = P.decode_envelope(request)
        except P.ProtocolError:
            return ASK, ""
    if isinstance(request, P.Call):
        args = ", ".join([short(a, 40) for a in request.args] +
                         [f"{k}={short(v, 40)}" for k, v in request.kwargs.items()])
        return CALL, f".{request.method}({args})"
    if isinstance(request, P.Receipted):
        return TELL, short(request.message)
    if isinstance(request, P.Ask):
        message = request.message
        if request.is_tuple and message and type(message[0]) is str and message[0] in brief:
            return ASK, brief[message[0]]
        return ASK, short(message)
    if request is None:
        return ASK, ""
    return SERVICE, SERVICE_OPS.get(type(request), type(request).__name__.lower())


class Wait:
    """One blocking wait of ``waiter`` (an actor uid, or a thread key in
    the node) for ``future`` (None: an async handler's frame)."""

    __slots__ = ("id", "waiter", "future", "depth", "since", "reported", "thread", "deadline",
                 "holder", "what")

    def __init__(self, wait_id: int, waiter: Any, future: Any,
                 depth: int | None, deadline: float | None) -> None:
        self.id = wait_id
        self.waiter = waiter
        self.future = future
        self.depth = depth
        # an ask's age is its request's (sent before the wait began; the
        # request closing a cycle is then always the youngest)
        self.since = future.since if future is not None else time.monotonic()
        self.reported = False
        # a thread of the main program is named by its thread (not an actor):
        # its name is looked up when the wait is described (thread_name)
        self.thread = threading.get_ident() if type(waiter) is str else 0
        self.deadline = deadline  # None: it waits for as long as it takes
        self.holder: Any = None   # a HELD wait: the member it waits for
        self.what = ""

    def info(self, address: str, brief: dict[str, str]) -> WaitInfo:
        """The wait as the node's detector sees it."""
        if self.holder is not None:
            return WaitInfo(self.id, self.waiter, None, self.since, HELD, self.what,
                            self.holder, None, None, address, "")
        kind, what = describe(self.future, brief)
        target = self.future.target if self.future is not None else None
        return WaitInfo(self.id, self.waiter, self.depth, self.since, kind, what,
                        target.uid if target is not None else None,
                        target.address if target is not None else None,
                        self.future.call_id if self.future is not None else None, address,
                        thread_name(self.thread))

    def state(self) -> int:
        """For a probe: WAITING while the reply has not come, ANSWERED when
        it came but the waiter has not resumed yet (a frame is WAITING)."""
        if self.future is None or not self.future.done():
            return WAITING
        return ANSWERED


# a wait's state in a probe's answer
GONE, ANSWERED, WAITING = 0, 1, 2
# a request's state at its target, in a probe's answer (Cell.request_state);
# BOUND: deferred, and only what a holder does answers it (see begin_hold)
ABSENT, DEFERRED, QUEUED, BOUND = 0, 1, 2, 3


class WaitTracker:
    """The waits of one process (see module doc).

    Args:
        address: this process's address (names its waits in reports).
        calls: its pending asks (a wait the detector fails is one of them).
        report: posts a service operation to the node (not flushed).
        flush: sends what was posted.
        wake: wakes the loop thread (it may sleep in poll while a wait ages).
        delay: the detection delay (None: nothing is reported).
        remote: report waits to the node (hosts); the node's own tracker is
            read in place by its detector.
    """

    def __init__(self, address: str, calls: Calls, report: Callable[[Any], None],
                 flush: Callable[[], None], wake: Callable[[], None], delay: float | None,
                 remote: bool) -> None:
        self.address = address
        self.calls = calls
        self._report = report
        self._flush = flush
        self._wake = wake
        # how requests that start with these words read in deadlock messages
        # (a layer above names its own, e.g. actors.mp's "acquire")
        self.brief: dict[str, str] = {}
        self.enabled = delay is not None
        self.report_after = delay / 4 if delay is not None else math.inf
        self.remote = remote
        self.active: dict[int, Wait] = {}
        self.stack: list[Wait] = []
        self._ids = itertools.count(1)
        self.due = math.inf  # when the oldest unreported wait must be reported
        # begin/end may run on the loop thread and an async handler's thread
        self.lock = threading.Lock()

    def configure(self, delay: float | None, track: bool = False) -> None:
        """Report waits older than ``delay / 4`` (None: never); record
        them anyway with ``track`` (quiescence needs to know who blocks)."""
        self.enabled = delay is not None or track
        self.report_after = delay / 4 if delay is not None else math.inf

    def begin(self, waiter: Any, future: Any, stacked: bool,
              deadline: float | None = None) -> Wait:
        with self.lock:
            wait = Wait(next(self._ids), waiter, future, len(self.stack) if stacked else None,
                        deadline)
            self.active[wait.id] = wait
            if stacked:
                self.stack.append(wait)
            wake = False
            if self.remote:
                due = wait.since + self.report_after
                if due < self.due:
                    self.due = due
                    wake = not stacked  # not the loop thread: it may sleep in poll
        if wake:
            self._wake()
        return wait

    def begin_hold(self, waiter: int, holder: Any, what: str) -> Wait:
        """Actor ``waiter`` holds deferred requests (marked bound) that only
        ``holder`` (an actor uid or a main-program thread key) can let it
        answer, by releasing a lock: an edge waiter -> holder. It lasts
        until :meth:`end`."""
        wait = self.begin(waiter, None, stacked=False)
        wait.holder = holder
        wait.what = what
        return wait

    def end(self, wait: Wait) -> None:
        with self.lock:
            self.active.pop(wait.id, None)
            if wait.depth is not None and self.stack and self.stack[-1] is wait:
                self.stack.pop()
            if wait.reported:  # sent under the lock: after its Waits report
                self._report(P.Unwaits(self.address, [wait.id]))

    def report_due(self) -> None:
        """Report the waits old enough (hosts; called by the loop thread)."""
        now = time.monotonic()
        if now < self.due:
            return
        after = self.report_after
        with self.lock:
            due = math.inf
            batch = []
            for wait in list(self.active.values()):
                if wait.reported:
                    continue
                if wait.since + after <= now:
                    wait.reported = True
                    batch.append(wait.info(self.address, self.brief))
                else:
                    due = min(due, wait.since + after)
            self.due = due
            if batch:  # posted under the lock: before any Unwaits of these
                self._report(P.Waits(self.address, batch))
        if batch:
            self._flush()

    def probe(self, wait_ids: list[int]) -> list[int]:
        """The state of each wait (GONE, ANSWERED or WAITING)."""
        active = self.active
        return [active[i].state() if i in active else GONE for i in wait_ids]

    def infos(self) -> list[WaitInfo]:
        """Every active wait as the detector sees it (quiescence reports)."""
        with self.lock:
            waits = list(self.active.values())
        return [w.info(self.address, self.brief) for w in waits]

    def old(self, age: float) -> list[Wait]:
        """Active waits older than ``age`` seconds."""
        limit = time.monotonic() - age
        return [w for w in list(self.active.values()) if w.since <= limit]

    def blocked(self, waiter: Any) -> bool:
        """``waiter`` waits for a reply with no deadline (a wait that will
        time out is progress still to come, not a block)."""
        return any(w.waiter == waiter and w.future is not None and w.deadline is None
                   for w in list(self.active.values()))

    def fail(self, wait_id: int, error: BaseException) -> bool:
        """End wait ``wait_id`` with ``error`` (the detector chose it);
        False if its reply came first."""
        wait = self.active.get(wait_id)
        if wait is None or wait.future is None:
            return False
        if not self.calls.fail(wait.future.call_id, error):
            return False  # its reply came first
        self._wake()  # a reader may sleep in poll on the waiter's behalf
        return True


__all__ = ["ABSENT", "ANSWERED", "BOUND", "DEFERRED", "GONE", "HELD", "QUEUED", "TELL", "WAITING",
           "Wait", "WaitTracker", "describe", "safe_repr", "short"]
