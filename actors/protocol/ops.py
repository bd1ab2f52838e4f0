"""Service operations: what the runtime services (uid 0) of the node and of
the hosts are asked, as named types registered under their wire codes.

A payload is ``[code, token, *fields]``. The token is the node's secret,
made when the node starts and handed to each process it spawns with the
process's arguments (never on the wire to anyone else): a service
operation from anything but a process of this node is refused, so no
outsider can stop, spawn or reconfigure anything.
"""

from typing import Any, NamedTuple

try:  # what hmac.compare_digest is, without importing hmac: hmac brings
    # hashlib and OpenSSL, ~5M instructions at every process start
    from _operator import _compare_digest as compare_digest
except ImportError:  # not CPython
    from hmac import compare_digest

from actors.protocol.envelopes import ProtocolError
from actors.protocol.specs import ActorSpec

__all__ = ["ActorStats", "Cancel", "Counters", "DeadLetters", "Down", "Exit", "Ext", "FailWait", "Gone", "Hello", "Hold", "Hung", "IsPeer", "LinkExit", "Log", "Lookup", "OPS", "PendingRequest", "Probe", "ProbeAnswer", "Quiet", "QuietReport", "Restart", "Resume", "Spawn", "Spawned", "Start", "Stats", "Stop", "StopChildren", "Stopped", "Terminate", "Tree", "Unwaits", "Unwatch", "WaitInfo", "Waits", "Watch", "answer_to_wire", "decode_op", "encode_op", "op"]


# -- service operations -------------------------------------------------------------
OPS: dict[int, type] = {}


def op(code: int) -> Any:
    """Register a NamedTuple as the service operation ``code``."""
    def register(cls: type) -> type:
        if code in OPS:
            raise ValueError(f"service op {code} is taken by {OPS[code].__name__}")
        cls.code = code  # type: ignore[attr-defined]
        OPS[code] = cls
        return cls
    return register


def encode_op(operation: Any, token: bytes) -> list[Any]:
    """A service operation as its payload ``[code, token, *fields]``."""
    to_wire = getattr(operation, "to_wire", None)
    if to_wire is not None:
        return [operation.code, token, *to_wire()]
    return [operation.code, token, *operation]


def decode_op(payload: Any, token: bytes) -> Any:
    """A service payload as its operation type; refused without ``token``."""
    try:
        cls = OPS[payload[0]]
        sent = payload[1]
    except (TypeError, KeyError, IndexError):
        raise ProtocolError(f"not a service operation: {payload!r:.100}") from None
    # a peer operation (actors.protocol.peering) carries no token
    if not getattr(cls, "peer", False) and (type(sent) is not bytes
                                            or not compare_digest(sent, token)):
        raise ProtocolError(f"a {cls.__name__} without this node's token")
    fields = payload[2:]
    from_wire = getattr(cls, "from_wire", None)
    try:
        return from_wire(fields) if from_wire is not None else cls(*fields)
    except TypeError as e:
        raise ProtocolError(f"malformed {cls.__name__}: {e}") from None


# Node service (hosts -> node) -------------------------------------------------------
@op(1)
class Hello(NamedTuple):
    """A new host process is ready (tell)."""
    number: int
    address: str
    pid: int


@op(3)
class Spawn(NamedTuple):
    """Start an actor (ask): answers its ref, or :class:`Spawned` when the
    spec is supervised (its supervisor needs the incarnation)."""
    spec: ActorSpec

    def to_wire(self) -> list[Any]:
        return [self.spec.to_wire()]

    @classmethod
    def from_wire(cls, fields: list[Any]) -> "Spawn":
        (spec,) = fields
        return cls(ActorSpec.from_wire(spec))


class Spawned(NamedTuple):
    """The answer to a supervised :class:`Spawn` (travels as an array)."""
    ref: Any
    incarnation: int

    def to_wire(self) -> list[Any]:
        return list(self)


@op(4)
class Lookup(NamedTuple):
    """The ref of the actor named ``name``, or None (ask)."""
    name: str


