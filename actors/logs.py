"""Logging across processes: children ship records to the node, which hands
them to its own ``logging`` handlers, tagged with the actor's name and pid
(``record.actor``, ``record.processName``, ``record.process``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

FIELDS = ("name", "levelno", "levelname", "pathname", "filename", "module", "lineno",
          "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
          "process", "stack_info")


class ForwardHandler(logging.Handler):
    """Sends every record to the node as a plain dict (args already merged
    into the message, the exception already formatted)."""

    def __init__(self, send: Callable[[dict[str, Any]], None],
                 actor_name: Callable[[], str]) -> None:
        super().__init__()
        self._send = send
        self._actor_name = actor_name
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False):
            return  # a record logged while shipping one: drop, never recurse
        self._busy.on = True
        try:
            data = {key: getattr(record, key, None) for key in FIELDS}
            data["msg"] = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            data["exc_text"] = record.exc_text
            data["actor"] = getattr(record, "actor", None) or self._actor_name()
            data["processName"] = data["actor"]
            self._send(data)
        except Exception:
            self.handleError(record)
        finally:
            self._busy.on = False


def emit_remote(data: dict[str, Any]) -> None:
    """Hand a shipped record to this process's logging handlers."""
    record = logging.makeLogRecord(data)
    record.args = None
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


def install(handler: logging.Handler, level: int) -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class Throttled:
    """Warnings about what a peer sent that could not be used, rate-limited:
    up to ``burst`` records per ``period`` seconds, then one line saying how
    many were left out. Whatever a peer sends, the log stays bounded."""

    def __init__(self, logger: logging.Logger, period: float = 10.0, burst: int = 10) -> None:
        self._log = logger
        self._period = period
        self._burst = burst
        self._lock = threading.Lock()
        self._start = 0.0
        self._count = 0
        self._skipped = 0

    def warning(self, text: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._start >= self._period:
                skipped, self._skipped = self._skipped, 0
                self._start, self._count = now, 0
                if skipped:
                    self._log.warning("%d more such warnings were left out in the last %.0f s",
                                      skipped, self._period)
            self._count += 1
            if self._count > self._burst:
                self._skipped += 1
                return
        self._log.warning("%s", text)
