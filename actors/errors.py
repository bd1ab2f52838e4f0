"""Every error the runtime raises.

::

    ActorError                      base of everything below
    ├── ActorDeadError              the target is dead, or died while you waited
    ├── AskTimeout (TimeoutError)   no reply within the ask's timeout
    ├── DeadlockError               your wait would close a cycle of waits
    ├── SerializationError (TypeError)  a value cannot go on the wire
    ├── MessageTooLarge (ValueError)    a message bigger than the frame limit
    ├── MailboxFull (TimeoutError)  no room in a mailbox within the send timeout
    ├── RemoteError                 a remote exception whose class is not importable here
    ├── ConfigError (ValueError)    a setting that cannot work (tcp without keys...)
    ├── ClusterError                this node left its cluster (fenced), or etcd is unreachable
    └── SpawnError                  an actor could not be started

An exception raised by a handler during ``ask`` is re-raised in the asker as
its own class when that class is importable there, with the remote traceback
attached as ``remote_traceback`` and chained as ``__cause__``.
"""

from __future__ import annotations

from typing import Any

from transport.codec import RemoteException

__all__ = [
    "ActorDeadError",
    "ActorError",
    "AskTimeout",
    "ClusterError",
    "ConfigError",
    "DeadlockError",
    "MailboxFull",
    "MessageTooLarge",
    "RemoteError",
    "SerializationError",
    "SpawnError",
]


class ActorError(Exception):
    """Base class of the runtime's own errors."""

    __module__ = "actors"


class ActorDeadError(ActorError):
    """The actor is dead, or died while you waited for it.

    ``ref`` is the actor, ``reason`` says why it died (``"stopped"``, an
    exit code, a signal name or the crash's exception text). You get it at
    once, never after a timeout.
    """

    __module__ = "actors"

    def __init__(self, message: str, ref: Any = None, reason: str = "") -> None:
        super().__init__(message, None, reason)  # args travel; a ref may not
        self.ref = ref
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.args[0]!r})"

    def __reduce__(self) -> Any:
        return (type(self), (self.args[0], None, self.reason))


class AskTimeout(ActorError, TimeoutError):
    """No reply came within the ask's ``timeout``. The target may still be
    alive and may still handle the message; its late reply is dropped."""

    __module__ = "actors"


class DeadlockError(ActorError):
    """Your wait would close a cycle of blocking waits.

    ``cycle`` lists the members of the cycle in order, each as text naming
    the actor, its pid and what it waits on.
    """

    __module__ = "actors"

    def __init__(self, message: str, cycle: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message, list(cycle))  # args travel: the cycle with them
        self.cycle = list(cycle)

    def __str__(self) -> str:
        return str(self.args[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.args[0]!r})"


class SerializationError(ActorError, TypeError):
    """A value cannot be sent; raised where it was sent. ``type_name`` names
    the offending type."""

    __module__ = "actors"

    def __init__(self, message: str, type_name: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name


class RemoteError(ActorError, RemoteException):
    """An exception from another process whose class could not be rebuilt
    here. ``type_name`` is the remote class, ``remote_traceback`` its text."""

    __module__ = "actors"

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        RemoteException.__init__(self, type_name, message, remote_traceback)


class MessageTooLarge(ActorError, ValueError):
    """A message whose encoding is bigger than the system's ``max_frame``
    (raised where it was sent; nothing is sent). ``size`` and ``limit`` are
    in bytes."""

    __module__ = "actors"

    def __init__(self, message: str, size: int = 0, limit: int = 0) -> None:
        super().__init__(message, size, limit)
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return str(self.args[0])


class MailboxFull(ActorError, TimeoutError):
    """A tell found no room in its target's mailbox within the system's
    ``send_timeout`` (``when_full="block"``); the message was not sent.
    ``ref`` is the target."""

    __module__ = "actors"

    def __init__(self, message: str, ref: Any = None) -> None:
        super().__init__(message)
        self.ref = ref

    def __reduce__(self) -> Any:
        return (type(self), (self.args[0],))


class SpawnError(ActorError):
    """An actor could not be started: its process died before it was ready,
    or the start-up timed out. A constructor or ``on_start`` exception is
    raised as itself instead."""

    __module__ = "actors"


class WorkerLost(ActorError):
    """A pool task whose worker process died while running it, twice: the
    task was retried once in a new worker, and that one died too
    (``actors.mp.Pool`` and ``actors.mp.Executor``)."""

    __module__ = "actors"


class ConfigError(ActorError, ValueError):
    """A setting of the system that cannot work or would be unsafe (a tcp
    bind without keys, an unreadable keys folder, a libzmq without CURVE);
    raised where the system is made, before anything starts. The message
    says what to change."""

    __module__ = "actors"


class ClusterError(ActorError):
    """A node of a cluster (``cluster="etcd://..."``) lost its membership:
    its etcd lease expired or the cluster declared it down, so it stopped
    its actors (fencing; ``system.join()`` raises it); or etcd did not
    answer when the node needed it (joining, claiming a name)."""

    __module__ = "actors"
