"""Actors and a node program for the tests of nodes that meet over tcp://
(tests/test_nodes.py). Run as a script, it is node NAME: it starts its
actors, prints ``ADDRESS <its address>`` and obeys commands on stdin, one
a line, answering each on stdout:

    connect ADDRESS   meet that node; prints MET <name>
    find NAME         keeps the ref found now under NAME for the commands below;
                      prints REF <its node> <its address>
    ask NAME          ask("get") of the ref kept (else looked up); prints GOT <value>
    proxy NAME        its proxy's add(1); prints GOT <value>
    tell NAME         tells it ("add", 1); prints OK
    keepertell NAME   its "keeper" (an actor: another process) tells it ("add", 1); prints OK
    tellref NAME      tells its "keeper" the ref found under NAME; prints OK
    watch NAME        its "keeper" watches it; prints OK once the watch is made
    hang NAME         ask_async("hang") of it, kept pending; prints OK
    outcome NAME      waits for that ask (30 s); prints FAILED <the
                      time.monotonic() it failed at> <error type>: <error>
    ended             prints ENDED <the Terminated reasons keeper got, |-separated>
    deadletters       prints DEAD <system.dead_letters>
    nodes             prints NODES <names>
    stop              leaves (orderly shutdown)

:class:`NodeProcess` runs it and speaks these lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

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
            case ("tell", ref, payload):
                ref.tell(payload)
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


class Program:
    """The commands of a node program (see module doc)."""

    def __init__(self, system: actors.ActorSystem, keeper: actors.ActorRef) -> None:
        self.system = system
        self.keeper = keeper
        self.refs: dict[str, actors.ActorRef] = {}
        self.pending: dict[str, tuple[Future, threading.Event, list[float]]] = {}

    def ref(self, name: str) -> actors.ActorRef:
        ref = self.refs.get(name) or self.system.lookup(name)
        if ref is None:
            raise LookupError(f"no actor named {name}")
        return ref

    def run(self, verb: str, arg: str) -> str:
        match verb:
            case "connect":
                return f"MET {self.system.connect(arg)}"
            case "find":
                self.refs.pop(arg, None)  # looked up afresh
                ref = self.refs[arg] = self.ref(arg)
                return f"REF {ref.node} {ref.address}"
            case "ask":
                return f"GOT {self.ref(arg).ask('get', timeout=10)}"
            case "proxy":
                return f"GOT {self.ref(arg).proxy(timeout=10).add(1)}"
            case "tell":
                self.ref(arg).tell(("add", 1))
                return "OK"
            case "keepertell":
                self.keeper.tell(("tell", self.ref(arg), ("add", 1)))
                return "OK"
            case "tellref":
                self.keeper.tell(("keep", self.ref(arg)))
                return "OK"
            case "watch":
                ref = self.ref(arg)
                self.keeper.tell(("watch", ref))
                self.keeper.ask(("ask", ref, "pid"), timeout=10)  # after the watch
                return "OK"
            case "hang":
                future, done, at = self.pending[arg] = (
                    self.ref(arg).ask_async("hang"), threading.Event(), [])
                future.add_done_callback(lambda _f: (at.append(time.monotonic()), done.set()))
                return "OK"
            case "outcome":
                future, done, at = self.pending[arg]
                if not done.wait(30):
                    return "ERROR still pending after 30 s"
                error = future.exception(0)
                return f"FAILED {at[0]} {type(error).__name__}: {error}"
            case "ended":
                return "ENDED " + "|".join(r for _, r in self.keeper.ask("ended", timeout=10))
            case "deadletters":
                return f"DEAD {self.system.dead_letters}"
            case "nodes":
                return "NODES " + " ".join(self.system.nodes())
        return f"ERROR unknown command {verb!r}"


def main() -> None:
    name, keys = sys.argv[1], sys.argv[2]
    bind = sys.argv[3] if len(sys.argv) > 3 else "tcp://127.0.0.1"
    from sample_actors import Counter
    with actors.ActorSystem(node=name, bind=bind, keys=keys, spares=0) as system:
        system.spawn(Counter, 5, name=f"counter-{name}")
        keeper = system.spawn(Keeper, name=f"keeper-{name}")
        system.spawn(Hanger, name=f"hanger-{name}")
        program = Program(system, keeper)
        print("ADDRESS", system.address, flush=True)
        serve_commands(program.run)


def serve_commands(run: Callable[[str, str], str]) -> None:
    """Answer each line of stdin (``VERB ARG``) with ``run(verb, arg)``, or
    ``ERROR <type> <message>``, until ``stop`` or the end of stdin."""
    for line in sys.stdin:
        verb, _, arg = line.strip().partition(" ")
        if verb == "stop":
            break
        try:
            print(run(verb, arg), flush=True)
        except Exception as e:  # the test reads it
            print("ERROR", type(e).__name__, str(e).replace("\n", " "), flush=True)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NodeProcess:
    """A node in a process of its own (this file as a script), driven by
    lines. ``prefix``: a command the node runs under (``ip netns exec NS``)."""

    def __init__(self, name: str, keys: str, bind: str = "tcp://127.0.0.1",
                 prefix: list[str] | None = None) -> None:
        # the child finds the package and tests/ by PYTHONPATH (the
        # editable install may point at another checkout)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
        argv = [sys.executable, os.path.join(ROOT, "tests", "sample_nodes.py"), name, keys, bind]
        self.proc = subprocess.Popen([*(prefix or []), *argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.address = self.expect("ADDRESS")

    def expect(self, word: str) -> str:
        line = self.proc.stdout.readline()
        assert line.startswith(word + " ") or line.strip() == word, \
            f"{word} expected from the node, got {line!r}"
        return line.strip()[len(word) + 1:]

    def command(self, line: str, answer: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.expect(answer)

    def stop(self) -> None:
        """Orderly, else killed (its hosts follow it: parent death)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


if __name__ == "__main__":
    main()
