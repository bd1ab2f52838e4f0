"""Queue lending, the consumer's side: items a queue lent to a handle of
this process (see ``actors.mp.queues.QueueServer`` for the queue's side).

A consumer that reads its inbox on a thread of its own (the main program,
an ``actors.mp.Process``) may be answered several items at once: they wait
in its handle's buffer, *lent*, until it takes them, and go back to the
queue when it recalls them (an ``Ext("mp.recall")`` service tell, answered
on the reading thread) or when the handle closes, is collected, or its
process exits.

Asking ahead. While a loan is in use, the handle asks for the next one
once half of the current one is taken (``("more", ...)``, one request at
a time), so the consumer does not stop for a round trip every loan. The
queue answers it only while it can lend (nobody else waits, nothing was
recalled) and counts what it hands out as lent to the same handle; an
empty answer just means "ask normally when the buffer is empty". A
handle never sends a normal ``get`` while its request ahead is out (the
queue reads a ``get`` as "it used what it had"), and it gives its items
back only once that request has been answered, so that what comes back
to the queue comes back in one piece, in order.
"""

from __future__ import annotations

import collections
import threading
import weakref
from typing import Any

from actors.mp import batching, context
from actors.mp.routes import piece_budget, take_front

__all__ = ["Borrower", "give_back_all", "recall"]

AHEAD_FROM = 8  # a loan this big or bigger is followed by a request ahead


class Borrower:
    """The lending half of a ``Queue`` handle (a mixin of ``Handle``)."""

    _ref: Any
    _tell: Any  # (Handle's)
    LOAN_FIELDS = ("_buffer", "_lock", "_handle", "_want", "_lent", "_getting", "_ahead")

    def _init_loans(self) -> None:
        # items lent to this process (see QueueServer), still packed
        self._buffer: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._handle = context.token()
        self._want = 1  # how many to ask for: doubles while the queue has plenty
        self._lent = False  # the queue counts items as lent to this handle
        self._getting = 0   # requests of this handle in flight (their answer may be a loan)
        self._ahead: Any = None  # the request ahead in flight (its future)
        _handles[self._handle] = self

    def _received(self, future: Any) -> None:
        """On the reading thread, before any recall that follows: keep the
        items (a recall then finds them here). ``get`` calls it too, once its
        answer is in (the reading thread may not have yet): the first keeps."""
        if future.cancelled() or future.exception() is not None:
            return
        answer = future.result()
        if type(answer) is list:
            with self._lock:
                if getattr(future, "kept", False):
                    return
                future.kept = True
                self._buffer.extend(answer)
                if len(answer) > 1:
                    self._lent = True
            self._grow(len(answer), shrink=True)

    def _grow(self, got: int, shrink: bool) -> None:
        """The next loan to ask for: twice this one (up to 256) when it was
        full; when it was not, as many as came (``shrink``)."""
        if got >= self._want:
            self._want = min(self._want * 2, 256)
        elif shrink:
            self._want = max(1, got)

    def _ask_ahead(self) -> None:
        """Half the loan is taken: ask for the next one (see module doc)."""
        with self._lock:
            if (self._ahead is not None or not self._lent or self._want < AHEAD_FROM
                    or len(self._buffer) > self._want // 2):
                return
            self._getting += 1
            self._ahead = True  # (the future, once sent)
        try:
            batching.send_first()  # puts before it leave before it
            ref = context.bind(self._ref)
            future = ref._runtime.ask(ref, ("more", self._handle, self._want, context.me()),
                                      self._ahead_answered)
        except BaseException:
            with self._lock:
                self._getting -= 1
                self._ahead = None
            raise
        with self._lock:
            if self._ahead is True:  # (not answered yet)
                self._ahead = future

    def _ahead_answered(self, future: Any) -> None:
        """On the reading thread: the answer to a request ahead."""
        answer = [] if future.cancelled() or future.exception() is not None else \
            future.result()
        with self._lock:
            self._getting -= 1
            self._ahead = None
            if type(answer) is list and answer:
                self._buffer.extend(answer)
                self._grow(len(answer), shrink=False)
            closed = getattr(self, "_closed", False)
        if closed and answer:
            self._give_back()  # lent after close() gave back the rest: back too

    def _wait_ahead(self, timeout: float | None) -> None:
        """Until the request ahead (if any) is answered, up to ``timeout``."""
        future = self._ahead
        if future is None or future is True:
            return
        try:
            future.exception(timeout)
        except Exception:  # a timeout: the caller looks at the buffer again
            pass

    def _recalled(self, counts: list[Any] | None) -> None:
        """The queue recalls what it lent (``counts``: of the direct path,
        ``actors.mp.direct``)."""
        self._give_back(recalled=True)

    def _give_back(self, recalled: bool = False) -> None:
        if not recalled:  # (a recall runs on the reading thread: it never waits)
            self._wait_ahead(None)
        with self._lock:
            items = list(self._buffer)
            self._buffer.clear()
            # (a get in flight tells the queue itself; an empty give-back
            # sent now could arrive after it and retire its new loan)
            lent = self._lent and not self._getting
            if lent:
                self._lent = False
        # A recall is always answered, if only with []; so is a loan, even
        # used up, so that the queue stops counting it (at exit, say).
        if items or recalled or lent:
            # in pieces under half a frame each (a routed consumer may hold
            # many); the queue puts them back once the last has come
            budget = piece_budget(context.bind(self._ref)._runtime)
            while True:
                piece, items = take_front(items, budget)
                self._tell(("give_back", self._handle, piece, bool(items)))
                if not items:
                    return


# This process's queue handles, by handle number (for recalls).
_handles: weakref.WeakValueDictionary[int, Borrower] = weakref.WeakValueDictionary()


def recall(runtime: Any, args: list[Any]) -> None:
    """A queue wants back what it lent to one of our handles."""
    handle = _handles.get(args[0])
    if handle is not None:
        handle._recalled(args[2] if len(args) > 2 else None)
    else:  # collected: it gave its items back as it went
        runtime.tell(args[1], ("give_back", args[0], []))


def give_back_all() -> None:
    """At exit: every handle returns what it was lent."""
    for handle in list(_handles.values()):
        try:
            handle._give_back()
        except Exception:
            pass
