"""The node: the ActorSystem's side of the runtime, in the main program.

The node starts every host process, knows where each actor lives, its
name, its parent and its supervision state, watches every host's process
sentinel in its loop thread, and tells every host when an actor dies, so
that asks waiting on it fail at once. With the pipe transport it is also
the relay between hosts.

:class:`Node` is the handler of the main program's message loop and the
place where the node's parts are composed; each part is one concept:

==================  ===========================================================
``registry``        the actors: records, names, the tree (``actors.registry``)
``launcher``        host processes and warm spares (``actors.launcher``)
``slots``           supervised slots: hold, open, release (``actors.slots``)
``watches``         watches and links (``actors.watches``)
``stopper``         orderly stops and terminations (``actors.stopping``)
``starter``         spawns and restarts (``actors.starting``)
``endings``         what an actor's or a process's end means (``actors.endings``)
``detector``        the wait-for graph (``actors.deadlock``, ``actors.quiescence``)
==================  ===========================================================

Service requests from hosts that may block (spawn, stop, restart) run on a
small pool of worker threads, so the loop thread never blocks.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.config import SystemConfig
from actors.deadlock import Detector
from actors.endings import Endings
from actors.errors import ActorError
from actors.launcher import HostProcess, Launcher
from actors.logs import emit_remote
from actors.network import PipeNodeNetwork, node_network
from actors.peers import Peers
from actors.quiescence import Quiescence, node_idle
from actors.ref import ActorRef
from actors.registry import Registry
from actors.remotes import Remotes
from actors.rundirs import sweep_stale_rundirs
from actors.runtime import Runtime
from actors.slots import Slots
from actors.starting import Starter
from actors.stopping import Stopper
from actors.watches import Watches
from actors.workers import Workers

__all__ = ["Node"]

log = logging.getLogger("actors")


def _open(config: SystemConfig) -> tuple[str, Any]:
    """The node's private run folder (mode 0700) and its network."""
    sweep_stale_rundirs()
    rundir = tempfile.mkdtemp(prefix=f"actors-{os.getpid()}-")
    os.chmod(rundir, 0o700)
    try:
        return rundir, node_network(config, rundir)
    except Exception:
        shutil.rmtree(rundir, ignore_errors=True)
        raise


def _no_cluster(op: P.StopRemote) -> None:
    raise ActorError(f"{op.ref!r} is an actor of another node: stopping it needs a cluster "
                     f"(ActorSystem(cluster=...)); tell it to stop itself")


