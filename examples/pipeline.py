"""A pipeline of three actors, each in its own process:

    main --tell--> Parse --tell--> Square --tell--> Sum <--ask-- main

Every stage forwards with tell (no waiting); order is kept between each pair,
so when the final ask reaches Sum, everything before it has arrived.

Run it:  python examples/pipeline.py [zmq|pipe]
"""

import sys

import actors


class Sum(actors.Actor):
    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def receive(self, message):
        match message:
            case ("value", v):
                self.total += v
                self.count += 1
            case "result":
                return {"count": self.count, "total": self.total}


class Square(actors.Actor):
    def __init__(self, downstream: actors.ActorRef) -> None:
        self.downstream = downstream

    def receive(self, message):
        match message:
            case ("value", v):
                self.downstream.tell(("value", v * v))
            case "flush":
                # everything told to downstream so far precedes this ask
                return self.downstream.ask("result", timeout=30)


class Parse(actors.Actor):
    def __init__(self, downstream: actors.ActorRef) -> None:
        self.downstream = downstream

    def receive(self, message):
        match message:
            case ("line", text):
                for word in text.split():
                    self.downstream.tell(("value", int(word)))
            case "flush":
                return self.downstream.ask("flush", timeout=30)


def main(transport: str = "zmq") -> dict:
    with actors.ActorSystem(transport) as system:
        total = system.spawn(Sum, name="sum")
        square = system.spawn(Square, total, name="square")
        parse = system.spawn(Parse, square, name="parse")
        for start in range(0, 1000, 10):
            parse.tell(("line", " ".join(str(n) for n in range(start, start + 10))))
        result = parse.ask("flush", timeout=60)
    expected = sum(n * n for n in range(1000))
    print(f"{result['count']} values, sum of squares {result['total']} (expected {expected})")
    assert result == {"count": 1000, "total": expected}
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "zmq")
