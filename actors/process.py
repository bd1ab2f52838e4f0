"""Starting host processes, and making sure they die with their parent.

Every host is started with the *spawn* method (a fresh interpreter, never a
fork) by the node's spawner thread, a thread that lives as long as the
ActorSystem. A child never outlives its parent, even after ``kill -9``:

* on Linux, ``PR_SET_PDEATHSIG`` makes the kernel SIGKILL the child when the
  thread that started it ends (hence the long-lived spawner thread);
* everywhere, a watchdog thread waits on the parent's sentinel (a pipe that
  becomes readable when the parent is gone) and exits the process;
* the pipe transport also sees EOF on its link.

Children ignore SIGINT: Ctrl-C reaches the whole foreground process group,
and it is the parent's job to stop its actors in order.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import faulthandler
import importlib
import mmap
import multiprocessing
import os
import queue
import signal
import struct
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(70)
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        sentinel = parent.sentinel

        def watch() -> None:
            wait([sentinel])
            os._exit(70)
        threading.Thread(target=watch, name="actors-parent-watch", daemon=True).start()


def host_main(boot: dict[str, Any], conn: Any) -> None:
    """Entry point of every host process (runs in the child)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(boot["parent_pid"])
    faulthandler.enable()  # a segfault leaves the Python stacks on stderr
    from actors.host import Host
    from actors.network import PipeHostNetwork, ZmqNetwork

    for module in boot["preload"]:  # a spare imports what it will likely host
        try:
            importlib.import_module(module)
        except Exception:
            pass  # the start that needs it reports the error
    if boot["transport"] == "zmq":
        network: Any = ZmqNetwork(boot["bind"], boot["node_address"])
    else:
        network = PipeHostNetwork(conn, boot["bind"])
    host = Host(boot["node_id"], network, boot["name"])
    host._log_level = boot["log_level"]
    host.mailed = MailboxCounters(boot["counters"])
    host.hold_limit = boot["hold_limit"]
    host.waits.configure(boot["deadlock"], track=boot["quiescence"] is not None)
    host.waits.remote = True
    threading.excepthook = _log_thread_exception
    sys.exit(host.run(boot["number"]))


def _log_thread_exception(args: Any) -> None:
    import logging
    logging.getLogger("actors").error(
        "uncaught exception in thread %s", getattr(args.thread, "name", "?"),
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


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


class Workers:
    """Daemon threads running submitted calls; they live until ``shutdown``
    (the spawner's thread must outlive every child it started). The pool
    grows when every thread is busy: a spawn from ``on_start`` holds a thread
    while it waits for a nested spawn, and a fixed pool would starve."""

    def __init__(self, name: str, size: int, grow: bool = False) -> None:
        self._name = name
        self._grow = grow
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        for _ in range(size):
            self._start_thread()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._threads.append(thread)
        self._idle += 1
        thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._grow and self._idle == 0:
                self._start_thread()
            self._idle -= 1
        self._queue.put((future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as e:
                        future.set_exception(e)
            finally:
                with self._lock:
                    self._idle += 1

    def busy(self) -> int:
        """Calls submitted and not finished."""
        with self._lock:
            return len(self._threads) - self._idle

    def shutdown(self) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(5.0)


class MailboxCounters:
    """Two counters in a file-backed page: messages put into mailboxes and
    messages taken out. The node reads them after the process died; the
    difference is what was lost in its mailboxes, even after SIGKILL."""

    def __init__(self, path: str | None) -> None:
        self._map: mmap.mmap | None = None
        if path is None:
            self.counts = memoryview(bytearray(16)).cast("Q")
            return
        with open(path, "w+b") as f:
            f.truncate(16)
            self._map = mmap.mmap(f.fileno(), 16)
        self.counts = memoryview(self._map).cast("Q")

    @staticmethod
    def lost(path: str) -> int:
        try:
            with open(path, "rb") as f:
                put, taken = struct.unpack("QQ", f.read(16))
        except (OSError, struct.error):
            return 0
        return max(0, put - taken)

    def close(self) -> None:
        self.counts.release()
        if self._map is not None:
            self._map.close()
