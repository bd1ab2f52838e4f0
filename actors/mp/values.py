"""How actors.mp's values travel: plain scalars as themselves (msgpack),
anything else pickled with the local-only pickle extension."""

from __future__ import annotations

from typing import Any

from actors.ref import Messenger, load_into
from transport.codec import Pickled

__all__ = ["SIMPLE", "pack", "unpack"]

SIMPLE = (int, float, str, bytes, bool, type(None))


def pack(value: Any) -> Any:
    """A value as it travels."""
    return value if type(value) in SIMPLE else Pickled(value)


def unpack(value: Any, runtime: Messenger) -> Any:
    """A value as it travelled, back: pickled ones unpickled, with the refs
    inside bound to ``runtime``."""
    if type(value) is not Pickled:
        return value
    return load_into(value, runtime)
