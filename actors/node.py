"""The node: the ActorSystem's runtime in the main program.

The node starts every host process (from one long-lived spawner thread, see
``actors.process``), knows where each actor lives, its name and its parent,
watches every child's process sentinel in its loop thread, and tells every
host when an actor dies, so that asks waiting on it fail at once. With the
pipe transport it is also the relay between hosts.

Blocking service requests from hosts (spawn, stop) run on a small worker
pool so the loop thread never blocks.
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
from actors.errors import ActorDeadError, ActorError, AskTimeout, SpawnError
from actors.logs import emit_remote
from actors.network import PipeNodeNetwork, ZmqNetwork
from actors.process import MailboxCounters, Workers, exit_reason, host_main
from actors.ref import ActorRef
from actors.runtime import Runtime

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


class HostRecord:
    def __init__(self, number: int, address: str, process: Any) -> None:
        self.number = number
        self.address = address
        self.process = process
        self.pid: int | None = None
        self.uids: set[int] = set()
        self.alive = True
        self.exited = threading.Event()
        self.starting_uid: int | None = None
        self.link: Any = None


class ActorRecord:
    def __init__(self, uid: int, name: str | None, class_path: str, parent: int | None) -> None:
        self.uid = uid
        self.name = name
        self.class_path = class_path
        self.parent = parent
        self.children: list[int] = []
        self.ref: ActorRef | None = None
        self.host: HostRecord | None = None
        self.died: tuple[str, bool, bool] | None = None


class Node(Runtime):
    def __init__(self, transport: str, bind: str, log_level: int,
                 stop_timeout: float, spawn_timeout: float) -> None:
        self.transport = transport
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
                self._host_bind = lambda n: f"pipe:{n}"
        except Exception:
            shutil.rmtree(self.rundir, ignore_errors=True)
            raise
        super().__init__(uuid.uuid4().hex[:12], network, "node")
        self.lead_waits = True
        self.log_level = log_level
        self.stop_timeout = stop_timeout
        self.spawn_timeout = spawn_timeout
        self.context = multiprocessing.get_context("spawn")
        self.lock = threading.RLock()
        self.hosts: dict[int, HostRecord] = {}
        self.by_sentinel: dict[int, HostRecord] = {}
        self.actors: dict[int, ActorRecord] = {}
        self.names: dict[str, int] = {}
        self.top: list[int] = []
        self._uids = itertools.count(1)
        self._host_numbers = itertools.count(1)
        self.starting: dict[int, concurrent.futures.Future] = {}
        self._soon: deque[Callable[[], None]] = deque()
        # Not ThreadPoolExecutors: Python joins those at exit *before* atexit
        # handlers run, and the spawner thread's end fires PR_SET_PDEATHSIG.
        self.spawner = Workers("actors-spawner", 1)
        self.workers = Workers("actors-node", 2, grow=True)
        self.shutting_down = False
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="actors-node", daemon=True)
        self.thread.start()

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
        elif op == P.OP_READY:
            _, uid, address, pid = payload
            future = self.starting.get(uid)
            if future is not None:
                future.set_result((address, pid))
        elif op == P.OP_START_FAILED:
            future = self.starting.get(payload[1])
            if future is not None:
                future.set_exception(payload[2])
        elif op == P.OP_STOPPED:
            _, uid, reason, crashed = payload
            self.actor_ended(uid, reason, crashed, logged=True)
        elif op == P.OP_DEAD_LETTERS:
            self.dead_letters += payload[1]
            log.info("%d dead letters in %s", payload[1], payload[2])
        elif op == P.OP_LOOKUP:
            self.reply(envelope[-2], envelope[-1], True, self.lookup(payload[1]))
        elif op == P.OP_SPAWN:
            self.workers.submit(self._serve, envelope, lambda: self.spawn_spec(payload[1]))
        elif op == P.OP_STOP_CHILDREN:
            self.workers.submit(self._serve, envelope, lambda: self.stop_children(payload[1], None))
        else:
            raise ValueError(f"unknown node service op {op!r}")

    def _serve(self, envelope: list[Any], fn: Callable[[], Any]) -> None:
        try:
            value, ok = fn(), True
        except BaseException as e:
            value, ok = e, False
        self.reply(envelope[-2], envelope[-1], ok, value)

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
        """Start an actor from a spec (see ``actors.host.spec_for``)."""
        if self.shutting_down:
            raise ActorError("the actor system is shutting down")
        path, _args, _kwargs, name, parent, colocate = spec
        encoded = self.encode(spec)  # a bad argument fails here, at the caller
        with self.lock:
            if name is not None and name in self.names:
                raise ValueError(f"an actor named {name!r} already exists")
            uid = next(self._uids)
            record = ActorRecord(uid, name, path, parent)
            self.actors[uid] = record
            if name is not None:
                self.names[name] = uid
            parent_record = self.actors.get(parent) if parent is not None else None
            if parent_record is not None:
                parent_record.children.append(uid)
            else:
                self.top.append(uid)
        try:
            if colocate is not None:
                target = self.actors.get(colocate)
                if target is None or target.host is None or not target.host.alive:
                    raise ActorDeadError(f"cannot colocate with actor #{colocate}: it is dead")
                record.host = target.host
                target.host.uids.add(uid)
                ref = self.ask(self.service_at(target.host.address),
                               (P.OP_START, uid, spec)).result(self.spawn_timeout)
                record.ref = self.make_ref(uid, ref.address, name)
            else:
                self._start_host(record, encoded)
        except BaseException:
            self._forget(record)
            raise
        if record.died is not None:  # it ended while its spawn was finishing
            reason, crashed, logged = record.died
            self.actor_ended(uid, reason, crashed, logged)
        if record.uid not in self.actors:
            raise ActorDeadError(f"{record.ref!r} died right after starting",
                                 record.ref, self.dead.get(uid, ""))
        return record.ref  # type: ignore[return-value]

    def _start_host(self, record: ActorRecord, encoded_spec: bytes) -> None:
        number = next(self._host_numbers)
        bind = self._host_bind(number)
        label = record.name or record.class_path.rpartition(":")[2]
        boot = {"node_id": self.node_id, "node_address": self.address,
                "transport": self.transport, "bind": bind, "name": label,
                "log_level": self.log_level, "spec": encoded_spec, "uid": record.uid,
                "parent_pid": os.getpid(),
                "counters": os.path.join(self.rundir, f"h{number}.counts"),
                # deaths so far: asks from the new process to them fail at once
                "dead": dict(self.dead)}
        child_conn = parent_conn = None
        if self.transport == "pipe":
            parent_conn, child_conn = self.context.Pipe(duplex=True)
        process = self.context.Process(target=host_main, args=(boot, child_conn),
                                       name=f"actors:{label}")
        host = HostRecord(number, bind, process)
        host.starting_uid = record.uid
        record.host = host
        host.uids.add(record.uid)
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.starting[record.uid] = future
        try:
            self.spawner.submit(process.start).result()
            host.pid = process.pid
            if child_conn is not None:
                child_conn.close()
                host.link = self.network.add_link(bind, parent_conn)
            with self.lock:
                self.hosts[number] = host
            self.call_soon(lambda: self._watch(host))
            try:
                address, _pid = future.result(self.spawn_timeout)
            except concurrent.futures.TimeoutError:
                process.kill()
                raise SpawnError(f"{label} did not start within {self.spawn_timeout} s") from None
        finally:
            self.starting.pop(record.uid, None)
            host.starting_uid = None
        host.address = address
        record.ref = self.make_ref(record.uid, address, record.name)

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

    def _host_exited(self, host: HostRecord) -> None:
        # The sentinel fires when the child's fds close, a moment before it
        # can be reaped; waitpid now returns within that moment.
        host.process.join(2.0)
        if host.process.exitcode == 0 and host.uids:
            # An orderly exit reports each actor's end before exiting; those
            # reports may still be in flight behind the sentinel (its link
            # or inbox is still polled here).
            self.pump_until(lambda: not host.uids, time.monotonic() + 1.0)
        reason = exit_reason(host.process.exitcode)
        host.alive = False
        counters = os.path.join(self.rundir, f"h{host.number}.counts")
        lost = MailboxCounters.lost(counters)
        if lost:
            self.dead_letters += lost
            log.warning("%d messages were lost in the mailboxes of pid %s (%s)",
                        lost, host.pid, reason)
        try:
            os.unlink(counters)
        except OSError:
            pass
        if host.link is not None:
            self.poller.unregister(host.link.pollable)
            self._by_pollable.pop(host.link.pollable, None)
        self.network.drop(host.address)
        self.outboxes.pop(host.address, None)
        with self.lock:
            self.hosts.pop(host.number, None)
        if host.starting_uid is not None:
            future = self.starting.get(host.starting_uid)
            if future is not None and not future.done():
                future.set_exception(SpawnError(
                    f"the process of actor #{host.starting_uid} died while starting ({reason})"))
        for uid in list(host.uids):
            self.actor_ended(uid, reason, crashed=True, logged=False)
        self.fail_address(host.address, reason)
        host.exited.set()

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

    # -- endings -------------------------------------------------------------------
    def actor_ended(self, uid: int, reason: str, crashed: bool, logged: bool) -> None:
        record = self.actors.get(uid)
        if record is None:
            return
        if record.ref is None and uid in self.starting:
            # Still starting: the spawning thread finishes the job with it.
            record.died = (reason, crashed, logged)
            return
        self._forget(record)
        if crashed and not logged and not self.shutting_down:
            pid = record.host.pid if record.host else None
            log.error("actor %s (pid %s) died: %s", record.name or f"#{uid}", pid, reason)
        self.mark_dead([uid], reason)
        down = self.service_envelope((P.OP_DOWN, [uid], reason))
        with self.lock:
            hosts = [h for h in self.hosts.values() if h.alive and h is not record.host]
        for host in hosts:
            self.post(host.address, down)
        if record.children:  # orphans of a crash or a kill
            self.workers.submit(self._stop_orphans, list(record.children))

    def _stop_orphans(self, uids: list[int]) -> None:
        for uid in reversed(uids):
            try:
                self.stop_uid(uid, None)
            except Exception:
                log.exception("stopping child #%d failed", uid)

    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None:
        self.stop_uid(ref.uid, timeout)

    def stop_uid(self, uid: int, timeout: float | None) -> None:
        """Stop an actor and wait for it. Its host stops its children first
        (asking back with OP_STOP_CHILDREN), then runs its ``on_stop``; each
        actor of the subtree gets ``timeout`` seconds before its process is
        killed."""
        record = self.actors.get(uid)
        if record is None:
            return
        if timeout is None:
            timeout = self.stop_timeout
        host = record.host
        if host is None or not host.alive:
            return
        budget = timeout * (1 + self._descendants(uid))
        try:
            self.ask(self.service_at(host.address), (P.OP_STOP, uid)).result(budget)
        except AskTimeout:
            log.warning("actor %s (pid %s) did not stop within %s s: killing its process",
                        record.name or f"#{uid}", host.pid, budget)
            self.kill_host(host)
        except ActorDeadError:
            pass
        if not host.uids:  # its last actor: wait for the process to end
            if not host.exited.wait(timeout):
                log.warning("process %s did not exit after its last actor stopped: killing it",
                            host.pid)
                self.kill_host(host)

    def _descendants(self, uid: int) -> int:
        with self.lock:
            record = self.actors.get(uid)
            children = list(record.children) if record is not None else []
        return sum(1 + self._descendants(child) for child in children)

    def stop_children(self, uid: int, timeout: float | None) -> None:
        """Stop an actor's children, the last started first."""
        record = self.actors.get(uid)
        for child in reversed(list(record.children) if record is not None else []):
            try:
                self.stop_uid(child, timeout)
            except Exception:
                log.exception("stopping child #%d failed", child)

    def kill_host(self, host: HostRecord) -> None:
        if host.alive:
            try:
                host.process.kill()
            except (OSError, ValueError):
                pass
        if not host.exited.wait(5.0):
            log.error("process %s survived SIGKILL for 5 s", host.pid)

    def lookup(self, name: str) -> ActorRef | None:
        with self.lock:
            uid = self.names.get(name)
            record = self.actors.get(uid) if uid is not None else None
            return record.ref if record is not None else None

    # -- shutdown -------------------------------------------------------------------
    def shutdown(self, timeout: float | None) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        if timeout is None:
            timeout = self.stop_timeout
        try:
            for uid in reversed(list(self.top)):
                try:
                    self.stop_uid(uid, timeout)
                except Exception:
                    log.exception("stopping actor #%d failed", uid)
            with self.lock:
                left = list(self.hosts.values())
            for host in left:
                if host.alive:
                    self.post(host.address, self.service_envelope((P.OP_EXIT,)))
            self.flush_all()
            for host in left:
                if not host.exited.wait(timeout):
                    self.kill_host(host)
        finally:
            self.closed = True
            self.wake()
            self.thread.join(10.0)
            if self.thread.is_alive():
                log.error("the node loop did not end within 10 s")
            for host in list(self.hosts.values()):
                if host.process.is_alive():
                    host.process.kill()
                host.process.join(5.0)
            self.spawner.shutdown()
            self.workers.shutdown()
            self.close(linger=0, flush=False)  # every peer is gone by now
            shutil.rmtree(self.rundir, ignore_errors=True)


__all__ = ["Node"]
