"""The runtime of one process: messaging as refs use it.

A :class:`Runtime` is composed of the parts of ``actors``' message path:
the codec (``actors.wire``), the outboxes (``actors.outbox``), the pending
calls (``actors.calls``), the blocking-wait tracker (``actors.waits``) and
the loop (``actors.loop``), with the process's *handler* (the node or a
host) plugged into the loop. Every :class:`ActorRef` decoded or made in a
process is bound to its runtime: ``ref.tell`` is :meth:`Runtime.tell`.

Sending is one encode, one append to the destination's outbox, one
transport send per batch. ``ask`` is ``ask_async`` plus a wait, one path.

Extension points hang off this object (never module globals): layers
above the core (``actors.mp``) register their service hooks in
:attr:`extensions` (reached by an ``Ext`` service operation) and name their
requests in ``waits.brief``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from actors import protocol as P
from actors.calls import Calls
from actors.errors import ActorDeadError, MessageTooLarge, SerializationError
from actors.flow import Flow, Tells
from actors.foreign import Foreign
from actors.handler import ProcessHandler
from actors.loop import MessageLoop
from actors.outbox import Outboxes, UnknownPeer
from actors.peers import Peers
from actors.ref import ActorFuture, ActorRef
from actors.waits import WaitTracker, safe_repr
from actors.wire import RuntimeCodec, find_undecodable
from transport.codec import EncodeError

__all__ = ["Runtime"]

log = logging.getLogger("actors")


class Runtime:
    """Messaging for one process (see module doc).

    Args:
        node_id: the node this process belongs to (names its refs).
        network: the transport adapter (``actors.network``).
        handler: what the process does with messages (the node, a host).
        name: for log lines.
        hold_limit: envelopes held per address during a restart.
        remote_waits: report blocking waits to the node (hosts).
        token: the node's secret, which every service operation carries.
        peers: which addresses this process may send to.
        max_frame: the largest frame, in bytes.
        flow_size, when_full, send_timeout: flow control (``actors.flow``).
    """

    def __init__(self, node_id: str, network: Any, handler: ProcessHandler, name: str,
                 hold_limit: int, remote_waits: bool, token: bytes, peers: Peers,
                 max_frame: int, flow_size: int = 1000, when_full: str = "block",
                 send_timeout: float | None = None) -> None:
        self.node_id = node_id
        self.max_message = max_frame - 1  # an envelope alone in a frame
        self.token = token
        self.network = network
        self.handler = handler
        self.name = name
        self.address: str = network.address
        self.foreign = Foreign(self)  # other nodes (tcp): refs of theirs, lost ones
        # pickle (actors.mp) only on links that stay on this host
        self.codec = RuntimeCodec(self.foreign.make_ref,
                                  allow_pickle=not str(self.address).startswith("tcp://"))
        self.calls = Calls()
        self.dead: dict[int, str] = {}  # uid -> why: asks to them fail at once
        self.dead_letters = 0
        self.extensions: dict[str, Callable[[Runtime, list[Any]], None]] = {}
        # how a stop of another node's actor goes (a cluster sets it; else refused)
        self.remote_stop: Callable[[ActorRef, float | None], None] | None = None
        self.service = self.service_at(network.node_address, "node")
        self.waits = WaitTracker(self.address, self.calls, self._report_wait, self.flush_all,
                                 self.wake, None, remote=remote_waits)
        self.outboxes = Outboxes(network.sender, network.drop, self.codec.frame,
                                 self._lost, self._overflow, hold_limit, peers, self._ask_peer,
                                 max_frame)
        self.loop = MessageLoop(network, self.codec, self.calls, self.outboxes, self.waits,
                                handler, name)
        self.flow = Flow(flow_size, when_full, send_timeout, self.wait, self._dropped_tell)
        # tell, the hot path, is Tells.tell itself (no call layer in between)
        self.tell: Callable[[ActorRef, Any], None] = Tells(self).tell
        self.outboxes.reader = network.reader = self.loop

    def wake(self) -> None:
        self.loop.wake()

    # -- refs ----------------------------------------------------------------------
    def make_ref(self, node: str, uid: int, address: str, name: str | None) -> ActorRef:
        return ActorRef(node, uid, address, name, self)

    def local_ref(self, uid: int, address: str, name: str | None) -> ActorRef:
        """A ref to an actor of this node."""
        return ActorRef(self.node_id, uid, address, name, self)

    def service_at(self, address: str, name: str | None = None) -> ActorRef:
        """The runtime service (uid 0) of the process at ``address``."""
        return ActorRef(self.node_id, P.SERVICE_UID, address, name, self)

    # -- sending -------------------------------------------------------------------
    def encode(self, envelope: list[Any]) -> bytes:
        try:
            data = self.codec.encode(envelope)
        except EncodeError as e:
            raise SerializationError(str(e), e.type_name) from None
        if len(data) > self.max_message:
            raise self.too_large(len(data))
        return data

    def too_large(self, size: int) -> MessageTooLarge:
        return MessageTooLarge(f"a message of {size} bytes is over this system's max_frame "
                               f"of {self.max_message + 1} bytes", size, self.max_message + 1)

    def post(self, address: str, data: bytes, flush: bool = False) -> bool:
        """Queue an encoded envelope; False (counted, logged) if no process
        of this node is at ``address``."""
        try:
            self.outboxes.post(address, data, flush)
            return True
        except UnknownPeer as e:
            self.outboxes.refused += 1
            self.loop.dropped(f"a message to an unknown address: {e}")
            return False

    def flush_all(self) -> None:
        self.outboxes.flush_all()

    def ask(self, ref: ActorRef, message: Any,
            on_done: Callable[[ActorFuture], None] | None = None) -> ActorFuture:
        """Send an ask. ``on_done`` is attached to the future before the
        request leaves, so it runs on the thread that reads the reply,
        before that thread handles anything that came after it."""
        call_id = self.calls.next_id()
        return self._request(ref, P.Ask.wire(ref.uid, message, self.address, call_id),
                             call_id, on_done)

    def call(self, ref: ActorRef, method: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> ActorFuture:
        call_id = self.calls.next_id()
        return self._request(ref, P.Call.wire(ref.uid, method, args, kwargs, self.address,
                                              call_id), call_id, None)

    def _request(self, ref: ActorRef, wire: list[Any], call_id: int,
                 on_done: Callable[[ActorFuture], None] | None,
                 described: Any = None) -> ActorFuture:
        """Send a request (its wire array); the future keeps it (or
        ``described``: a service operation) to describe its wait."""
        data = self.encode(wire)
        future = ActorFuture(self, call_id, ref, wire if described is None else described)
        if on_done is not None:
            future.add_done_callback(on_done)
        # Register before checking for death: mark_dead sets `dead` then scans
        # the calls, so one of the two always sees the other.
        self.calls.add(future)
        lost = self.foreign.lost  # (other nodes lost: their refs are dead too)
        reason = self.dead.get(ref.uid, lost.get(ref.node) if lost else None)
        if reason is not None:
            self.calls.fail(call_id, ActorDeadError(f"{ref!r} is dead ({reason})", ref, reason))
            return future
        try:
            self.outboxes.post(ref.address, data, flush=True)
        except UnknownPeer as e:
            self.calls.fail(call_id, ActorDeadError(f"{ref!r} is unreachable: {e}", ref, str(e)))
        return future

    def reply(self, address: str, call_id: int, uid: int, ok: bool, value: Any) -> None:
        """Answer call ``call_id`` of the process at ``address``, as ``uid``
        (the uid the request was addressed to)."""
        # A request's fields came from a peer: checked here, where they are used
        if type(address) is not str or type(call_id) is not int or type(uid) is not int:
            self.loop.dropped(f"a request with a malformed reply_to, call id or uid "
                              f"({safe_repr(address, 80)}, {safe_repr(call_id, 40)})")
            return
        try:
            data = self.encode(P.Answer.wire(call_id, uid, ok, value))
        except (SerializationError, MessageTooLarge) as e:
            try:
                data = self.encode(P.Answer.wire(call_id, uid, False, e))
            except (SerializationError, MessageTooLarge) as again:  # a call id out of range
                self.loop.dropped(f"a reply that cannot be sent: {again}")
                return
        self.post(address, data)

    def answer(self, request: Any, ok: bool, value: Any) -> None:
        """Answer an Ask or a Call envelope."""
        self.reply(request.reply_to, request.call_id, request.uid, ok, value)

    # -- service operations ----------------------------------------------------------
    def tell_service(self, address: str, operation: Any, flush: bool = False) -> None:
        """Send a service operation (``actors.protocol``) to a process."""
        self.post(address, self.service_envelope(operation), flush)

    def service_envelope(self, operation: Any) -> bytes:
        return self.encode([P.TELL, P.SERVICE_UID, P.encode_op(operation, self.token), True])

    def service_op(self, envelope: Any) -> Any:
        """The service operation an envelope to uid 0 carries (checked), or
        None if the envelope was refused (an asker learns why)."""
        bad = find_undecodable(envelope) if self.codec.bad else None
        if bad is not None:
            self.refuse(envelope, SerializationError(f"a service operation could not be "
                                                     f"decoded: {bad.error}"))
            return None
        if not isinstance(envelope, (P.Tell, P.Ask)):
            self.refuse(envelope)
            return None
        return P.decode_op(envelope.payload, self.token)

    def _ask_peer(self, address: str) -> None:
        def settled(future: ActorFuture) -> None:
            known = future.exception() is None and future.result() is True
            self.outboxes.settle_peer(address, known)
            if not known:
                self.fail_address(address, "no process of this node is there")
        self.ask_service(self.service.address, P.IsPeer(address), on_done=settled)

    def ask_service(self, address: str, operation: Any,
                    on_done: Callable[[ActorFuture], None] | None = None) -> ActorFuture:
        """Ask a process's service; the future is described by the operation."""
        call_id = self.calls.next_id()
        wire = [P.ASK, P.SERVICE_UID, P.encode_op(operation, self.token), True, self.address,
                call_id]
        return self._request(self.service_at(address), wire, call_id, on_done, operation)

    def _report_wait(self, operation: Any) -> None:
        self.tell_service(self.service.address, operation)

    # -- what cannot be delivered ------------------------------------------------------
    def refuse(self, envelope: Any, error: BaseException | None = None) -> None:
        """An envelope that will not be handled: fail its asker (by default
        with ActorDeadError), or count a tell as a dead letter."""
        if isinstance(envelope, P.REQUESTS):
            if error is None:
                reason = self.dead.get(envelope.uid, "no such actor here")
                error = ActorDeadError(f"actor #{envelope.uid} is dead ({reason})", None, reason)
            if type(envelope) is P.Receipted:
                self.lose(1)  # a tell all the same: a dead letter
            self.answer(envelope, False, error)
        else:
            self.lose(1)
            if error is not None:
                log.warning("%s dropped a message: %s", self.name, error)

    def lose(self, count: int) -> None:
        """``count`` messages found no actor: dead letters."""
        self.dead_letters += count

    def _lost(self, items: list[bytes]) -> list[Any]:
        """Encoded envelopes that will never be sent: the tells among them
        are dead letters (an ask fails by its target's death instead; a
        service operation to a process that is gone is none of a program's
        messages). Returns the requests among them."""
        envelopes = list(_envelopes_in(self.codec, items)) if items else []
        self.lose(sum(1 for e in envelopes if _dead_letter(e)))
        return [e for e in envelopes if isinstance(e, P.REQUESTS)]

    def count_dead_letter(self, ref: Any, message: Any) -> None:
        self.lose(1)
        log.info("dead letter to %r: %s", ref, safe_repr(message, 200))

    def _dropped_tell(self, ref: ActorRef, message: Any) -> None:
        self.lose(1)
        self.loop.dropped(f"a tell to {ref!r}: its mailbox is full (when_full='drop')")

    def _overflow(self, address: str, items: list[bytes]) -> None:
        """Envelopes past the restart buffer of a held address: dead
        letters; an ask among them fails now rather than time out."""
        requests = self._lost(items)
        log.warning("%s: %d messages to %s exceed the restart buffer (%d): dead letters",
                    self.name, len(items), address, self.outboxes.hold_limit)
        for envelope in requests:
            future = self.calls.pop(envelope.call_id)
            if future is not None:
                with contextlib.suppress(concurrent.futures.InvalidStateError):  # cancelled
                    future.set_exception(ActorDeadError(
                        f"actor #{envelope.uid} is restarting and this process's restart "
                        f"buffer for it ({self.outboxes.hold_limit} messages) is full",
                        future.target, "restart buffer full"))

    def forget_call(self, call_id: int) -> None:
        self.calls.pop(call_id)

    # -- deaths ----------------------------------------------------------------------
    def mark_dead(self, uids: list[int], reason: str) -> None:
        """These actors are gone for good: asks pending on them fail now,
        and later ones at once."""
        gone = set(uids)
        for uid in gone:
            self.dead[uid] = reason
        self.calls.fail_dead(gone, reason)

    def hold(self, address: str, uids: list[int], reason: str) -> None:
        """The process at ``address`` died and a supervisor may restart its
        actor there: asks pending on ``uids`` fail now, and what is sent to
        the address from now on waits (see ``actors.outbox``)."""
        self.outboxes.hold(address)
        self.calls.fail_dead(set(uids), reason)

    def fail_address(self, address: str, reason: str) -> None:
        """A process is gone: every ask pending on it fails now."""
        self.calls.fail_where(lambda target: target.address == address, reason)

    # -- waiting ---------------------------------------------------------------------
    def wait(self, future: Any, timeout: float | None, track: bool = True) -> None:
        self.loop.wait(future, timeout, track)

    def foreign_wait(self, future: Any) -> None:
        self.loop.foreign_wait(future)

    def waiter(self, thread: int, future: Any) -> Any:
        return self.handler.waiter(thread, future)

    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None:
        if ref.node != self.node_id and self.remote_stop is not None:
            self.remote_stop(ref, timeout)  # a cluster's member, through its node
            return
        self.foreign.local(ref)
        self.handler.stop_actor(ref, timeout)

    # -- extensions --------------------------------------------------------------------
    def extension(self, operation: P.Ext) -> None:
        """An ``Ext`` service operation: run the hook registered under its name."""
        fn = self.extensions.get(operation.name)
        if fn is None:
            log.warning("%s: no extension %r", self.name, operation.name)
            return
        try:
            fn(self, operation.args)
        except Exception:
            log.exception("%s: extension %r failed", self.name, operation.name)

    # -- state -----------------------------------------------------------------------
    def idle(self, poll: bool) -> bool:
        return self.loop.idle(poll)

    def counters(self) -> dict[str, int]:
        """What this process dropped, and why (see docs/security.md)."""
        return {"malformed": self.loop.malformed, "forged": self.calls.forged,
                "refused": self.outboxes.refused, "flow_dropped": self.flow.dropped,
                "flow_blocked": self.flow.blocked}

    def statistics(self) -> dict[str, Any]:
        """Counters of this process's message path."""
        return {"received": self.loop.received, "sent": self.outboxes.sent_count(),
                "malformed": self.loop.malformed, "dead_letters": self.dead_letters,
                **self.calls.statistics(), **self.outboxes.statistics(),
                **self.flow.statistics()}

    def close(self, linger: float = 1.0, flush: bool = True) -> None:
        """Send what is queued (unless ``flush`` is False), close the
        transport (waiting up to ``linger`` s for delivery) and the loop."""
        self.outboxes.close(flush)
        self.network.close(linger)
        self.loop.close()


def _dead_letter(envelope: Any) -> bool:
    """A message of the program's lost unsent: a tell (a receipted one too,
    or one that no longer decodes), not a request (its asker is told) nor a
    service operation."""
    if type(envelope) is P.Receipted:
        return True
    if isinstance(envelope, P.REQUESTS):
        return False
    return not (isinstance(envelope, P.Tell) and envelope.uid == P.SERVICE_UID)


def _envelopes_in(codec: RuntimeCodec, items: list[bytes]) -> Iterator[Any]:
    """Encoded envelopes decoded (None for one that fails to decode)."""
    for data in items:
        try:
            yield P.decode_envelope(codec.decode(data))
        except Exception:
            yield None
