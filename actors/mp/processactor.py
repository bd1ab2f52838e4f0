"""The actor that hosts one ``actors.mp.Process`` in its own process.

``("run",)`` is answered at once with the pid; the host's main thread then
unpickles the Process object and runs it (:func:`bootstrap`) while a helper
thread runs the actor loop, and the process exits with the target's exit
code. ``("wait",)`` (the parent's join) is answered with that code.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from typing import Any

from actors.actor import Actor
from actors.boot import flush_std_streams
from actors.errors import ActorError, SpawnError
from actors.launcher import exitcode_of
from actors.mp import context
from actors.mp.current import became
from actors.ref import Reply
from transport.codec import Pickled

__all__ = ["ProcessActor", "bootstrap", "exit_code_of_start_failure"]


class ProcessActor(Actor):
    """Hosts one Process: runs it on the main thread, answers joins."""

    def __init__(self, payload: Pickled) -> None:
        self.payload = payload
        self.joiners: list[Reply] = []
        self.code: int | None = None

    def receive(self, message: Any) -> Any:
        op = message[0]
        if op == "run":
            host = context.running_host()
            host.thread_waiters[threading.main_thread().ident] = self.ref.uid
            host.run_on_main_thread(self.main)
            return os.getpid()
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

    def main(self) -> int:
        """The process's main thread: the target, then the answer to joins."""
        code = bootstrap(self.payload)
        self.code = code
        for reply in self.joiners:
            if not reply.done:
                reply.send(code)
        self.joiners = []
        return code


def bootstrap(payload: Pickled) -> int:
    """Unpickle the Process and run it as the standard library's child does:
    stdin closed, the parent's logging level, ``run()``, then the wait for
    its non-daemonic threads and the exit hooks. Returns the exit code."""
    code = 1
    process: Any = None
    try:
        _close_stdin()
        process, parent, level = context.unpack(payload)
        became(process, parent)
        if level:
            logging.getLogger("actors.mp").setLevel(level)
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
        name = getattr(process, "name", "(not unpickled)")
        sys.stderr.write(f"Process {name}:\n")
        traceback.print_exc()
    finally:
        try:
            _join_threads()
            for hook in list(context.EXIT_HOOKS):  # children, then borrowed items
                hook()
            from actors.mp.primitive import sync_told
            sync_told()
        finally:
            flush_std_streams()
    return code


def _close_stdin() -> None:
    """As the standard library's children: stdin reads from /dev/null."""
    if sys.stdin is None:
        return
    try:
        sys.stdin.close()
    except (OSError, ValueError):
        pass
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
        try:
            sys.stdin = open(fd, encoding="utf-8", closefd=False)
        except BaseException:
            os.close(fd)
            raise
    except (OSError, ValueError):
        pass


def _join_threads() -> None:
    """Wait for the non-daemonic threads the target started."""
    me = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not me and not thread.daemon and thread.is_alive():
            thread.join()


def exit_code_of_start_failure(error: ActorError) -> int:
    """The exit code to report for a process that died while starting."""
    if isinstance(error, SpawnError):
        text = str(error)
        for marker in ("(exit code ", "(killed by "):
            if marker in text:
                return exitcode_of(text[text.index(marker) + 1:].split(")")[0])
    reason = getattr(error, "reason", "")
    return exitcode_of(str(reason or "")) if reason else 1
