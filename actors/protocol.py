"""The runtime's protocol: every envelope and every service operation as a
small named type, and the tables that turn wire arrays into them.

The wire is unchanged (docs/wire-format.md): an envelope is a msgpack array
whose first item is its kind. The envelope types below keep that kind as
their first field, so a decoded array becomes its named type with one
``tuple.__new__`` and nothing is ever read from it by position::

    TELL   [0, uid, payload, is_tuple]                         Tell
    ASK    [1, uid, payload, is_tuple, reply_to, call_id]      Ask
    CALL   [2, uid, method, args, kwargs, reply_to, call_id]   Call
    REPLY  [3, call_id, ok, value, is_tuple]                   Answer

uid 0 at any address is that process's runtime service. Its messages are
*service operations*: a Tell or an Ask whose payload is ``[code, *fields]``
(sent with ``is_tuple`` set). Each operation is a NamedTuple registered
under its code with :func:`op`; :func:`decode_op` turns a payload back into
it, and :func:`encode_op` makes the payload. Values that nest (an
:class:`ActorSpec` in a :class:`Spawn`) convert themselves with
``to_wire``/``from_wire``.

A decoded array of the wrong length or with an unknown kind or code raises
:class:`ProtocolError`; the loop drops it and counts it as malformed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "ASK", "CALL", "REPLY", "SERVICE_UID", "TELL",
    "ActorSpec", "Answer", "Ask", "Call", "ProtocolError", "SpawnOptions", "Tell",
    "decode_envelope", "decode_op", "encode_op", "op",
]

TELL = 0
ASK = 1
CALL = 2
REPLY = 3

SERVICE_UID = 0


class ProtocolError(ValueError):
    """An array that is not a well-formed envelope or service operation."""


# -- envelopes ------------------------------------------------------------------
class Tell(NamedTuple):
    """A message nobody waits for."""

    kind: int
    uid: int
    payload: Any
    is_tuple: bool

    @property
    def message(self) -> Any:
        """The payload as it was sent (a top-level tuple travels as an array)."""
        return tuple(self.payload) if self.is_tuple else self.payload

    @staticmethod
    def wire(uid: int, message: Any) -> list[Any]:
        if type(message) is tuple:
            return [TELL, uid, list(message), True]
        return [TELL, uid, message, False]


class Ask(NamedTuple):
    """A message whose handler's return value goes back to ``reply_to``."""

    kind: int
    uid: int
    payload: Any
    is_tuple: bool
    reply_to: str
    call_id: int

    @property
    def message(self) -> Any:
        return tuple(self.payload) if self.is_tuple else self.payload

    @staticmethod
    def make(uid: int, message: Any, reply_to: str, call_id: int) -> Ask:
        if type(message) is tuple:
            return Ask(ASK, uid, list(message), True, reply_to, call_id)
        return Ask(ASK, uid, message, False, reply_to, call_id)


class Call(NamedTuple):
    """A method call through a proxy: ``method(*args, **kwargs)``."""

    kind: int
    uid: int
    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    reply_to: str
    call_id: int

    @staticmethod
    def make(uid: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             reply_to: str, call_id: int) -> Call:
        return Call(CALL, uid, method, list(args), kwargs, reply_to, call_id)


class Answer(NamedTuple):
    """The REPLY envelope: the result of an Ask or a Call (``ok``), or the
    exception its handler raised."""

    kind: int
    call_id: int
    ok: bool
    value: Any
    is_tuple: bool

    @property
    def result(self) -> Any:
        return tuple(self.value) if self.is_tuple else self.value

    @staticmethod
    def wire(call_id: int, ok: bool, value: Any) -> list[Any]:
        if type(value) is tuple:
            return [REPLY, call_id, ok, list(value), True]
        return [REPLY, call_id, ok, value, False]


Envelope = Tell | Ask | Call | Answer
Request = Ask | Call

