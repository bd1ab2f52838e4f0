"""The synchronisation primitives, as ``multiprocessing.synchronize`` names
them: locks and semaphores (``actors.mp.locks``), events, conditions and
barriers (``actors.mp.conditions``)."""

from __future__ import annotations

from actors.mp.conditions import Barrier, Condition, Event
from actors.mp.locks import BoundedSemaphore, Lock, RLock, SemLock, Semaphore

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "SemLock",
           "Semaphore"]
