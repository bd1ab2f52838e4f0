"""Starting actors: spawns, colocated actors, and restarts of supervised slots.

A start takes a blank host (a warm spare, or a new process), asks it to
construct the actor (``Start``) and waits for the answer: the actor's ref
once its ``on_start`` ran, or what it raised. A supervised actor gets its
slot address (``actors.slots``) and a process of its own. A restart is a
start of a new incarnation into the same slot: same uid, same ref, held
messages delivered first.

These calls block: the main program's thread runs them for
``system.spawn``, the node's worker threads for a host's request.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.actor import Actor
from actors.config import SystemConfig
from actors.errors import ActorDeadError, ActorError, AskTimeout, ConfigError, SpawnError
from actors.launcher import HostProcess, Launcher
from actors.ref import ActorRef
from actors.registry import HELD, RUNNING, STARTING, ActorRecord, Registry
from actors.runtime import Runtime
from actors.slots import Slots
from actors.stopping import Finalize, Stopper
from transport.codec import find_class

__all__ = ["Starter"]

log = logging.getLogger("actors")

# A spare taken is replaced this long after its start is answered: the fork
# and the new process's start-up (~4 ms of CPU) then come after the start's
# tail (the answer, the held messages resumed, the actor's first replies),
# not during it on busy cores (docs/performance.md, "Fourth A/B").
REFILL_DELAY = 0.02


class Starter:
    """Spawns and restarts for the node.

    Args:
        note_start: tells the deadlock detector which actor the service
            request being served is starting (a spawn or restart edge).
        finalize: declares a record dead for good (``Endings.finalize``).
    """

    def __init__(self, config: SystemConfig, runtime: Runtime, registry: Registry,
                 launcher: Launcher, slots: Slots, stopper: Stopper,
                 note_start: Callable[[int], None], finalize: Finalize,
                 shutting_down: Callable[[], bool]) -> None:
        self.config = config
        self.runtime = runtime
        self.registry = registry
        self.launcher = launcher
        self.slots = slots
        self.stopper = stopper
        self._note_start = note_start
        self._finalize = finalize
        self._shutting_down = shutting_down
        # set by a cluster (actors.cluster): names unique in the cluster,
        # and actors placed on other nodes (spec.options.node)
        self.names: Any = None
        self.place: Callable[[P.ActorSpec], ActorRef] | None = None

    def spawn(self, spec: P.ActorSpec) -> ActorRef:
        """Start an actor from a spec. A supervised spec naming a held slot
        of the same supervisor restarts that slot (a restarted supervisor
        reclaims its children's refs)."""
        if self._shutting_down():
            raise ActorError("the actor system is shutting down")
        if spec.options.node is not None:
            if self.place is None:
                raise ConfigError("spawn(..., node=...) places an actor in a cluster: this "
                                  "system has none (ActorSystem(cluster='etcd://...'))")
            return self.place(spec)
        spec = self.check_class(spec)
        self.runtime.encode(spec.to_wire())  # a bad argument fails here, at the caller
        registry = self.registry
        with registry.lock:
            existing = registry.named(spec.name) if spec.name is not None else None
            if (existing is not None and spec.options.supervised and existing.supervised
                    and existing.parent == spec.parent and existing.state == HELD):
                existing.spec = spec
                reclaim: ActorRecord | None = existing
            else:
                reclaim = None
                record = registry.add(spec)
        if reclaim is not None:
            self.restart(reclaim.uid, None)
            return reclaim.ref  # type: ignore[return-value]
        if self.names is not None and spec.name is not None:
            try:
                self.names.claim(record)  # unique in the cluster, or ValueError
            except BaseException:
                registry.forget(record)
                raise
        self._note_start(record.uid)
        if spec.colocate is None:
            self.launcher.preload.add(spec.class_path.partition(":")[0])
            self.launcher.activate()
        try:
            if spec.colocate is not None:
                self._colocate(record, spec.colocate)
            else:
                alias = self.slots.address_for(record.uid) if record.supervised else None
                self.start(record, alias, False, None)
        except BaseException:
            registry.forget(record)
            # a supervisor whose start failed kept its children's slots
            self.stopper.stop_all(list(record.children))
            raise
        if self.names is not None and spec.name is not None:
            self.names.announce(record)
        return record.ref  # type: ignore[return-value]

    @staticmethod
    def check_class(spec: P.ActorSpec) -> P.ActorSpec:
        """The spec, if its class is an Actor this program has imported (a
        frame never makes the node import a module); whether it is a
        Supervisor is read from the class itself."""
        cls = find_class(spec.class_path, import_missing=False)
        if cls is None or not issubclass(cls, Actor):
            raise SpawnError(f"cannot spawn {spec.class_path!r}: no Actor class of that name is "
                             "imported in the main program (import its module there first)")
        if cls.is_supervisor != spec.options.supervisor:
            spec = spec._replace(options=spec.options._replace(supervisor=cls.is_supervisor))
        return spec

    def spawn_supervised(self, spec: P.ActorSpec) -> P.Spawned:
        ref = self.spawn(spec)
        if spec.options.node is not None:  # placed: a new ref at each start
            return P.Spawned(ref, 1)
        record = self.registry.get(ref.uid)
        return P.Spawned(ref, record.incarnation if record is not None else 0)

    def _colocate(self, record: ActorRecord, colocate: int) -> None:
        target = self.registry.get(colocate)
        if target is None or target.host is None or not target.host.alive:
            raise ActorDeadError(f"cannot colocate with actor #{colocate}: it is dead")
        if target.supervised or record.supervised:
            raise ValueError("a supervised actor has a process of its own: it cannot be "
                             "colocated, nor host other actors")
        self.start(record, None, False, None, host=target.host)

    def start(self, record: ActorRecord, alias: str | None, restarting: bool, exc: Any,
              host: HostProcess | None = None) -> None:
        """Start ``record``'s actor in ``host``, a spare, or a new process.
        A spare taken is replaced ``REFILL_DELAY`` after this start is
        answered (or failed); one that emptied the pool at once."""
        if host is not None:
            self._start_in(record, alias, restarting, exc, host)
            return
        try:
            host = self.launcher.take()
            if host is None:
                host = self.launcher.start(record.spec.label)
            self._start_in(record, alias, restarting, exc, host)
        finally:
            self.launcher.refill(REFILL_DELAY)

    def _start_in(self, record: ActorRecord, alias: str | None, restarting: bool, exc: Any,
                  host: HostProcess) -> None:
        if alias is not None:
            self.slots.before_first_start(record, host, alias)
        with record.lock:
            attempt = record.attempt = object()
            record.hung = None
            record.state = STARTING
            record.host = host
            record.settled.clear()
        host.uids.add(record.uid)

        def started(future: concurrent.futures.Future) -> None:
            # Runs on the thread that reads the reply, before it handles any
            # later news of this host (its end): a crash right after the
            # start finds the slot open and holds it again. (The spawning
            # thread may get here first; the lock makes the reader wait.)
            with record.lock:
                if record.attempt is not attempt or future.exception() is not None:
                    return
                record.attempt = None
                ref = future.result()
                record.ref = record.ref or ref
                record.state = RUNNING
                record.incarnation += 1
                record.expect_exit = False
                if alias is not None:
                    self.slots.open(record, host, ref.address, restarting)
                record.settled.set()
        try:
            future = self.runtime.ask_service(
                host.address, P.Start(record.uid, record.spec, alias, restarting, exc))
            future.add_done_callback(started)
            future.result(self.config.spawn_timeout)
            started(future)  # in case this thread woke before the callback ran
        except BaseException as e:
            # a failed restart leaves its slot settled once its process is gone
            restart = alias is not None and record.incarnation > 0
            with record.lock:
                failed = record.attempt is attempt  # else it started after all
                if failed:
                    record.attempt = None
                    host.uids.discard(record.uid)
                    record.host = None
                    if record.incarnation:
                        record.state = HELD
                    if not restart:
                        record.settled.set()
            if not failed:
                return
            if alias is not None:
                self.slots.first_start_failed(record, host, alias)
            if isinstance(e, AskTimeout) and not host.uids:
                self.launcher.kill(host)
            if restart:
                try:
                    self._until_gone(host)
                finally:
                    record.settled.set()
            if isinstance(e, AskTimeout):
                raise SpawnError(f"{record.name or record.class_path} did not start within "
                                 f"{self.config.spawn_timeout} s") from None
            if isinstance(e, ActorDeadError):
                if record.hung is not None:
                    raise SpawnError(record.hung) from None
                raise SpawnError(f"the process of {record.name or record.class_path} died "
                                 f"while starting ({e.reason})") from None
            raise

    def _until_gone(self, host: HostProcess) -> None:
        """A restart into ``host`` failed: wait until its process is gone
        (killed if it lingers past ``stop_timeout``) before the slot may be
        tried again. It bound the slot's address: as it exits it removes
        the socket file, and peers may still be connected to it; a next
        attempt binding the address before would lose what is sent to the
        ref (the next incarnation's socket file gone, or frames taken by a
        process about to exit)."""
        if not host.exited.wait(self.config.stop_timeout):
            log.warning("process %s did not exit after a failed restart: killing it", host.pid)
            self.launcher.kill(host)

    def restart(self, uid: int, exc: Any) -> int:
        """Start a new incarnation of a held supervised slot: same uid, same
        ref, and the held messages delivered to it first. Returns its
        incarnation number (0 when the system is shutting down)."""
        if self._shutting_down():
            return 0
        record = self.registry.get(uid)
        if record is None or record.final:
            raise ActorDeadError(f"actor #{uid} is gone for good; it cannot be restarted")
        self.stopper.settle(record)
        if record.state == RUNNING:  # restarted already (a stale request)
            return record.incarnation
        if record.state != HELD:
            raise ActorError(f"{record.name} is {record.state}; only a stopped child restarts")
        address = record.ref.address  # type: ignore[union-attr]
        record.restarts += 1
        registry = self.registry
        before = {c: registry.actors[c].restarts for c in registry.children_of(uid)
                  if c in registry.actors}
        self.start(record, address, True, exc)
        # children of its last incarnation that this one did not reclaim
        # (a reclaimed child restarted, even if it is down again already)
        for child, restarts in before.items():
            child_record = registry.get(child)
            if (child_record is not None and child_record.state == HELD
                    and child_record.restarts == restarts):
                self.stopper.settle(child_record)
                self._finalize(child_record, "not restarted by its supervisor", False)
        return record.incarnation
