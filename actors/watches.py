"""Watches and links: who is told when an actor ends for good.

``actor.watch(ref)`` asks the node to send a :class:`Terminated` notice to
the watcher when ``ref`` ends for good (a supervised actor ends for good
when its supervisor stops restarting it); at once if it is dead already.
With ``link=True`` a crash of ``ref`` crashes the watcher instead, before
its next message (a ``LinkExit`` to its host).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import protocol as P
from actors.notices import Terminated
from actors.ref import ActorRef
from actors.registry import ActorRecord, Registry
from actors.runtime import Runtime

__all__ = ["Watches"]


class Watches:
    """The node's watches, by target uid."""

    def __init__(self, runtime: Runtime, registry: Registry) -> None:
        self.runtime = runtime
        self.registry = registry
        # target uid -> {watcher uid: (watcher ref, link)}
        self.by_target: dict[int, dict[int, tuple[ActorRef, bool]]] = {}
        # watches of another node's actors (actors.remotes): links stay local
        self.remote: Callable[[ActorRef, ActorRef], None] | None = None

    def watch(self, watcher: ActorRef, target: ActorRef, link: bool) -> None:
        if target.node != self.runtime.node_id and self.remote is not None:
            self.remote(watcher, target)
        elif self.registry.get(target.uid) is None:
            reason = self.runtime.dead.get(target.uid, "no such actor")
            self._notify(watcher, target, reason, target.uid in self.registry.crashed, link)
        else:
            self.by_target.setdefault(target.uid, {})[watcher.uid] = (watcher, link)

    def unwatch(self, watcher: int, target: int) -> None:
        self.by_target.get(target, {}).pop(watcher, None)

    def ended(self, record: ActorRecord, reason: str, crashed: bool) -> None:
        """``record`` ended for good: tell its watchers."""
        for watcher, link in self.by_target.pop(record.uid, {}).values():
            self._notify(watcher, record.ref, reason, crashed, link)

    def _notify(self, watcher: ActorRef, target: Any, reason: str, crashed: bool,
                link: bool) -> None:
        record = self.registry.get(watcher.uid)
        runtime = self.runtime
        if record is None and watcher.node == runtime.node_id:
            return
        if record is None:  # a watcher on another node (actors.remotes)
            link = False
        if link and crashed:
            host = record.host
            if host is not None and host.alive:
                label = target.name or f"#{target.uid}"
                runtime.tell_service(host.address,
                                     P.LinkExit(watcher.uid, f"linked actor {label} {reason}"))
            return
        runtime.post(watcher.address, runtime.encode(
            P.Tell.wire(watcher.uid, Terminated(target, reason, crashed))))
