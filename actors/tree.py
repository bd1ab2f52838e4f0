"""The actor tree as the node keeps it: records, orderly stops, supervised
slots and watches.

Every actor has an :class:`ActorRecord` in the node: its name, parent and
children (the logical tree; all processes are the node's children), and for
a supervised actor its *slot*: a uid and address that outlive processes.
When the process behind a slot dies, the node and every host *hold* what is
sent there (``Runtime.hold``); its supervisor decides; a restart starts a
new incarnation that binds the slot address, and the holds are *resumed*
into it, in send order. A slot given up is *finalized*: held messages
become dead letters, the ref is dead for good, watchers are told.

:class:`ActorTree` is a part of :class:`actors.node.Node` (it uses the
node's runtime, hosts and worker pool); it runs on the node's worker
threads, except what is marked as running on the loop thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from actors import protocol as P
from actors.errors import ActorDeadError, ActorError, AskTimeout
from actors.hosts import HostRecord
from actors.notices import ChildExit, Terminated
from actors.ref import ActorRef

log = logging.getLogger("actors")


class ActorRecord:
    """What the node knows of one actor (of one supervised *slot*, across
    its incarnations)."""

    def __init__(self, uid: int, name: str | None, spec: list[Any], parent: int | None) -> None:
        self.uid = uid
        self.name = name
        self.spec = spec
        self.class_path: str = spec[0]
        self.parent = parent
        options = spec[6] if len(spec) > 6 else {}
        self.supervised: bool = bool(options.get("supervised"))
        self.is_supervisor: bool = bool(options.get("supervisor"))
        self.restart_type: str | None = options.get("restart")
        self.shutdown: float | None = options.get("shutdown")  # 0: brutal kill
        self.children: list[int] = []
        self.ref: ActorRef | None = None
        self.host: HostRecord | None = None
        self.state = "starting"           # running | held (between incarnations)
        self.attempt: object | None = None
        self.incarnation = 0
        self.restarts = 0
        self.last_exit: str | None = None
        self.last_crashed = False
        self.ended: tuple[str, bool, Any] | None = None  # reported, process not gone yet
        self.final = False                # stopped for good: no restart
        self.hung: str | None = None      # why its start was cut short (hang_timeout)
        self.expect_exit = False          # stopped by its supervisor for a restart
        self.settled = threading.Event()  # the last incarnation's ending is handled
        self.settled.set()
        self.lock = threading.Lock()      # state changes: the reader vs workers


class ActorTree:
    """The node's record keeping of actors (a mixin of :class:`Node`)."""

    # -- restarts ------------------------------------------------------------------
    def restart(self, uid: int, exc: Any) -> int:
        """Start a new incarnation of a held supervised slot: same uid, same
        ref, and the held messages delivered to it first. Returns its
        incarnation number (0 when the system is shutting down)."""
        if self.shutting_down:
            return 0
        record = self.actors.get(uid)
        if record is None or record.final:
            raise ActorDeadError(f"actor #{uid} is gone for good; it cannot be restarted")
        self.settle(record)
        if record.state == "running":  # restarted already (a stale request)
            return record.incarnation
        if record.state != "held":
            raise ActorError(f"{record.name} is {record.state}; only a stopped child restarts")
        address = record.ref.address  # type: ignore[union-attr]
        record.restarts += 1
        before = {c: self.actors[c].restarts for c in record.children if c in self.actors}
        self._start(record, address, [exc])
        # children of its last incarnation that this one did not reclaim
        # (a reclaimed child restarted, even if it is down again already)
        for child, restarts in before.items():
            child_record = self.actors.get(child)
            if (child_record is not None and child_record.state == "held"
                    and child_record.restarts == restarts):
                self.settle(child_record)
                self.finalize(child_record, "not restarted by its supervisor", False)
        return record.incarnation

    def settle(self, record: ActorRecord) -> None:
        """Wait until the last incarnation of ``record`` has been dealt with
        (its start answered, or its process gone and its children stopped)."""
        limit = self.spawn_timeout + self._stop_budget(record.uid, None) + 5.0
        if not record.settled.wait(limit):
            log.error("actor %s did not settle within %.0f s", record.name, limit)

    def terminate(self, uid: int, keep: bool) -> bool:
        """Stop a supervised actor (its shutdown timeout, then a kill). With
        ``keep`` its ref stays valid, holding messages for a restart (its
        supervisor is not told: it asked); without, it is gone for good."""
        record = self.actors.get(uid)
        if record is None:
            return False
        self.settle(record)  # a start in progress ends first
        with record.lock:
            running = record.state == "running"
            if running and keep:
                record.expect_exit = True  # cleared when it starts again
        if running:
            if keep:
                self._unblock(record)
            self.stop_uid(uid, None, final=not keep)
        self.settle(record)
        record = self.actors.get(uid)
        if record is not None and not keep:  # it was down already
            self.finalize(record, record.last_exit or "stopped", record.last_crashed)
        return True

    def _unblock(self, record: ActorRecord) -> None:
        """Before a supervisor stops ``record`` to restart it with its group:
        its asks waiting on a held sibling fail now. (The sibling's next
        incarnation starts after this stop: waiting for it would hold the
        stop until its shutdown time ran out.)"""
        host = record.host
        parent = self.actors.get(record.parent) if record.parent is not None else None
        if host is None or parent is None:
            return
        for uid in parent.children:
            sibling = self.actors.get(uid)
            if sibling is not None and sibling.state == "held" and sibling.ref is not None:
                self.post(host.address, self.service_envelope(
                    (P.OP_HOLD, sibling.ref.address, [uid],
                     f"{sibling.name} is being restarted with its group")))

    def hold_slot(self, record: ActorRecord, reason: str) -> None:
        """The incarnation of ``record`` ended: hold what is sent to it."""
        with record.lock:
            if record.state == "held":
                return
            record.state = "held"
            record.settled.clear()  # until its process is gone and that is handled
        address = record.ref.address  # type: ignore[union-attr]
        self.held_addresses[address] = record.uid
        self.network.hold(address)
        self.hold(address, [record.uid], reason)
        self.broadcast((P.OP_HOLD, address, [record.uid], reason), skip=record.host)

    def _incarnation_over(self, record: ActorRecord, reason: str, crashed: bool, exc: Any,
                          logged: bool) -> None:
        """The process of a held slot is gone: stop what its incarnation
        started, then let its supervisor decide (unless it asked for this)."""
        pid = record.host.pid if record.host is not None else None
        record.host = None
        record.ended = None
        record.last_exit = reason
        record.last_crashed = crashed
        if crashed and not logged and not self.shutting_down and not record.expect_exit:
            log.error("supervised actor %s (pid %s) died: %s", record.name, pid, reason)

        # Read now: once settled, its supervisor may restart it at once.
        incarnation, expected = record.incarnation, record.expect_exit
        record.expect_exit = False

        def finish() -> None:
            try:
                self.stop_children(record.uid, None)
            finally:
                record.settled.set()
            if expected:  # its supervisor stopped it, and restarts it
                return
            parent = self.actors.get(record.parent) if record.parent is not None else None
            if parent is None or parent.ref is None or self.shutting_down:
                self.finalize(record, reason, crashed)
                return
            notice = ChildExit(record.uid, incarnation, reason, crashed, exc)
            self.post(parent.ref.address, self.encode([P.TELL, parent.uid, notice, False]))

        if record.children:  # (settled was cleared by hold_slot)
            self.workers.submit(finish)
        else:
            finish()

    def _reap(self, host: HostRecord) -> None:
        if host.alive:
            log.warning("process %s did not exit after its supervised actor ended: killing it",
                        host.pid)
            self.kill_host(host)

    # -- watches ---------------------------------------------------------------------
    def watch(self, watcher: ActorRef, target: ActorRef, link: bool) -> None:
        record = self.actors.get(target.uid)
        if record is None:
            reason = self.dead.get(target.uid, "no such actor")
            self._notify(watcher, target, reason, target.uid in self.crashed, link)
        else:
            self.watches.setdefault(target.uid, {})[watcher.uid] = (watcher, link)

    def _notify_watchers(self, record: ActorRecord, reason: str, crashed: bool) -> None:
        for watcher, link in self.watches.pop(record.uid, {}).values():
            self._notify(watcher, record.ref, reason, crashed, link)

    def _notify(self, watcher: ActorRef, target: Any, reason: str, crashed: bool,
                link: bool) -> None:
        record = self.actors.get(watcher.uid)
        if record is None:
            return
        if link and crashed:
            host = record.host
            if host is not None and host.alive:
                label = target.name or f"#{target.uid}"
                self.post(host.address, self.service_envelope(
                    (P.OP_LINK_EXIT, watcher.uid, f"linked actor {label} {reason}")))
            return
        notice = Terminated(target, reason, crashed)
        self.post(watcher.address, self.encode([P.TELL, watcher.uid, notice, False]))

    # -- stopping --------------------------------------------------------------------
    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None:
        # A stop from outside is a normal exit: a permanent child restarts.
        self.stop_uid(ref.uid, timeout, final=False)

    def stop_uid(self, uid: int, timeout: float | None, final: bool = True) -> None:
        """Stop an actor and wait for it. Its host stops its children first
        (asking back with OP_STOP_CHILDREN), then runs its ``on_stop``; each
        actor of the subtree gets its shutdown time (its child spec's, else
        ``timeout``, else the system's) before its process is killed."""
        record = self.actors.get(uid)
        if record is None:
            return
        if final:
            record.final = True
        if record.state == "starting":
            self.settle(record)
        if record.state == "held":
            if final:
                self.settle(record)
                self.finalize(record, "stopped", False)
            return
        host = record.host
        if host is None or not host.alive:
            return
        if record.shutdown == 0:  # brutal_kill
            self.kill_host(host)
            return
        budget = self._stop_budget(uid, timeout)
        try:
            self.ask(self.service_at(host.address), (P.OP_STOP, uid)).result(budget)
        except AskTimeout:
            log.warning("actor %s (pid %s) did not stop within %s s: killing its process",
                        record.name or f"#{uid}", host.pid, budget)
            self.kill_host(host)
        except ActorDeadError:
            pass
        if not host.uids:  # its last actor: wait for the process to end
            if not host.exited.wait(self._own_timeout(record, timeout)):
                log.warning("process %s did not exit after its last actor stopped: killing it",
                            host.pid)
                self.kill_host(host)

    def _own_timeout(self, record: ActorRecord, timeout: float | None) -> float:
        if record.shutdown is not None:
            return record.shutdown
        return self.stop_timeout if timeout is None else timeout

    def _stop_budget(self, uid: int, timeout: float | None) -> float:
        with self.lock:
            record = self.actors.get(uid)
            if record is None:
                return 0.0
            children = list(record.children)
        return self._own_timeout(record, timeout) + sum(
            self._stop_budget(child, timeout) for child in children)

    def stop_children(self, uid: int, timeout: float | None) -> None:
        """Stop an actor's children, the last started first. Supervised
        children of an actor that will be restarted keep their refs."""
        record = self.actors.get(uid)
        if record is None:
            return
        keep = not record.final and record.supervised and not self.shutting_down
        for child in reversed(list(record.children)):
            try:
                child_record = self.actors.get(child)
                if child_record is None:
                    continue
                if keep and child_record.supervised:
                    self.terminate(child, keep=True)
                else:
                    self.stop_uid(child, timeout)
            except Exception:
                log.exception("stopping child #%d failed", child)

    # -- introspection ---------------------------------------------------------------
    def tree(self) -> list[dict[str, Any]]:
        """The live actors as nested data (see ``ActorSystem.tree``)."""
        with self.lock:
            def entry(uid: int) -> dict[str, Any] | None:
                record = self.actors.get(uid)
                if record is None or record.ref is None:
                    return None
                return {"name": record.name, "uid": uid, "ref": record.ref,
                        "class": record.class_path.replace(":", "."),
                        "pid": record.host.pid if record.host is not None else None,
                        "state": "restarting" if record.state == "held" else record.state,
                        "supervisor": record.is_supervisor,
                        "restart": record.restart_type, "restarts": record.restarts,
                        "last_exit": record.last_exit,
                        "children": [e for e in map(entry, record.children) if e]}
            return [e for e in map(entry, self.top) if e]


__all__ = ["ActorRecord", "ActorTree"]