ENVELOPES: dict[int, type] = {TELL: Tell, ASK: Ask, CALL: Call, REPLY: Answer}
_SIZES = {kind: len(cls._fields) for kind, cls in ENVELOPES.items()}
_new = tuple.__new__


def decode_envelope(raw: Any) -> Envelope:
    """A decoded msgpack array as its envelope type."""
    try:
        kind = raw[0]
        cls = ENVELOPES[kind]
    except (TypeError, KeyError, IndexError):
        raise ProtocolError(f"not an envelope: {raw!r:.100}") from None
    if type(raw) is not list or len(raw) != _SIZES[kind]:
        raise ProtocolError(f"malformed {cls.__name__} envelope: {raw!r:.100}")
    return _new(cls, raw)


# -- actor specs ------------------------------------------------------------------
class SpawnOptions(NamedTuple):
    """How the node treats an actor besides its class and arguments."""

    supervised: bool = False        # a supervisor's child: its ref outlives restarts
    supervisor: bool = False        # it is a Supervisor (its children form a subtree)
    restart: str | None = None      # permanent | transient | temporary (supervised)
    shutdown: float | None = None   # seconds its stop may take; 0: brutal kill
    hang_timeout: float | None = None
    quiet: bool = False             # its death is not logged (actors.mp processes)

    def to_wire(self) -> dict[str, Any]:
        defaults = SpawnOptions()
        return {k: v for k, v in self._asdict().items() if v != getattr(defaults, k)}

    @classmethod
    def from_wire(cls, value: Any) -> SpawnOptions:
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
    def from_wire(cls, value: Any) -> ActorSpec:
        if type(value) is not list or len(value) != len(cls._fields):
            raise ProtocolError(f"malformed actor spec: {value!r:.100}")
        path, args, kwargs, name, parent, colocate, options = value
        if not isinstance(path, str) or not isinstance(args, list) \
                or not isinstance(kwargs, dict):
            raise ProtocolError(f"malformed actor spec: {value!r:.100}")
        return cls(path, args, kwargs, name, parent, colocate, SpawnOptions.from_wire(options))


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


def encode_op(operation: Any) -> list[Any]:
    """A service operation as its payload ``[code, *fields]``."""
    to_wire = getattr(operation, "to_wire", None)
    if to_wire is not None:
        return [operation.code, *to_wire()]
    return [operation.code, *operation]


def decode_op(payload: Any) -> Any:
    """A service payload as its operation type."""
    try:
        cls = OPS[payload[0]]
    except (TypeError, KeyError, IndexError):
        raise ProtocolError(f"not a service operation: {payload!r:.100}") from None
    fields = payload[1:]
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
    def from_wire(cls, fields: list[Any]) -> Spawn:
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
    def from_wire(cls, fields: list[Any]) -> Waits:
        address, infos = fields
        return cls(address, [WaitInfo(*info) for info in infos])


@op(15)
class Unwaits(NamedTuple):
    """Reported waits that ended (tell)."""
    address: str
    wait_ids: list[int]


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
    def from_wire(cls, fields: list[Any]) -> Start:
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
    def from_wire(cls, fields: list[Any]) -> Probe:
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
    """A service operation's answer as it travels (a typed answer as an array)."""
    to_wire = getattr(value, "to_wire", None)
    return to_wire() if to_wire is not None and isinstance(value, tuple) else value


@op(32)
class Ext(NamedTuple):
    """A hook of a layer above the runtime (tell): ``name`` picks the hook
    registered on the receiving runtime (``Runtime.extensions``)."""
    name: str
    args: list[Any]

    def to_wire(self) -> list[Any]:
        return [self.name, *self.args]

    @classmethod
    def from_wire(cls, fields: list[Any]) -> Ext:
        if not fields or not isinstance(fields[0], str):
            raise ProtocolError(f"malformed Ext: {fields!r:.100}")
        return cls(fields[0], list(fields[1:]))
