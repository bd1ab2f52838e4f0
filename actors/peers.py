"""Which addresses a process may send to: the processes of its own node.

An address comes from a peer's frame (a ``reply_to``, a ref inside a
message) as often as from our own code, so an outlet is never opened for
an address just because a frame named it: that would let any peer make us
open sockets (file descriptors, reconnect timers) without bound.

- ipc: the node's private folder holds every socket of the node; an
  address is admitted if it names one of them (``node``, ``h<n>``,
  ``s<uid>`` in that folder).
- pipe: every frame goes through the node's relay; ``pipe:<n>`` and
  ``pipe:s<uid>`` are admitted (the relay drops the unknown ones).
- tcp: ports cannot be told apart by their form. The node answers for its
  own processes and for those of the nodes it met (``known``,
  ``actors.remotes``); a host learns addresses from the node, and a tcp
  address it has not learned yet is *unknown*:
  its messages wait while the node is asked (``IsPeer``), then go or
  become dead letters. At most ``MAX_UNKNOWN`` addresses wait at a time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

__all__ = ["MAX_UNKNOWN", "Peers"]

MAX_UNKNOWN = 64

_PIPE = re.compile(r"pipe:s?\d+\Z")
_TCP = re.compile(r"tcp://[^/:]+:\d{1,5}\Z")


class Peers:
    """The admission rule of one process (see module doc).

    Args:
        node_address: the node's own address.
        known: for the node itself, whether an address is one of its
            processes (it knows them all).
    """

    def __init__(self, node_address: str, known: Callable[[str], bool] | None = None) -> None:
        self.node_address = node_address
        self._known_by_node = known
        self._lock = threading.Lock()
        self.learned: set[str] = {node_address}
        self._pattern: re.Pattern[str] | None = None
        if node_address.startswith("pipe:"):
            self._pattern = _PIPE
        elif node_address.startswith("ipc://"):
            folder = node_address[:node_address.rfind("/") + 1]
            self._pattern = re.compile(re.escape(folder) + r"(node|h\d+|s\d+)\Z")

    def admit(self, address: object) -> bool | None:
        """True: send there; False: never; None: ask the node first."""
        if type(address) is not str:
            return False
        if self._pattern is not None:
            return self._pattern.match(address) is not None
        if address in self.learned:
            return True
        if self._known_by_node is not None:
            return self._known_by_node(address)
        if _TCP.match(address) is not None:  # ours, or another node's: the node decides
            return None
        return False

    def learn(self, addresses: list[str]) -> None:
        with self._lock:
            self.learned.update(a for a in addresses if type(a) is str)

    def forget(self, address: str) -> None:
        with self._lock:
            if address != self.node_address:
                self.learned.discard(address)
