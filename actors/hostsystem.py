"""``self.system`` inside an actor: spawn, lookup and watch, through the node.

In a host process every request that changes the actor tree goes to the
node's service (a spawn starts a process, a watch is kept by the node, a
lookup reads its names), so these calls are asks and tells of service
operations. The node is the only process that knows the whole tree.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors import protocol as P
from actors.actor import Actor, spec_for
from actors.ref import ActorRef, Reply
from actors.runtime import Runtime

__all__ = ["HostSystem"]


class Deferrer(Protocol):
    """How the host promises the reply of the ask an actor is handling."""

    def defer_reply(self, actor: Actor) -> Reply: ...


class HostSystem:
    """``self.system`` inside an actor (see module doc)."""

    def __init__(self, runtime: Runtime, host: Deferrer) -> None:
        self._runtime = runtime
        self._host = host

    def spawn(self, actor_class: type[Actor], *args: Any, name: str | None = None,
              colocate_with: ActorRef | None = None, node: Any = None,
              **kwargs: Any) -> ActorRef:
        """Start a top-level actor (not stopped with the caller; for a child,
        use ``Actor.spawn``); ``node`` places it in a cluster, as
        ``ActorSystem.spawn`` does."""
        return self.spawn_spec(spec_for(actor_class, args, kwargs, name, None, colocate_with,
                                        node=node))

    def spawn_child(self, parent: int | None, actor_class: type[Actor], args: tuple[Any, ...],
                    kwargs: dict[str, Any], name: str | None,
                    colocate_with: ActorRef | None = None) -> ActorRef:
        return self.spawn_spec(spec_for(actor_class, args, kwargs, name, parent, colocate_with))

    def spawn_spec(self, spec: P.ActorSpec) -> ActorRef:
        """Start an actor from a spec (``actors.actor.spec_for``); the
        low-level form layers above the core use."""
        return self.request(P.Spawn(spec))

    def lookup(self, name: str) -> ActorRef | None:
        return self.request(P.Lookup(name))

    def defer_reply(self, actor: Actor) -> Reply:
        """The reply to the ask ``actor`` is handling, to be sent later."""
        return self._host.defer_reply(actor)

    def request(self, operation: Any) -> Any:
        """Ask the node's service and wait (spawn, restart, terminate...)."""
        runtime = self._runtime
        return runtime.ask_service(runtime.service.address, operation).result()

    def tree(self) -> list[dict[str, Any]]:
        """The live actors as nested data (see ``ActorSystem.tree``)."""
        return self.request(P.Tree())

    def watch(self, watcher: ActorRef, target: ActorRef, link: bool) -> None:
        if not isinstance(target, ActorRef):
            raise TypeError(f"watch() takes an ActorRef, got {target!r}")
        runtime = self._runtime
        runtime.tell_service(runtime.service.address, P.Watch(watcher, target, bool(link)))

    def unwatch(self, watcher: ActorRef, target: ActorRef) -> None:
        runtime = self._runtime
        runtime.tell_service(runtime.service.address, P.Unwatch(watcher.uid, target.uid))
