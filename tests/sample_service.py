"""Actor classes for the service tests: imported by the tests themselves,
and copied beside the app.toml files they write (``actors run`` imports the
classes a config names from the config's folder)."""

from __future__ import annotations

import logging
import os
import time

import actors

log = logging.getLogger("sample_service")


def note(journal: str, line: str) -> None:
    """Append one line to ``journal`` (one write: lines of several
    processes never interleave)."""
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class Recorder(actors.Actor):
    """Writes ``start LABEL PID`` and ``stop LABEL`` lines to a journal
    file, so a test sees which actors ran on_start and on_stop, in order."""

    def __init__(self, journal: str, label: str | None = None, *, greeting: str = "") -> None:
        self.journal = journal
        self.label = label
        self.greeting = greeting

    def on_start(self) -> None:
        if self.label is None:
            self.label = (self.ref.name or "?").rpartition("/")[2]
        if self.greeting:
            log.warning("%s says %s", self.label, self.greeting)
        note(self.journal, f"start {self.label} {os.getpid()}")

    def on_stop(self) -> None:
        note(self.journal, f"stop {self.label}")

    def receive(self, message):
        match message:
            case "pid":
                return os.getpid()
            case ("sleep", seconds):
                time.sleep(seconds)
            case _:
                return message


class Team(actors.Supervisor):
    """A sub-supervisor with two Recorders (``JOURNAL`` is taken from its
    kwargs)."""

    strategy = "one_for_one"

    def __init__(self, journal: str) -> None:
        super().__init__([actors.ChildSpec("a", Recorder, args=(journal,)),
                          actors.ChildSpec("b", Recorder, args=(journal,))])


class Gate(actors.Actor):
    """Holds every ``"wait"`` ask until told ``"open"``."""

    def __init__(self) -> None:
        self.held: list[actors.Reply] = []

    def receive(self, message):
        match message:
            case "wait":
                self.held.append(self.defer_reply())
            case "held":
                return len(self.held)
            case "open":
                for reply in self.held:
                    reply.send("open")
                self.held.clear()


class Relay(actors.Actor):
    """``("through", gate)`` waits on the gate inside its handler: its
    mailbox fills meanwhile while its process still answers.
    ``("block", fifo)`` blocks its process outside the runtime until a byte
    is written to the FIFO."""

    def receive(self, message):
        match message:
            case ("through", gate):
                return gate.ask("wait")
            case ("block", fifo):
                with open(fifo, "rb") as f:  # until the test writes to it
                    return f.read(1)
            case "pid":
                return os.getpid()
            case _:
                return message


class NotAnActor:
    """For the config checks: a class that is not an Actor."""
