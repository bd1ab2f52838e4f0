"""Nodes on two (or three) network namespaces joined by a bridge
(tests/netns.py), whose link is cut and healed: real node processes on
addresses of their own (not loopback), a cut that only silence reveals,
and what each side does about it (docs/cluster.md, "Failure detection").
Skipped where namespaces cannot be made (not root, no ``ip``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from conftest import wait_for
from netns import Net, unavailable
from sample_nodes import NodeProcess

_why = unavailable()
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow,
              pytest.mark.skipif(_why is not None, reason=_why or "")]

PORT = 7000  # the namespaces are private: every node may take the same port


class Cluster:
    """Node processes, one per namespace of a :class:`Net`."""

    def __init__(self, net: Net, keys: str) -> None:
        self.net = net
        self.keys = keys
        self.nodes: dict[str, NodeProcess] = {}

    def start(self, name: str) -> NodeProcess:
        bind = f"tcp://{self.net.addresses[name]}:{PORT}"
        node = NodeProcess(name, self.keys, bind, prefix=self.net.command(name, []))
        self.nodes[name] = node
        assert node.address == bind
        return node

    def stop(self, name: str) -> None:
        self.nodes.pop(name).stop()

    def close(self) -> None:
        try:
            for name in list(self.nodes):
                self.stop(name)
        finally:
            self.net.close()


@contextlib.contextmanager
def make_cluster(keys: str, names: list[str]) -> Iterator[Cluster]:
    cluster = Cluster(Net(names), keys)
    try:
        for name in names:
            cluster.start(name)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def pair(keys):
    """Nodes a and b, met, in two namespaces."""
    with make_cluster(keys, ["a", "b"]) as cluster:
        a, b = cluster.nodes["a"], cluster.nodes["b"]
        assert a.command(f"connect {b.address}", "MET") == "b"
        yield cluster


def lost(node: NodeProcess, other: str) -> bool:
    return other not in node.command("nodes", "NODES").split()


def test_tell_ask_proxy_across_the_link(pair):
    """Two nodes on addresses of their own (not loopback) meet; refs work
    both ways, from the main programs and from an actor."""
    a, b = pair.nodes["a"], pair.nodes["b"]
    assert b.command("nodes", "NODES") == "a"
    node, address = a.command("find counter-b", "REF").split()
    assert node.startswith("b.") and address.startswith("tcp://10.213.0.2:")
    assert a.command("ask counter-b", "GOT") == "5"
    assert a.command("tell counter-b", "OK") == ""
    assert a.command("proxy counter-b", "GOT") == "7"
    node, address = b.command("find counter-a", "REF").split()
    assert address.startswith("tcp://10.213.0.1:")
    assert b.command("proxy counter-a", "GOT") == "6"
    # an actor of node a, given b's ref inside a message, tells through it
    assert a.command("keepertell counter-b", "OK") == ""
    wait_for(lambda: a.command("ask counter-b", "GOT") == "8", what="the keeper's tell")
    assert a.command("watch counter-b", "OK") == ""
    assert a.command("ended", "ENDED") == ""


def cut_and_lose(cluster: Cluster, how: str) -> dict[str, float]:
    """Cut b off; each side must lose the other: the ask pending on the
    other's actor fails with ActorDeadError naming the node, the watcher
    is told, later tells are dead letters. Returns each side's detection
    time (from the cut to its failed ask), which no test asserts on."""
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    sides = {"a": (a, "b"), "b": (b, "a")}
    for node, other in sides.values():
        node.command(f"find counter-{other}", "REF")
        node.command(f"find hanger-{other}", "REF")
        assert node.command(f"watch counter-{other}", "OK") == ""
        assert node.command(f"hang hanger-{other}", "OK") == ""
    cluster.net.cut("b", how)
    cut_at = time.monotonic()
    detected = {}
    for side, (node, other) in sides.items():
        failed = node.command(f"outcome hanger-{other}", "FAILED")
        at, _, error = failed.partition(" ")
        assert error.startswith("ActorDeadError:"), error
        assert f"node {other} is down (its link was lost)" in error
        detected[side] = float(at) - cut_at
        ended = wait_for(lambda n=node: n.command("ended", "ENDED"), what="Terminated")
        assert ended == f"node {other} is down (its link was lost)"
        assert lost(node, other)
        refused = node.command(f"ask counter-{other}", "ERROR")
        assert refused.startswith("ActorDeadError") and f"node {other} is down" in refused
        # a tell from the main program, then one from an actor (counted in
        # its process, reported to the node)
        for command in ("tell", "keepertell"):
            before = int(node.command("deadletters", "DEAD"))
            assert node.command(f"{command} counter-{other}", "OK") == ""
            wait_for(lambda n=node, b=before: int(n.command("deadletters", "DEAD")) > b,
                     what=f"the {command} to a lost node counted as a dead letter")
    return detected


@pytest.mark.parametrize("how", ["bridge", "down"])
def test_cut_link_loses_the_node_on_both_sides(pair, how):
    """The link cut silently (off the bridge) or loudly (the interface
    down): each node loses the other by its heartbeats alone."""
    detected = cut_and_lose(pair, how)
    print(f"\ncut ({how}): lost after {detected['a']:.2f} s on a, {detected['b']:.2f} s on b")


def test_healed_link_meets_only_a_new_incarnation(pair):
    """After the link heals, the two incarnations that lost each other do
    not meet again (each refuses the other); node b restarted in its
    namespace, at the same address, is a new incarnation: it meets a, and
    the old refs stay dead."""
    a, b = pair.nodes["a"], pair.nodes["b"]
    old = a.command("find counter-b", "REF").split()[0]
    cut_and_lose(pair, "bridge")
    pair.net.heal("b")
    refused = a.command(f"connect {b.address}", "ERROR")
    assert "was lost" in refused and "new incarnation" in refused
    refused = b.command(f"connect {a.address}", "ERROR")
    assert "was lost" in refused and "new incarnation" in refused
    assert lost(a, "b") and lost(b, "a")
    pair.stop("b")
    b = pair.start("b")
    assert a.command(f"connect {b.address}", "MET") == "b"
    assert b.command("nodes", "NODES") == "a"
    new = a.command("find counter-b", "REF").split()[0]
    assert new.startswith("b.") and new != old
    assert a.command("ask counter-b", "GOT") == "5"
    assert b.command("ask counter-a", "GOT") == "5"


@pytest.fixture
def trio(keys):
    """Nodes a, b and c, all met, in three namespaces on one bridge."""
    with make_cluster(keys, ["a", "b", "c"]) as cluster:
        a, b, c = (cluster.nodes[n] for n in "abc")
        assert a.command(f"connect {b.address}", "MET") == "b"
        assert a.command(f"connect {c.address}", "MET") == "c"
        assert b.command(f"connect {c.address}", "MET") == "c"
        yield cluster


def test_cut_one_node_of_three(trio):
    """Node c cut off: a and b lose c, and keep each other."""
    a, b, c = (trio.nodes[n] for n in "abc")
    for node in (a, b):
        node.command("find hanger-c", "REF")
        assert node.command("hang hanger-c", "OK") == ""
    trio.net.cut("c")
    for node in (a, b):
        failed = node.command("outcome hanger-c", "FAILED")
        assert "ActorDeadError" in failed and "node c is down" in failed
    wait_for(lambda: lost(c, "a") and lost(c, "b"), what="c to lose a and b")
    assert a.command("nodes", "NODES") == "b" and b.command("nodes", "NODES") == "a"
    assert a.command("ask counter-b", "GOT") == "5"
    assert b.command("proxy counter-a", "GOT") == "6"
