"""The Actor base class: what user code subclasses.

An actor is constructed in its own process (or a shared host process),
handles one message at a time, and is reached only through its ActorRef.
"""

from __future__ import annotations

from typing import Any, ClassVar

from actors.errors import ActorError
from actors.protocol import ActorSpec, SpawnOptions
from actors.ref import ActorRef, Reply
from transport.codec import class_path

__all__ = ["Actor", "spec_for"]


class Actor:
    """Base class of actors.

    Subclasses define ``receive(message)`` for raw messages sent with
    ``tell``/``ask`` (the return value is the ask's reply) and public methods
    reached with ``ref.proxy()``. Handlers may be ``async def``; the actor
    still handles one message at a time.

    Inside the actor: ``self.ref`` is its own ref, ``self.system`` offers
    ``spawn`` (a top-level actor) and ``lookup``, ``self.spawn(...)`` starts a
    child actor (stopped before its parent), ``self.stop()`` schedules this
    actor's stop behind the messages already sent to it.

    Set ``crash_on_error = True`` to make an exception raised during an ask
    crash the actor too (it is still sent to the asker first).
    """

    __module__ = "actors"

    crash_on_error: ClassVar[bool] = False
    is_supervisor: ClassVar[bool] = False

    # Set by the runtime before __init__ runs.
    ref: ActorRef
    system: Any

    def receive(self, message: Any) -> Any:
        """Handle a message sent with ``tell`` or ``ask``."""
        raise ActorError(f"{type(self).__name__} does not handle messages "
                         f"(no receive() method); got {message!r}")

    def on_start(self) -> None:
        """Called in the actor's process after construction, before any message."""

    def on_stop(self) -> None:
        """Called on an orderly stop (not when the process is killed or crashes)."""

    def on_restart(self, exc: BaseException | None) -> None:
        """Called in a new incarnation of a supervised actor, after
        ``on_start`` and before any message. ``exc`` is what ended the
        incarnation before: the exception that crashed it (with its remote
        traceback), an :class:`ActorDeadError` whose ``reason`` is the exit
        code or signal, or None when its supervisor stopped it to restart it
        with a sibling (``one_for_all``, ``rest_for_one``)."""

    def spawn(self, actor_class: type[Actor], *args: Any, name: str | None = None,
              **kwargs: Any) -> ActorRef:
        """Start a child actor; it is stopped before this actor stops.
        (``self.system.spawn`` starts a top-level actor instead.)"""
        return self.system.spawn_child(self.ref.uid, actor_class, args, kwargs, name)

    def watch(self, ref: ActorRef, link: bool = False) -> None:
        """Be told when ``ref`` ends for good: a :class:`Terminated` message
        (ref, reason, crashed) arrives in ``receive``; at once if it is
        already dead. With ``link=True``, a crash of ``ref`` crashes this
        actor too, before its next message (an orderly stop of ``ref`` is
        still just a message). A supervised actor ends for good when its
        supervisor stops restarting it."""
        self.system.watch(self.ref, ref, link)

    def unwatch(self, ref: ActorRef) -> None:
        """Stop watching ``ref`` (a notice already sent may still arrive)."""
        self.system.unwatch(self.ref, ref)

    def defer_reply(self) -> Reply:
        """Answer the ask being handled later, not with this handler's
        return value: the returned :class:`Reply` is sent with
        ``reply.send(value)`` (or ``reply.fail(exc)``) from a later handler
        or any thread of this process. Meanwhile this actor handles other
        messages and the asker keeps waiting (the way an OTP server returns
        ``noreply`` and calls ``gen_server:reply`` later).

        Raises:
            ActorError: not in a handler of an ask or a proxy call.
        """
        return self.system.defer_reply(self)

    def stop(self) -> None:
        """Schedule this actor's stop behind the messages already sent to it
        (its children are stopped first, then ``on_stop`` runs)."""
        self.ref.stop()


#: Names a proxy may not call: the runtime's own API on actors.
RESERVED = frozenset(name for name in dir(Actor) if not name.startswith("__")) | {"ref", "system"}


def check_node(node: Any) -> Any:
    """A placement in a cluster: a node's name, a list of names (the first
    live one), or ``"*"`` (any other live member); else ValueError."""
    if isinstance(node, str) and node:
        return node
    if isinstance(node, (list, tuple)) and node and all(isinstance(n, str) and n for n in node):
        return list(node)
    raise ValueError(f"node must be a node's name, a list of names or '*', got {node!r}")


def spec_for(actor_class: Any, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any],
             name: str | None = None, parent: int | None = None,
             colocate_with: ActorRef | None = None,
             options: SpawnOptions = SpawnOptions(), by_path: bool = False,
             node: Any = None) -> ActorSpec:
    """The one place that turns a spawn's arguments into an
    :class:`~actors.protocol.ActorSpec`, checking each at the call site.
    ``by_path``: ``actor_class`` may also be ``"module:Class"`` (a child spec);
    ``node``: its placement in a cluster (:func:`check_node`)."""
    if node is not None:
        options = options._replace(node=check_node(node))
    if by_path and isinstance(actor_class, str):
        if ":" not in actor_class:
            raise TypeError(f"actor class must be an Actor subclass or 'module:Class', "
                            f"got {actor_class!r}")
        path = actor_class
    elif isinstance(actor_class, type) and issubclass(actor_class, Actor):
        path = class_path(actor_class)
        if actor_class.is_supervisor and not options.supervisor:
            options = options._replace(supervisor=True)
    else:
        raise TypeError(f"spawn() takes an Actor subclass, got {actor_class!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"actor name must be a non-empty string, got {name!r}")
    if colocate_with is not None and not isinstance(colocate_with, ActorRef):
        raise TypeError(f"colocate_with must be an ActorRef, got {colocate_with!r}")
    if not isinstance(kwargs, dict):
        raise TypeError(f"kwargs must be a dict, got {kwargs!r}")
    return ActorSpec(path, list(args), dict(kwargs), name, parent,
                     colocate_with.uid if colocate_with is not None else None, options)
