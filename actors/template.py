"""The template process: hosts forked on demand from a clean interpreter.

A host started with *spawn* costs a fresh interpreter that imports the
runtime (~150 ms on an idle core). The template is one such process,
started once per system with *spawn* (never a fork of the main program):
the runtime is imported, and the modules of the supervised classes known
when it started; it runs no thread, has no ZeroMQ context and no socket
but its control channel. For each request it forks a host, which then
builds its own transport, exactly as a spawned host does. A fork costs a
few milliseconds.

What keeps that as safe as spawn:

* the template imports only what a spawned host imports anyway (the main
  script as ``__mp_main__``, the runtime, the preloaded modules); if, once
  they are imported, any thread runs (a library that starts threads at
  import) or a ZeroMQ context exists, the template refuses to serve and the
  node falls back to spawn for good (``spare_pool()["template"]`` says why);
* it checks that it is still single-threaded before every fork;
* a forked host is the template's child: ``PR_SET_PDEATHSIG`` ties it to the
  template, the template to the node's spawner thread, so ``kill -9`` of the
  main program takes all of them down; the host's watchdog also waits on the
  main program's own sentinel, as a spawned host's does;
* the template reaps its children and reports how each ended, so the node
  sees exit codes and signals as for a spawned host.

Its limit: the hosts forked from it die with it. It runs only the loop
below, so it ends only with the system (or by a ``kill`` aimed at it); its
hosts' actors then end as "killed by SIGKILL" and supervisors restart them
(from spawned hosts: a template that died is not started again).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import gc
import importlib
import logging
import multiprocessing
import os
import pickle
import select
import signal
import socket
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

from actors.boot import armed_name, die_with_parent, flush_std_streams, host_main
from actors.hostboot import HostBoot
from actors.errors import SpawnError
from actors.peers import Peers

__all__ = ["ForkedProcess", "Template", "template_main"]

log = logging.getLogger("actors")

MAX_MESSAGE = 1 << 20


def _send(sock: socket.socket, message: Any, fds: list[int] | None = None) -> None:
    data = pickle.dumps(message)
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _report(sock: socket.socket, message: Any) -> None:
    """The template's reports to the node; a node gone (its end closed at
    shutdown) ends the template quietly, as its hosts end with it."""
    try:
        _send(sock, message)
    except OSError:
        os._exit(0)


class ForkedProcess:
    """The node's handle on a host forked by the template: the part of
    ``multiprocessing.Process`` the node uses (``pid``, ``sentinel``,
    ``kill``, ``join``, ``is_alive``, ``exitcode``)."""

    def __init__(self, pid: int, sentinel: int, parent: int) -> None:
        self.pid = pid
        self.sentinel = sentinel  # readable (EOF) once the process is gone
        self.exitcode: int | None = None
        self._parent = parent  # the template's pid
        self._ended = threading.Event()

    def ended(self, exitcode: int) -> None:
        if self.exitcode is None:
            self.exitcode = exitcode
        self._ended.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until it ended and its exit status is known: read from its
        zombie's /proc entry once its sentinel fired (no wait for the
        template, which may not run soon on a busy machine), else as the
        template reports it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended.is_set():
            if self._exited_now():
                status = _zombie_status(self.pid, self._parent)
                if status is not None:
                    self.ended(status)
                    return
                step = 0.001  # between the exit and the zombie, or reaped already
            else:
                step = 0.05
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return
            self._ended.wait(step)

    def _exited_now(self) -> bool:
        try:
            return bool(select.select([self.sentinel], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def is_alive(self) -> bool:
        return not self._ended.is_set()

    def kill(self) -> None:
        if self._ended.is_set():
            return
        # Its sentinel is readable once it exited (before it is reaped): a
        # process seen alive here still owns its pid.
        if not self._exited_now():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def close(self) -> None:
        fd, self.sentinel = self.sentinel, -1
        if fd >= 0:
            os.close(fd)


class Template:
    """The node's side of the template process (see module doc)."""

    def __init__(self, context: Any, preload: tuple[str, ...], timeout: float,
                 node_address: str) -> None:
        self.pid: int | None = None
        self.problem = ""   # why it does not serve (empty while it does)
        self.forks = 0
        self._timeout = timeout
        # sends, and the queue of forks in flight (in the order sent); the
        # reader never takes it (a send blocked on a full socket must not
        # stop the reports that empty it)
        self._lock = threading.Lock()
        self._pending: collections.deque[tuple[concurrent.futures.Future, int]] = \
            collections.deque()
        self._children: dict[int, ForkedProcess] = {}
        self._ready: concurrent.futures.Future = concurrent.futures.Future()
        self._closed = False
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = context.Process(target=template_main, args=(theirs, os.getpid(), preload,
                                                                 node_address),
                                       name=armed_name("actors:template"), daemon=False)
        self._theirs = theirs

    def start(self) -> None:
        """Start it (on the node's spawner thread: see ``actors.boot``) and
        wait until it serves; ``problem`` says why not."""
        try:
            self.process.start()
        finally:
            self._theirs.close()
        self.pid = self.process.pid
        threading.Thread(target=self._read, name="actors-template", daemon=True).start()
        try:
            self.problem = self._ready.result(self._timeout)
        except concurrent.futures.TimeoutError:
            self.problem = f"it did not start within {self._timeout} s"

    @property
    def serving(self) -> bool:
        return not self.problem and not self._closed

    def fork(self, boot: HostBoot, fds: list[int]) -> ForkedProcess:
        """A new host from the template; ``fds``: its errors pipe, then its
        link (pipe transport). Raises SpawnError if the template cannot."""
        alive_r, alive_w = os.pipe()
        future: concurrent.futures.Future = concurrent.futures.Future()
        boot = dataclasses.replace(boot, parent_pid=self.pid)
        try:
            with self._lock:
                if not self.serving:
                    raise SpawnError(f"the template process does not serve: {self.problem}")
                self._pending.append((future, alive_r))
                try:
                    _send(self.sock, ("fork", boot), [alive_w, *fds])
                except OSError as e:
                    self._pending.pop()
                    raise SpawnError(f"the template process is gone ({e})") from None
        except BaseException:
            os.close(alive_r)
            raise
        finally:
            os.close(alive_w)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            raise SpawnError(f"the template process did not fork within {self._timeout} s") \
                from None

    def _read(self) -> None:
        sock = self.sock
        while True:
            try:
                data = sock.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = pickle.loads(data)  # from our own child, over a private socketpair
            kind = message[0]
            if kind == "ready":
                self._ready.set_result(message[1])
            elif kind == "exit":
                child = self._children.pop(message[1], None)
                if child is not None:
                    child.ended(message[2])
            else:  # "forked" or "failed": the oldest fork in flight
                future, alive_r = self._pending.popleft()  # deque: thread-safe
                if kind == "forked":
                    child = ForkedProcess(message[1], alive_r, self.pid or 0)
                    self._children[child.pid] = child
                    self.forks += 1
                    future.set_result(child)
                else:  # it will not fork again: new processes start from spawn
                    self.problem = f"it refused to fork: {message[1]}"
                    os.close(alive_r)
                    future.set_exception(SpawnError(f"the template could not fork: {message[1]}"))
        self._gone()

    def _gone(self) -> None:
        with self._lock:
            quiet = self._closed or bool(self.problem)  # closed, or refused to serve
            self._closed = True
            if not self.problem:
                self.problem = "it ended"
            pending, self._pending = list(self._pending), collections.deque()
        if not self._ready.done():
            self._ready.set_result(self.problem)
        for future, alive_r in pending:
            os.close(alive_r)
            future.set_exception(SpawnError("the template process ended"))
        # its hosts die with it (PR_SET_PDEATHSIG)
        for child in list(self._children.values()):
            child.ended(-signal.SIGKILL)
        self._children.clear()
        if not quiet:
            log.warning("the template process ended: new processes start from spawn")

    def close(self) -> None:
        """End it (its hosts are gone by now)."""
        with self._lock:
            self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.pid is not None:  # (None: it never started)
            self.process.join(2.0)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(2.0)
        self.sock.close()


