"""Envelopes: what one process sends another, as named types.

Each envelope type keeps the wire's kind as its first field, so a decoded
msgpack array becomes its type with one ``tuple.__new__`` (see
``actors.protocol``)."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ASK", "CALL", "ENVELOPES", "REPLY", "SERVICE_UID", "TELL", "Answer", "Ask", "Call",
           "Envelope", "ProtocolError", "Request", "Tell", "decode_envelope"]

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
