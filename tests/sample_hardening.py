"""Actors for tests/test_hardening.py (importable: hosts are spawned)."""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from typing import Any

import actors


class Target(actors.Actor):
    """Counts what it is told; answers its pid; records marks (a raw peer's
    last frame, to know that everything it sent before was read)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.count = 0
        self.marks: list[Any] = []

    def receive(self, message: Any) -> Any:
        if message == "pid":
            return os.getpid()
        if message == "count":
            return self.count
        if message == "marks":
            return list(self.marks)
        if type(message) is tuple and message and message[0] == "mark":
            self.marks.append(message[1])
            return None
        if type(message) is tuple and message and message[0] == "raise":
            raise ValueError("refused on purpose")
        if self.delay:
            time.sleep(self.delay)  # a slow consumer (1 ms a message)
        self.count += 1
        return None


class Gate(actors.Actor):
    """Answers an ask only when told to: a call that stays pending."""

    def __init__(self) -> None:
        self.replies: list[Any] = []

    def receive(self, message: Any) -> Any:
        if message == "wait":
            self.replies.append(self.defer_reply())
            return None
        if message == "held":
            return len(self.replies)
        if message == "open":
            for reply in self.replies:
                reply.send("opened")
            self.replies = []
        return None


class Fan(actors.Actor):
    """Waits for several asks at once in ways other than ``result()``."""

    def receive(self, message: Any) -> Any:
        kind, refs = message
        if kind == "wait":
            futures = [ref.ask_async(i) for i, ref in enumerate(refs)]
            done, not_done = cf.wait(futures, timeout=10)
            return sorted(f.result() for f in done), len(not_done)
        if kind == "as_completed":
            futures = [ref.ask_async(i) for i, ref in enumerate(refs)]
            return sorted(f.result() for f in cf.as_completed(futures, timeout=10))
        if kind == "gate":  # one ask that stays pending until the gate opens
            done, _ = cf.wait([refs[0].ask_async("wait")], timeout=60)
            return [f.result() for f in done]
        if kind == "pool":
            with cf.ThreadPoolExecutor(len(refs)) as pool:
                asks = [pool.submit(ref.ask, i, 10) for i, ref in enumerate(refs)]
                return sorted(f.result() for f in asks)
        raise ValueError(kind)


class Echo(actors.Actor):
    def receive(self, message: Any) -> Any:
        return message


class Spammer(actors.Actor):
    """Tells ``target`` as fast as it can: a handler slowed by flow control."""

    def receive(self, message: Any) -> Any:
        target, count = message
        for i in range(count):
            target.tell(i)
        return count
