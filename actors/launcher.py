"""Host processes as the node sees them: starting them, and warm spares.

Every host starts *blank*: a fresh interpreter (spawn method) with the
runtime imported, its inbox bound, waiting for the node to tell it which
actor to start. A spawn then costs one message round trip when a blank
host is at hand, and an interpreter start-up when none is.

The pool keeps up to ``size`` blank hosts ready once it is switched on (the
first supervised actor switches it on; ``ActorSystem(spares=0)`` never
does). Taking one schedules its replacement in the background, so the pool
refills itself and never holds more than ``size``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.boot import host_main
from actors.config import HostBoot, SystemConfig, tcp_host
from actors.errors import SpawnError
from actors.runtime import Runtime
from actors.workers import Workers

__all__ = ["HostProcess", "Launcher", "exit_reason", "exitcode_of"]

log = logging.getLogger("actors")


class HostProcess:
    """One host process: its address, the actors in it, how it ended."""

    def __init__(self, number: int, address: str, process: Any) -> None:
        self.number = number
        self.address = address
        self.process = process
        self.pid: int | None = None
        self.uids: set[int] = set()
        self.alive = True
        self.exited = threading.Event()
        self.hello: concurrent.futures.Future = concurrent.futures.Future()
        self.link: Any = None  # the pipe transport's link to it
        # addresses of dead processes this one took over (restarted actors)
        self.aliases: list[str] = []
        self.exit_reason = ""
        self.reaper: threading.Timer | None = None
        self.errors: Any = None  # the pipe its start-up errors come through

    def start_error(self) -> str:
        """What the process wrote before it died while starting, if anything."""
        errors = self.errors
        try:
            if errors is not None and errors.poll(0):
                return errors.recv_bytes(65536).decode("utf-8", "replace")
        except (OSError, EOFError):
            pass
        return ""

    def close_errors(self) -> None:
        if self.errors is not None:
            self.errors.close()
            self.errors = None


class Launcher:
    """Starts host processes for the node, and keeps the pool of spares.

    Args:
        config: the system's settings.
        runtime: the node's runtime (hosts report to its address).
        rundir: the node's private folder (ipc sockets, counters files).
        watch: registers a new host with the node's loop (its sentinel and,
            over pipes, its link); runs on the loop thread.
        shutting_down: whether the system is stopping.
    """

    def __init__(self, config: SystemConfig, runtime: Runtime, rundir: str,
                 watch: Callable[[HostProcess], None], shutting_down: Callable[[], bool],
                 workers: Workers) -> None:
        self.config = config
        self.runtime = runtime
        self.rundir = rundir
        self._watch = watch
        self._shutting_down = shutting_down
        self._workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.lock = threading.Lock()   # hosts, and hellos becoming done
        self.hosts: dict[int, HostProcess] = {}
        self.hellos: dict[int, HostProcess] = {}   # started, hello not handled yet
        self.started_pids: set[int] = set()
        self.by_sentinel: dict[int, HostProcess] = {}  # read by the node's loop thread
        self._numbers = itertools.count(1)
        # Not a ThreadPoolExecutor: the thread that starts children must outlive
        # them (PR_SET_PDEATHSIG fires when it ends).
        self.spawner = Workers("actors-spawner", 1)
        self.size = config.spares
        self.active = False
        self.pool: collections.deque[HostProcess] = collections.deque()
        self.making = 0
        self._pool_lock = threading.Lock()
        self._changed = threading.Condition(self._pool_lock)
        self.preload: set[str] = set()  # modules spares import ahead of time

    def bind_for(self, number: int) -> str:
        if self.config.transport == "pipe":
            return f"pipe:{number}"
        if self.config.bind == "ipc":
            return f"ipc://{self.rundir}/h{number}"
        return tcp_host(self.config.bind)  # a free port (the node's own is taken)

    def counters_path(self, number: int) -> str:
        return os.path.join(self.rundir, f"h{number}.counts")

    def start(self, label: str) -> HostProcess:
        """A new blank host, ready for a Start (blocks up to the spawn timeout)."""
        config, runtime = self.config, self.runtime
        number = next(self._numbers)
        bind = self.bind_for(number)
        boot = HostBoot(node_id=runtime.node_id, node_address=runtime.address,
                        transport=config.transport, bind=bind, number=number, name=label,
                        log_level=config.log_level or 0, parent_pid=os.getpid(),
                        counters=self.counters_path(number), preload=tuple(sorted(self.preload)),
                        hold_limit=config.restart_buffer,
                        deadlock_detection=config.deadlock_detection,
                        quiescence=config.quiescence, token=runtime.token,
                        max_frame=config.max_frame, mailbox_size=config.mailbox_size,
                        when_full=config.when_full, send_timeout=config.send_timeout,
                        curve=runtime.network.curve if config.bind != "ipc" else None)
        child_conn = parent_conn = None
        if config.transport == "pipe":
            parent_conn, child_conn = self.context.Pipe(duplex=True)
        errors_in, errors_out = self.context.Pipe(duplex=False)
        process = self.context.Process(target=host_main, args=(boot, child_conn, errors_out),
                                       name=f"actors:{label}")
        host = HostProcess(number, bind, process)
        host.errors = errors_in
        self.hellos[number] = host
        try:
            try:
                self.spawner.submit(process.start).result()
            finally:
                errors_out.close()
            host.pid = process.pid
            self.started_pids.add(process.pid)
            if child_conn is not None:
                child_conn.close()
                host.link = runtime.network.add_link(bind, parent_conn)
            with self.lock:
                self.hosts[number] = host
            self._watch(host)
            try:
                host.address = host.hello.result(config.spawn_timeout)
            except concurrent.futures.TimeoutError:
                process.kill()
                raise SpawnError(f"a process for {label} did not start within "
                                 f"{config.spawn_timeout} s") from None
        finally:
            self.hellos.pop(number, None)
            host.close_errors()
        return host

    def ready_hosts(self, skip: HostProcess | None = None) -> list[HostProcess]:
        """Live hosts whose hello is done (they get broadcasts)."""
        with self.lock:
            return [h for h in self.hosts.values()
                    if h.alive and h is not skip and h.hello.done()]

    def live_hosts(self) -> list[HostProcess]:
        with self.lock:
            return list(self.hosts.values())

    def forget(self, host: HostProcess) -> None:
        """A host is gone: out of the table and the pool (a spare is replaced)."""
        with self.lock:
            self.hosts.pop(host.number, None)
        with self._pool_lock:
            was_spare = host in self.pool
            if was_spare:
                self.pool.remove(host)
        if was_spare and self.active and not self._shutting_down():
            self.refill()

    # -- ending hosts -------------------------------------------------------------------
    def kill(self, host: HostProcess) -> None:
        """SIGKILL a host and wait (up to 5 s) until the node saw it end."""
        if host.alive:
            try:
                host.process.kill()
            except (OSError, ValueError):
                pass
        if not host.exited.wait(5.0):
            log.error("process %s survived SIGKILL for 5 s", host.pid)

    def exit(self, host: HostProcess) -> None:
        """Ask a host with no actor to exit."""
        self.runtime.tell_service(host.address, P.Exit(), flush=True)

    # -- the pool -------------------------------------------------------------------------
    def take(self) -> HostProcess | None:
        """A ready spare, or None; its replacement starts in the background.
        When none is ready but one is starting, wait for it rather than
        start one more interpreter on a machine already busy starting one."""
        host = None
        with self._pool_lock:
            while host is None:
                while self.pool:
                    candidate = self.pool.popleft()
                    if candidate.alive:
                        host = candidate
                        break
                if host is not None or self.making == 0 or self._shutting_down():
                    break
                self._changed.wait(self.config.spawn_timeout)
        if self.active:
            self.refill()
        return host

    def activate(self) -> None:
        """Switch the pool of spares on (it refills itself from now on)."""
        if self.size > 0 and not self.active:
            self.active = True
            self.refill()

    def refill(self) -> None:
        with self._pool_lock:
            wanted = self.size - len(self.pool) - self.making
            if self._shutting_down() or wanted <= 0:
                return
            self.making += wanted
        for _ in range(wanted):
            self._workers.submit(self._make)

    def _make(self) -> None:
        try:
            host = self.start("spare")
        except Exception as e:
            if not self._shutting_down():
                log.warning("could not start a spare process: %s", e)
            with self._pool_lock:
                self.making -= 1
                self._changed.notify_all()
            return
        with self._pool_lock:
            self.making -= 1
            keep = not self._shutting_down()
            if keep:
                self.pool.append(host)
            self._changed.notify_all()
        if not keep:
            self.exit(host)

    def shutdown(self) -> None:
        self.spawner.shutdown()


def exit_reason(exitcode: int | None) -> str:
    """Words for a process's exit status: 'exit code 3', 'killed by SIGKILL'."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def exitcode_of(reason: str) -> int:
    """The exit status a reason from :func:`exit_reason` describes (1 for
    any other reason: an actor that crashed or was stopped)."""
    if reason.startswith("killed by signal "):
        return -int(reason.rsplit(" ", 1)[1])
    if reason.startswith("killed by "):
        try:
            return -int(signal.Signals[reason[len("killed by "):]])
        except KeyError:
            return 1
    if reason.startswith("exit code "):
        try:
            return int(reason[len("exit code "):])
        except ValueError:
            return 1
    return 1
