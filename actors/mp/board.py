"""The lease board of a process (see ``actors.mp.leases``): a small file in
the node's private folder, mapped in memory, one slot per lock this
process can be lent. A slot says whether the lock is held here (byte 0,
written at every local acquire and release), and, for a Value's own lock,
which lend of its number is here (bytes 4-8) and the number (bytes 8-16).
When a lease holder dies, the lock's server reads its slot from the file:
nothing else tells a lock held by the dead from one merely lent to it.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from typing import Any

from actors.mp import context

__all__ = ["SLOT", "SLOTS", "board_lend", "board_read", "path", "take_slot", "view"]

SLOT = 16        # board bytes per lock: [0] held, [4:8] a Value's lend, [8:16] its number
SLOTS = 4096     # locks per process that can be leased (the others go by messages)

_lock = threading.Lock()
_board: Any = bytearray(SLOT)  # until the board is open
_path = ""
_next = 0


def take_slot() -> int | None:
    """A slot of this process's board (opened on first use), or None: no
    board (no private folder), or every slot taken."""
    global _next
    if not _open():
        return None
    with _lock:
        if _next >= SLOTS:
            return None
        _next += 1
        return _next - 1


def view(start: int, end: int) -> memoryview:
    """Bytes ``start:end`` of the board, written in place."""
    return memoryview(_board)[start:end]


def path() -> str:
    return _path


def _open() -> bool:
    global _board, _path
    with _lock:
        if _path:
            return True
        try:
            where = os.path.join(context.rundir(), f"leases.{os.getpid()}")
            fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.ftruncate(fd, SLOT * SLOTS)
                board = mmap.mmap(fd, SLOT * SLOTS)
            finally:
                os.close(fd)
        except OSError:
            return False
        _board, _path = board, where
        return True


def board_read(where: str, slot: int, fmt: str | None) -> tuple[bool, Any]:
    """(held, Value number or None) from a dead holder's board."""
    raw = _slot_of(where, slot)
    if raw is None:
        return True, None  # unknown: say held (the next acquirer is warned)
    value = struct.unpack_from(fmt, raw, 8)[0] if fmt else None
    return raw[0] != 0, value


def board_lend(where: str, slot: int) -> int:
    """Which lend of a Value's number a dead holder's board holds (0: none
    known)."""
    raw = _slot_of(where, slot)
    return 0 if raw is None else struct.unpack_from("I", raw, 4)[0]


def _slot_of(where: str, slot: int) -> bytes | None:
    try:
        with open(where, "rb") as f:
            f.seek(slot * SLOT)
            raw = f.read(SLOT)
    except OSError:
        return None
    return raw if len(raw) == SLOT else None
