"""SIGTERM in a library program: stop the actor systems in order.

``systemctl stop``, ``docker stop`` and Kubernetes send SIGTERM; its
default action kills the program at once, and no ``on_stop`` runs. An
ActorSystem made in the main thread of a program that left SIGTERM to its
default action installs :class:`StopOnSigterm`: the first SIGTERM raises
``SystemExit(143)`` (128 + SIGTERM, what a shell reports) in the main
thread, as Ctrl-C raises KeyboardInterrupt, so ``with`` blocks and
``finally`` clauses run and every system stops in order. A program's own
handler, or SIG_IGN, is kept. The default action is back once the last
system has shut down.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Protocol

__all__ = ["StopOnSigterm"]


class Stoppable(Protocol):
    """What the handler needs to know of a system's node."""

    shutting_down: bool
    finished: threading.Event


class StopOnSigterm:
    """The SIGTERM handler shared by every system of a process."""

    def __init__(self) -> None:
        self.nodes: list[Stoppable] = []

    def __call__(self, signum: int, frame: Any) -> None:
        if any(not node.shutting_down for node in self.nodes):
            raise SystemExit(128 + signum)
        if any(not node.finished.is_set() for node in self.nodes):
            return  # a stop in order is under way: let it finish
        signal.signal(signum, signal.SIG_DFL)  # nothing left to stop in order
        signal.raise_signal(signum)

    @classmethod
    def attach(cls, node: Stoppable) -> StopOnSigterm | None:
        """Stop ``node`` in order on SIGTERM, if this is the main thread and
        the program left SIGTERM to its default action (or to this handler)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        current = signal.getsignal(signal.SIGTERM)
        if isinstance(current, cls):
            handler = current
        elif current is signal.SIG_DFL:
            handler = cls()
            signal.signal(signal.SIGTERM, handler)
        else:
            return None  # the program's own handler, or SIG_IGN: keep it
        handler.nodes.append(node)
        return handler

    def detach(self, node: Stoppable) -> None:
        """``node`` has shut down; the last one puts the default action back
        (from the main thread; elsewhere the handler stays and acts as the
        default would, see ``__call__``)."""
        if node in self.nodes:
            self.nodes.remove(node)
        if (not self.nodes and signal.getsignal(signal.SIGTERM) is self
                and threading.current_thread() is threading.main_thread()):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
