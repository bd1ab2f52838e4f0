"""The node: the ActorSystem's runtime in the main program.

The node starts every host process (see ``actors.hosts``), knows where each
actor lives, its name, its parent and its supervision state, watches every
child's process sentinel in its loop thread, and tells every host when an
actor dies, so that asks waiting on it fail at once. With the pipe
transport it is also the relay between hosts.

Supervised actors keep their ref across restarts. The ref's address is the
*slot address*: when the process behind it dies, the node and every host
*hold* what is sent there (``Runtime.hold``); the supervisor decides; a
restart starts a new incarnation that also binds the slot address, and the
holds are *resumed* into it, in send order. A slot given up is *released*:
held messages become dead letters and the ref is dead for good.

Blocking service requests from hosts (spawn, stop, restart) run on a small
worker pool so the loop thread never blocks.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.deadlock import Detector
from actors.errors import ActorDeadError, ActorError, AskTimeout, SpawnError
from actors.hosts import HostRecord, HostStarter
from actors.logs import emit_remote
from actors.network import PipeNodeNetwork, ZmqNetwork
from actors.process import MailboxCounters, Workers, exit_reason
from actors.ref import ActorRef
from actors.runtime import Runtime
from actors.tree import ActorRecord, ActorTree

log = logging.getLogger("actors")


def sweep_stale_rundirs() -> None:
    """Remove run directories left by programs of this user that were killed
    (a killed node cannot clean up after itself; its children die with it)."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != "actors" or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        path = os.path.join(base, name)
        try:
            if pid == os.getpid() or os.stat(path).st_uid != os.getuid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