class Node:
    """The handler of the main program's loop (see module doc)."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.rundir, network = _open(config)
        incarnation = uuid.uuid4().hex[:12]
        node_id = incarnation if config.node is None else f"{config.node}.{incarnation[:8]}"
        self.runtime = runtime = Runtime(node_id, network, self, "node",
                                         config.restart_buffer, remote_waits=False,
                                         token=os.urandom(16),
                                         peers=Peers(network.address, known=self._is_peer),
                                         max_frame=config.max_frame,
                                         flow_size=config.mailbox_size,
                                         when_full=config.when_full,
                                         send_timeout=config.send_timeout)
        runtime.loop.lead_waits = True
        runtime.loop.busy.budget = config.busy_wait
        # the main program's waits feed the detector (read in place)
        runtime.waits.configure(config.deadlock_detection, track=config.quiescence is not None)
        self.shutting_down = False
        self.closed = False
        self.finished = threading.Event()
        self.failure: ActorError | None = None
        self._soon: deque[Callable[[], None]] = deque()
        self._serving = threading.local()  # the service request a worker serves
        # Not ThreadPoolExecutors: Python joins those at exit *before* atexit
        # handlers run, and the spawner thread's end fires PR_SET_PDEATHSIG.
        self.workers = Workers("actors-node", 2, grow=True)
        stopping = self._stopping
        self.registry = Registry(1 if config.bind == "ipc"
                                 else secrets.randbits(31) << 20 | 1)
        self.launcher = Launcher(config, runtime, self.rundir, self._watch, stopping,
                                 self.workers)
        self.slots = Slots(config, self.rundir, runtime, self.registry, self.broadcast)
        if isinstance(network, PipeNodeNetwork):
            network.undeliverable = self.slots.undeliverable
            network.hold_limit = config.restart_buffer
        self.watches = Watches(runtime, self.registry)
        self.remotes = None if config.keys is None else Remotes(  # other nodes
            config, runtime, self.registry, self.watches, self.broadcast, self.call_soon)
        self.detector = Detector(runtime, self.registry, config.deadlock_detection,
                                 config.quiescence)
        self.stopper = Stopper(config, runtime, self.registry, self.launcher, self.slots,
                               lambda *a: self.endings.finalize(*a), stopping)
        self.starter = Starter(config, runtime, self.registry, self.launcher, self.slots,
                               self.stopper, self._note_start,
                               lambda *a: self.endings.finalize(*a), stopping)
        self.endings = Endings(config, runtime, self.registry, self.launcher, self.slots,
                               self.watches, self.stopper, self.workers, self.broadcast,
                               self.detector.graph.forget_process, self.fail, stopping)
        if config.quiescence is not None:
            self.detector.quiet_check = Quiescence(self.detector, runtime, self.registry,
                                                   self.launcher, self.workers,
                                                   node_idle(runtime, self.call_soon)).check
        self.detector.start()
        self._ops: dict[type, Callable[[Any, Any], None]] = {
            P.Log: lambda op, env: emit_remote(op.record),
            P.Hello: self._hello,
            P.Stopped: lambda op, env: self.endings.actor_stopped(op),
            P.DeadLetters: self._dead_letters,
            P.Lookup: lambda op, env: self._answer(env, self.registry.lookup(op.name)),
            P.Watch: lambda op, env: self.watches.watch(op.watcher, op.target, op.link),
            P.Unwatch: lambda op, env: self.watches.unwatch(op.watcher, op.target),
            P.Tree: lambda op, env: self._answer(env, self.registry.tree()),
            P.Waits: lambda op, env: self.detector.graph.add(op.address, op.infos),
            P.Unwaits: lambda op, env: self.detector.graph.remove(op.address, op.wait_ids),
            P.Hung: lambda op, env: self.endings.hung(op),
            P.IsPeer: lambda op, env: self._answer(env, self._is_peer(op.address)),
            P.Ext: lambda op, env: runtime.extension(op)}
        self._ops.update(self.remotes.ops if self.remotes is not None else {})  # (Lookup too)
        # requests that may block: served on a worker thread
        self._blocking: dict[type, Callable[[Any], Any]] = {
            P.Spawn: lambda op: (self.starter.spawn_supervised(op.spec)
                                 if op.spec.options.supervised else self.starter.spawn(op.spec)),
            P.StopChildren: lambda op: self.stopper.stop_children(op.uid, None),
            P.Restart: lambda op: self.starter.restart(op.uid, op.exc),
            P.Terminate: lambda op: self.stopper.terminate(op.uid, op.keep),
            P.StopRemote: _no_cluster}  # (a cluster serves it)
        self.cluster: Any = None  # set by actors.cluster.join, when configured
        self.thread = threading.Thread(target=self._loop, name="actors-node", daemon=True)
        self.thread.start()

    def add_ops(self, ops: dict[type, Callable[[Any, Any], None]],
                blocking: dict[type, Callable[[Any], Any]]) -> None:
        """Operations a layer above serves (``actors.cluster``); ``blocking`` on workers."""
        self._ops.update(ops)
        self._blocking.update(blocking)

    def _stopping(self) -> bool:
        return self.shutting_down

    def _is_peer(self, address: str) -> bool:
        """Whether a process of this node is at a tcp ``address`` (``actors.peers``)."""
        if address == self.runtime.address:
            return True
        for host in self.launcher.live_hosts():
            if address == host.address or address in host.aliases:
                return True
        return address in self.slots.held or (self.remotes is not None
                                              and self.remotes.admits(address))

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.closed:
            try:
                self.runtime.loop.serve_forever(lambda: self.closed)
            except Exception:
                log.exception("error in the node loop")

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the thread that reads the node's inbox."""
        self._soon.append(fn)
        self.runtime.wake()

    def _watch(self, host: HostProcess) -> None:
        def watch() -> None:
            self.launcher.by_sentinel[host.process.sentinel] = host
            self.runtime.loop.watch(host.process.sentinel)
            if host.link is not None:
                self.runtime.loop.add_source(host.link)
        self.call_soon(watch)

    def broadcast(self, operation: Any, skip: HostProcess | None = None,
                  peers: bool = True) -> None:
        """A service tell to every live host (but ``skip``), and a death to
        the nodes met (unless not ``peers``)."""
        data = self.runtime.service_envelope(operation)
        for host in self.launcher.ready_hosts(skip):  # one not ready learns it in its hello
            self.runtime.post(host.address, data)
        if peers and self.remotes is not None:
            self.remotes.forward(operation)

    # -- the loop's handler ----------------------------------------------------------------
    def deliver(self, envelopes: list[Any]) -> None:
        for envelope in envelopes:
            try:
                self._deliver(envelope)
            except Exception as e:
                self.runtime.loop.drop_malformed(envelope, e)

    def _deliver(self, envelope: Any) -> None:
        if envelope.uid != P.SERVICE_UID:
            self.runtime.refuse(envelope)
            return
        operation = self.runtime.service_op(envelope)
        if operation is None:
            return
        handle = self._ops.get(type(operation))
        if handle is not None:
            handle(operation, envelope)
            return
        job = self._blocking.get(type(operation))
        if job is None:  # an operation between nodes, on a node that meets none
            return self.runtime.refuse(envelope)
        self.workers.submit(self._serve, envelope, operation, job)

    def has_ready(self) -> bool:
        return False  # call_soon wakes the loop

    def run_ready(self) -> None:
        soon = self._soon
        while soon:
            soon.popleft()()

    def on_ready(self, obj: Any) -> None:
        host = self.launcher.by_sentinel.pop(obj, None)
        if host is not None:
            self.runtime.loop.unwatch(obj)
            self.endings.process_exited(host)

    def source_closed(self, source: Any) -> None:
        pass  # a host's pipe closed: its sentinel tells the rest

    def waiter(self, thread: int, future: Any) -> Any:
        # a thread of the main program blocked on an actor (not on a service)
        target = getattr(future, "target", None)
        waits = thread != 0 and target is not None and target.uid != P.SERVICE_UID
        return f"thread:{thread}" if waits else None

    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None:
        # A stop from outside is a normal exit: a permanent child restarts.
        self.stopper.stop(ref.uid, timeout, final=False)

    # -- service operations ----------------------------------------------------------------
    def _answer(self, envelope: Any, value: Any) -> None:
        if isinstance(envelope, P.Ask):
            self.runtime.answer(envelope, True, value)

    def _hello(self, op: P.Hello, envelope: Any) -> None:
        host = self.launcher.hellos.get(op.number)
        if host is None or host.hello.done():
            return
        runtime = self.runtime
        if op.address in runtime.outboxes.gone:  # a tcp port of a dead process, reused
            runtime.outboxes.revive(op.address)
            self.broadcast(P.Resume(op.address))
        host.address = op.address
        # The deaths so far, before anything it is asked to start; later ones
        # reach it by broadcast, which includes it once its hello is done.
        with self.launcher.lock:
            deaths: dict[str, list[int]] = {}
            for uid, why in list(runtime.dead.items()):
                deaths.setdefault(why, []).append(uid)
            for why, uids in deaths.items():
                runtime.tell_service(op.address, P.Down(uids, why))
            host.hello.set_result(op.address)

    def _dead_letters(self, op: P.DeadLetters, envelope: Any) -> None:
        self.runtime.lose(op.count)
        log.info("%d dead letters in %s", op.count, op.where)

    def _serve(self, envelope: Any, operation: Any, job: Callable[[Any], Any]) -> None:
        asked = isinstance(envelope, P.Ask)
        request = (envelope.reply_to, envelope.call_id) if asked else None
        if isinstance(operation, P.Restart):  # the asker waits for this actor's on_start
            self.detector.graph.note_start(request, operation.uid)
        self._serving.key = request
        try:
            value, ok = job(operation), True
        except BaseException as e:
            value, ok = e, False
        finally:
            self._serving.key = None
            self.detector.graph.end_start(request)
        if asked:
            self.runtime.answer(envelope, ok, P.answer_to_wire(value) if ok else value)
        elif not ok:
            log.error("node service request failed: %r", value)

    def _note_start(self, uid: int) -> None:
        self.detector.graph.note_start(getattr(self._serving, "key", None), uid)

    # -- the system's API ----------------------------------------------------------------------
    def spawn_spec(self, spec: P.ActorSpec) -> ActorRef:
        return self.starter.spawn(spec)

    def lookup(self, name: str) -> ActorRef | None:
        if self.cluster is not None:
            return self.cluster.lookup(name)
        return self.registry.lookup(name) if self.remotes is None else self.remotes.find(name)

    @property
    def dead_letters(self) -> int:
        return self.runtime.dead_letters

    @property
    def started_pids(self) -> set[int]:
        return self.launcher.started_pids

    def fail(self, message: str, error: type[ActorError] = ActorError) -> None:
        """The top of a supervision tree failed (or the node was fenced out
        of its cluster): stop everything."""
        if self.failure is None:
            self.failure = error(message)
            log.critical("%s", message)
        threading.Thread(target=self.shutdown, args=(None,), name="actors-failure",
                         daemon=True).start()

    def shutdown(self, timeout: float | None) -> None:
        """Stop every actor (the last started first), then every process."""
        with self.registry.lock:
            first = not self.shutting_down
            self.shutting_down = True
        if not first:
            if threading.current_thread() is not self.thread:
                self.finished.wait()
            return
        if timeout is None:
            timeout = self.config.stop_timeout
        if self.cluster is not None:  # place nothing here from now on
            self.cluster.leaving()
        launcher = self.launcher
        try:
            for uid in reversed(list(self.registry.top)):
                try:
                    self.stopper.stop(uid, timeout)
                except Exception:
                    log.exception("stopping actor #%d failed", uid)
            for host in list(launcher.hellos.values()):  # spares still starting
                try:
                    host.process.kill()
                except (OSError, ValueError, AttributeError):
                    pass
            left = launcher.live_hosts()
            for host in left:
                if host.alive and host.hello.done():
                    self.runtime.tell_service(host.address, P.Exit())
            self.runtime.flush_all()
            for host in left:
                if not host.exited.wait(timeout):
                    launcher.kill(host)
        finally:
            self._close()

    def _close(self) -> None:
        launcher = self.launcher
        self.detector.stop()
        self.closed = True
        self.runtime.wake()
        if threading.current_thread() is not self.thread:
            self.thread.join(10.0)
            if self.thread.is_alive():
                log.error("the node loop did not end within 10 s")
        for host in launcher.live_hosts():
            if host.process.is_alive():
                host.process.kill()
            host.process.join(5.0)
        for host in list(launcher.hellos.values()):
            if not host.hello.done():
                host.hello.set_exception(ActorError("the actor system shut down"))
        launcher.shutdown()
        if self.cluster is not None:  # its actors have stopped: leave
            self.cluster.close()
        _ = self.remotes is not None and self.remotes.close()
        self.workers.shutdown()
        # every host is gone by now; what goes to other nodes gets a moment
        self.runtime.close(linger=0 if self.remotes is None else 0.5, flush=False)
        shutil.rmtree(self.rundir, ignore_errors=True)
        self.finished.set()
