"""Operations between nodes: what one node's service (uid 0) asks another's.

They travel like service operations (``[code, token, *fields]``) but carry
no token: a node's token never leaves its own processes. They are accepted
only by a node bound to tcp:// with keys, where every frame that reaches
the decoder came from a peer that passed CurveZMQ authentication (a
holder of the cluster's keys); hosts and ipc nodes drop them. Each is
harmless on its own: it names refs and actors, never starts, stops or
imports anything, except :class:`PeerSpawn` and :class:`PeerStop`, which
only a node in a cluster (``cluster=``, ``actors.cluster``) serves: the
cluster's members place actors on each other, of classes the serving
node's main program has imported already (no frame imports a module).
"""

from typing import Any, NamedTuple

from actors.protocol.ops import op
from actors.protocol.specs import ActorSpec

__all__ = ["Meet", "PeerDown", "PeerLookup", "PeerSpawn", "PeerStop", "PeerWatch", "NodeDown",
           "NO_TOKEN"]

NO_TOKEN = b""


def peer_op(code: int) -> Any:
    """Register a NamedTuple as a peer operation (accepted without a token)."""
    def register(cls: type) -> type:
        cls.peer = True  # type: ignore[attr-defined]
        return op(code)(cls)
    return register


@peer_op(100)
class Meet(NamedTuple):
    """Node -> node (ask): "I am ``name``, incarnation ``node_id``, my
    service is at ``address``, watch me at ``beacon``". Answers the same
    four of the other node."""
    name: str
    node_id: str
    address: str
    beacon: str


@peer_op(101)
class PeerLookup(NamedTuple):
    """The ref of the actor named ``name`` on that node, or None (ask)."""
    name: str


@peer_op(102)
class PeerWatch(NamedTuple):
    """Send ``watcher`` a Terminated when ``target`` (that node's) ends (tell)."""
    watcher: Any
    target: Any


@peer_op(103)
class PeerDown(NamedTuple):
    """These actors of the sending node are dead (tell)."""
    uids: list[int]
    reason: str


@op(105)
class NodeDown(NamedTuple):
    """Node -> its own hosts (with the token): the node ``node_id`` is lost;
    asks pending on its actors fail, later ones at once (tell)."""
    node_id: str
    reason: str


@peer_op(106)
class PeerSpawn(NamedTuple):
    """Start an actor on that node (ask), for ``owner`` (a supervisor's ref,
    or None): answers its ref. Served in a cluster only."""
    spec: ActorSpec
    owner: Any

    def to_wire(self) -> list[Any]:
        return [self.spec.to_wire(), self.owner]

    @classmethod
    def from_wire(cls, fields: list[Any]) -> "PeerSpawn":
        spec, owner = fields
        return cls(ActorSpec.from_wire(spec), owner)


@peer_op(107)
class PeerStop(NamedTuple):
    """Stop the actor ``uid`` of that node, which a peer placed there (ask;
    answers once it ended). Served in a cluster only."""
    uid: int
