"""Flow control: a sender never has more than ``mailbox_size`` tells waiting
in one actor's mailbox.

Each process keeps, per target actor, a *window*: how many tells it sent
there, and how many of them the target has taken from its mailbox, as far
as it knows. It learns the second number from receipts: every half window,
a tell goes as a ``Receipted`` envelope, which the target answers (with
None) when it takes it from its mailbox, before handling it. A tell that
would put more than ``mailbox_size`` of this process's messages in the
target's mailbox waits for the oldest receipt (``when_full="block"``, up
to ``send_timeout``, then :class:`~actors.MailboxFull`), or is dropped and
counted as a dead letter (``"drop"``). Nothing waits when the target keeps
up: one tell in ``mailbox_size / 2`` carries a receipt, and its answer
costs one small message back.

A sender blocked on a window waits like an ask (``MessageLoop.wait``): the
deadlock detector sees the wait, as an edge from the sender to the target,
and a handler that waits keeps its process's loop running.

The counts are kept without a lock: when several threads of one process
tell the same actor at once, a few sends may go uncounted and the window
let slightly more through; the hard cap below still bounds the mailbox.

Asks are not counted: each asker waits for its reply, and a mailbox also
refuses what arrives past ``HARD_CAP`` times ``mailbox_size`` messages
(tells become dead letters, asks fail with MailboxFull), whatever sends it.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.errors import ActorDeadError, ActorError, MailboxFull, SerializationError
from actors.outbox import UnknownPeer
from actors.protocol import TELL
from actors.ref import ActorFuture, ActorRef
from transport.codec import EncodeError

__all__ = ["HARD_CAP", "Flow", "Tells", "Window"]

HARD_CAP = 64  # a mailbox refuses what arrives past HARD_CAP * mailbox_size messages


class Window:
    """This process's tells to one actor."""

    __slots__ = ("sent", "acked", "marked", "receipts", "check_at", "size", "half")

    def __init__(self, size: int, half: int) -> None:
        self.size = size
        self.half = half
        self.sent = 0       # tells sent
        self.acked = 0      # of those, how many the target took from its mailbox
        self.marked = 0     # ``sent`` when the last receipt was asked for
        self.receipts: collections.deque[tuple[int, ActorFuture]] = collections.deque()
        # the tell that needs more than a plain send (a receipt, or room):
        # until ``sent`` reaches it, a tell is one comparison (the hot path)
        self.check_at = half

    def recheck(self) -> None:
        self.check_at = min(self.acked + self.size, self.marked + self.half)

    def acknowledge(self, seq: int, future: ActorFuture) -> None:
        """A receipt came back (or its target died: nothing waits there now)."""
        if seq > self.acked:
            self.acked = seq
            self.recheck()
        try:
            self.receipts.remove((seq, future))
        except ValueError:
            pass


