"""Actors and a node program for the cluster tests (tests/test_cluster.py).
Run as a script, it is cluster node NAME: it joins the cluster at URL,
prints ``READY <its address>`` and obeys commands on stdin, one a line:

    nodes             prints NODES <live members>
    spawn NAME        spawns a Worker named NAME here; prints OK <its node id>
    place NAME NODE   spawns a Worker named NAME on NODE ("*": any other); prints OK <node id>
    supervise         starts "sup": a Supervisor of "w" (a Worker placed on
                      ["b", "c"], or on the list the SUPERVISE env var gives); prints OK
    ask NAME          looks NAME up and asks it "where"; prints GOT <node name>
    failure           prints FAILURE <repr of system.failure>
    stop              leaves (orderly shutdown)

:class:`ClusterNode` runs it and speaks these lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import actors
from sample_nodes import ROOT, NodeProcess, serve_commands


class Worker(actors.Actor):
    """Answers the node it runs on."""

    def receive(self, message):
        match message:
            case "where":
                return self.ref.node.partition(".")[0]
            case "pid":
                return os.getpid()
            case "hang":
                threading.Event().wait()
            case "crash":
                raise RuntimeError("crash")


class Placer(actors.Actor):
    """Places, finds and stops actors from inside an actor (a host process)."""

    def receive(self, message):
        match message:
            case ("place", name, node):
                return self.system.spawn(Worker, name=name, node=node)
            case ("find", name):
                return self.system.lookup(name)
            case ("stop", ref):
                ref.stop()
                return True


class WorkerSup(actors.Supervisor):
    max_restarts = 10
    max_seconds = 5.0


def run(system: actors.ActorSystem, verb: str, arg: str) -> str:
    match verb:
        case "nodes":
            return "NODES " + " ".join(system.nodes())
        case "spawn":
            return f"OK {system.spawn(Worker, name=arg).node}"
        case "place":
            name, node = arg.split()
            return f"OK {system.spawn(Worker, name=name, node=node).node}"
        case "supervise":
            where = os.environ.get("SUPERVISE", "b,c").split(",")
            system.spawn(WorkerSup, [actors.ChildSpec("w", Worker, node=where)], name="sup")
            return "OK"
        case "ask":
            ref = system.lookup(arg)
            if ref is None:
                return "GOT none"
            return f"GOT {ref.ask('where', timeout=10)}"
        case "failure":
            return f"FAILURE {system.failure!r}"
    return f"ERROR unknown command {verb!r}"


def main() -> None:
    # the classes by their module's name, as the other nodes name them
    from sample_cluster import run as run_command
    name, keys, url, ttl = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with actors.ActorSystem(node=name, bind="tcp://127.0.0.1", keys=keys, cluster=url,
                            lease_ttl=ttl, spares=0, link_timeout=1.0) as system:
        print("READY", system.address, flush=True)
        serve_commands(lambda verb, arg: run_command(system, verb, arg))


class ClusterNode(NodeProcess):
    """A cluster node in a process of its own (this file as a script);
    ``expect``, ``command`` and ``stop`` as :class:`NodeProcess`'s."""

    def __init__(self, name: str, keys: str, url: str, ttl: int = 2,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        environ = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
                       **(env or {}))
        argv = [sys.executable, os.path.join(ROOT, "tests", "sample_cluster.py"), name, keys,
                url, str(ttl)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=environ)
        self.address = self.expect("READY")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


if __name__ == "__main__":
    main()
