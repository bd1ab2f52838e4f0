"""actors: an actor runtime for Python, one spawned process per actor.

Layers, imports one way only: ``transport`` (the wire) <- ``actors`` (the
runtime) <- ``actors.mp`` (the multiprocessing API). Importing this package
opens no socket and starts no thread or process.
"""

from actors.actor import Actor
from actors.childspec import ChildInfo, ChildSpec
from actors.errors import (
    ActorDeadError,
    ActorError,
    AskTimeout,
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
