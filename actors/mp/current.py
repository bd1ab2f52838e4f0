"""Who this process is: ``current_process()`` (the main program's
MainProcess, or the Process object a child runs) and ``parent_process()``;
and :class:`Sentinel`, a descriptor readable once a process has ended."""

from __future__ import annotations

import os
import select
import time
from typing import Any

__all__ = ["MainProcess", "ParentProcess", "Sentinel", "became", "current_process",
           "parent_process"]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class Sentinel:
    """A file descriptor that becomes readable when process ``pid`` ends:
    a pidfd where the platform has them, else a pipe closed when ``done``
    (a future that completes when the process has ended) is done."""

    def __init__(self, pid: int | None, done: Any) -> None:
        self.fd: int
        self._write: int | None = None
        self._poll_pid: int | None = None  # no pidfd and no future: os.kill(pid, 0)
        if pid is not None and hasattr(os, "pidfd_open"):
            try:
                self.fd = os.pidfd_open(pid)
                return
            except ProcessLookupError:  # ended already: a pipe at end of file
                done = None
            except OSError:
                pass
        self.fd, self._write = os.pipe()
        if done is not None:
            done.add_done_callback(lambda _: self._end())
        elif pid is not None and _running(pid):
            self._poll_pid = pid
        else:
            self._end()

    def _end(self) -> None:
        write, self._write = self._write, None
        if write is not None:
            os.close(write)

    def ended(self, timeout: float | None) -> bool:
        """Whether the process has ended, waiting up to ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._poll_pid is not None:
            if not _running(self._poll_pid):
                self._end()
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)  # no pidfd on this platform: poll, between two checks
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select([self.fd], [], [], left)
            except InterruptedError:
                continue
            return bool(ready)

    def close(self) -> None:
        self._end()
        try:
            os.close(self.fd)
        except OSError:
            pass


class MainProcess:
    """``current_process()`` in the main program."""

    _identity: tuple[int, ...] = ()
    daemon = False
    name = "MainProcess"
    exitcode = None
    _parent_pid = None

    def __init__(self) -> None:
        self._config = {"authkey": os.urandom(32)}

    @property
    def authkey(self) -> bytes:
        return self._config["authkey"]

    @authkey.setter
    def authkey(self, key: bytes) -> None:
        self._config["authkey"] = bytes(key)

    @property
    def pid(self) -> int:
        return os.getpid()

    ident = pid

    def is_alive(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<_MainProcess name={self.name!r} parent=None started>"


class ParentProcess:
    """``parent_process()`` in a child: its name and pid, and whether it
    still runs (a pidfd where the platform has them)."""

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self._pid = pid
        self.daemon = False
        self._sentinel = Sentinel(pid, None)

    @property
    def pid(self) -> int:
        return self._pid

    ident = pid

    @property
    def sentinel(self) -> int:
        return self._sentinel.fd

    def is_alive(self) -> bool:
        return not self._sentinel.ended(0)

    def join(self, timeout: float | None = None) -> None:
        self._sentinel.ended(timeout)

    def __repr__(self) -> str:
        return f"<_ParentProcess name={self.name!r} parent=None started>"


main = MainProcess()
current: Any = None      # the Process object this child runs (None: the main program)
parent: ParentProcess | None = None


def current_process() -> Any:
    """The Process object of this process (MainProcess in the main program)."""
    return current if current is not None else main


def parent_process() -> ParentProcess | None:
    """The parent of this process, or None in the main program."""
    return parent


def became(process: Any, parent_info: list[Any]) -> None:
    """In a child: ``process`` is this process, started by ``parent_info``
    ([name, pid])."""
    global current, parent
    parent = ParentProcess(*parent_info)
    process._in_child()
    current = process
