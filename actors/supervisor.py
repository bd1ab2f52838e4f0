"""Supervisors: actors that start, watch and restart other actors (OTP).

A :class:`Supervisor` is an actor in its own process. It starts its
children (each in a process of its own) in the order of its specs, one
started before the next. The node tells it when a child's process is gone
(a :class:`ChildExit` in its mailbox, handled like any message, one at a
time); it then applies its strategy. A restart keeps the child's uid and
ref: the node holds what is sent to the child meanwhile and delivers it to
the new incarnation (see ``actors.node``).

Restart intensity: more than ``max_restarts`` restarts within
``max_seconds`` and the supervisor gives up: it stops its children (the
last started first) and crashes, and its own supervisor applies its
strategy to it. A top-level supervisor that gives up shuts the system down.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, ClassVar

from actors import protocol as P
from actors.actor import Actor, spec_for
from actors.childspec import (
    BRUTAL_KILL,
    RESTARTS,
    STRATEGIES,
    Child,
    ChildInfo,
    ChildSpec,
    ChildStatus,
    Intensity,
    RetryRestart,
    ShuttingDown,
    check_flags,
    children_in_tree,
    move_before,
)
from actors.errors import ActorDeadError, ActorError, SerializationError
from actors.notices import ChildExit, Terminated
from actors.ref import ActorRef

log = logging.getLogger("actors")

RUNNING, RESTARTING, TERMINATED = (ChildStatus.RUNNING, ChildStatus.RESTARTING,
                                   ChildStatus.TERMINATED)


class Supervisor(Actor):
    """An actor that supervises children (Erlang/OTP semantics).

    Subclass and set the class attributes, or pass them to the constructor
    (``system.spawn(Supervisor, [ChildSpec(...)], strategy="one_for_all")``):

    * ``strategy``: ``"one_for_one"`` (restart the child that ended),
      ``"one_for_all"`` (stop the others, the last started first, then
      restart all in order), ``"rest_for_one"`` (the same for the child and
      those started after it), ``"simple_one_for_one"`` (one template spec;
      children are added with ``start_child`` and restarted one for one).
    * ``max_restarts`` within ``max_seconds`` (default 3 in 5 s): past it,
      the supervisor stops its children and fails.
    * ``children``: the list of :class:`ChildSpec`.

    Methods (through ``ref.proxy()``): ``which_children``,
    ``count_children``, ``start_child``, ``terminate_child``,
    ``restart_child``, ``delete_child``.
    """

    __module__ = "actors"

    is_supervisor: ClassVar[bool] = True
    strategy: ClassVar[str] = "one_for_one"
    max_restarts: ClassVar[int] = 3
    max_seconds: ClassVar[float] = 5.0
    children: ClassVar[list[ChildSpec]] = []

    def __init__(self, children: list[ChildSpec] | None = None, *, strategy: str | None = None,
                 max_restarts: int | None = None, max_seconds: float | None = None) -> None:
        self._strategy = strategy if strategy is not None else type(self).strategy
        self._max_restarts = (max_restarts if max_restarts is not None
                              else type(self).max_restarts)
        self._max_seconds = max_seconds if max_seconds is not None else type(self).max_seconds
        specs = list(children if children is not None else type(self).children)
        check_flags(self._strategy, self._max_restarts, self._max_seconds, specs)
        self._specs = specs
        self._children: dict[str, Child] = {}  # in start order
        self._intensity = Intensity(self._max_restarts, self._max_seconds)

    # -- lifecycle ------------------------------------------------------------
    def on_start(self) -> None:
        if self._strategy == "simple_one_for_one":
            return
        try:
            for spec in self._specs:
                self._add(spec, spec.args, dict(spec.kwargs or {}))
        except BaseException:
            # OTP: a supervisor whose child fails to start fails to start;
            # what it started is stopped, the last first.
            # Kept: if this is a restart of this supervisor, a later one
            # reclaims them; the node ends whatever nobody reclaims.
            for child in reversed(list(self._children.values())):
                if child.status == RUNNING:
                    self._terminate(child, keep=True)
            raise

    def receive(self, message: Any) -> Any:
        if isinstance(message, ChildExit):
            self._child_exit(message)
            return None
        if isinstance(message, RetryRestart):
            self._retry(message)
            return None
        if isinstance(message, Terminated):
            self._placed_exit(message)
            return None
        raise ActorError(f"a Supervisor takes no messages; call its methods through "
                         f"proxy() (got {message!r:.100})")

    # -- public API (through proxy) ----------------------------------------------
    def which_children(self) -> list[ChildInfo]:
        """Every child, in start order, with its pid, status and restarts."""
        view = self._node_view()
        infos = []
        for child in self._children.values():
            entry = view.get(child.ref.uid) if child.ref is not None else None
            status = child.status
            if status == RUNNING and entry is not None and entry["state"] == RESTARTING:
                status = RESTARTING
            if entry is None:  # terminated: what this supervisor saw last
                pid, restarts, last_exit, is_sup = None, child.restarts, child.last_exit, False
            else:  # the node's count spans restarts of this supervisor too
                pid, restarts, last_exit, is_sup = (entry["pid"], entry["restarts"],
                                                    entry["last_exit"], entry["supervisor"])
            infos.append(ChildInfo(name=child.spec.name, ref=child.ref, pid=pid, status=status,
                                   restarts=restarts, restart=child.spec.restart,
                                   last_exit=last_exit, supervisor=bool(is_sup)))
        return infos

    def count_children(self) -> dict[str, int]:
        """``specs``, ``active`` (running), ``supervisors``, ``workers``."""
        infos = self.which_children()
        return {"specs": len(infos),
                "active": sum(1 for i in infos if i.status == RUNNING),
                "supervisors": sum(1 for i in infos if i.supervisor),
                "workers": sum(1 for i in infos if not i.supervisor)}

    def start_child(self, spec: ChildSpec | str, args: tuple[Any, ...] = (),
                    kwargs: dict[str, Any] | None = None, *,
                    before: str | None = None) -> ActorRef:
        """Start a child now and return its ref. ``simple_one_for_one``:
        ``start_child(name, args=(...), kwargs={...})`` starts the template
        with those arguments after its own. Otherwise pass a
        :class:`ChildSpec`; it joins the end of the start order, or, with
        ``before``, takes its place in the start order just before the
        child of that name (which later stops, ``rest_for_one`` groups
        and restarts of this supervisor follow)."""
        if before is not None:
            if self._strategy == "simple_one_for_one":
                raise TypeError("before: a simple_one_for_one supervisor has no start order")
            self._child(before)  # KeyError naming it if there is none
        if self._strategy == "simple_one_for_one":
            if not isinstance(spec, str):
                raise TypeError("a simple_one_for_one supervisor starts children by name: "
                                "start_child(name, args=(...))")
            template = self._specs[0]
            if spec in self._children:
                raise ValueError(f"a child named {spec!r} already exists")
            child_spec = dataclasses.replace(template, name=spec)
            return self._add(child_spec, (*template.args, *args),
                             {**(template.kwargs or {}), **(kwargs or {})})
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start_child() takes a ChildSpec, got {spec!r}")
        if args or kwargs:
            raise TypeError("args and kwargs belong in the ChildSpec")
        if spec.name in self._children:
            raise ValueError(f"a child named {spec.name!r} already exists")
        self._specs.append(spec)
        try:
            return self._add(spec, spec.args, dict(spec.kwargs or {}), before)
        except BaseException:
            self._specs.remove(spec)
            raise

    def terminate_child(self, name: str) -> None:
        """Stop a child for good (its ref dies). Its spec stays, so
        ``restart_child`` can start it again (with a new ref), except in a
        ``simple_one_for_one`` supervisor, where the child is removed."""
        child = self._child(name)
        if child.status != TERMINATED:
            self._terminate(child, keep=False)
        if self._strategy == "simple_one_for_one":
            del self._children[name]

    def restart_child(self, name: str) -> ActorRef:
        """Start a terminated child again; returns its new ref."""
        child = self._child(name)
        if child.status != TERMINATED:
            raise ActorError(f"child {name!r} is {child.status}, not terminated")
        return self._launch(child)

    def delete_child(self, name: str) -> None:
        """Forget the spec of a terminated child."""
        child = self._child(name)
        if child.status != TERMINATED:
            raise ActorError(f"child {name!r} is {child.status}; terminate it first")
        del self._children[name]
        self._specs = [s for s in self._specs if s.name != name]

    # -- internals -------------------------------------------------------------
    def _child(self, name: str) -> Child:
        try:
            return self._children[name]
        except KeyError:
            raise KeyError(f"no child named {name!r}") from None

    def _node_view(self) -> dict[int, dict[str, Any]]:
        return children_in_tree(self.system.tree(), self.ref.uid)

    def _add(self, spec: ChildSpec, args: tuple[Any, ...], kwargs: dict[str, Any],
             before: str | None = None) -> ActorRef:
        child = Child(spec, tuple(args), kwargs)
        self._children[spec.name] = child
        if before is not None:
            self._children = move_before(self._children, self._specs, spec.name, before)
        try:
            return self._launch(child)
        except BaseException:
            del self._children[spec.name]
            raise

    def _launch(self, child: Child) -> ActorRef:
        spec = child.spec
        # (whether the child is a Supervisor is read by the node, which has
        # its class imported: a spec that arrived in a frame imports nothing)
        options = P.SpawnOptions(
            supervised=True, restart=spec.restart,
            shutdown=0.0 if spec.shutdown == BRUTAL_KILL else float(spec.shutdown),
            hang_timeout=None if spec.hang_timeout is None else float(spec.hang_timeout))
        # Not the last in the start order: the node keeps its children in the
        # same order (it stops them in reverse), so say where it goes.
        order = list(self._children.values())
        for later in order[order.index(child) + 1:]:
            if later.ref is not None and later.status != TERMINATED:
                options = options._replace(before=later.ref.uid)
                break
        prefix = self.ref.name or f"#{self.ref.uid}"
        node_spec = spec_for(spec.actor_class, child.args, child.kwargs,
                             f"{prefix}/{spec.name}", self.ref.uid, None, options, by_path=True,
                             node=spec.node)
        child.ref, child.incarnation = P.Spawned(*self.system.request(P.Spawn(node_spec)))
        child.status = RUNNING
        child.exc = None
        if spec.node is not None:  # placed in the cluster: its end comes as Terminated
            self.watch(child.ref)
        return child.ref

    def _placed_exit(self, notice: Terminated) -> None:  # (a ref replaced since: stale)
        child = next((c for c in self._children.values()
                      if c.spec.node is not None and c.ref == notice.ref), None)
        if child is not None:  # a placed child ended, or its node is down
            self._child_exit(ChildExit(notice.ref.uid, child.incarnation, notice.reason,
                                       notice.crashed))

    def _terminate(self, child: Child, keep: bool) -> None:
        assert child.ref is not None
        self.system.request(P.StopRemote(child.ref) if child.spec.node is not None  # placed
                            else P.Terminate(child.ref.uid, keep))
        child.status = RESTARTING if keep else TERMINATED

    def _child_exit(self, notice: ChildExit) -> None:
        child = next((c for c in self._children.values()
                      if c.ref is not None and c.ref.uid == notice.uid), None)
        if child is None or child.status != RUNNING or notice.incarnation < child.incarnation:
            return  # stale: about an incarnation already replaced
        child.last_exit = notice.reason
        restart = child.spec.restart
        if restart == "temporary" or (restart == "transient" and not notice.crashed):
            self._terminate(child, keep=False)
            if restart == "temporary":
                del self._children[child.spec.name]
            return
        child.status = RESTARTING
        exc = notice.exc
        if exc is None:
            exc = ActorDeadError(f"{child.spec.name} ended: {notice.reason}", None, notice.reason)
        child.exc = exc
        if self._strategy in ("one_for_all", "rest_for_one"):
            order = list(self._children.values())
            group = order if self._strategy == "one_for_all" else order[order.index(child):]
        else:
            group = [child]
        try:
            for other in reversed(group):
                if other is not child and other.status == RUNNING:
                    if other.spec.restart == "temporary":
                        self._terminate(other, keep=False)
                        del self._children[other.spec.name]
                    else:
                        self._terminate(other, keep=True)
                        other.exc = None  # stopped for its group: on_restart(None)
            group = [c for c in group if c.status == RESTARTING]
            self._restart(group, child.spec.name, notice.reason)
        except ShuttingDown:
            return

    def _retry(self, retry: RetryRestart) -> None:
        children = self._children
        group = [children[name] for name, attempt in retry.group.items()
                 if name in children and children[name].status == RESTARTING
                 and children[name].attempt == attempt]
        if not group:
            return  # restarted, terminated or deleted in the meantime: stale
        try:
            self._restart(group, retry.failed, retry.reason)
        except ShuttingDown:
            return

    def _restart(self, group: list[Child], failed: str, reason: str) -> None:
        """Restart ``group`` in start order. A start that fails counts as one
        more restart and is tried again through this supervisor's own
        mailbox (:class:`RetryRestart`), until the intensity is exceeded."""
        for child in group:
            child.attempt += 1  # any retry queued for it before is stale now
        if not self._count_restart():
            self._give_up(failed, reason)
        try:
            for child in group:
                if child.status == RESTARTING:
                    self._restart_one(child)
        except ShuttingDown:
            raise
        except Exception as e:
            log.error("supervisor %s: restarting %s failed: %r", self.ref.name, failed, e)
            self.ref.tell(RetryRestart({c.spec.name: c.attempt for c in group
                                        if c.status == RESTARTING},
                                       failed, f"restart failed: {e!r}"))

    def _restart_one(self, child: Child) -> None:
        assert child.ref is not None
        if child.spec.node is not None:  # placed: started again where its spec allows
            self._launch(child)
            child.restarts += 1
            return
        try:
            incarnation = self.system.request(P.Restart(child.ref.uid, child.exc))
        except SerializationError:  # the crash's exception cannot travel back
            incarnation = self.system.request(P.Restart(child.ref.uid, None))
        if not incarnation:
            raise ShuttingDown()
        child.incarnation = incarnation
        child.status = RUNNING
        child.restarts += 1
        child.exc = None

    def _count_restart(self) -> bool:
        return self._intensity.count()

    def _give_up(self, failed: str, reason: str) -> None:
        log.error("supervisor %s: more than %d restarts within %s s (last: %s %s): "
                  "stopping its children and failing", self.ref.name or f"#{self.ref.uid}",
                  self._max_restarts, self._max_seconds, failed, reason)
        for child in reversed(list(self._children.values())):
            if child.status == RUNNING:
                # kept: a restart of this supervisor reclaims the same refs
                self._terminate(child, keep=True)
        raise ActorError(f"supervisor {self.ref.name or self.ref.uid} reached its restart "
                         f"intensity ({self._max_restarts} in {self._max_seconds} s); last: "
                         f"{failed} {reason}")


__all__ = ["BRUTAL_KILL", "RESTARTS", "STRATEGIES", "ChildInfo", "ChildSpec", "RetryRestart",
           "Supervisor"]
