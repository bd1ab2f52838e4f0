"""Sending: one outbox per destination address, batched without delay.

A message is encoded at the send site (a bad value raises there) and
appended to the outbox of its destination. An ask flushes its outbox at
once, since someone waits for the reply. A message posted from the loop
thread is flushed when the loop finishes its current batch of incoming
messages; one posted from another thread wakes the loop, which flushes
everything queued by then. Under load many messages share one transport
send; a lone message leaves without delay. One outbox per destination,
flushed under its ``sending`` lock, keeps send order per sender and
receiver.

Admission. An outbox is made only for an address ``actors.peers`` admits
(a process of this node); for any other, :class:`UnknownPeer` is raised
and the runtime counts the message as refused. An address the rule cannot
decide alone (tcp) waits as if held while the node is asked.

Holding. While the process behind an address is being replaced (a
supervised restart), its outbox *holds*: what is sent there waits, up to
``hold_limit`` envelopes (past it: dead letters, and asks among them fail
at once), until the address is resumed (held first, in order) or released
(dead letters). When and why an address is held is decided by the node's
supervised slots (``actors.slots``); this module only does it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from threading import get_ident
from typing import Any, Protocol

from actors.peers import MAX_UNKNOWN, Peers

__all__ = ["Outbox", "Outboxes", "Reader", "UnknownPeer"]

log = logging.getLogger("actors")

Send = Callable[[bytes], None]


class Reader(Protocol):
    """The loop side an outbox needs: which thread reads, and a wake-up."""

    ident: int | None

    def wake(self) -> None: ...


class UnknownPeer(ConnectionError):
    """No process of this node is at that address (see ``actors.peers``)."""


class _NoReader:
    ident: int | None = None

    def wake(self) -> None:
        pass


def refuse_send(frame: bytes) -> None:
    raise ConnectionError("the process at this address is gone")


class Outbox:
    """Encoded envelopes waiting for one destination.

    ``lock`` guards ``items`` only and is never held during I/O, so posting
    never waits for a transport. ``sending`` is held while frames are sent,
    which keeps them in order; the loop thread only ever tries it (a Pipe
    send may block, and the loop thread is what drains the other side).
    """

    __slots__ = ("lock", "sending", "items", "send", "address", "held", "sent")

    def __init__(self, address: str, send: Send) -> None:
        self.address = address
        self.lock = threading.Lock()
        self.sending = threading.Lock()
        self.items: list[bytes] = []
        self.send = send
        self.held: list[bytes] | None = None  # not None while the address is held
        self.sent = 0  # envelopes handed to the transport (quiescence counts)


class Outboxes:
    """Every outbox of one process (see module doc).

    Args:
        connect: a sender for a new destination (the transport's).
        disconnect: close the transport's link to a destination gone for good.
        frame: packs encoded envelopes into one frame.
        lose: encoded envelopes that can never be delivered (its tells are dead letters).
        overflow: envelopes past a held address's limit (fail asks among them).
        hold_limit: envelopes held per address.
        max_frame: the largest frame sent, in bytes.
        peers: which addresses may be sent to.
        ask_peer: asks the node about an address ``peers`` cannot decide;
            the answer comes back through :meth:`settle_peer`.
    """

    # A burst of tells leaves in frames of at most this many messages, so the
    # receiver starts working while the sender is still producing.
    FLUSH_COUNT = 256

    def __init__(self, connect: Callable[[str], Send], disconnect: Callable[[str], None],
                 frame: Callable[[list[bytes]], bytes],
                 lose: Callable[[list[bytes]], Any], overflow: Callable[[str, list[bytes]], None],
                 hold_limit: int, peers: Peers, ask_peer: Callable[[str], None],
                 max_frame: int) -> None:
        self._connect = connect
        self._disconnect = disconnect
        self._frame = frame
        # the loop (its reading thread, and how to wake it); set by the runtime
        self.reader: Reader = _NoReader()
        self._lose = lose
        self._overflow = overflow
        self.hold_limit = hold_limit
        self.max_frame = max_frame
        self.peers = peers
        self._ask_peer = ask_peer
        self.unknown: set[str] = set()  # addresses waiting for the node's word
        self.refused = 0  # messages to addresses of no process of this node
        self.boxes: dict[str, Outbox] = {}
        self._lock = threading.Lock()
        self.to_flush: set[Outbox] = set()
        self.retry: set[Outbox] = set()
        self.gone: set[str] = set()  # addresses of processes gone for good
        # Senders of batches of their own (actors.mp's puts), run first by
        # every flush_all; one that returns True was busy: look again soon.
        self.flushers: list[Callable[[], bool]] = []
        self._flushers_busy = False

    def _box(self, address: str) -> Outbox:
        box = self.boxes.get(address)
        if box is not None:
            return box
        verdict = self.peers.admit(address)
        if verdict is False:
            raise UnknownPeer(f"no process of this node at {address!r:.200}")
        ask = False
        with self._lock:
            box = self.boxes.get(address)
            if box is None:
                if address in self.gone:
                    box = Outbox(address, refuse_send)
                elif verdict:
                    try:
                        box = Outbox(address, self._connect(address))
                    except Exception as e:
                        raise UnknownPeer(f"cannot connect to {address!r:.200}: {e}") from None
                else:
                    if len(self.unknown) >= MAX_UNKNOWN:
                        raise UnknownPeer(f"too many unknown addresses; {address!r:.200} "
                                          "refused")
                    box = Outbox(address, refuse_send)
                    box.held = []  # until the node says whether it is a peer
                    self.unknown.add(address)
                    ask = True
                self.boxes[address] = box
        if ask:
            self._ask_peer(address)
        return box

    def settle_peer(self, address: str, known: bool) -> None:
        """The node's answer about an unknown address."""
        if address not in self.unknown:
            return
        self.unknown.discard(address)
        if known:
            self.peers.learn([address])
            box = self.boxes.get(address)
            if box is not None:
                try:
                    box.send = self._connect(address)
                except Exception:
                    known = False
            if known:
                self.resume(address)
                return
        self.release(address)

    def post(self, address: str, data: bytes, flush: bool = False) -> None:
        """Queue one encoded envelope for ``address``."""
        box = self.boxes.get(address) or self._box(address)
        with box.lock:
            items = box.items
            items.append(data)
            count = len(items)
        if flush or count >= self.FLUSH_COUNT:
            self.flush(box)
        elif count == 1:
            # This append made the outbox non-empty (decided under its lock),
            # so it is this call's job to get it flushed; later appends ride
            # along with it.
            self.to_flush.add(box)
            reader = self.reader
            if get_ident() != reader.ident:
                reader.wake()

    def flush(self, box: Outbox) -> None:
        """Send everything queued in ``box``, including what is added while
        sending. On the loop thread, if another thread is sending to the
        same destination, leave it to that thread (and look again soon)."""
        if not box.sending.acquire(get_ident() != self.reader.ident):
            self.retry.add(box)
            return
        try:
            while True:
                with box.lock:
                    items = box.items
                    if not items:
                        return
                    box.items = []
                    held = box.held
                    if held is not None:
                        room = max(0, self.hold_limit - len(held))
                        held.extend(items[:room])
                        if len(items) > room:
                            self._overflow(box.address, items[room:])
                        continue
                try:
                    frame = self._frame(items)
                    if len(frame) <= self.max_frame:  # (a burst's frames always are)
                        box.send(frame)
                    else:
                        for chunk in self._chunks(items):
                            box.send(self._frame(chunk))
                    box.sent += len(items)
                except Exception as e:  # the peer is gone, or we are closing
                    self._lose(items)
                    log.debug("could not send %d messages to %s: %s", len(items), box.address, e)
        finally:
            box.sending.release()

    def _chunks(self, items: list[bytes]) -> list[list[bytes]]:
        """``items`` in frames of at most ``max_frame`` bytes each (every
        item fits alone: the runtime refuses bigger ones at the send site)."""
        limit = self.max_frame - 1  # the frame's header byte
        chunks: list[list[bytes]] = [[]]
        size = 0
        for item in items:
            if size + len(item) > limit and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += len(item)
        return chunks

    def kick(self, flusher: Callable[[], bool]) -> None:
        """``flusher`` has something to send: it runs at the next
        :meth:`flush_all`, which a thread other than the reader wakes the
        loop for (as :meth:`post` does)."""
        if flusher not in self.flushers:
            self.flushers.append(flusher)
        reader = self.reader
        if get_ident() != reader.ident:
            reader.wake()
        else:  # (the reader may be past its flush_all: it looks again soon)
            self._flushers_busy = True

    def flush_all(self) -> None:
        if self.flushers:
            for flusher in self.flushers:
                if flusher():
                    self._flushers_busy = True
        pending = self.to_flush
        while pending:
            try:
                box = pending.pop()
            except KeyError:  # another thread took the last one
                break
            self.flush(box)

    def take_retries(self) -> bool:
        """Schedule the outboxes the loop thread left to another sender;
        True if there were any, or a flusher was busy (look again shortly)."""
        busy, self._flushers_busy = self._flushers_busy, False
        if not self.retry:
            return busy
        self.to_flush.update(self.retry)
        self.retry.clear()
        return True

    # -- holding ----------------------------------------------------------------
    def hold(self, address: str) -> None:
        """Hold what is sent to ``address`` from now on (see module doc)."""
        if self.peers.admit(address) is False:
            return
        box = self.boxes.get(address)
        if box is None:  # connect only if something is ever sent there
            with self._lock:
                box = self.boxes.setdefault(address, Outbox(address, self._lazy(address)))
        with box.lock:
            if box.held is None:
                box.held = []

    def _lazy(self, address: str) -> Send:
        def send(frame: bytes) -> None:
            box = self.boxes[address]
            box.send = self._connect(address)
            box.send(frame)
        return send

    def resume(self, address: str) -> None:
        """A new process took over ``address``: send what was held, first."""
        if address in self.gone:
            self.revive(address)
            return
        box = self.boxes.get(address)
        if box is None:
            return
        with box.lock:
            held, box.held = box.held, None
            if held:
                box.items[:0] = held
            pending = bool(box.items)
        if pending:
            self.to_flush.add(box)
            self.reader.wake()

    def release(self, address: str) -> None:
        """``address`` will not come back: what was held is dead letters,
        and the address is forgotten."""
        box = self.boxes.get(address)
        if box is not None:
            with box.lock:
                held, box.held = box.held, None
            if held:
                self._lose(held)
        self.forget(address)

    def forget(self, address: str) -> None:
        """The process at ``address`` is gone for good: close the link (never
        reconnect) and refuse whatever is still sent there."""
        box = self.boxes.get(address)
        if box is None and self.peers.admit(address) is False:
            return  # never one of ours: nothing to forget
        self.gone.add(address)
        self.peers.forget(address)
        if box is not None:
            with box.lock:
                lost, box.items = box.items, []
                box.held = None
                box.send = refuse_send
            self._lose(lost)
        self._disconnect(address)

    def revive(self, address: str) -> None:
        """A new process listens at an address that had gone (tcp ports are
        reused): talk to it afresh."""
        self.gone.discard(address)
        self.unknown.discard(address)
        with self._lock:
            self.boxes.pop(address, None)

    # -- state ------------------------------------------------------------------
    def sent_count(self) -> int:
        """Envelopes handed to the transport."""
        return sum(box.sent for box in list(self.boxes.values()))

    def idle(self) -> bool:
        """Nothing waits to be sent."""
        if self.to_flush or self.retry:
            return False
        return not any(box.items for box in list(self.boxes.values()))

    def close(self, flush: bool) -> None:
        for box in list(self.boxes.values()):
            if flush:
                self.flush(box)
            else:
                box.items.clear()

    def statistics(self) -> dict[str, Any]:
        """Destinations, envelopes queued and held, addresses gone."""
        boxes = list(self.boxes.values())
        return {"destinations": len(boxes), "queued": sum(len(b.items) for b in boxes),
                "held": sum(len(b.held) for b in boxes if b.held is not None),
                "gone": len(self.gone), "refused": self.refused}
