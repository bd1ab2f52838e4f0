"""The entry point of every spawned process, and dying with the parent.

Every host is started with the *spawn* method (a fresh interpreter, never a
fork of the main program) by the node's spawner thread, a thread that lives
as long as the ActorSystem, or forked from the template process, itself
started that way (``actors.template``). A child never outlives its parent,
even after ``kill -9``:

* on Linux, ``PR_SET_PDEATHSIG`` makes the kernel SIGKILL the child when the
  thread that started it ends (hence the long-lived spawner thread);
* from its first moment: ``multiprocessing`` imports the user's main script
  (as ``__mp_main__``) in the child before any code of ours runs there, and
  a script that hangs at import would outlive a killed parent. So the
  child's name (:func:`armed_name`) unpickles, before that import, as a
  call of the C library's ``prctl`` (stdlib callables only: the child
  needs nothing of ours to read it); ``die_with_parent`` sets it again;
* everywhere, a watchdog thread waits on the parent's sentinel (a pipe that
  becomes readable when the parent is gone) and exits the process;
* the pipe transport also sees EOF on its link.

Children ignore SIGINT: Ctrl-C reaches the whole foreground process group,
and it is the parent's job to stop its actors in order.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import logging
import multiprocessing
import operator
import os
import signal
import sys
import threading
from multiprocessing.connection import wait
from typing import Any

from actors.hostboot import HostBoot
from actors.host import Host
from actors.network import PipeHostNetwork, ZmqNetwork

__all__ = ["armed_name", "die_with_parent", "flush_std_streams", "host_main"]

PR_SET_PDEATHSIG = 1


class _Libc:
    def __reduce__(self) -> Any:
        return ctypes.CDLL, (None,)


class _Arm:
    def __reduce__(self) -> Any:  # unpickled: libc.prctl(PR_SET_PDEATHSIG, SIGKILL)
        return operator.methodcaller("prctl", PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0,
                                     0), (_Libc(),)


class _ArmedName(str):
    def __reduce__(self) -> Any:  # unpickled: (arm(), name)[1]
        return operator.getitem, ((_Arm(), str(self)), 1)


def armed_name(name: str) -> str:
    """``name`` for a spawned child's Process: on Linux, a str whose
    unpickling in the child sets ``PR_SET_PDEATHSIG`` (see module doc)."""
    return _ArmedName(name) if sys.platform.startswith("linux") else name


def die_with_parent(parent_pid: int, watchdog: bool = True) -> None:
    """Die when the parent does (see module doc); ``watchdog=False``: no
    watchdog thread (the template process watches in its own loop)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(70)
    parent = multiprocessing.parent_process()
    if watchdog and parent is not None and parent.sentinel is not None:
        sentinel = parent.sentinel

        def watch() -> None:
            wait([sentinel])
            os._exit(70)
        threading.Thread(target=watch, name="actors-parent-watch", daemon=True).start()


def host_main(boot: HostBoot, conn: Any, errors: Any) -> None:
    """Entry point of every host process (runs in the child). What goes
    wrong before the host says hello is written to ``errors`` (a pipe the
    node reads), so that the spawn fails with the real cause."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(boot.parent_pid)
    faulthandler.enable()  # a segfault leaves the Python stacks on stderr
    try:
        host = _make_host(boot, conn)
    except BaseException as e:
        try:
            errors.send_bytes(f"{type(e).__name__}: {e}".encode("utf-8", "replace"))
        except OSError:
            sys.exit(1)  # the node is gone: nobody to tell
        if _node_closed(boot):
            sys.exit(1)  # a spare still starting when its program ended: nothing to report
        raise
    errors.close()
    threading.excepthook = _log_thread_exception
    sys.exit(host.run())


def flush_std_streams() -> None:
    """Flush stdout and stderr before a process ends (one that is gone or
    closed is skipped)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _node_closed(boot: HostBoot) -> bool:
    """Whether the node removed its folder (it is shutting down), for an
    ipc address in it."""
    if not boot.bind.startswith("ipc://"):
        return False
    return not os.path.isdir(os.path.dirname(boot.bind[len("ipc://"):]))


def _make_host(boot: HostBoot, conn: Any) -> Host:
    for module in boot.preload:  # a spare imports what it will likely host
        try:
            importlib.import_module(module)
        except Exception:
            pass  # the start that needs it reports the error
    if boot.transport == "zmq":
        try:
            network: Any = ZmqNetwork(boot.bind, boot.node_address, boot.max_frame,
                                         boot.curve)
        except Exception as e:
            raise OSError(f"cannot bind {boot.bind}: {e}") from e
    else:
        network = PipeHostNetwork(conn, boot.bind)
    return Host(boot, network)


def _log_thread_exception(args: Any) -> None:
    logging.getLogger("actors").error(
        "uncaught exception in thread %s", getattr(args.thread, "name", "?"),
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
