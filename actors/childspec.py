"""Child specs: how a supervisor starts each child, and how it reports them.

:class:`ChildSpec` is validated data (OTP's ``check_childspecs``): every
field is checked when the spec is made, and an error names the child, the
field and the bad value. :class:`ChildInfo` is what
``Supervisor.which_children()`` returns, with a :class:`ChildStatus`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from actors.actor import Actor
from actors.ref import ActorRef
from transport.codec import class_path, message

__all__ = ["BRUTAL_KILL", "RESTARTS", "ChildInfo", "ChildSpec", "ChildStatus"]

RESTARTS = ("permanent", "transient", "temporary")
BRUTAL_KILL = "brutal_kill"


class ChildStatus:
    """The status of a supervisor's child (plain strings on the wire)."""

    RUNNING: Final = "running"          # its current incarnation runs
    RESTARTING: Final = "restarting"    # down; a restart is due or under way
    TERMINATED: Final = "terminated"    # not running; its spec is kept


@message
@dataclasses.dataclass(frozen=True)
class ChildSpec:
    """How a supervisor starts one child.

    Args:
        name: unique among the supervisor's children; the child is
            registered as ``"<supervisor name>/<name>"``.
        actor_class: an :class:`Actor` subclass (a :class:`Supervisor`
            subclass makes a subtree), or its ``"module:QualName"``.
        args, kwargs: passed to its constructor (they must travel as
            messages do).
        restart: ``"permanent"`` (always restarted), ``"transient"``
            (restarted only after a crash) or ``"temporary"`` (never).
        shutdown: seconds its orderly stop may take (``on_stop`` runs)
            before its process is killed, or ``"brutal_kill"`` (killed at
            once).
        hang_timeout: seconds one handler (or ``on_start``) may run, waits
            included; past it the child is *hung*: every Python stack of its
            process is logged, the process is killed and the child restarts
            as crashed with reason ``"hung"``. None (default): no limit.
            (``on_stop`` is bounded by ``shutdown`` instead.)
    """

    name: str
    actor_class: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    restart: str = "permanent"
    shutdown: float | str = 5.0
    hang_timeout: float | None = None

    __module__ = "actors"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"child name must be a non-empty string without '/', "
                             f"got {self.name!r}")
        cls = self.actor_class
        if isinstance(cls, type):
            if not issubclass(cls, Actor):
                raise TypeError(f"child {self.name!r}: actor_class must be an Actor "
                                f"subclass, got {cls!r}")
            object.__setattr__(self, "actor_class", class_path(cls))
        elif not isinstance(cls, str) or ":" not in cls:
            raise TypeError(f"child {self.name!r}: actor_class must be an Actor subclass "
                            f"or 'module:Class', got {cls!r}")
        if not isinstance(self.args, (tuple, list)):
            raise TypeError(f"child {self.name!r}: args must be a tuple, got {self.args!r}")
        object.__setattr__(self, "args", tuple(self.args))
        if self.kwargs is not None and not isinstance(self.kwargs, dict):
            raise TypeError(f"child {self.name!r}: kwargs must be a dict, got {self.kwargs!r}")
        if self.restart not in RESTARTS:
            raise ValueError(f"child {self.name!r}: restart must be one of {RESTARTS}, "
                             f"got {self.restart!r}")
        shutdown = self.shutdown
        if shutdown != BRUTAL_KILL and not (
                isinstance(shutdown, (int, float)) and not isinstance(shutdown, bool)
                and 0 < shutdown < float("inf")):
            raise ValueError(f"child {self.name!r}: shutdown must be a positive number of "
                             f"seconds or 'brutal_kill', got {shutdown!r}")
        hang = self.hang_timeout
        if hang is not None and not (isinstance(hang, (int, float)) and not isinstance(hang, bool)
                                     and 0 < hang < float("inf")):
            raise ValueError(f"child {self.name!r}: hang_timeout must be None or a positive "
                             f"number of seconds, got {hang!r}")


@message
@dataclasses.dataclass(frozen=True)
class ChildInfo:
    """One child as ``Supervisor.which_children()`` reports it. ``status``
    is ``"running"``, ``"restarting"`` or ``"terminated"`` (not running,
    its spec kept: ``restart_child`` starts it again). See :class:`ChildStatus`."""

    name: str
    ref: ActorRef | None
    pid: int | None
    status: str
    restarts: int
    restart: str
    last_exit: str | None
    supervisor: bool

    __module__ = "actors"
