"""Bounded mailboxes: a producer that outruns its consumer is slowed, never
lets the consumer's memory grow without bound, and loses nothing silently.

    main --tell x 2,000--> Slow (1 ms per message, mailbox_size=100)

1. when_full="block" (the default): each tell past 100 waiting messages
   waits for room; all 2,000 arrive and the mailbox never held more than 100.
2. send_timeout: a tell that finds no room in time raises MailboxFull and
   is not sent.
3. when_full="drop": tells past the limit become counted dead letters;
   sent == handled + dead letters.
4. max_frame: a message over the limit fails where it is sent.

Run it:  python examples/backpressure.py [zmq|pipe]
"""

import sys
import time

import actors


class Slow(actors.Actor):
    """Takes about ``delay`` seconds per message."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.handled = 0

    def receive(self, message):
        if message == "handled":
            return self.handled
        time.sleep(self.delay)  # the work this consumer does per message
        self.handled += 1


def peak_of(system: actors.ActorSystem, ref: actors.ActorRef) -> int:
    """The most messages ever waiting in ``ref``'s mailbox."""
    [entry] = [e for e in system.statistics() if e["uid"] == ref.uid]
    return entry["peak"]


def main(transport: str) -> None:
    with actors.ActorSystem(transport, mailbox_size=100) as system:
        slow = system.spawn(Slow, 0.001)
        started = time.monotonic()
        for i in range(2000):
            slow.tell(i)  # blocks while 100 of ours wait in its mailbox
        told = time.monotonic() - started
        print(f"block: told 2000 in {told:.1f} s, handled {slow.ask('handled', timeout=60)}, "
              f"peak mailbox {peak_of(system, slow)} (limit 100)")

    with actors.ActorSystem(transport, mailbox_size=10, send_timeout=0.2,
                            stop_timeout=1.0) as system:
        stuck = system.spawn(Slow, 2.0)  # far slower than we tell
        sent = 0
        try:
            for i in range(100):
                stuck.tell(i)
                sent += 1
        except actors.MailboxFull as e:
            print(f"send_timeout: {sent} sent, then MailboxFull: {e}")

    with actors.ActorSystem(transport, mailbox_size=100, when_full="drop") as system:
        slow = system.spawn(Slow, 0.001)
        for i in range(5000):
            slow.tell(i)  # never waits: past the limit a tell is dropped
        handled = slow.ask("handled", timeout=60)
        dropped = system.dead_letters
        print(f"drop: handled {handled} + dead letters {dropped} = {handled + dropped} "
              f"of 5000 sent")

    with actors.ActorSystem(transport, max_frame=1 << 20) as system:
        slow = system.spawn(Slow, 0.0)
        try:
            slow.tell(b"x" * (2 << 20))
        except actors.MessageTooLarge as e:
            print(f"max_frame: {e}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "zmq")
