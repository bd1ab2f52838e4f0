"""A cluster on etcd: how fast a dead node is acted on, lookups, joins.

    python -m benchmarks.cluster                # full run: 20 kills per mode
    python -m benchmarks.cluster --quick        # smoke run: 3 kills per mode
    python -m benchmarks.cluster --json out.json

It starts its own etcd (the ``etcd`` binary: apt-get install etcd-server)
on free loopback ports, with short raft timings (10 ms heartbeat, 100 ms
election: leases of 1 s are allowed), and node "a" here, node "c" (the
standby) and one victim node per kill, each a process of its own.

Per kill: the victim runs a watched actor (a watcher on node a) and the
child of a supervisor on node a (``ChildSpec(..., node=[victim, "c"])``).
The victim is then

* ``kill``: SIGKILLed (its links reset at once: the members' heartbeat
  links vote it down), with the default settings (lease 5 s);
* ``freeze``: SIGSTOPped (it stops answering: its links go silent, and
  the members vote it down after ``link_timeout``, 1.5 s by default);
* ``freeze-lease``: SIGSTOPped with heartbeats made too slow to matter
  (``link_timeout`` 60 s): only its etcd lease ends it, TTL 5 s and 1 s.

and the benchmark reports the time from the signal to (a) the watcher's
Terminated (stamped in the watcher's process with the machine-wide
monotonic clock) and (b) the supervised child answering again on node c,
p50 and p99. Then: ``lookup`` of a name held on another node from the
watch-fed cache and from etcd (a miss reads etcd each time), against a
raw etcd3gw read; a node's join (``ActorSystem(cluster=...)`` in a fresh
process, to being listed by node a) against the same without a cluster.
Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import actors
from benchmarks.nodes import stop_node as stop
from transport.keys import create

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from etcd_server import EtcdServer  # noqa: E402 - the tests' own launcher of etcd


class Watcher(actors.Actor):
    """Stamps each Terminated it gets with time.monotonic() (one clock for
    every process of this machine)."""

    def __init__(self) -> None:
        self.ended: list[float] = []

    def receive(self, message: Any) -> Any:
        match message:
            case ("watch", ref):
                self.watch(ref)
                return True
            case actors.Terminated():
                self.ended.append(time.monotonic())
            case "ended":
                return self.ended


class Where(actors.Actor):
    def receive(self, message: Any) -> Any:
        return self.ref.node.split(".")[0]


class Sup(actors.Supervisor):
    max_restarts = 1000
    max_seconds = 1.0


def serve(name: str, keys: str, url: str, ttl: int, link: float) -> None:
    """A node of the benchmark: joins, prints READY, serves until stdin closes."""
    with actors.ActorSystem(node=name, bind="tcp://127.0.0.1", keys=keys, cluster=url,
                            lease_ttl=ttl, link_timeout=link, spares=0):
        print("READY", flush=True)
        sys.stdin.read()


def start(name: str, keys: str, url: str, ttl: int, link: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get(
        "PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.cluster", "--serve", name, keys,
                             url, str(ttl), str(link)], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"node {name} did not start: {line!r}")
    return proc


def until(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.002)
    return value


def answered_from(system: actors.ActorSystem, name: str, node: str) -> bool:
    ref = system.lookup(name)
    try:
        return ref is not None and ref.ask("x", timeout=2) == node
    except actors.ActorError:
        return False


def kills(mode: str, n: int, keys: str, url: str, ttl: int, link: float) -> dict[str, Any]:
    """``n`` victims, each stopped by ``mode``; seconds to notice and to move."""
    notified, moved = [], []
    with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys, cluster=url,
                            lease_ttl=ttl, link_timeout=link, spares=0) as a:
        standby = start("c", keys, url, ttl, link)
        try:
            watcher = a.spawn(Watcher)
            for i in range(n):
                victim_name = f"v{i}"
                victim = start(victim_name, keys, url, ttl, link)
                try:
                    until(lambda: victim_name in a.nodes())
                    watched = a.spawn(Where, node=victim_name)
                    watcher.ask(("watch", watched), timeout=10)
                    sup = a.spawn(Sup, [actors.ChildSpec("w", Where, node=[victim_name, "c"])],
                                  name=f"sup{i}")
                    until(lambda: answered_from(a, f"sup{i}/w", victim_name))
                    before = len(watcher.ask("ended", timeout=10))
                    t0 = time.monotonic()
                    victim.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
                    until(lambda: answered_from(a, f"sup{i}/w", "c"))
                    moved.append(time.monotonic() - t0)
                    ended = until(lambda: watcher.ask("ended", timeout=10)[before:])
                    notified.append(ended[0] - t0)
                    sup.stop()
                finally:
                    victim.kill()
                    victim.wait()
                    victim.stdout.close()
        finally:
            stop(standby)
    return {"mode": mode, "ttl": ttl, "link_timeout": link, "notified": notified,
            "moved": moved}


def lookups(keys: str, url: str, n: int) -> dict[str, float]:
    """Microseconds per lookup: cached, from etcd (a miss), a raw etcd3gw read."""
    with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys, cluster=url,
                            spares=0) as a:
        other = start("c", keys, url, 5, 1.5)
        try:
            until(lambda: "c" in a.nodes())
            a.spawn(Where, name="far", node="c")
            until(lambda: a.lookup("far") is not None)
            cluster = a._node.cluster  # (the benchmark reaches in for the raw read)
            out = {}
            for label, fn in (("lookup_cached", lambda: a.lookup("far")),
                              ("lookup_etcd", lambda: a.lookup("nobody")),
                              ("raw_etcd3gw_get", lambda: cluster.etcd.get("/nobody"))):
                rounds = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        fn()
                    rounds.append((time.perf_counter() - t0) / n * 1e6)
                out[label] = statistics.median(rounds)
            return out
        finally:
            stop(other)


def joins(keys: str, url: str, n: int) -> dict[str, float]:
    """Seconds from starting a node's process to node a listing it; and to
    the same process printing READY without a cluster."""
    plain, clustered = [], []
    with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys, cluster=url,
                            spares=0) as a:
        for i in range(n):
            t0 = time.monotonic()
            proc = start(f"j{i}", keys, url, 5, 1.5)
            until(lambda: f"j{i}" in a.nodes())
            clustered.append(time.monotonic() - t0)
            stop(proc)
            t0 = time.monotonic()
            proc = start(f"j{i}", keys, "-", 5, 1.5)
            plain.append(time.monotonic() - t0)
            stop(proc)
    return {"join_seen": statistics.median(clustered),
            "start_without_cluster": statistics.median(plain)}


def quantiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    return statistics.median(values), p99


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        name, keys, url, ttl, link = sys.argv[2:7]
        if url == "-":  # the join baseline: the same node, no cluster
            with actors.ActorSystem(node=name, bind="tcp://127.0.0.1", keys=keys, spares=0):
                print("READY", flush=True)
                sys.stdin.read()
            return
        serve(name, keys, url, int(ttl), float(link))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 kills per mode")
    parser.add_argument("--kills", type=int, help="kills per mode (default 20; --quick: 3)")
    parser.add_argument("--json", help="write the results there")
    args = parser.parse_args()
    n = args.kills or (3 if args.quick else 20)
    folder = tempfile.mkdtemp()
    server = EtcdServer(os.path.join(folder, "etcd"))
    server.start()
    try:
        keys = os.path.join(folder, "keys")
        create(keys)
        results: dict[str, Any] = {"kills": []}
        plans = [("kill", 5, 1.5), ("freeze", 5, 1.5), ("freeze-lease", 5, 60.0),
                 ("freeze-lease", 1, 60.0)]
        for index, (mode, ttl, link) in enumerate(plans):
            result = kills(mode, n, keys, server.url(f"bench{index}"), ttl, link)
            results["kills"].append(result)
            for what in ("notified", "moved"):
                p50, p99 = quantiles(result[what])
                print(f"{mode:13} lease {ttl} s, link_timeout {link:>4} s: {what:8} "
                      f"p50 {p50 * 1000:7.0f} ms  p99 {p99 * 1000:7.0f} ms  "
                      f"({len(result[what])} kills)", flush=True)
        results["lookups"] = lookups(keys, server.url("lookups"), 200 if args.quick else 2000)
        for label, us in results["lookups"].items():
            print(f"{label:16} {us:9.1f} us", flush=True)
        results["joins"] = joins(keys, server.url("joins"), 2 if args.quick else 5)
        ratio = results["joins"]["join_seen"] / results["joins"]["start_without_cluster"]
        print(f"join, seen by a member: {results['joins']['join_seen'] * 1000:.0f} ms; "
              f"the same node without a cluster: "
              f"{results['joins']['start_without_cluster'] * 1000:.0f} ms ({ratio:.2f}x)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
