"""Host processes as the node sees them: starting them, and warm spares.

Every host starts *blank*: the runtime imported, its inbox bound, waiting
for the node to tell it which actor to start. It is forked from the
template process (``actors.template``; Linux) or, failing that, started
with spawn (a fresh interpreter). A spawn then costs one message round
trip when a blank host is at hand, a fork or an interpreter start-up when
none is.

The pool of spares switches on at the first spawn (``spares=0``: never).
Taking one starts its replacement a moment after the start it served is
answered (at once if it emptied the pool). It holds ``spares`` at rest; a
spawn that finds it empty raises its target (up to ``max_spares``), and
``spares_idle`` seconds without a spawn bring it back.
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
import time
from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.boot import armed_name, host_main
from actors.config import HostBoot, SystemConfig, tcp_host
from actors.errors import SpawnError
from actors.runtime import Runtime
from actors.template import ForkedProcess, Template
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
        self.aliases: list[str] = []  # addresses of dead processes it took over
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
        self.lock = threading.RLock()  # hosts, and hellos becoming done (a hello's Down
        # to a tcp address asks live_hosts, under this lock)
        self.hosts: dict[int, HostProcess] = {}
        self.hellos: dict[int, HostProcess] = {}   # started, hello not handled yet
        self.started_pids: set[int] = set()
        self.by_sentinel: dict[int, HostProcess] = {}  # read by the node's loop thread
        self._numbers = itertools.count(1)
        # Not a ThreadPoolExecutor: the thread that starts children must outlive
        # them (PR_SET_PDEATHSIG fires when it ends).
        self.spawner = Workers("actors-spawner", 1)
        self.size = config.spares        # the pool at rest
        self.max_size: int = config.max_spares  # type: ignore[assignment]
        self.target = self.size          # what it refills to now (grows with demand)
        self.active = False
        self.pool: collections.deque[HostProcess] = collections.deque()
        self.making = 0
        self.taken = self.misses = self.grown = self.shrunk = 0
        self.forked = self.spawned = 0
        self._last_take = 0.0
        self._filled = False  # the pool was full once (misses before do not count)
        self._shrinker: threading.Timer | None = None
        self.template: Template | None = None
        self._template_lock = threading.Lock()
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
        """A new blank host, ready for a Start (blocks up to the spawn timeout):
        forked from the template when it serves, else spawned."""
        config, runtime = self.config, self.runtime
        number = next(self._numbers)
        bind = self.bind_for(number)
        boot = HostBoot(node_id=runtime.node_id, node_address=runtime.address,
                        transport=config.transport, bind=bind, number=number, name=label,
                        log_level=config.log_level or 0, parent_pid=os.getpid(),
                        counters=self.counters_path(number), preload=tuple(sorted(self.preload)),
                        hold_limit=config.restart_buffer, busy_wait=config.busy_wait,
                        deadlock_detection=config.deadlock_detection,
                        quiescence=config.quiescence, token=runtime.token,
                        max_frame=config.max_frame, mailbox_size=config.mailbox_size,
                        when_full=config.when_full, send_timeout=config.send_timeout,
                        curve=runtime.network.curve if config.bind != "ipc" else None)
        child_conn = parent_conn = None
        if config.transport == "pipe":
            parent_conn, child_conn = self.context.Pipe(duplex=True)
        errors_in, errors_out = self.context.Pipe(duplex=False)
        host = HostProcess(number, bind, None)
        host.errors = errors_in
        self.hellos[number] = host
        try:
            try:
                host.process = process = self._launch(boot, label, child_conn, errors_out)
            except BaseException:
                if parent_conn is not None:
                    parent_conn.close()
                raise
            finally:
                errors_out.close()
                if child_conn is not None:
                    child_conn.close()
            host.pid = process.pid
            self.started_pids.add(process.pid)
            if parent_conn is not None:
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

    def _launch(self, boot: HostBoot, label: str, conn: Any, errors: Any) -> Any:
        template = self._template()
        if template is not None:
            fds = [errors.fileno()] + ([conn.fileno()] if conn is not None else [])
            try:
                process = template.fork(boot, fds)
                self.forked += 1
                return process
            except SpawnError:
                if template.serving:
                    raise  # else the template is gone: this one starts from spawn
        process = self.context.Process(target=host_main, args=(boot, conn, errors),
                                       name=armed_name(f"actors:{label}"))
        self.spawner.submit(process.start).result()
        self.spawned += 1
        return process

    def _template(self) -> Template | None:
        """The template process, started on first use; None if it does not
        serve (``template=False``, or see ``Template.problem``)."""
        if not self.config.template:
            return None
        with self._template_lock:
            template = self.template
            if template is None:
                if self._shutting_down():
                    return None
                template = self.template = Template(
                    self.context, tuple(sorted(self.preload)), self.config.spawn_timeout,
                    self.runtime.address)
                self.spawner.submit(template.start).result()
                if template.pid is not None:
                    self.started_pids.add(template.pid)
                if template.problem:
                    log.warning("no template process (%s): new processes start from spawn",
                                template.problem)
        return template if template.serving else None

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
        if isinstance(host.process, ForkedProcess):
            host.process.close()  # its sentinel: the node's loop no longer watches it
        if was_spare and self.active and not self._shutting_down():
            self.refill()

    # -- ending hosts -------------------------------------------------------------------
    def kill(self, host: HostProcess) -> None:
        """SIGKILL a host and wait (up to 5 s) until the node saw it end."""
        if host.alive and host.process is not None:
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
        """A ready spare, or None; the caller refills once its start is
        answered (unless this emptied the pool: now). None ready but one
        starting: wait for it. Finding the pool empty (or emptying it)
        raises its target, up to ``max_spares``, for ``spares_idle`` s."""
        host = None
        with self._pool_lock:
            self.taken += 1
            self._last_take = time.monotonic()
            missed = False
            while host is None:
                while self.pool:
                    candidate = self.pool.popleft()
                    if candidate.alive:
                        host = candidate
                        break
                if host is not None or self.making == 0 or self._shutting_down():
                    break
                missed = True
                self._changed.wait(self.config.spawn_timeout)
            if host is None:
                missed = True
            if missed:
                self.misses += 1
            if (self.active and self._filled and (missed or not self.pool)
                    and self.target < self.max_size):
                self.target = min(self.max_size, max(self.target + 1, 2 * self.target))
                self.grown += 1
            if self.target > self.size and self._shrinker is None and self.active:
                self._shrink_later(self.config.spares_idle)
        if not self.pool:  # emptied: a burst, whose next spawn should not wait
            self.refill()
        return host

    def activate(self) -> None:
        """Switch the pool of spares on (it refills itself from now on)."""
        if self.size > 0 and not self.active:
            self.active = True
            self.refill()

    def refill(self, delay: float = 0.0) -> None:
        if not self.active:
            return
        with self._pool_lock:
            wanted = self.target - len(self.pool) - self.making
            if self.template is None or not self.template.serving:
                # interpreters starting at once: no more than the cores
                wanted = min(wanted, (os.cpu_count() or 1) - self.making)
            if self._shutting_down() or wanted <= 0:
                return
            self.making += wanted
        for _ in range(wanted):  # (counted in making while they wait)
            self._workers.submit(self._make, delay)

    def _make(self, delay: float = 0.0) -> None:
        try:
            time.sleep(delay)
            if self._shutting_down():
                raise SpawnError("the system is shutting down")
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
            keep = not self._shutting_down() and len(self.pool) < self.target
            if keep:
                self.pool.append(host)
                self._filled = self._filled or len(self.pool) >= self.target
            self._changed.notify_all()
        if not keep:
            self.exit(host)
        elif self.making == 0:
            self.refill()  # spawn mode starts a few at a time

    def _shrink_later(self, delay: float) -> None:
        timer = self._shrinker = threading.Timer(delay, self._shrink)
        timer.daemon = True
        timer.name = "actors-spares-idle"
        timer.start()

    def _shrink(self) -> None:
        """Back to ``spares`` once no spawn came for ``spares_idle`` seconds."""
        with self._pool_lock:
            self._shrinker = None
            if self._shutting_down():
                return
            idle = time.monotonic() - self._last_take
            if idle < self.config.spares_idle:
                self._shrink_later(self.config.spares_idle - idle)
                return
            self.target = self.size
            extra = []
            while len(self.pool) > self.target:
                extra.append(self.pool.pop())
            self.shrunk += len(extra)
        for host in extra:
            self.exit(host)

    def stats(self) -> dict[str, Any]:
        """The pool and how processes started (``ActorSystem.spare_pool``)."""
        template = self.template
        with self._pool_lock:
            return {"ready": len(self.pool), "starting": self.making, "target": self.target,
                    "spares": self.size, "max_spares": self.max_size, "taken": self.taken,
                    "misses": self.misses, "grown": self.grown, "shrunk": self.shrunk,
                    "forked": self.forked, "spawned": self.spawned,
                    "template": template.pid if template is not None and template.serving
                    else None,
                    "template_problem": template.problem if template is not None else ""}

    def shutdown(self) -> None:
        with self._pool_lock:
            shrinker, self._shrinker = self._shrinker, None
        if shrinker is not None:
            shrinker.cancel()
        with self._template_lock:
            template = self.template
        if template is not None:
            template.close()
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
