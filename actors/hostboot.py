"""What the node hands a new host process (it travels as the spawned
process's argument, pickled by ``multiprocessing`` itself, or to the
template process). Apart from :mod:`actors.config`, so that a host process
does not build :class:`~actors.config.SystemConfig` (a frozen dataclass of
some 30 fields) nor compile its patterns at every start.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["HostBoot"]


@dataclasses.dataclass(frozen=True)
class HostBoot:
    """What a new host process needs to join its node."""

    node_id: str
    node_address: str
    transport: str
    bind: str                       # where its inbox binds (zmq) or its pipe name
    number: int                     # the node's number for this process
    name: str                       # its label until it hosts an actor
    log_level: int | str
    parent_pid: int
    counters: str                   # the mailbox counters file (see actors.launcher)
    preload: tuple[str, ...]        # modules a spare imports ahead of time
    hold_limit: int                 # messages held per address during a restart
    deadlock_detection: float | None
    quiescence: float | None
    token: bytes                    # the node's secret (service operations carry it)
    max_frame: int
    mailbox_size: int
    when_full: str
    send_timeout: float | None
    busy_wait: float                # s a thread waiting for its reply polls before sleeping
    curve: Any = None               # transport.keys.Curve on tcp
