"""Process: a target run in a spawned process, hosted by a ProcessActor.

``start()`` pickles the Process object (its target, args and any attributes
of a subclass, as the standard library does) and spawns a ProcessActor with
it in a process of its own (a warm spare when one is ready). It returns
once that process exists and has said its pid, as the standard library's
``start()`` returns once the child is launched: the child then unpickles
the object and runs ``Process.run()`` on its main thread while a helper
thread reads its messages. Whatever goes wrong from there (an unpickling
error, an exception, ``sys.exit``, a signal) shows in ``exitcode`` after
``join()``, as in the standard library; so does a process that died while
starting (exit code 1, say, for a script that starts processes at import
time without an ``if __name__ == "__main__":`` guard).

The parent's ``join`` is an ask answered with the exit code, or failed when
the process is killed (the exit code is then minus the signal number).
``sentinel`` is a real file descriptor (a pidfd where the platform has
them), readable once the process has ended.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import signal
import threading
import weakref
from multiprocessing import spawn as _stdlib_spawn
from typing import Any

from actors.errors import ActorDeadError, ActorError
from actors.launcher import exitcode_of
from actors.mp import context, reduction
from actors.mp import current as _cur
from actors.mp.current import Sentinel, current_process, parent_process
from actors.mp.processactor import ProcessActor, exit_code_of_start_failure
from actors.protocol import SpawnOptions
from transport.codec import Pickled

__all__ = ["BaseProcess", "Process", "active_children", "current_process", "parent_process"]

_counter = itertools.count(1)
_children: set[Process] = set()
_children_lock = threading.Lock()
_dangling: weakref.WeakSet[Process] = weakref.WeakSet()  # started here, not collected

_SIGNAL_NAMES = {-signum: f"-{name}" for name, signum in signal.__dict__.items()
                 if name.startswith("SIG") and "_" not in name and isinstance(signum, int)}


class Process:
    """As ``multiprocessing.Process``; always started with spawn."""

    _private = ("_ref", "_done", "_pid", "_exitcode", "_started", "_closed", "_sentinel",
                "_fds")

    def __init__(self, group: None = None, target: Any = None, name: str | None = None,
                 args: Any = (), kwargs: Any = None, *, daemon: bool | None = None) -> None:
        if group is not None:
            raise AssertionError("group argument must be None for now")
        count = next(_counter)
        me = current_process()
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs or {})
        self._identity = (*me._identity, count)
        self._config = dict(getattr(me, "_config", {}))
        self._name = name if name is not None else \
            f"{type(self).__name__}-" + ":".join(str(i) for i in self._identity)
        self._daemon = me.daemon if daemon is None else bool(daemon)
        self._parent_pid = os.getpid()
        self._parent_name = me.name
        self._ref: Any = None
        self._done: Any = None
        self._pid: int | None = None
        self._exitcode: int | None = None
        self._started = False
        self._closed = False
        self._sentinel: Sentinel | None = None
        self._fds: list[str] = []

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
        """Start the process; returns once it exists (see module doc)."""
        self._check_closed()
        if self._started:
            raise AssertionError("cannot start a process twice")
        if self._parent_pid != os.getpid():
            raise AssertionError("can only start a process object created by current process")
        if _cur.current is not None and _cur.current.daemon:
            raise AssertionError("daemonic processes are not allowed to have children")
        # a child re-importing an unguarded script: the standard library's
        # own check and error, so the child fails as it would under spawn
        _stdlib_spawn._check_not_importing_main()
        _cleanup()
        self._fds = reduction.collect()  # descriptors in the args: passed by fd
        try:
            # with the reducers registered for multiprocessing's pickler (ours
            # and the standard library's: a heap.BufferWrapper, say), so an
            # argument that cannot be pickled fails here
            payload = Pickled(data=reduction.dumps(
                (self, [self._parent_name, os.getpid()], _log_level()), pickle.HIGHEST_PROTOCOL))
        except BaseException:
            reduction.forget(self._fds)
            raise
        finally:
            reduction.stop_collecting()
        try:
            ref = context.spawn(ProcessActor, payload, colocate=False,
                                options=SpawnOptions(quiet=True))
            self._ref = ref
            self._pid = ref.ask(("run",))
            self._done = ref.ask_async(("wait",))
            self._done.busy = False  # (a join waits on the child: ActorFuture.busy)
        except ActorError as e:
            # it died while starting: an exit code, as the standard library
            # shows a child that failed before its target ran
            self._done = _failed_start(exit_code_of_start_failure(e))
        self._started = True
        self._done.add_done_callback(lambda _: reduction.forget(self._fds))
        # the target and its arguments live on in the child, not here
        # (a target holding this object would keep both alive)
        del self._target, self._args, self._kwargs
        with _children_lock:
            _children.add(self)
        _dangling.add(self)

    def join(self, timeout: float | None = None) -> None:
        """Wait until the process ends, or ``timeout`` seconds."""
        self._check_closed()
        if self._parent_pid != os.getpid():
            raise AssertionError("can only join a child process")
        if not self._started:
            raise AssertionError("can only join a started process")
        if not self._done.done():
            if timeout is None:
                self._done.exception()
            else:  # a timed join ends by itself: not a deadlock edge
                context.bind(self._ref)._runtime.wait(self._done, max(0.0, timeout),
                                                      track=False)
        if self._done.done():
            with _children_lock:
                _children.discard(self)

    def is_alive(self) -> bool:
        self._check_closed()
        if self is _cur.current:
            return True
        if self._parent_pid != os.getpid():
            raise AssertionError("can only test a child process")
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
        if self._sentinel is not None:
            self._sentinel.close()
        with _children_lock:
            _children.discard(self)
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
    def authkey(self) -> bytes:
        return self._config.get("authkey", _cur.main.authkey)

    @authkey.setter
    def authkey(self, key: bytes) -> None:
        self._config["authkey"] = bytes(key)

    @property
    def pid(self) -> int | None:
        self._check_closed()
        return self._pid

    ident = pid

    @property
    def sentinel(self) -> int:
        """A file descriptor, readable once the process has ended (for
        ``select`` or ``connection.wait``)."""
        self._check_closed()
        if not self._started:
            raise ValueError("process not started")
        if self._sentinel is None:
            self._sentinel = Sentinel(self._pid, self._done)
        return self._sentinel.fd

    def __repr__(self) -> str:
        exitcode = None
        if self is _cur.current:
            status = "started"
        elif self._closed:
            status = "closed"
        elif self._parent_pid != os.getpid():
            status = "unknown"
        elif not self._started:
            status = "initial"
        elif self._done is not None and self._done.done():
            status, exitcode = "stopped", self.exitcode
        else:
            status = "started"
        info = [type(self).__name__, f"name={self._name!r}"]
        if self._pid is not None and self is not _cur.current:  # the child's has none
            info.append(f"pid={self._pid}")
        info.append(f"parent={self._parent_pid}")
        info.append(status)
        if exitcode is not None:
            info.append(f"exitcode={_SIGNAL_NAMES.get(exitcode, exitcode)}")
        if self._daemon:
            info.append("daemon")
        return f"<{' '.join(info)}>"


BaseProcess = Process


def _log_level() -> int:
    """The level a child's multiprocessing logger starts with: the effective
    level of ours, once get_logger() made it (as the standard library)."""
    logger = logging.getLogger("actors.mp")
    return logger.getEffectiveLevel() if context.logger_made else logger.level


def _failed_start(code: int) -> Any:
    import concurrent.futures
    future: concurrent.futures.Future = concurrent.futures.Future()
    future.set_result(code)
    return future


def _cleanup() -> None:
    """Forget the children that have ended."""
    with _children_lock:
        for child in [c for c in _children if c._done is not None and c._done.done()]:
            _children.discard(child)


def active_children() -> list[Process]:
    """The children of this process that are still running (ended ones are
    forgotten)."""
    _cleanup()
    with _children_lock:
        return list(_children)


def exit_children() -> None:
    """At exit, as multiprocessing does: terminate daemonic children, join
    the others."""
    for child in active_children():
        if child.daemon:
            child.terminate()
    for child in active_children():
        child.join()


context.EXIT_HOOKS.insert(0, exit_children)  # before the queues give back
