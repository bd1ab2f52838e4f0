"""Puts sent in batches: the role of the standard library's feeder thread.

An unbounded ``Queue.put`` (and ``SimpleQueue.put``) returns at once in
both libraries. The standard library appends the item to a buffer that a
feeder thread writes to the pipe; here the item is checked where it was
put (pickled once, or encoded: what cannot be sent raises there, as
before) and appended to its handle's *batch*. The batch leaves as one message
(``("put_many", items)``) when the process's loop next sends what it has
(the first put of a batch wakes it, as any message sent from a thread
does), or at once from the putting thread when it holds ``MAX_ITEMS``
items or ``MAX_BYTES`` bytes. Under a burst of puts, many items share one
message and one dispatch in the queue's actor instead of one each.

What stays as it was:

- the items of one process arrive in the order they were put, across
  threads too: a handle's batches are sent one at a time, in order, under
  its ``sending`` lock;
- any other message this process sends through a handle (a ``get``,
  ``qsize``, an ``Event.set``, a lock's release) first sends every batch
  waiting (:func:`send_first`), so a message that follows a put in the
  program also follows it on the wire, as each put being its own message
  guaranteed;
- an item that cannot be sent (not picklable, pickle over tcp, over
  ``max_frame``) raises at its ``put``, and nothing is sent for it.

A batch goes without flow control (a tell would wait for room in the
queue's mailbox): the loop thread runs the sends, and must never wait on
itself. A batch is at most ``MAX_ITEMS`` items, the mailbox still refuses
what arrives past its hard cap, and the queue holds its items anyway.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from actors import protocol as P
from actors.errors import SerializationError
from actors.mp import context
from transport.codec import EncodeError, Pickled

__all__ = ["MAX_BYTES", "MAX_ITEMS", "Batched", "send_all", "send_first"]

log = logging.getLogger("actors.mp")

MAX_ITEMS = 256
MAX_BYTES = 1 << 20  # (or less: a batch always fits the system's max_frame)
EXT_HEADER = 6       # the most msgpack adds to an extension's bytes
ENVELOPE = 64        # more than a plain put_many envelope adds to its items

_lock = threading.Lock()                 # every batch, and _unsent
_unsent: dict[int, Batched] = {}         # id -> handle with a batch waiting


class Batched:
    """The batch of one handle (a mixin of ``Handle``: ``_ref`` is its
    primitive's ref, bound to this process's runtime by ``bind``)."""

    _ref: Any
    _batch: list[Any]
    _batch_bytes: int
    _sending: threading.Lock
    _envelope = ENVELOPE  # what the envelope of a batch adds to its items, at most
    BATCH_FIELDS = ("_batch", "_batch_bytes", "_sending")  # this process's only

    def _init_batch(self) -> None:
        self._batch = []
        self._batch_bytes = 0
        self._sending = threading.Lock()

    def _put_batched(self, ref: Any, item: Any) -> None:
        """Check ``item`` and add it to the batch (see module doc)."""
        runtime = ref._runtime
        if type(item) is Pickled:  # pickled here, once (the batch reuses the bytes)
            try:
                size = len(runtime.codec.pickled(item)) + EXT_HEADER
            except EncodeError as e:
                raise SerializationError(str(e), e.type_name) from None
        else:
            size = len(runtime.encode(item))  # SerializationError, MessageTooLarge: here
        envelope = self._envelope
        if size > runtime.max_message - envelope:  # (not even alone in a batch)
            raise runtime.too_large(size + envelope)
        limit = min(MAX_BYTES, runtime.max_message - envelope)
        while True:
            with _lock:
                batch = self._batch
                room = not batch or self._batch_bytes + size <= limit
                if room:
                    batch.append(item)
                    self._batch_bytes += size
                    count = len(batch)
                    if count == 1:
                        _unsent[id(self)] = self
                    full = count >= MAX_ITEMS or self._batch_bytes >= limit
            if room:
                break
            self._send_batches(ref, True)  # what is there first: the item would not fit
        if full:
            self._send_batches(ref, True)
        elif count == 1:
            runtime.outboxes.kick(_flush)

    def _send_batches(self, ref: Any, block: bool) -> bool:
        """Send this handle's batches, oldest first; False if another
        thread is sending them (``block`` False)."""
        if not self._sending.acquire(block):
            return False
        runtime = ref._runtime
        try:
            while True:
                with _lock:
                    items = self._batch
                    _unsent.pop(id(self), None)
                    if not items and not self._due():
                        return True
                    self._batch = []
                    self._batch_bytes = 0
                self._deliver(runtime, ref, items)
        finally:
            self._sending.release()
            if self._batch or self._due():  # put while this thread sent: see that it leaves
                runtime.outboxes.kick(_flush)

    def _due(self) -> bool:
        """A message of this handle must leave even with no items waiting
        (``actors.mp.direct``; called under the batches' lock)."""
        return False

    def _deliver(self, runtime: Any, ref: Any, items: list[Any]) -> None:
        """Send one batch to the queue (``actors.mp.direct`` may send it
        elsewhere)."""
        if items and ref.uid not in runtime.dead:  # (else lost with the primitive)
            runtime.post(ref.address, runtime.encode(P.Tell.wire(ref.uid, ("put_many",
                                                                             items))))


def send_all(block: bool = True) -> bool:
    """Send every batch of this process (before any other message of a
    handle: see module doc); False if one was being sent by another
    thread (``block`` False)."""
    with _lock:
        handles = list(_unsent.values())
    done = True
    for handle in handles:
        try:
            if not handle._send_batches(context.bind(handle._ref), block):
                done = False
        except Exception as e:  # the loop thread must go on; the handle's next call raises
            log.debug("a batch of puts could not be sent: %r", e)
    return done


def _flush() -> bool:
    """The loop's flusher: True when a batch was busy (look again soon)."""
    if not _unsent:
        return False
    return not send_all(False)


def send_first() -> None:
    """Before another message of a handle: the batches waiting go first."""
    if _unsent:
        send_all()
