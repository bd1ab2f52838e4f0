"""Hello, actors: two actors in two processes play ping-pong.

Run it:  python examples/hello.py
"""

import os

import actors


class Ponger(actors.Actor):
    def receive(self, message):
        match message:
            case ("ping", n):
                return ("pong", n, os.getpid())


class Pinger(actors.Actor):
    def __init__(self, partner: actors.ActorRef) -> None:
        self.partner = partner  # refs travel in messages and constructor args

    def play(self, rounds: int) -> list:
        """Called through a proxy; asks the partner `rounds` times."""
        return [self.partner.ask(("ping", n), timeout=5) for n in range(rounds)]


def main() -> None:
    with actors.ActorSystem() as system:
        ponger = system.spawn(Ponger, name="ponger")
        pinger = system.spawn(Pinger, ponger, name="pinger")
        replies = pinger.proxy(timeout=10).play(3)
        for reply in replies:
            print(f"main {os.getpid()} <- {reply}")
        assert system.lookup("ponger") == ponger
    print("all actors stopped")


if __name__ == "__main__":
    main()
