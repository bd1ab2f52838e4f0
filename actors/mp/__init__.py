"""actors.mp: the ``multiprocessing`` API, built on actors.

``import actors.mp as multiprocessing`` runs ordinary multiprocessing
programs: every Process is an actor in a spawned process, and every Queue,
Pipe, Lock, Event, Condition, Barrier, Value, Array and managed object is an
actor too, reached by msgpack messages. User values other than plain
scalars (targets, arguments, items, results) travel pickled inside them, as
the standard library pickles them, through the codec's local-only pickle
extension, which tcp:// links refuse. No OS semaphore, no
shared memory and no ``multiprocessing.managers`` are used underneath. See
docs/mp.md for what differs from the standard library.
"""

from __future__ import annotations

import logging
import multiprocessing as _stdlib
import os
from typing import Any

from actors.errors import WorkerLost
from actors.mp import (
    connection,
    context,
    managers,
    pool,
    process,
    queues,
    sharedctypes,
    synchronize,
)
from actors.mp.channels import Pipe
from actors.mp.managers import SyncManager
from actors.mp.executor import Executor
from actors.mp.pool import Pool
from actors.mp.primitive import PrimitiveLost
from actors.mp.process import Process, active_children, current_process, parent_process
from actors.mp.queues import JoinableQueue, Queue, SimpleQueue
from actors.mp.sharedctypes import Array, RawArray, RawValue, Value
from actors.mp.synchronize import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    RLock,
    Semaphore,
)

__all__ = [
    "Array", "AuthenticationError", "Barrier", "BoundedSemaphore", "BufferTooShort",
    "Condition", "Event", "Executor", "JoinableQueue", "Lock", "Manager", "Pipe", "Pool",
    "PrimitiveLost", "Process", "ProcessError", "Queue", "RLock", "RawArray", "RawValue", "Semaphore",
    "SimpleQueue", "TimeoutError", "Value", "WorkerLost", "active_children",
    "allow_connection_pickling", "cpu_count", "current_process", "freeze_support",
    "get_all_start_methods", "get_context", "get_logger", "get_start_method",
    "log_to_stderr", "parent_process", "set_executable", "set_forkserver_preload",
    "set_start_method", "set_system",
]

# The standard library's exception classes, so `except` clauses match either.
ProcessError = _stdlib.ProcessError
BufferTooShort = _stdlib.BufferTooShort
TimeoutError = _stdlib.TimeoutError  # noqa: A001
AuthenticationError = _stdlib.AuthenticationError

set_system = context.set_system
START_METHOD = "spawn"


def cpu_count() -> int:
    """The number of CPUs (NotImplementedError if unknown, as the stdlib)."""
    count = os.cpu_count()
    if count is None:
        raise NotImplementedError("cannot determine number of cpus")
    return count


def Manager() -> SyncManager:  # noqa: N802 (the stdlib's name)
    """A started SyncManager (use it as a context manager, or shutdown())."""
    manager = SyncManager()
    manager.start()
    return manager


def freeze_support() -> None:
    """Nothing to do: kept for programs that call it."""


def _check_method(method: str | None) -> None:
    if method not in (None, START_METHOD):
        raise ValueError(f"actors.mp starts every process with 'spawn' (a fresh interpreter); "
                         f"the {method!r} start method is not available")


def set_start_method(method: str | None, force: bool = False) -> None:
    """Only 'spawn' (or None) is accepted: that is what runs."""
    _check_method(method)


def get_start_method(allow_none: bool = False) -> str:
    return START_METHOD


def get_all_start_methods() -> list[str]:
    return [START_METHOD]


def set_executable(executable: str) -> None:
    """Accepted for compatibility; hosts run this interpreter."""


def set_forkserver_preload(module_names: list[str]) -> None:
    """Accepted for compatibility; there is no fork server."""


def allow_connection_pickling() -> None:
    """Connections always pickle (they are handles on an actor)."""


def get_logger() -> logging.Logger:
    """The logger of actors.mp (its level is passed on to children, as the
    standard library's multiprocessing logger once made)."""
    context.logger_made = True
    return logging.getLogger("actors.mp")


def log_to_stderr(level: int | None = None) -> logging.Logger:
    logger = get_logger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname)s/%(processName)s] %(message)s"))
    logger.addHandler(handler)
    if level is not None:
        logger.setLevel(level)
    return logger


class SpawnContext:
    """What ``get_context()`` returns: this module's API (as the stdlib's
    context objects mirror the ``multiprocessing`` module)."""

    _name = START_METHOD

    def get_start_method(self, allow_none: bool = False) -> str:
        return START_METHOD

    def get_context(self, method: str | None = None) -> SpawnContext:
        return get_context(method)

    def __getattr__(self, name: str) -> Any:
        if name in __all__ or name in ("connection", "managers", "pool", "process",
                                        "queues", "sharedctypes", "synchronize"):
            return globals()[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        return "<actors.mp SpawnContext>"


_context = SpawnContext()


def get_context(method: str | None = None) -> SpawnContext:
    """The context for ``method`` (only 'spawn', or None for the default)."""
    _check_method(method)
    return _context



