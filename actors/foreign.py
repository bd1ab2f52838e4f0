"""What one process knows of other nodes (tcp nodes that met,
``actors.remotes``): which node each address it holds a ref to belongs
to, which nodes are lost, and how to ask another node's service.

Part of a :class:`actors.runtime.Runtime` (``runtime.foreign``), apart so
that the runtime's message path stays as it is for the nodes that never
meet another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.errors import ActorError
from actors.ref import ActorFuture, ActorRef

__all__ = ["Foreign"]


class Foreign:
    """Other nodes, as one process sees them (see module doc)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.lost: dict[str, str] = {}       # node id -> why: asks there fail at once
        self.addresses: dict[str, str] = {}  # address -> node id, from refs decoded here

    def make_ref(self, node: str, uid: int, address: str, name: str | None) -> ActorRef:
        """A ref decoded here (the codec's callback)."""
        runtime = self.runtime
        if node != runtime.node_id and self.addresses.get(address) != node:
            self._saw(node, address)
        return ActorRef(node, uid, address, name, runtime)

    def _saw(self, node: str, address: str) -> None:
        """A ref of another node: remember which node its address is of, so
        that the addresses of a lost node are closed (:meth:`fail`) and one
        that a new incarnation took is used again."""
        if type(address) is str and type(node) is str:
            self.addresses[address] = node
            outboxes = self.runtime.outboxes
            if address in outboxes.gone and node not in self.lost:
                outboxes.revive(address)

    def fail(self, node_id: str, reason: str) -> None:
        """Node ``node_id`` is lost: asks pending on its actors fail now,
        later ones at once; its processes' links are closed and tells there
        are dead letters."""
        runtime = self.runtime
        self.lost[node_id] = reason
        runtime.calls.fail_where(lambda target: target.node == node_id, reason)
        for address in [a for a, node in list(self.addresses.items()) if node == node_id]:
            self.addresses.pop(address, None)
            runtime.outboxes.forget(address)

    def local(self, ref: ActorRef) -> None:
        """Raise unless ``ref`` is of this node (a stop is a service
        operation: this node's token stays in its processes)."""
        if ref.node != self.runtime.node_id:
            raise ActorError(f"{ref!r} is an actor of node {ref.node}: stopping it from "
                             f"another node is not supported; tell it to stop itself")

    def ask(self, address: str, node: str, operation: Any,
            on_done: Callable[[ActorFuture], None] | None = None) -> ActorFuture:
        """Ask the service of node ``node`` at ``address`` an operation
        between nodes (``actors.protocol.peering``), without our token."""
        runtime = self.runtime
        call_id = runtime.calls.next_id()
        wire = [P.ASK, P.SERVICE_UID, P.encode_op(operation, P.NO_TOKEN), True,
                runtime.address, call_id]
        target = ActorRef(node, P.SERVICE_UID, address, "node", runtime)
        return runtime._request(target, wire, call_id, on_done, operation)  # its own part
