"""``multiprocessing.connection`` for ``actors.mp``: Pipe and Connection
(``actors.mp.channels``), Listener, Client and the authentication
challenge (``actors.mp.listeners``), and :func:`wait`."""

from __future__ import annotations

import selectors
import time
from collections.abc import Iterable
from typing import Any

from actors.mp.channels import Connection, Pipe
from actors.mp.listeners import (
    CHALLENGE,
    FAILURE,
    MESSAGE_LENGTH,
    WELCOME,
    AuthenticationError,
    Client,
    Listener,
    address_type,
    answer_challenge,
    arbitrary_address,
    deliver_challenge,
    families,
)

__all__ = ["CHALLENGE", "FAILURE", "MESSAGE_LENGTH", "WELCOME", "AuthenticationError",
           "BufferTooShort", "Client", "Connection", "Listener", "Pipe", "address_type",
           "answer_challenge", "arbitrary_address", "deliver_challenge", "families", "wait"]

BufferTooShort = __import__("multiprocessing").BufferTooShort

_Selector = getattr(selectors, "PollSelector", selectors.SelectSelector)


def wait(object_list: Iterable[Any], timeout: float | None = None) -> list[Any]:
    """The objects of ``object_list`` that are ready, waiting until one is
    or ``timeout`` passes: Connections with something to receive (or at end
    of file), sockets, file descriptors, and ``Process.sentinel`` values
    (ready once the process has ended)."""
    objects = list(object_list)
    with _Selector() as selector:
        for obj in objects:
            selector.register(obj, selectors.EVENT_READ)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = selector.select(left)
            if ready:
                found = {key.fileobj for key, _ in ready}
                return [obj for obj in objects if obj in found]
            if deadline is not None and time.monotonic() >= deadline:
                return []
