"""Actor specs: what the node needs to start an actor, and to restart it."""

from typing import Any, NamedTuple

from actors.protocol.envelopes import ProtocolError

__all__ = ["ActorSpec", "SpawnOptions"]


# -- actor specs ------------------------------------------------------------------
class SpawnOptions(NamedTuple):
    """How the node treats an actor besides its class and arguments."""

    supervised: bool = False        # a supervisor's child: its ref outlives restarts
    supervisor: bool = False        # it is a Supervisor (its children form a subtree)
    restart: str | None = None      # permanent | transient | temporary (supervised)
    shutdown: float | None = None   # seconds its stop may take; 0: brutal kill
    hang_timeout: float | None = None
    quiet: bool = False             # its death is not logged (actors.mp processes)
    before: int | None = None       # a sibling it goes before in its parent's start order
    node: Any = None                # placement in a cluster: a node name, a list, "*"

    def to_wire(self) -> dict[str, Any]:
        defaults = SpawnOptions()
        return {k: v for k, v in self._asdict().items() if v != getattr(defaults, k)}

    @classmethod
    def from_wire(cls, value: Any) -> "SpawnOptions":
        if not isinstance(value, dict):
            raise ProtocolError(f"spawn options must be a map, got {value!r:.100}")
        try:
            return cls(**value)
        except TypeError as e:
            raise ProtocolError(f"bad spawn options: {e}") from None


class ActorSpec(NamedTuple):
    """What the node needs to start an actor, and to restart it.

    On the wire: ``[class_path, args, kwargs, name, parent, colocate, options]``.
    """

    class_path: str                 # module:QualName
    args: list[Any]
    kwargs: dict[str, Any]
    name: str | None
    parent: int | None              # uid of the actor that spawned it (a child)
    colocate: int | None            # uid of an actor whose process hosts it too
    options: SpawnOptions

    @property
    def label(self) -> str:
        """The actor's name, or its class's."""
        return self.name or self.class_path.rpartition(":")[2]

    def to_wire(self) -> list[Any]:
        return [self.class_path, self.args, self.kwargs, self.name, self.parent,
                self.colocate, self.options.to_wire()]

    @classmethod
    def from_wire(cls, value: Any) -> "ActorSpec":
        if type(value) is not list or len(value) != len(cls._fields):
            raise ProtocolError(f"malformed actor spec: {value!r:.100}")
        path, args, kwargs, name, parent, colocate, options = value
        if not isinstance(path, str) or not isinstance(args, list) \
                or not isinstance(kwargs, dict):
            raise ProtocolError(f"malformed actor spec: {value!r:.100}")
        return cls(path, args, kwargs, name, parent, colocate, SpawnOptions.from_wire(options))
