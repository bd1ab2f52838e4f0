"""Hung handlers: the watchdog of actors with a ``hang_timeout``.

A thread of the host process looks, every tenth of the limit, at the
actors whose child spec set ``hang_timeout``. One whose handler (or
``on_start``) has run past it is *hung*: every Python stack of the process
is logged (a faulthandler dump, taken before anything is killed), then the
node is told, kills the process and lets the supervisor restart the actor
as crashed with reason ``"hung"``. The watchdog lives in the hung process:
C code that holds the GIL for ever starves it too.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable

from actors import protocol as P
from actors.cell import START, Cell
from actors.waits import safe_repr

__all__ = ["HangWatch"]

log = logging.getLogger("actors")


class HangWatch:
    """Watches the cells of one host (see module doc).

    Args:
        cells: the live cells of the process.
        report: tells the node a cell is hung ``(uid, message)``.
        stopped: True once the process is exiting.
    """

    def __init__(self, cells: Callable[[], list[Cell]], report: Callable[[int, str], None],
                 stopped: Callable[[], bool]) -> None:
        self._cells = cells
        self._report = report
        self._stopped = stopped
        self._thread: threading.Thread | None = None

    def watch(self, limit: float) -> None:
        """Start watching (once; the period follows the first limit seen)."""
        if self._thread is not None:
            return
        period = min(1.0, max(0.01, limit / 10))
        self._thread = threading.Thread(target=self._run, args=(period,),
                                        name="actors-hang-watch", daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        tick = threading.Event()  # never set: a periodic check
        while not self._stopped():
            tick.wait(period)
            now = time.monotonic()
            for cell in self._cells():
                if cell.hang and cell.busy and cell.alive and now - cell.since > cell.hang:
                    self._hung(cell, now - cell.since)
                    return

    def _hung(self, cell: Cell, seconds: float) -> None:
        with tempfile.TemporaryFile() as f:
            faulthandler.dump_traceback(f, all_threads=True)
            f.seek(0)
            dump = f.read().decode("utf-8", "replace")
        # every thread but this watchdog's own
        stacks = "\n\n".join(block for block in dump.strip().split("\n\n")
                              if not block.startswith("Current thread"))
        envelope = cell.envelope
        if envelope is START:
            what = "its on_start"
        elif isinstance(envelope, P.Call):
            what = f"its handler of a call to {envelope.method}()"
        elif isinstance(envelope, (P.Tell, P.Ask, P.Receipted)):
            what = f"its handler of {safe_repr(envelope.message, 100)}"
        else:
            what = "its handler"
        message = (f"actor {cell.label} (pid {os.getpid()}) hung: {what} has run for "
                   f"{seconds:.1f} s, past its hang_timeout of {cell.hang} s")
        log.error("%s. Python stacks of its process:\n%s", message, stacks,
                  extra={"actor": cell.label})
        self._report(cell.ref.uid, message)
