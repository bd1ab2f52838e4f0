"""Actors and a node program for the tests of nodes that meet over tcp://
(tests/test_nodes.py). Run as a script, it is node NAME: it starts its
actors, prints ``ADDRESS <its address>`` and obeys commands on stdin, one
a line, answering each on stdout:

    connect ADDRESS   meet that node; prints MET <name>
    ask NAME          lookup(NAME).ask("get"); prints GOT <value>
    tellref NAME      tells its "keeper" the ref found under NAME; prints OK
    nodes             prints NODES <names>
    stop              leaves (orderly shutdown)
"""

from __future__ import annotations

import os
import sys
import threading

import actors


class Keeper(actors.Actor):
    """Holds refs it is told, asks through them, watches them."""

    def __init__(self) -> None:
        self.refs: list = []
        self.ended: list = []

    def receive(self, message):
        match message:
            case ("keep", ref):
                self.refs.append(ref)
            case "refs":
                return self.refs
            case ("ask", ref, payload):
                return ref.ask(payload, timeout=10)
            case ("lookup", name):
                return self.system.lookup(name)
            case ("watch", ref):
                self.watch(ref)
            case actors.Terminated(ref=ref, reason=reason):
                self.ended.append((ref, reason))
            case "ended":
                return self.ended


class Hanger(actors.Actor):
    """Answers its pid; blocks forever in "hang" (so it can be killed mid-ask)."""

    def receive(self, message):
        match message:
            case "pid":
                return os.getpid()
            case "hang":
                threading.Event().wait()
            case "get":
                return "hanger"


def main() -> None:
    name, keys = sys.argv[1], sys.argv[2]
    bind = sys.argv[3] if len(sys.argv) > 3 else "tcp://127.0.0.1"
    from sample_actors import Counter
    with actors.ActorSystem(node=name, bind=bind, keys=keys, spares=0) as system:
        system.spawn(Counter, 5, name=f"counter-{name}")
        keeper = system.spawn(Keeper, name=f"keeper-{name}")
        system.spawn(Hanger, name=f"hanger-{name}")
        print("ADDRESS", system.address, flush=True)
        for line in sys.stdin:
            verb, _, arg = line.strip().partition(" ")
            try:
                if verb == "connect":
                    print("MET", system.connect(arg), flush=True)
                elif verb == "ask":
                    print("GOT", system.lookup(arg).ask("get", timeout=10), flush=True)
                elif verb == "tellref":
                    keeper.tell(("keep", system.lookup(arg)))
                    print("OK", flush=True)
                elif verb == "nodes":
                    print("NODES", " ".join(system.nodes()), flush=True)
                elif verb == "stop":
                    break
            except Exception as e:  # the test reads it
                print("ERROR", type(e).__name__, e, flush=True)


if __name__ == "__main__":
    main()
