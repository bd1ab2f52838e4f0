"""actors: an actor runtime for Python, one spawned process per actor.

Layers, imports one way only: ``transport`` (the wire) <- ``actors`` (the
runtime) <- ``actors.mp`` (the multiprocessing API). Importing this package
opens no socket and starts no thread or process.
"""

# The names below load on first use (PEP 562), so that a host process, which
# imports ``actors.boot`` and the user's module, reads only the modules it
# runs: ``import actors`` costs almost nothing, ``from actors import X``
# imports X's module. Frames name these classes ``actors:X``: the codec finds
# them through ``_LAZY_NAMES`` once their module is loaded, without importing.
from typing import TYPE_CHECKING, Any

_LAZY_NAMES = {
    "Actor": "actors.actor",
    "ChildInfo": "actors.childspec",
    "ChildSpec": "actors.childspec",
    "ActorDeadError": "actors.errors",
    "ActorError": "actors.errors",
    "AskTimeout": "actors.errors",
    "ClusterError": "actors.errors",
    "ConfigError": "actors.errors",
    "DeadlockError": "actors.errors",
    "MailboxFull": "actors.errors",
    "MessageTooLarge": "actors.errors",
    "RemoteError": "actors.errors",
    "SerializationError": "actors.errors",
    "SpawnError": "actors.errors",
    "WorkerLost": "actors.errors",
    "Terminated": "actors.notices",
    "ActorFuture": "actors.ref",
    "ActorRef": "actors.ref",
    "Proxy": "actors.ref",
    "Reply": "actors.ref",
    "Supervisor": "actors.supervisor",
    "ActorSystem": "actors.system",
    "message": "transport.codec",
}

if TYPE_CHECKING:
    from actors.actor import Actor
    from actors.childspec import ChildInfo, ChildSpec
    from actors.errors import (
        ActorDeadError,
        ActorError,
        AskTimeout,
        ClusterError,
        ConfigError,
        DeadlockError,
        MailboxFull,
        MessageTooLarge,
        RemoteError,
        SerializationError,
        SpawnError,
        WorkerLost,
    )
    from actors.notices import Terminated
    from actors.ref import ActorFuture, ActorRef, Proxy, Reply
    from actors.supervisor import Supervisor
    from actors.system import ActorSystem
    from transport.codec import message


def __getattr__(name: str) -> Any:
    where = _LAZY_NAMES.get(name)
    if where is None:
        raise AttributeError(f"module 'actors' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorDeadError",
    "ActorError",
    "ActorFuture",
    "ActorRef",
    "ActorSystem",
    "AskTimeout",
    "ChildInfo",
    "ChildSpec",
    "ClusterError",
    "ConfigError",
    "DeadlockError",
    "MailboxFull",
    "MessageTooLarge",
    "Proxy",
    "RemoteError",
    "Reply",
    "SerializationError",
    "SpawnError",
    "Supervisor",
    "Terminated",
    "WorkerLost",
    "message",
]
