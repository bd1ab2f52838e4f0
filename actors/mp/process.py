"""Process: a target run in a spawned process, hosted by a ProcessActor.

``start()`` pickles the Process object (its target, args and any attributes
of a subclass, as the standard library does) and spawns a ProcessActor with
it in a process of its own (a warm spare when one is ready). Its ``run``
message unpickles the object and hands it to the host's main thread, which
runs ``Process.run()`` while a helper thread runs the actor loop; the
process exits with the target's exit code (0, 1 after an uncaught
exception, the ``sys.exit`` code). The parent's ``join`` is an ask that is
answered with the exit code, or fails when the process is killed (the exit
code is then minus the signal number).
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import traceback
from typing import Any

from actors.actor import Actor
from actors.errors import ActorDeadError
from actors.launcher import exitcode_of
from actors.mp import context
from actors.protocol import SpawnOptions
from actors.ref import Reply
from transport.codec import Pickled

__all__ = ["Process", "active_children", "current_process", "parent_process"]

_counter = itertools.count(1)
_children: set[Process] = set()
_children_lock = threading.Lock()


class ProcessActor(Actor):
    """Hosts one Process: runs it on the main thread, answers joins."""

    def __init__(self, payload: Pickled, parent: list[Any]) -> None:
        self.payload = payload
        self.parent = parent
        self.joiners: list[Reply] = []
        self.code: int | None = None

    def receive(self, message: Any) -> Any:
        op = message[0]
        if op == "run":
            return self.run()
        if op == "wait":
            if self.code is not None:
                return self.code
            reply = self.defer_reply()
            reply.bound = True  # answered when this process's target ends
            self.joiners.append(reply)
            return None
        raise ValueError(f"unknown message {message!r}")

    def withdraw(self, reply: Reply) -> bool:
        """The deadlock detector withdraws a join (see Primitive.withdraw)."""
        if reply in self.joiners:
            self.joiners.remove(reply)
            return True
        return False

    def run(self) -> int:
        from actors.mp import connection
        host = context.running_host()
        global _current, _parent
        _parent = ParentProcess(*self.parent)
        pending = connection.take_unattached()
        try:
            process = context.unpack(self.payload)
        finally:
            connection.stop_collecting()
        for conn in pending:  # held by this process from now on
            conn._attach()
        process._in_child()
        _current = process
        main = threading.main_thread().ident
        host.thread_waiters[main] = self.ref.uid
        host.run_on_main_thread(lambda: self.bootstrap(process))
        return os.getpid()

    def bootstrap(self, process: Process) -> int:
        code = 1
        try:
            process.run()
            code = 0
        except SystemExit as e:
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                sys.stderr.write(str(e.code) + "\n")
                code = 1
        except BaseException:
            sys.stderr.write(f"Process {process.name}:\n")
            traceback.print_exc()
        finally:
            try:
                for hook in list(context.EXIT_HOOKS):  # children, then borrowed items
                    hook()
                from actors.mp.primitive import sync_told
                sync_told()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except Exception:
                        pass
        self.code = code
        for reply in self.joiners:
            if not reply.done:
                reply.send(code)
        self.joiners = []
        return code


class Sentinel:
    """``Process.sentinel``: ready (for ``connection.wait``) once the process
    has ended. Not a file descriptor."""

    def __init__(self, process: Process) -> None:
        self._process = process

    @property
    def _ready_future(self) -> Any:
        return self._process._done

    def __repr__(self) -> str:
        return f"<sentinel of {self._process!r}>"


class Process:
    """As ``multiprocessing.Process``; always started with spawn."""

    _private = ("_ref", "_done", "_pid", "_exitcode", "_parent_pid", "_started",
                "_closed", "_sentinel")

    def __init__(self, group: None = None, target: Any = None, name: str | None = None,
                 args: Any = (), kwargs: Any = None, *, daemon: bool | None = None) -> None:
        if group is not None:
            raise AssertionError("group argument must be None for now")
        count = next(_counter)
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs or {})
        self._identity = (*current_process()._identity, count)
        self._name = name if name is not None else \
            "Process-" + ":".join(str(i) for i in self._identity)
        self._daemon = current_process().daemon if daemon is None else bool(daemon)
        self._parent_pid = os.getpid()
        self._ref: Any = None
        self._done: Any = None
        self._pid: int | None = None
        self._exitcode: int | None = None
        self._started = False
        self._closed = False
        self._sentinel: Sentinel | None = None

    # -- what runs in the child ---------------------------------------------
    def run(self) -> None:
        """The process's activity: calls the target (override in a subclass)."""
        if self._target:
            self._target(*self._args, **self._kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._private}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for key in self._private:
            self.__dict__.setdefault(key, None)
        self._started = self._closed = False

    def _in_child(self) -> None:
        self._pid = os.getpid()
        self._started = True

    # -- the parent's side ------------------------------------------------------
    def start(self) -> None:
        """Start the process; returns once its target is about to run."""
        self._check_closed()
        if self._started:
            raise AssertionError("cannot start a process twice")
        if self._parent_pid != os.getpid():
            raise AssertionError("can only start a process object created by current process")
        if _current is not None and _current.daemon:
            raise AssertionError("daemonic processes are not allowed to have children")
        payload = Pickled(self)
        payload.dump()  # an argument that cannot be pickled fails here
        me = current_process()
        ref = context.spawn(ProcessActor, payload, [me.name, os.getpid()],
                            colocate=False, options=SpawnOptions(quiet=True))
        self._ref = ref
        try:
            self._pid = ref.ask(("run",))
        except BaseException:
            ref.stop()
            raise
        self._started = True
        self._done = ref.ask_async(("wait",))
        with _children_lock:
            _children.add(self)

    def join(self, timeout: float | None = None) -> None:
        """Wait until the process ends, or ``timeout`` seconds."""
        self._check_closed()
        if self._parent_pid != os.getpid():
            raise AssertionError("can only join a child process")
        if not self._started:
            raise AssertionError("can only join a started process")
        if not self._done.done():
            self._done.exception(timeout) if timeout is None else self._wait(timeout)
        if self._done.done():
            with _children_lock:
                _children.discard(self)

    def _wait(self, timeout: float) -> None:
        # a timed join ends by itself: not a deadlock edge (as timed waits)
        context.bind(self._ref)._runtime.wait(self._done, max(0.0, timeout), track=False)

    def is_alive(self) -> bool:
        self._check_closed()
        if self is _current:
            return True
        if not self._started:
            return False
        return not self._done.done()

    @property
    def exitcode(self) -> int | None:
        self._check_closed()
        if not self._started or self._done is None or not self._done.done():
            return None
        if self._exitcode is None:
            error = self._done.exception(0)
            if error is None:
                self._exitcode = int(self._done.result(0))
            elif isinstance(error, ActorDeadError):
                self._exitcode = exitcode_of(str(error.reason or ""))
            else:
                self._exitcode = 1
        return self._exitcode

    def _signal(self, signum: int) -> None:
        self._check_closed()
        if self._started and self._pid is not None and not self._done.done():
            try:
                os.kill(self._pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        """SIGTERM to the process."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the process."""
        self._signal(signal.SIGKILL)

    def close(self) -> None:
        """Release this object (ValueError if the process still runs)."""
        if self._closed:
            return
        if self._started and not self._done.done():
            raise ValueError("Cannot close a process while it is still running. "
                             "You should first call join() or terminate().")
        self._closed = True

    def _check_closed(self) -> None:
        if self._closed:
            raise ValueError("process object is closed")

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError("name must be a string")
        self._name = name

    @property
    def daemon(self) -> bool:
        return self._daemon

    @daemon.setter
    def daemon(self, value: bool) -> None:
        if self._started:
            raise AssertionError("process has already started")
        self._daemon = bool(value)

    @property
    def pid(self) -> int | None:
        self._check_closed()
        return self._pid

    ident = pid

    @property
    def authkey(self) -> bytes:
        return _AUTHKEY

    @property
    def sentinel(self) -> Sentinel:
        """For ``actors.mp.connection.wait`` (not a file descriptor)."""
        self._check_closed()
        if not self._started:
            raise ValueError("process not started")
        if self._sentinel is None:
            self._sentinel = Sentinel(self)
        return self._sentinel

    def __repr__(self) -> str:
        if not self._started:
            status = "initial"
        elif self is _current:
            status = "started"
        elif self._done is not None and self._done.done():
            status = f"stopped exitcode={self.exitcode}"
        else:
            status = "started"
        daemon = " daemon" if self._daemon else ""
        return f"<{type(self).__name__} name={self._name!r} pid={self._pid} {status}{daemon}>"


_AUTHKEY = os.urandom(32)


class MainProcess:
    """``current_process()`` in the main program."""

    _identity: tuple[int, ...] = ()
    daemon = False
    name = "MainProcess"
    authkey = _AUTHKEY

    @property
    def pid(self) -> int:
        return os.getpid()

    ident = pid

    def is_alive(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "<_MainProcess name='MainProcess' parent=None started>"


class ParentProcess:
    """``parent_process()`` in a child: its name and pid."""

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self._pid = pid
        self.daemon = False

    @property
    def pid(self) -> int:
        return self._pid

    ident = pid

    def is_alive(self) -> bool:
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def join(self, timeout: float | None = None) -> None:
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.01)

    def __repr__(self) -> str:
        return f"<_ParentProcess name={self.name!r} parent=None started>"


_main = MainProcess()
_current: Process | None = None
_parent: ParentProcess | None = None


def current_process() -> Any:
    """The Process object of this process (MainProcess in the main program)."""
    return _current if _current is not None else _main


def parent_process() -> ParentProcess | None:
    """The parent of this process, or None in the main program."""
    return _parent


def active_children() -> list[Process]:
    """The children of this process that are still running (ended ones are
    reaped)."""
    with _children_lock:
        children = list(_children)
    alive = []
    for child in children:
        if child._done is not None and child._done.done():
            with _children_lock:
                _children.discard(child)
        else:
            alive.append(child)
    return alive


def exit_children() -> None:
    """At exit, as multiprocessing does: terminate daemonic children, join
    the others."""
    for child in active_children():
        if child.daemon:
            child.terminate()
    for child in active_children():
        child.join()


context.EXIT_HOOKS.insert(0, exit_children)  # before the queues give back