def _zombie_status(pid: int, parent: int) -> int | None:
    """The exit code (negative: a signal) of ``pid`` if it is a zombie child
    of ``parent`` (Linux: /proc/PID/stat, field 52), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        if fields[0] != b"Z" or int(fields[1]) != parent or len(fields) < 50:
            return None
        return os.waitstatus_to_exitcode(int(fields[49]))
    except (OSError, ValueError, IndexError):
        return None


# -- in the template process --------------------------------------------------------

def _threaded() -> str:
    """Why forking here would be unsafe now, or ''."""
    if threading.active_count() > 1:
        return f"{threading.active_count()} Python threads run"
    try:
        tasks = len(os.listdir("/proc/self/task"))
    except OSError:
        tasks = 1
    if tasks > 1:
        return f"{tasks} threads run (started by an imported library)"
    return ""


def _unsafe(preload: tuple[str, ...]) -> str:
    problem = _threaded()
    if not problem and "zmq" in sys.modules:
        zmq = sys.modules["zmq"]
        if any(isinstance(obj, zmq.Context) for obj in gc.get_objects()):
            problem = "a ZeroMQ context exists"
    if problem and preload:
        problem += f" after importing {', '.join(preload)} and the main module"
    return problem


def template_main(sock: socket.socket, parent_pid: int, preload: tuple[str, ...],
                  node_address: str) -> None:
    """Entry point of the template process (started with spawn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid, watchdog=False)  # no thread here: the loop watches
    Peers(node_address)  # compiles (and caches) the pattern every host of this node needs
    # A host imports asyncio with its first async handler (a spawned one
    # starts without it); forked ones find it here, imported once.
    importlib.import_module("asyncio")
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:
            pass  # the start that needs it reports the error
    problem = _unsafe(preload)
    _report(sock, ("ready", problem))
    if problem:
        return
    parent = multiprocessing.parent_process()
    parent_sentinel = parent.sentinel if parent is not None else None
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    watched = [sock, wake_r] + ([parent_sentinel] if parent_sentinel is not None else [])
    while True:
        ready = wait(watched)
        if parent_sentinel is not None and parent_sentinel in ready:
            os._exit(0)
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            _reap(sock)
        if sock in ready:
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 8)
            except OSError:
                data, fds = b"", []
            if not data:
                os._exit(0)  # the node closed the channel: its hosts are gone
            for fd in fds:
                os.set_inheritable(fd, False)
            _fork(sock, pickle.loads(data)[1], fds, [wake_r, wake_w])


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report(sock, ("exit", pid, os.waitstatus_to_exitcode(status)))


def _fork(sock: socket.socket, boot: HostBoot, fds: list[int], own: list[int]) -> None:
    problem = _threaded()
    if problem or len(fds) < 2:
        for fd in fds:
            os.close(fd)
        _report(sock, ("failed", problem or "bad request"))
        return
    pid = os.fork()
    if pid == 0:  # the new host
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            sock.close()
            for fd in own:
                os.close(fd)
            code = _host(boot, fds)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    _report(sock, ("forked", pid))


def _host(boot: HostBoot, fds: list[int]) -> int:
    # fds[0]: the write end of its sentinel, open as long as it lives
    errors = Connection(fds[1])
    conn = Connection(fds[2]) if len(fds) > 2 else None
    multiprocessing.current_process().name = f"actors:{boot.name}"
    code = 1
    try:
        host_main(boot, conn, errors)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        flush_std_streams()
    return code
