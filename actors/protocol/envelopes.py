"""Envelopes: what one process sends another, as named types.

Each envelope type keeps the wire's kind as its first field, so a decoded
msgpack array becomes its type with one ``tuple.__new__`` (see
``actors.protocol``)."""

from typing import Any, NamedTuple

__all__ = ["ASK", "CALL", "CHECKS", "ENVELOPES", "RECEIPTED", "REPLY", "REQUESTS", "SERVICE_UID",
           "TELL", "Answer", "Ask", "Call", "Receipted",
           "Envelope", "ProtocolError", "Request", "Tell", "decode_envelope", "well_formed"]

TELL = 0
ASK = 1
CALL = 2
REPLY = 3
RECEIPTED = 4

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
    def wire(uid: int, message: Any, reply_to: str, call_id: int) -> list[Any]:
        if type(message) is tuple:
            return [ASK, uid, list(message), True, reply_to, call_id]
        return [ASK, uid, message, False, reply_to, call_id]


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
    def wire(uid: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             reply_to: str, call_id: int) -> list[Any]:
        return [CALL, uid, method, list(args), kwargs, reply_to, call_id]


class Receipted(NamedTuple):
    """A tell that asks for a receipt: when the target takes it from its
    mailbox, it answers ``call_id`` (with None) before handling it as a
    tell. Every so many tells go this way, so a sender knows how many of
    its messages still wait in the target's mailbox (``actors.flow``)."""

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
    def wire(uid: int, message: Any, reply_to: str, call_id: int) -> list[Any]:
        if type(message) is tuple:
            return [RECEIPTED, uid, list(message), True, reply_to, call_id]
        return [RECEIPTED, uid, message, False, reply_to, call_id]


class Answer(NamedTuple):
    """The REPLY envelope: the result of an Ask or a Call (``ok``), or the
    exception its handler raised. ``uid`` names who answers (the uid the
    request was addressed to): an answer is taken only for a pending call to
    that very uid."""

    kind: int
    call_id: int
    ok: bool
    value: Any
    is_tuple: bool
    uid: int

    @property
    def result(self) -> Any:
        return tuple(self.value) if self.is_tuple else self.value

    @staticmethod
    def wire(call_id: int, uid: int, ok: bool, value: Any) -> list[Any]:
        if type(value) is tuple:
            return [REPLY, call_id, ok, list(value), True, uid]
        return [REPLY, call_id, ok, value, False, uid]


Envelope = Tell | Ask | Call | Answer | Receipted
Request = Ask | Call | Receipted  # what is answered
REQUESTS = (Ask, Call, Receipted)

ENVELOPES: dict[int, type] = {TELL: Tell, ASK: Ask, CALL: Call, REPLY: Answer,
                              RECEIPTED: Receipted}


# Field types, checked before an array becomes its envelope (a payload
# flagged as a tuple must be an array, ids must be ints...): a peer's frame
# can then never make a handler, or the loop, trip on a field.
def _tell_ok(raw: list[Any]) -> bool:
    return type(raw[1]) is int and (raw[3] is False or (raw[3] is True
                                                        and type(raw[2]) is list))


def _ask_ok(raw: list[Any]) -> bool:
    return _tell_ok(raw) and type(raw[4]) is str and type(raw[5]) is int


def _call_ok(raw: list[Any]) -> bool:
    return (type(raw[1]) is int and type(raw[2]) is str and type(raw[3]) is list
            and type(raw[4]) is dict and type(raw[5]) is str and type(raw[6]) is int)


def _answer_ok(raw: list[Any]) -> bool:
    return (type(raw[1]) is int and type(raw[2]) is bool and type(raw[5]) is int
            and (raw[4] is False or (raw[4] is True and type(raw[3]) is list)))


CHECKS: dict[int, Any] = {TELL: _tell_ok, ASK: _ask_ok, CALL: _call_ok, REPLY: _answer_ok,
                          RECEIPTED: _ask_ok}
_SIZES = {kind: len(cls._fields) for kind, cls in ENVELOPES.items()}
_new = tuple.__new__


def decode_envelope(raw: Any) -> Envelope:
    """A decoded msgpack array as its envelope type (checked)."""
    try:
        kind = raw[0]
        cls = ENVELOPES[kind]
    except (TypeError, KeyError, IndexError):
        raise ProtocolError(f"not an envelope: {raw!r:.100}") from None
    if type(raw) is not list or len(raw) != _SIZES[kind] or not CHECKS[kind](raw):
        raise ProtocolError(f"malformed {cls.__name__} envelope: {raw!r:.100}")
    return _new(cls, raw)


def well_formed(request: Ask | Call) -> bool:
    """A request's fields that a handler call unpacks have the types it
    needs (the rest are checked where they are used)."""
    if type(request) is Ask:
        return not request.is_tuple or type(request.payload) is list
    return (type(request.method) is str and type(request.args) is list
            and type(request.kwargs) is dict and all(type(k) is str for k in request.kwargs))
