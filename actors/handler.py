"""What a process's message loop is composed with: its *handler*.

The loop (``actors.loop``) knows envelopes, not actors; the handler knows
what the process is for. The node (``actors.node``) and a host
(``actors.host``) are the two handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from actors.ref import ActorRef

__all__ = ["Handler", "ProcessHandler"]


class Handler(Protocol):
    """What a process does with the messages its loop reads."""

    def deliver(self, envelopes: list[Any]) -> None:
        """Tells, Asks, Calls and Receipted envelopes of one frame, in order
        (replies never reach here); each one's errors are the handler's to
        catch (:meth:`MessageLoop.drop_malformed`)."""

    def run_ready(self) -> None:
        """Run what is ready (after each poll, on the reader thread)."""

    def has_ready(self) -> bool:
        """True when something is ready to run now (a poll must not block)."""

    def on_ready(self, obj: Any) -> None:
        """A registered pollable that is not a message source is ready."""

    def source_closed(self, source: Any) -> None:
        """A message source reached its end (a pipe's peer is gone)."""

    def waiter(self, thread: int, future: Any) -> Any:
        """Who blocks when ``thread`` waits for ``future``: an actor uid, a
        thread key, or None when the wait is not an edge of the wait-for
        graph (see ``actors.waits``)."""


class ProcessHandler(Handler):
    """A loop handler that also says how this process stops an actor (the
    node waits for it; inside a host it is only scheduled)."""

    def stop_actor(self, ref: ActorRef, timeout: float | None) -> None: ...
