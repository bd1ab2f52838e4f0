"""The runtime's codec: the transport codec plus what the runtime adds.

- ``ActorRef`` is ext type 32; a decoded ref is bound to the runtime that
  decoded it, so it works at once in whatever process receives it.
- An exception whose class cannot be rebuilt arrives as
  :class:`actors.RemoteError`.
- Lenient decoding: an ext value that cannot be rebuilt (a dataclass not
  registered here, say) becomes an :class:`Undecodable` placeholder instead
  of failing the whole frame, so one bad message costs only itself: the
  loop refuses that envelope alone (:func:`find_undecodable`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from actors.errors import RemoteError
from actors.ref import ActorRef
from transport.codec import Codec, DecodeBudgetExceeded

__all__ = ["EXT_REF", "RuntimeCodec", "Undecodable", "find_undecodable"]

EXT_REF = 32


class Undecodable:
    """Stands in a decoded message for a part that could not be rebuilt."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def find_undecodable(obj: Any) -> Undecodable | None:
    """The first :class:`Undecodable` inside ``obj``, or None."""
    if isinstance(obj, Undecodable):
        return obj
    if isinstance(obj, (list, tuple, set, frozenset)):
        items: Any = obj
    elif isinstance(obj, dict):
        items = itertools.chain(obj.keys(), obj.values())
    else:
        return None
    for item in items:
        found = find_undecodable(item)
        if found is not None:
            return found
    return None


class RuntimeCodec(Codec):
    """The codec of one runtime (see module doc). ``bad`` counts the ext
    values of the frame being decoded that could not be rebuilt (the loop
    resets it per frame and looks for placeholders only when it is set)."""

    def __init__(self, make_ref: Callable[[str, int, str, str | None], ActorRef],
                 allow_pickle: bool) -> None:
        super().__init__()
        self.bad = 0
        self.allow_pickle = allow_pickle
        self.remote_exception = RemoteError
        self.register(ActorRef, EXT_REF, _ref_to_wire,
                      lambda value: make_ref(*value))

    def _ext_hook(self, code: int, data: bytes) -> Any:
        try:
            return super()._ext_hook(code, data)
        except DecodeBudgetExceeded:
            raise  # the whole frame goes
        except Exception as e:
            self.bad += 1
            return Undecodable(e)


def _ref_to_wire(ref: ActorRef) -> list[Any]:
    return [ref.node, ref.uid, ref.address, ref.name]