class Flow:
    """The windows of one process (see module doc).

    Args:
        size: ``mailbox_size``.
        when_full: ``"block"`` or ``"drop"``.
        timeout: ``send_timeout`` (None: no limit).
        wait: waits for a future like an ask (``MessageLoop.wait``).
        drop: counts a dropped tell as a dead letter.
    """

    def __init__(self, size: int, when_full: str, timeout: float | None,
                 wait: Callable[[Any, float | None], None],
                 drop: Callable[[ActorRef, Any], None]) -> None:
        self.size = size
        self.half = max(1, size // 2)
        self.block = when_full == "block"
        self.timeout = timeout
        self._wait = wait
        self._drop = drop
        self.windows: dict[int, Window] = {}  # by target uid (unique in its node)
        self.blocked = 0   # tells that had to wait for room
        self.dropped = 0   # tells dropped for want of room

    def window(self, uid: int) -> Window:
        window = self.windows.get(uid)
        if window is None:
            window = self.windows[uid] = Window(self.size, self.half)
        return window

    def make_room(self, ref: ActorRef, window: Window, message: Any) -> bool:
        """The window to ``ref`` is full: wait for a receipt, or drop the
        tell (False). Raises MailboxFull when the wait times out."""
        if not self.block:
            self.dropped += 1
            self._drop(ref, message)
            return False
        self.blocked += 1
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while window.sent - window.acked >= self.size:
            try:  # (the reading thread may take the first receipt meanwhile)
                first = window.receipts[0][1]
            except IndexError:
                if window.sent - window.acked >= self.size:  # cannot happen
                    raise ActorError(f"no receipt outstanding towards {ref!r}") from None
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise MailboxFull(f"no room in the mailbox of {ref!r} within "
                                  f"{self.timeout} s ({self.size} messages from this "
                                  "process wait there); the message was not sent", ref)
            self._wait(first, left)
        return True

    def statistics(self) -> dict[str, Any]:
        return {"windows": len(self.windows), "blocked": self.blocked, "dropped": self.dropped}


class Tells:
    """How a process sends tells, under its flow control (``Runtime.tell``).

    Args:
        runtime: the process's ``actors.runtime.Runtime`` (its codec,
            outboxes, calls, flow windows and the uids known dead).
    """

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.flow: Flow = runtime.flow
        self.windows = runtime.flow.windows
        self.codec = runtime.codec
        self.outboxes = runtime.outboxes
        self.dead: dict[int, str] = runtime.dead
        self.max_message: int = runtime.max_message

    def tell(self, ref: ActorRef, message: Any) -> None:
        uid = ref.uid
        window = self.windows.get(uid)
        if window is None or window.sent >= window.check_at or uid in self.dead:
            window = self.checked(ref, message)
            if window is None:  # sent otherwise, or not at all
                return
        # The hot path: Runtime.encode(Tell.wire(...)) inlined (two calls less)
        try:
            data = self.codec.encode([TELL, uid, list(message), True] if type(message) is tuple
                                     else [TELL, uid, message, False])
        except EncodeError as e:
            raise SerializationError(str(e), e.type_name) from None
        if len(data) > self.max_message:
            raise self.runtime.too_large(len(data))
        try:
            self.outboxes.post(ref.address, data)
        except UnknownPeer:  # a ref to no process of this node: as to a dead actor
            self.runtime.count_dead_letter(ref, message)
            return
        window.sent += 1

    def checked(self, ref: ActorRef, message: Any) -> Window | None:
        """A tell past the fast path's one comparison: to a dead actor
        (a dead letter), or one that needs room (waits, or is dropped) or
        a receipt (sent here). The window if a plain send is still due."""
        uid, flow = ref.uid, self.flow
        if uid in self.dead:
            self.runtime.count_dead_letter(ref, message)
            return None
        window = flow.window(uid)
        if window.sent - window.acked >= flow.size and not flow.make_room(ref, window, message):
            return None
        if window.sent - window.marked >= flow.half:
            self.receipted(ref, window, message)
            return None
        return window

    def receipted(self, ref: ActorRef, window: Window, message: Any) -> None:
        """A tell that asks for a receipt (see module doc)."""
        runtime = self.runtime
        calls = runtime.calls
        call_id = calls.next_id()
        wire = P.Receipted.wire(ref.uid, message, runtime.address, call_id)
        data = runtime.encode(wire)
        seq = window.sent + 1
        future = ActorFuture(runtime, call_id, ref, wire)
        future.busy = False  # a sender waiting for room: the target needs the CPU to make it
        future.add_done_callback(lambda done: window.acknowledge(seq, done))
        window.receipts.append((seq, future))
        calls.add(future)
        try:
            self.outboxes.post(ref.address, data)
        except UnknownPeer:
            calls.fail(call_id, ActorDeadError(f"{ref!r} is unreachable", ref, "unknown"))
            runtime.count_dead_letter(ref, message)
            return
        window.sent = window.marked = seq
        window.recheck()