@op(5)
class Stopped(NamedTuple):
    """An actor ended (tell). ``exc``: what it raised, if it crashed;
    ``address``: its process's."""
    uid: int
    reason: str
    crashed: bool
    exc: Any
    address: str


@op(6)
class Log(NamedTuple):
    """A log record from a child, as a dict (tell)."""
    record: dict[str, Any]


@op(7)
class DeadLetters(NamedTuple):
    """Messages that found no actor in a process (tell)."""
    count: int
    where: str


@op(8)
class StopChildren(NamedTuple):
    """Stop this actor's children, the last started first (ask)."""
    uid: int


@op(9)
class Restart(NamedTuple):
    """Start a new incarnation of a held supervised child (ask): answers
    its incarnation number (0: the system is shutting down)."""
    uid: int
    exc: Any


@op(10)
class Terminate(NamedTuple):
    """Stop a supervised child (ask); ``keep`` its ref for a restart, or not."""
    uid: int
    keep: bool


@op(11)
class Watch(NamedTuple):
    """Tell ``watcher`` (a ref) when ``target`` (a ref) ends (tell)."""
    watcher: Any
    target: Any
    link: bool


@op(12)
class Unwatch(NamedTuple):
    watcher: int
    target: int


@op(13)
class Tree(NamedTuple):
    """The actor tree as data (ask)."""


class WaitInfo(NamedTuple):
    """One blocking wait as the deadlock detector sees it."""
    wait_id: int
    waiter: Any                 # an actor uid, or "thread:<ident>" in the node
    depth: int | None           # position in the loop thread's stack, if stacked
    since: float                # when its request left (monotonic)
    kind: str                   # ask | call | service | frame | held
    what: str                   # the request, as text
    target_uid: Any
    target_address: str | None
    call_id: int | None
    address: str                # the waiter's process
    thread: str                 # a main-program thread's name


@op(14)
class Waits(NamedTuple):
    """Blocking waits old enough to report (tell)."""
    address: str
    infos: list[WaitInfo]

    def to_wire(self) -> list[Any]:
        return [self.address, [list(info) for info in self.infos]]

    @classmethod
    def from_wire(cls, fields: list[Any]) -> "Waits":
        address, infos = fields
        return cls(address, [WaitInfo(*info) for info in infos])


@op(15)
class Unwaits(NamedTuple):
    """Reported waits that ended (tell)."""
    address: str
    wait_ids: list[int]


@op(17)
class IsPeer(NamedTuple):
    """Is ``address`` a process of this node? (ask; tcp: see actors.peers)"""
    address: str


@op(16)
class Hung(NamedTuple):
    """A handler ran past its hang_timeout (tell)."""
    uid: int
    message: str
    address: str


# Host service (node -> hosts) -------------------------------------------------------
@op(20)
class Start(NamedTuple):
    """Start an actor in this process (ask). ``alias``: the address it keeps
    across restarts (supervised); ``restarting``: a new incarnation, whose
    ``on_restart`` gets ``exc``."""
    uid: int
    spec: ActorSpec
    alias: str | None
    restarting: bool
    exc: Any

    def to_wire(self) -> list[Any]:
        return [self.uid, self.spec.to_wire(), self.alias, self.restarting, self.exc]

    @classmethod
    def from_wire(cls, fields: list[Any]) -> "Start":
        uid, spec, alias, restarting, exc = fields
        return cls(uid, ActorSpec.from_wire(spec), alias, restarting, exc)


@op(21)
class Stop(NamedTuple):
    """Stop an actor here, after what its sender sent before (tell or ask)."""
    uid: int


@op(22)
class Down(NamedTuple):
    """These actors are dead (tell)."""
    uids: list[int]
    reason: str


@op(23)
class Exit(NamedTuple):
    """Stop every actor here and exit (tell)."""


@op(24)
class Hold(NamedTuple):
    """The process at ``address`` died and a restart may follow: asks to
    ``uids`` fail, what is sent there waits (tell)."""
    address: str
    uids: list[int]
    reason: str


