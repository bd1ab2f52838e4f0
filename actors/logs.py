"""Logging across processes: children ship records to the node, which hands
them to its own ``logging`` handlers, tagged with the actor's name and pid
(``record.actor``, ``record.processName``, ``record.process``)."""

from __future__ import annotations

import logging
import threading
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
