"""Messages the runtime itself sends to actors."""

from __future__ import annotations

import dataclasses
from typing import Any

from transport.codec import message


@message
@dataclasses.dataclass(frozen=True)
class Terminated:
    """Sent to an actor that called ``watch(ref)`` when ``ref`` has ended for
    good (a supervised actor ends for good when its supervisor stops
    restarting it). ``reason`` says why: ``"stopped"``, ``"crashed: ..."``,
    ``"exit code 3"``, ``"killed by SIGKILL"``, ``"no such actor"``.
    ``crashed`` is False for an orderly stop."""

    ref: Any
    reason: str
    crashed: bool

    __module__ = "actors"


@message
@dataclasses.dataclass(frozen=True)
class ChildExit:
    """Node -> supervisor: an incarnation of a supervised child has ended and
    its process is gone (its ref holds messages until a restart or a
    release). ``exc`` is the exception that crashed it, if one did."""

    uid: int
    incarnation: int
    reason: str
    crashed: bool
    exc: Any = None


__all__ = ["ChildExit", "Terminated"]