@op(25)
class Resume(NamedTuple):
    """A new process took ``address``: send what was held (tell)."""
    address: str


@op(26)
class Gone(NamedTuple):
    """Processes gone for good (tell)."""
    addresses: list[str]


@op(27)
class LinkExit(NamedTuple):
    """A linked actor crashed: crash too, before the next message (tell)."""
    uid: int
    reason: str


class PendingRequest(NamedTuple):
    """A request a probe asks about (``call_id`` None: is ``uid`` starting?)."""
    uid: int
    reply_to: str | None
    call_id: int | None


@op(28)
class Probe(NamedTuple):
    """Are these waits still on, and these requests still unanswered? (ask)
    Answers a :class:`ProbeAnswer`."""
    wait_ids: list[int]
    pending: list[PendingRequest]

    def to_wire(self) -> list[Any]:
        return [self.wait_ids, [list(p) for p in self.pending]]

    @classmethod
    def from_wire(cls, fields: list[Any]) -> "Probe":
        wait_ids, pending = fields
        return cls(wait_ids, [PendingRequest(*p) for p in pending])


class ProbeAnswer(NamedTuple):
    wait_states: list[int]      # per wait: GONE, ANSWERED or WAITING (actors.waits)
    request_states: list[int]   # per request: ABSENT, DEFERRED, QUEUED or BOUND

    def to_wire(self) -> list[Any]:
        return list(self)


@op(29)
class Cancel(NamedTuple):
    """Withdraw a request from a mailbox (ask): answers whether it was."""
    uid: int
    reply_to: str
    call_id: int


@op(30)
class FailWait(NamedTuple):
    """Fail this wait with DeadlockError (ask): answers whether it did."""
    wait_id: int
    message: str
    cycle: list[str]


@op(31)
class Quiet(NamedTuple):
    """For quiescence (ask): answers a :class:`QuietReport`."""


class QuietReport(NamedTuple):
    idle: bool                  # every actor idle or blocked without deadline
    sent: int                   # envelopes sent, this check's own not counted
    received: int
    held: list[list[int]]       # [uid, deferred replies held]
    waits: list[WaitInfo]

    def to_wire(self) -> list[Any]:
        return [self.idle, self.sent, self.received, self.held,
                [list(info) for info in self.waits]]


def answer_to_wire(value: Any) -> Any:
    """A service operation's answer as it travels (a typed answer as an
    array; a list of them as a list of arrays)."""
    if type(value) is list:
        return [answer_to_wire(item) for item in value]
    to_wire = getattr(value, "to_wire", None)
    return to_wire() if to_wire is not None and isinstance(value, tuple) else value


@op(33)
class Stats(NamedTuple):
    """Per-actor counters of a host (ask): answers a list of :class:`ActorStats`."""


class ActorStats(NamedTuple):
    uid: int
    mailbox: int    # messages queued now
    handled: int    # messages taken from its mailbox since this incarnation started
    peak: int       # the most messages its mailbox held at once

    def to_wire(self) -> list[Any]:
        return list(self)


@op(34)
class Counters(NamedTuple):
    """What a process dropped, and why (ask): answers a dict of counts
    (``Runtime.counters``)."""


@op(35)
class StopRemote(NamedTuple):
    """Host -> node (ask): stop ``ref``, an actor this node placed on another
    node of its cluster (a supervisor ending a placed child); answers once
    it ended."""
    ref: Any


@op(32)
class Ext(NamedTuple):
    """A hook of a layer above the runtime (tell): ``name`` picks the hook
    registered on the receiving runtime (``Runtime.extensions``)."""
    name: str
    args: list[Any]

    def to_wire(self) -> list[Any]:
        return [self.name, *self.args]

    @classmethod
    def from_wire(cls, fields: list[Any]) -> "Ext":
        if not fields or not isinstance(fields[0], str):
            raise ProtocolError(f"malformed Ext: {fields!r:.100}")
        return cls(fields[0], list(fields[1:]))
