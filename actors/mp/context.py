"""Where ``actors.mp`` finds the runtime of this process.

In a host process (an ``actors.mp.Process``, a pool worker, any actor) it is
that host. In a plain program it is an implicit :class:`ActorSystem`, started
on first use and shut down at exit (``set_system`` substitutes your own).

Every primitive (a Queue, a Lock, an Event...) is an actor. They all share
one host process, found by the name of its first actor, the *anchor*:
messages between the primitives of one program then stay in one inbox, in
order. That process is re-created when it is gone: the next primitive made
(in any process) finds the anchor dead, starts a new one and logs a
WARNING; handles on the primitives it hosted fail with
``actors.mp.PrimitiveLost`` naming the primitive.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
from typing import Any

from actors.actor import Actor, spec_for
from actors.errors import ActorDeadError
from actors.host import running_host
from actors.mp import values
from actors.mp.values import pack  # noqa: F401 (context.pack is how handles pack)
from actors.protocol import SpawnOptions
from actors.ref import ActorRef
from transport.codec import Pickled

log = logging.getLogger("actors.mp")

ANCHOR_NAME = "actors.mp"
TRANSPORT_ENV = "ACTORS_MP_TRANSPORT"

_lock = threading.RLock()
_system: Any = None
_own_system = False
_anchor: ActorRef | None = None
_dead_anchors: set[int] = set()  # anchors found dead before this process heard of it
_tokens = itertools.count(1)

# run at exit in the main program (the modules that need it add theirs)
EXIT_HOOKS: list[Any] = []
logger_made = False  # get_logger() was called: children inherit its effective level


def unique_name(label: str) -> str:
    """A name no other actor of the node has: label.pid.n."""
    return f"{label}.{os.getpid()}.{next(_tokens)}"


def unpack(value: Any) -> Any:
    """A value as it travelled, back: pickled ones unpickled (refs inside
    bound to this process's runtime)."""
    if type(value) is not Pickled:
        return value
    return values.unpack(value, runtime())


def token() -> int:
    """A number naming one request of this process (for cancelling it)."""
    return (os.getpid() << 32) | next(_tokens)


class Anchor(Actor):
    """The first actor of the primitives' shared host process."""

    def receive(self, message: Any) -> Any:
        return os.getpid()


def system() -> Any:
    """This process's system: its host's, or the implicit one."""
    host = running_host()
    if host is not None:
        return host.system
    global _system, _own_system
    with _lock:
        if _system is None:
            from actors.system import ActorSystem
            transport = os.environ.get(TRANSPORT_ENV, "zmq")
            _system = ActorSystem(transport, spares=max(2, os.cpu_count() or 1))
            _own_system = True
            _system._node.launcher.activate()  # Process and Pool start in warm spares
            atexit.register(_at_exit)
        return _system


def set_system(new: Any) -> None:
    """Run ``actors.mp`` on ``new`` (an ActorSystem you started and will shut
    down) instead of the implicit one; None goes back to the implicit one."""
    global _system, _own_system, _anchor
    with _lock:
        _system, _own_system, _anchor = new, False, None


def runtime() -> Any:
    """This process's runtime (the node's, or the host's), set up for
    actors.mp on first use: how its requests read in deadlock messages."""
    host = running_host()
    found = host.runtime if host is not None else system()._node.runtime
    if "actors.mp" not in found.extensions:
        found.waits.brief.update(BRIEF)
        found.extensions["actors.mp"] = _no_op
    return found


def _no_op(runtime: Any, args: list[Any]) -> None:
    """Marks a runtime as set up for actors.mp."""


# how a blocked request reads in a deadlock message
BRIEF = {"acquire": "to acquire it", "wait": "(wait)", "get": "(get)", "join": "(join)",
         "recv": "(recv)", "sleep": "(Condition.wait)"}


def bind(ref: ActorRef) -> ActorRef:
    """``ref`` usable here (a ref unpickled outside a codec has no runtime)."""
    if ref._runtime is None:
        ref._runtime = runtime()
    return ref


def spawn(actor_class: type[Actor], *args: Any, colocate: bool = True,
          name: str | None = None, options: SpawnOptions = SpawnOptions(),
          kwargs: dict[str, Any] | None = None) -> ActorRef:
    """Start an actor: with the primitives (``colocate``) or in a process of
    its own."""
    sys_ = system()
    runtime()  # set up for actors.mp
    placed_near = getattr(_placement, "anchor", None) if colocate else None
    for attempt in (1, 2):
        near = None
        if colocate:
            near = placed_near or anchor()
        spec = spec_for(actor_class, args, kwargs or {}, name, None, near, options)
        try:
            return sys_.spawn_spec(spec)
        except ActorDeadError:
            # the anchor died, and this process has not heard of it yet
            if near is None or placed_near is not None or attempt == 2:
                raise
            forget_anchor(near)
    raise AssertionError("unreachable")


_placement = threading.local()


class placed:  # noqa: N801 (used as a context manager, like a function)
    """Primitives made inside ``with placed(ref):`` are hosted with ``ref``
    (a Manager's objects live in the manager's process)."""

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref

    def __enter__(self) -> None:
        self.previous = getattr(_placement, "anchor", None)
        _placement.anchor = self.ref

    def __exit__(self, *exc: Any) -> None:
        _placement.anchor = self.previous


def anchor() -> ActorRef:
    """The ref of the primitives' host process: started on first use, and
    again when the last one is dead (see module doc)."""
    global _anchor
    with _lock:
        dead = runtime().dead
        if _anchor is not None and _anchor.uid not in dead and _anchor.uid not in _dead_anchors:
            return _anchor
        lost, _anchor = _anchor, None
        sys_ = system()
        deadline = time.monotonic() + 10.0
        while True:
            found = sys_.lookup(ANCHOR_NAME)
            if found is not None and found.uid not in dead and found.uid not in _dead_anchors:
                break
            if found is None:
                try:
                    found = sys_.spawn(Anchor, name=ANCHOR_NAME)
                except ValueError:  # another process started one first
                    continue
                if lost is not None:
                    log.warning("actors.mp: the process that hosted the primitives died (%s); "
                                "a new one hosts the primitives made from now on",
                                dead.get(lost.uid, "dead"))
                break
            if time.monotonic() > deadline:  # the node still names the dead one
                raise ActorDeadError("the process hosting actors.mp's primitives is dead and "
                                     "no new one could be started", found, "dead")
            time.sleep(0.01)  # until the node has forgotten the dead anchor's name
        _anchor = found
        return found


def forget_anchor(ref: ActorRef) -> None:
    """``ref`` turned out dead: the next :func:`anchor` starts or finds another."""
    global _anchor
    with _lock:
        _dead_anchors.add(ref.uid)
        if _anchor == ref:
            _anchor = None


def rundir() -> str:
    """The node's private folder (mode 0700, removed at shutdown): where
    this process may keep files other processes of the node read."""
    host = running_host()
    if host is not None:
        return os.path.dirname(host.boot.counters)
    return system()._node.rundir


def can_lend() -> bool:
    """Whether this process reads its inbox on a thread of its own (the main
    program, an actors.mp.Process), so that a queue can lend it items and
    recall them at any time."""
    host = running_host()
    return host is None or host.reads_on_own_thread()


def me() -> list[Any]:
    """Who is asking: [pid, thread id, ref of the actor whose process this
    is (None in the main program), member] where member is how the deadlock
    detector names the blocked party: an actor uid, or a main-program
    thread."""
    host = running_host()
    thread = threading.get_ident()
    if host is None:
        return [os.getpid(), thread, None, f"thread:{thread}"]
    member = host.member(thread)
    cell = host.cells.get(member) if member is not None else None
    if cell is None and host.cells:
        cell = next(iter(host.cells.values()))
    return [os.getpid(), thread, cell.ref if cell is not None else None, member]


def member_of(thread: int) -> Any:
    """How the deadlock detector names ``thread`` of this process (as in
    :func:`me`)."""
    host = running_host()
    if host is None:
        return f"thread:{thread}"
    return host.member(thread)


def _at_exit() -> None:
    # like multiprocessing: join non-daemonic children, terminate daemonic
    # ones (actors.mp.process); queue handles give back what they borrowed
    for hook in list(EXIT_HOOKS):
        hook()