class Node(ActorTree, Runtime):
    def __init__(self, transport: str, bind: str, log_level: int, stop_timeout: float,
                 spawn_timeout: float, spares: int = 2, restart_buffer: int = 10_000,
                 deadlock_detection: float | None = 0.2,
                 quiescence: float | None = None) -> None:
        self.transport = transport
        self.deadlock_detection = deadlock_detection
        self.quiescence = quiescence
        sweep_stale_rundirs()
        self.rundir = tempfile.mkdtemp(prefix=f"actors-{os.getpid()}-")
        os.chmod(self.rundir, 0o700)
        try:
            network: Any
            if transport == "zmq":
                if bind == "ipc":
                    network = ZmqNetwork(f"ipc://{self.rundir}/node")
                    self._host_bind: Callable[[int], str] = lambda n: f"ipc://{self.rundir}/h{n}"
                else:
                    network = ZmqNetwork(bind)
                    self._host_bind = lambda n: bind
            else:
                network = PipeNodeNetwork()
                network.undeliverable = self._undeliverable
                network.hold_limit = restart_buffer
                self._host_bind = lambda n: f"pipe:{n}"
            # A supervised actor's address is its own (its process also has
            # one, for the runtime's service traffic) and outlives processes.
            if transport == "pipe":
                self._slot_bind: Callable[[int], str] = lambda uid: f"pipe:s{uid}"
            elif bind == "ipc":
                self._slot_bind = lambda uid: f"ipc://{self.rundir}/s{uid}"
            else:
                self._slot_bind = lambda uid: bind
        except Exception:
            shutil.rmtree(self.rundir, ignore_errors=True)
            raise
        super().__init__(uuid.uuid4().hex[:12], network, "node")
        self.hold_limit = restart_buffer
        self.lead_waits = True
        self.log_level = log_level
        self.stop_timeout = stop_timeout
        self.spawn_timeout = spawn_timeout
        self.context = multiprocessing.get_context("spawn")
        self.lock = threading.RLock()
        self.hosts: dict[int, HostRecord] = {}
        self.hellos: dict[int, HostRecord] = {}
        self.started_pids: set[int] = set()
        self.by_sentinel: dict[int, HostRecord] = {}
        self.actors: dict[int, ActorRecord] = {}
        self.names: dict[str, int] = {}
        self.top: list[int] = []
        self.held_addresses: dict[str, int] = {}
        # target uid -> {watcher uid: (watcher ref, link)}
        self.watches: dict[int, dict[int, tuple[ActorRef, bool]]] = {}
        self.crashed: set[int] = set()  # dead uids whose end was a crash
        self._uids = itertools.count(1)
        self._host_numbers = itertools.count(1)
        self._soon: deque[Callable[[], None]] = deque()
        # Not ThreadPoolExecutors: Python joins those at exit *before* atexit
        # handlers run, and the spawner thread's end fires PR_SET_PDEATHSIG.
        self.spawner = Workers("actors-spawner", 1)
        self.workers = Workers("actors-node", 2, grow=True)
        self.starter = HostStarter(self, spares)
        self.shutting_down = False
        self.closed = False
        self.finished = threading.Event()
        self.failure: ActorError | None = None
        # the main program's waits feed the detector (read in place)
        self.waits.configure(deadlock_detection, track=quiescence is not None)
        self._serving = threading.local()  # the service request a worker serves
        self.detector = Detector(self, deadlock_detection, quiescence)
        self.thread = threading.Thread(target=self._loop, name="actors-node", daemon=True)
        self.thread.start()

    def counters_path(self, number: int) -> str:
        return os.path.join(self.rundir, f"h{number}.counts")

    # -- loop ----------------------------------------------------------------
    def _loop(self) -> None:
        while not self.closed:
            try:
                self.serve_forever(lambda: self.closed)
            except Exception:
                log.exception("error in the node loop")

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread."""
        self._soon.append(fn)
        self.wake()

    def after_poll(self) -> None:
        soon = self._soon
        while soon:
            soon.popleft()()

    def broadcast(self, payload: tuple[Any, ...], skip: HostRecord | None = None) -> None:
        """A service tell to every live host (but ``skip``)."""
        data = self.service_envelope(payload)
        with self.lock:  # a host not ready yet gets the deaths in its hello
            hosts = [h for h in self.hosts.values()
                     if h.alive and h is not skip and h.hello.done()]
        for host in hosts:
            self.post(host.address, data)

    # -- incoming --------------------------------------------------------------
    def handle(self, envelope: list[Any]) -> None:
        kind = envelope[0]
        if envelope[1] != P.SERVICE_UID or kind == P.CALL:
            self.refuse(envelope)
            return
        payload = envelope[2]
        op = payload[0]
        if op == P.OP_LOG:
            emit_remote(payload[1])
        elif op == P.OP_HELLO:
            _, number, address, _pid = payload
            host = self.hellos.get(number)
            if host is not None and not host.hello.done():
                if address in self.gone:  # a tcp port of a dead process, reused
                    self.revive(address)
                    self.broadcast((P.OP_RESUME, address))
                host.address = address
                # The deaths so far, before anything it is asked to start
                # (asks from it to them fail at once); later ones reach it
                # by broadcast, which includes it once its hello is done.
                with self.lock:
                    deaths: dict[str, list[int]] = {}
                    for uid, why in list(self.dead.items()):
                        deaths.setdefault(why, []).append(uid)
                    for why, uids in deaths.items():
                        self.post(address, self.service_envelope((P.OP_DOWN, uids, why)))
                    host.hello.set_result(address)
        elif op == P.OP_STOPPED:
            _, uid, reason, crashed, exc, address = payload
            self.actor_stopped(uid, reason, crashed, exc, address)
        elif op == P.OP_DEAD_LETTERS:
            self.dead_letters += payload[1]
            log.info("%d dead letters in %s", payload[1], payload[2])
        elif op == P.OP_LOOKUP:
            self.reply(envelope[-2], envelope[-1], True, self.lookup(payload[1]))
        elif op == P.OP_WATCH:
            self.watch(*payload[1:])
        elif op == P.OP_UNWATCH:
            self.watches.get(payload[2], {}).pop(payload[1], None)
        elif op == P.OP_TREE:
            self.reply(envelope[-2], envelope[-1], True, self.tree())
        elif op == P.OP_WAIT:
            self.detector.add(payload[1], payload[2])
        elif op == P.OP_UNWAIT:
            self.detector.remove(payload[1], payload[2])
        elif op == P.OP_HUNG:
            self.hung(*payload[1:])
        elif op == P.OP_EXT:
            self.extension(payload)
        else:
            job = self._blocking_op(payload)
            self.workers.submit(self._serve, envelope, job)

    def _blocking_op(self, payload: list[Any]) -> Callable[[], Any]:
        op = payload[0]
        if op == P.OP_SPAWN:
            spec = payload[1]
            if spec[6].get("supervised"):  # its supervisor needs the incarnation
                return lambda: self._spawn_supervised(spec)
            return lambda: self.spawn_spec(spec)
        if op == P.OP_STOP_CHILDREN:
            return lambda: self.stop_children(payload[1], None)
        if op == P.OP_RESTART:
            return lambda: self.restart(payload[1], payload[2])
        if op == P.OP_TERMINATE:
            return lambda: self.terminate(payload[1], payload[2])
        raise ValueError(f"unknown node service op {op!r}")

    def _serve(self, envelope: list[Any], fn: Callable[[], Any]) -> None:
        request = (envelope[-2], envelope[-1]) if envelope[0] == P.ASK else None
        payload = envelope[2]
        if payload[0] == P.OP_RESTART:  # the asker waits for this actor's on_start
            self.detector.note_start(request, payload[1])
        self._serving.key = request
        try:
            value, ok = fn(), True
        except BaseException as e:
            value, ok = e, False
        finally:
            self._serving.key = None
            self.detector.end_start(request)
        if envelope[0] == P.ASK:
            self.reply(envelope[-2], envelope[-1], ok, value)
        elif not ok:
            log.error("node service request failed: %r", value)

    def _undeliverable(self, address: str, frame: bytes) -> None:
        """Pipe relay: a frame for a host that is gone."""
        try:
            envelopes = self.codec.decode_frame(frame)
        except Exception:
            return
        for envelope in envelopes:
            if envelope and envelope[0] in (P.TELL, P.ASK, P.CALL):
                self.refuse(envelope)

    # -- spawning ----------------------------------------------------------------
    def spawn_spec(self, spec: list[Any]) -> ActorRef:
        """Start an actor from a spec (see ``actors.host.spec_for``). A
        supervised spec naming a held slot of the same supervisor restarts
        that slot (a restarted supervisor reclaims its children's refs)."""
        if self.shutting_down:
            raise ActorError("the actor system is shutting down")
        path, _args, _kwargs, name, parent, colocate, options = spec
        self.encode(spec)  # a bad argument fails here, at the caller
        with self.lock:
            if name is not None and name in self.names:
                existing = self.actors[self.names[name]]
                if (options.get("supervised") and existing.supervised
                        and existing.parent == parent and existing.state == "held"):
                    existing.spec = spec
                    reclaim = existing
                else:
                    raise ValueError(f"an actor named {name!r} already exists")
            else:
                reclaim = None
                uid = next(self._uids)
                record = ActorRecord(uid, name, spec, parent)
                self.actors[uid] = record
                if name is not None:
                    self.names[name] = uid
                parent_record = self.actors.get(parent) if parent is not None else None
                if parent_record is not None:
                    parent_record.children.append(uid)
                else:
                    self.top.append(uid)
        if reclaim is not None:
            self.restart(reclaim.uid, None)
            return reclaim.ref  # type: ignore[return-value]
        self.detector.note_start(getattr(self._serving, "key", None), record.uid)
        if record.supervised:
            self.starter.preload.add(path.partition(":")[0])
            self.starter.activate()
        try:
            if colocate is not None:
                self._colocate(record, colocate)
            else:
                self._start(record, self._slot_bind(record.uid) if record.supervised else None,
                            None)
        except BaseException:
            self._forget(record)
            # a supervisor whose start failed kept its children's slots
            self._stop_orphans(list(record.children))
            raise
        return record.ref  # type: ignore[return-value]

    def _spawn_supervised(self, spec: list[Any]) -> list[Any]:
        ref = self.spawn_spec(spec)
        record = self.actors.get(ref.uid)
        return [ref, record.incarnation if record is not None else 0]

    def _colocate(self, record: ActorRecord, colocate: int) -> None:
        target = self.actors.get(colocate)
        if target is None or target.host is None or not target.host.alive:
            raise ActorDeadError(f"cannot colocate with actor #{colocate}: it is dead")
        if target.supervised or record.supervised:
            raise ValueError("a supervised actor has a process of its own: it cannot be "
                             "colocated, nor host other actors")
        self._start(record, None, None, host=target.host)

    def _start(self, record: ActorRecord, alias: str | None, restart: list[Any] | None,
               host: HostRecord | None = None) -> None:
        """Start ``record``'s actor in ``host``, a spare, or a new process."""
        if host is None:
            host = self.starter.take()
            if host is None:
                host = self.starter.start(record.name or record.class_path.rpartition(":")[2])
        if alias is not None and host.link is not None and not record.incarnation:
            # pipe relay: what is sent to a new supervised actor's address
            # before its start is acknowledged waits for it (it may be
            # its own tell from on_start)
            self.network.hold(alias)
        with record.lock:
            attempt = record.attempt = object()
            record.hung = None
            record.state = "starting"
            record.host = host
            record.settled.clear()
        host.uids.add(record.uid)
        restarting = restart is not None

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
                record.state = "running"
                record.incarnation += 1
                record.expect_exit = False
                if alias is not None:
                    self._open_slot(record, host, ref.address, restarting)
                record.settled.set()
        try:
            future = self.ask(self.service_at(host.address),
                              (P.OP_START, record.uid, record.spec, alias, restart))
            future.add_done_callback(started)
            future.result(self.spawn_timeout)
            started(future)  # in case this thread woke before the callback ran
        except BaseException as e:
            with record.lock:
                if record.attempt is attempt:  # else it started after all
                    record.attempt = None
                    host.uids.discard(record.uid)
                    record.host = None
                    if record.incarnation:
                        record.state = "held"
                    record.settled.set()
                    failed = True
                else:
                    failed = False
            if not failed:
                return
            if alias is not None and host.link is not None and not record.incarnation:
                for frame in self.network.release(alias):
                    self._undeliverable(alias, frame)
            if isinstance(e, AskTimeout):
                if not host.uids:
                    self.kill_host(host)
                raise SpawnError(f"{record.name or record.class_path} did not start within "
                                 f"{self.spawn_timeout} s") from None
            if isinstance(e, ActorDeadError):
                if record.hung is not None:
                    raise SpawnError(record.hung) from None
                raise SpawnError(f"the process of {record.name or record.class_path} died "
                                 f"while starting ({e.reason})") from None
            raise

    def _open_slot(self, record: ActorRecord, host: HostRecord, address: str,
                   restarting: bool) -> None:
        """A supervised actor answers at ``address`` in ``host``: route it
        there and, after a restart, send what every process held for it."""
        host.aliases.append(address)
        if address in self.gone:  # a tcp port of a dead process, reused
            self.revive(address)
        self.network.alias(address, host.link)
        if restarting or address in self.held_addresses:
            self.held_addresses.pop(address, None)
            self.resume(address)
            self.broadcast((P.OP_RESUME, address))

    def _watch(self, host: HostRecord) -> None:
        sentinel = host.process.sentinel
        self.by_sentinel[sentinel] = host
        self.poller.register(sentinel)
        if host.link is not None:
            self.poller.register(host.link.pollable)
            self._by_pollable[host.link.pollable] = host.link

    def read(self, source: Any) -> list[bytes]:
        try:
            return self.network.read(source)
        except (EOFError, OSError):
            self.poller.unregister(source.pollable)
            self._by_pollable.pop(source.pollable, None)
            return []

    def on_event(self, obj: Any) -> None:
        host = self.by_sentinel.pop(obj, None)
        if host is not None:
            self.poller.unregister(obj)
            self._host_exited(host)

    # -- endings -------------------------------------------------------------------
    def actor_stopped(self, uid: int, reason: str, crashed: bool, exc: Any,
                      address: str) -> None:
        """A host reported that an actor ended (its process may live on)."""
        record = self.actors.get(uid)
        if (record is None or record.state == "starting" or record.host is None
                or record.host.address != address):
            return  # unknown, or news of an incarnation already replaced
        if record.supervised and not record.final and not self.shutting_down:
            # Its process exits next (a supervised actor is alone in it);
            # the supervisor hears of it then, when the address is free.
            record.ended = (reason, crashed, exc)
            self.hold_slot(record, reason)
            host = record.host
            if host is not None and host.reaper is None:
                # its supervisor waits for the process to be gone: make sure
                # it goes (a non-daemon thread of user code could keep it)
                host.reaper = threading.Timer(self.stop_timeout, self._reap, (host,))
                host.reaper.daemon = True
                host.reaper.start()
        else:
            self.actor_ended(uid, reason, crashed, logged=True)

    def _host_exited(self, host: HostRecord) -> None:
        # The sentinel fires when the child's fds close, a moment before it
        # can be reaped; waitpid now returns within that moment.
        host.process.join(2.0)
        if host.process.exitcode == 0 and host.uids:
            # An orderly exit reports each actor's end before exiting; those
            # reports may still be in flight behind the sentinel (its link
            # or inbox is still polled here).
            self.pump_until(lambda: not any(self._running_in(host, uid) for uid in host.uids),
                            time.monotonic() + 1.0)
        reason = exit_reason(host.process.exitcode)
        host.alive = False
        host.exit_reason = reason
        lost = MailboxCounters.lost(self.counters_path(host.number))
        if lost:
            self.dead_letters += lost
            log.warning("%d messages were lost in the mailboxes of pid %s (%s)",
                        lost, host.pid, reason)
        try:
            os.unlink(self.counters_path(host.number))
        except OSError:
            pass
        self.detector.forget_process(host.address)
        if host.link is not None:
            self.poller.unregister(host.link.pollable)
            self._by_pollable.pop(host.link.pollable, None)
            host.link.close()
        self.starter.forget(host)
        with self.lock:
            self.hosts.pop(host.number, None)
        if not host.hello.done():
            host.hello.set_exception(SpawnError(f"a new process died while starting ({reason})"))
        for uid in list(host.uids):
            record = self.actors.get(uid)
            if record is None or record.state == "starting" or record.host is not host:
                continue  # a spawn in progress handles its own failure
            host.uids.discard(uid)
            if record.supervised and not record.final and not self.shutting_down:
                logged = record.ended is not None  # its host reported (and logged) it
                ended = record.ended or (reason, True, None)
                self.hold_slot(record, ended[0])
                self._incarnation_over(record, *ended, logged=logged)
            else:
                self.actor_ended(uid, reason, crashed=True, logged=False)
        if host.reaper is not None:
            host.reaper.cancel()
        gone = []
        for address in (host.address, *host.aliases):
            kept = self.held_addresses.get(address)
            if kept is not None:  # held by hold_slot above
                # asks sent to the held actor since it died wait for its
                # next incarnation; any other ask to this process fails
                self._fail_calls(lambda t: t.address == address and t.uid != kept, reason)
            else:
                self.fail_address(address, reason)
                self.forget_address(address)
                gone.append(address)
        if gone:
            self.broadcast((P.OP_GONE, gone))
        host.exited.set()

    def _running_in(self, host: HostRecord, uid: int) -> bool:
        record = self.actors.get(uid)
        return (record is not None and record.host is host and record.state == "running"
                and record.ended is None)

    def _forget(self, record: ActorRecord) -> None:
        with self.lock:
            self.actors.pop(record.uid, None)
            if record.name is not None and self.names.get(record.name) == record.uid:
                del self.names[record.name]
            if record.uid in self.top:
                self.top.remove(record.uid)
            parent = self.actors.get(record.parent) if record.parent is not None else None
            if parent is not None and record.uid in parent.children:
                parent.children.remove(record.uid)
            if record.host is not None:
                record.host.uids.discard(record.uid)

    def actor_ended(self, uid: int, reason: str, crashed: bool, logged: bool) -> None:
        """An actor is gone for good."""
        record = self.actors.get(uid)
        if record is None or record.state == "starting":
            return
        if (crashed and not logged and not self.shutting_down
                and not (record.spec[6] or {}).get("quiet")):
            pid = record.host.pid if record.host else None
            log.error("actor %s (pid %s) died: %s", record.name or f"#{uid}", pid, reason)
        self.finalize(record, reason, crashed)

    def finalize(self, record: ActorRecord, reason: str, crashed: bool) -> None:
        """``record`` is dead for good: every runtime learns it, held
        messages become dead letters, watchers are told, what it started
        is stopped."""
        if self.actors.get(record.uid) is not record:
            return
        self._forget(record)
        record.final = True
        record.settled.set()
        if crashed:
            self.crashed.add(record.uid)
        self.mark_dead([record.uid], reason)
        self.broadcast((P.OP_DOWN, [record.uid], reason), skip=record.host)
        if record.ref is not None and self.held_addresses.get(record.ref.address) == record.uid:
            address = record.ref.address
            del self.held_addresses[address]
            for frame in self.network.release(address):
                self._undeliverable(address, frame)
            self.release(address)
            self.broadcast((P.OP_GONE, [address]))
        self._notify_watchers(record, reason, crashed)
        if record.is_supervisor and record.parent is None and crashed and not self.shutting_down:
            self.fail(f"the top-level supervisor {record.name or record.uid} failed ({reason}): "
                      "shutting the actor system down")
        if record.children:
            self.workers.submit(self._stop_orphans, list(record.children))

    def _stop_orphans(self, uids: list[int]) -> None:
        for uid in reversed(uids):
            try:
                self.stop_uid(uid, None)
            except Exception:
                log.exception("stopping child #%d failed", uid)

    def fail(self, message: str) -> None:
        """The top of a supervision tree failed: stop everything."""
        if self.failure is None:
            self.failure = ActorError(message)
            log.critical("%s", message)
        threading.Thread(target=self.shutdown, args=(None,), name="actors-failure",
                         daemon=True).start()

    def waiter(self, thread: int, future: concurrent.futures.Future) -> Any:
        # A thread of the main program blocked on an actor (the runtime's
        # own requests to services are not waits of the program).
        target = getattr(future, "target", None)
        if thread == 0 or target is None or target.uid == P.SERVICE_UID:
            return None
        return f"thread:{thread}"

    def hung(self, uid: int, message: str, address: str) -> None:
        """A host says an actor's handler ran past its hang_timeout (its
        stacks are logged): end the process; the supervisor restarts the
        actor as crashed with reason "hung"."""
        record = self.actors.get(uid)
        if record is None or record.host is None or record.host.address != address:
            return
        host = record.host
        record.hung = message  # a start in progress reports it (see _start)
        self.actor_stopped(uid, "hung", True, ActorDeadError(message, None, "hung"), address)
        try:
            host.process.kill()
        except (OSError, ValueError):
            pass

    def kill_host(self, host: HostRecord) -> None:
        if host.alive:
            try:
                host.process.kill()
            except (OSError, ValueError):
                pass
        if not host.exited.wait(5.0):
            log.error("process %s survived SIGKILL for 5 s", host.pid)

    def exit_host(self, host: HostRecord) -> None:
        """Ask a host with no actor to exit."""
        self.post(host.address, self.service_envelope((P.OP_EXIT,)), flush=True)

    def lookup(self, name: str) -> ActorRef | None:
        with self.lock:
            uid = self.names.get(name)
            record = self.actors.get(uid) if uid is not None else None
            return record.ref if record is not None else None

    # -- shutdown -------------------------------------------------------------------
    def shutdown(self, timeout: float | None) -> None:
        with self.lock:
            if self.shutting_down:
                first = False
            else:
                self.shutting_down = first = True
        if not first:
            if threading.current_thread() is not self.thread:
                self.finished.wait()
            return
        if timeout is None:
            timeout = self.stop_timeout
        try:
            for uid in reversed(list(self.top)):
                try:
                    self.stop_uid(uid, timeout)
                except Exception:
                    log.exception("stopping actor #%d failed", uid)
            for host in list(self.hellos.values()):  # spares still starting
                try:
                    host.process.kill()
                except (OSError, ValueError, AttributeError):
                    pass
            with self.lock:
                left = list(self.hosts.values())
            for host in left:
                if host.alive and host.hello.done():
                    self.post(host.address, self.service_envelope((P.OP_EXIT,)))
            self.flush_all()
            for host in left:
                if not host.exited.wait(timeout):
                    self.kill_host(host)
        finally:
            self.detector.stop()
            self.closed = True
            self.wake()
            if threading.current_thread() is not self.thread:
                self.thread.join(10.0)
                if self.thread.is_alive():
                    log.error("the node loop did not end within 10 s")
            for host in list(self.hosts.values()):
                if host.process.is_alive():
                    host.process.kill()
                host.process.join(5.0)
            for host in list(self.hellos.values()):
                if not host.hello.done():
                    host.hello.set_exception(ActorError("the actor system shut down"))
            self.spawner.shutdown()
            self.workers.shutdown()
            self.close(linger=0, flush=False)  # every peer is gone by now
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.finished.set()


__all__ = ["Node"]
