"""The worker side of a Pool: the actor that runs batches of work units
(see actors.mp.pool), and how a task's exception travels back with the
text of its traceback."""

from __future__ import annotations

import os
import pickle
import traceback
from multiprocessing.pool import MaybeEncodingError
from typing import Any

from actors.actor import Actor
from actors.mp import context, current
from transport.codec import Pickled

__all__ = ["APPLY", "MAP", "STARMAP", "MaybeEncodingError", "PoolWorker", "RemoteTraceback",
           "Unit", "WithTraceback", "WorkerProcess"]

APPLY, MAP, STARMAP = 0, 1, 2  # what a unit is: one task, a chunk of map, of starmap


class RemoteTraceback(Exception):
    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def rebuild_exception(exc: BaseException, tb: str) -> BaseException:
    exc.__cause__ = RemoteTraceback(tb)
    return exc


class WithTraceback:
    """An exception from a worker, pickled with its traceback's text."""

    def __init__(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.exc = exc
        self.tb = f'\n"""\n{text}"""'

    def __reduce__(self) -> Any:
        return rebuild_exception, (self.exc, self.tb)


class PoolWorker(Actor):
    """Runs batches of units; its initializer runs in every incarnation."""

    def __init__(self, index: int, setup: Pickled, parent: list[Any]) -> None:
        self.index = index
        self.setup = setup
        self.parent = parent

    def on_start(self) -> None:
        from actors.mp import process
        me = process.Process(name=f"SpawnPoolWorker-{self.index}", daemon=True)
        current.became(me, self.parent)
        initializer, initargs = context.unpack(self.setup)
        if initializer is not None:
            initializer(*initargs)

    def receive(self, message: Any) -> Any:
        units = context.unpack(message[1])
        out = []
        for unit_id, func, kind, payload in units:
            try:
                if kind == MAP:
                    value: Any = [func(x) for x in payload]
                elif kind == STARMAP:
                    value = [func(*x) for x in payload]
                else:
                    args, kwargs = payload
                    value = func(*args, **kwargs)
                out.append((unit_id, True, value))
            except Exception as e:
                out.append((unit_id, False, WithTraceback(e)))
        result = Pickled(out)
        try:
            result.dump()
        except Exception:
            result = Pickled([self.checked(entry) for entry in out])
        return result

    @staticmethod
    def checked(entry: tuple[int, bool, Any]) -> tuple[int, bool, Any]:
        """One unit's result, or the error of sending it."""
        try:
            pickle.dumps(entry[2])
            return entry
        except Exception as e:
            return (entry[0], False, MaybeEncodingError(e, entry[2]))


class Unit:
    __slots__ = ("id", "func", "kind", "payload", "job", "offset", "attempts", "alone")

    def __init__(self, uid: int, func: Any, kind: int, payload: Any, job: Any,
                 offset: int, attempts: int = 0, alone: bool = False) -> None:
        self.id = uid
        self.func = func
        self.kind = kind
        self.payload = payload
        self.job = job
        self.offset = offset
        self.attempts = attempts
        self.alone = alone  # sent in a batch of its own (it may kill its worker)

    def size(self) -> int:
        """How many results this unit stands for."""
        return 1 if self.kind == APPLY else len(self.payload)


class WorkerProcess:
    """A pool worker as ``Pool._pool`` lists it: its name and pid."""

    def __init__(self, name: str, pid: int | None) -> None:
        self.name, self.pid = name, pid

    def is_alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def __repr__(self) -> str:
        return f"<WorkerProcess name={self.name!r} pid={self.pid}>"
