"""A supervisor's data: its child specs, its records of children, and how it
reports them.

:class:`ChildSpec` is validated data (OTP's ``check_childspecs``): every
field is checked when the spec is made, and an error names the child, the
field and the bad value. :class:`Child` is the supervisor's own record of
one child, :class:`ChildInfo` what ``Supervisor.which_children()``
returns, with a :class:`ChildStatus`. :class:`Intensity` counts restarts
in a sliding window; :class:`RetryRestart` is the message a supervisor
sends itself to try a failed restart again.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Final

from actors.actor import Actor, check_node
from actors.ref import ActorRef
from transport.codec import class_path, message

__all__ = ["BRUTAL_KILL", "RESTARTS", "STRATEGIES", "Child", "ChildInfo", "ChildSpec", "ChildStatus", "Intensity",
           "RetryRestart", "ShuttingDown", "check_flags", "children_in_tree",
           "move_before"]

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one")
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
        node: in a cluster, where the child runs: a member's name, a list
            of names (the first live one) or ``"*"`` (any other live
            member); None (default): this node, in a supervised slot. A
            placed child gets a new ref at each start (find it by its
            name), is restarted on a live node the spec allows when it or
            its node dies, and stops with its supervisor. docs/cluster.md.
    """

    name: str
    actor_class: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    restart: str = "permanent"
    shutdown: float | str = 5.0
    hang_timeout: float | None = None
    node: Any = None

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
        if self.node is not None:
            try:
                object.__setattr__(self, "node", check_node(self.node))
            except ValueError as e:
                raise ValueError(f"child {self.name!r}: {e}") from None


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


@message
@dataclasses.dataclass(frozen=True)
class RetryRestart:
    """Supervisor -> itself: a restart of ``group`` failed; try again (OTP's
    ``try_again_restart``). Through the mailbox, so that a stop or a query
    can come in between two attempts."""

    group: dict[str, int]   # children to restart (in start order) -> their retry number
    failed: str             # the child whose exit started it
    reason: str


class Child:
    """A supervisor's own record of one child."""

    __slots__ = ("spec", "args", "kwargs", "ref", "incarnation", "status", "restarts",
                 "last_exit", "exc", "attempt")

    def __init__(self, spec: ChildSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.spec = spec
        self.args = args
        self.kwargs = kwargs
        self.ref: ActorRef | None = None
        self.incarnation = 0  # of its current process, as the node counts them
        self.status: str = ChildStatus.TERMINATED
        self.restarts = 0
        self.last_exit: str | None = None
        self.exc: Any = None  # what ended its last incarnation (for on_restart)
        # which restart attempt of it is current: a RetryRestart naming an older
        # one is stale (a later exit or restart of its group superseded it)
        self.attempt = 0


class ShuttingDown(Exception):
    """The system is stopping: a supervisor stops restarting."""


class Intensity:
    """Restart intensity: at most ``max_restarts`` within a sliding window
    of ``max_seconds`` (OTP's ``intensity`` and ``period``)."""

    def __init__(self, max_restarts: int, max_seconds: float) -> None:
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._times: collections.deque[float] = collections.deque()

    def count(self) -> bool:
        """Count one restart now; False once the intensity is exceeded."""
        now = time.monotonic()
        times = self._times
        times.append(now)
        while times and times[0] < now - self.max_seconds:
            times.popleft()
        return len(times) <= self.max_restarts


def check_flags(strategy: Any, max_restarts: Any, max_seconds: Any, specs: list[Any]) -> None:
    """A supervisor's flags and child specs, checked before anything starts."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
    if not isinstance(max_seconds, (int, float)) or max_seconds <= 0:
        raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
    for spec in specs:
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"children must be ChildSpec objects, got {spec!r}")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"child names must be unique, got {names}")
    if strategy == "simple_one_for_one" and len(specs) != 1:
        raise ValueError("a simple_one_for_one supervisor has exactly one child spec "
                         f"(the template), got {len(specs)}")


def move_before(children: dict[str, Child], specs: list[ChildSpec], name: str,
                before: str) -> dict[str, Child]:
    """The start order with child ``name`` (the last one) just before
    ``before``; its spec moves likewise in ``specs``."""
    order = [n for n in children if n != name]
    order.insert(order.index(before), name)
    spec = next(s for s in specs if s.name == name)
    specs.remove(spec)
    specs.insert(next(i for i, s in enumerate(specs) if s.name == before), spec)
    return {n: children[n] for n in order}


def children_in_tree(tree: list[dict[str, Any]], uid: int) -> dict[int, dict[str, Any]]:
    """The children of actor ``uid`` in ``system.tree()``, by uid."""
    for entry in tree:
        if entry["uid"] == uid:
            return {child["uid"]: child for child in entry["children"]}
        found = children_in_tree(entry["children"], uid)
        if found:
            return found
    return {}
