"""Nodes that meet over tcp:// with CurveZMQ (docs/cluster.md): real node
processes on 127.0.0.1, refs that cross, names found across nodes, deaths
that reach the other node at once, and a lost node."""

from __future__ import annotations

import os
import shutil
import signal
import socket

import pytest

import actors
from conftest import wait_for
from sample_nodes import Keeper, NodeProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def node_b(keys):
    node = NodeProcess("b", keys)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def node_a(keys):
    with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys, spares=0) as system:
        yield system


def test_two_nodes_tell_ask_proxy_lookup(node_a, node_b):
    assert node_a.lookup("counter-b") is None  # not met yet
    assert node_a.connect(node_b.address) == "b"
    assert node_a.nodes() == ["b"]
    assert node_b.command("nodes", "NODES") == "a"
    # the heartbeats to b's beacon got through the CURVE handshake
    heartbeat = node_a._node.remotes.peers["b"].heartbeat
    wait_for(heartbeat.connected.is_set, what="the heartbeat handshake")
    c = node_a.lookup("counter-b")
    assert c is not None and c.node.startswith("b.") and c.node != node_a.node
    assert c.ask("get", timeout=10) == 5
    c.tell(("add", 1))
    assert c.ask_async("get").result(10) == 6
    assert c.proxy(timeout=10).add(2) == 8
    # actors of node a reach it too, with the ref inside a message or by name
    keeper = node_a.spawn(Keeper, name="keeper-a")
    assert keeper.ask(("ask", c, ("echo", [1, "x"])), timeout=10) == [1, "x"]
    assert keeper.ask(("lookup", "counter-b"), timeout=10) == c
    assert keeper.ask(("lookup", "nobody"), timeout=10) is None
    # and node b reaches node a's actors: by name, and a ref told to its keeper
    local = node_a.spawn(Keeper, name="local")
    assert node_b.command("ask counter-b", "GOT") == "8"
    assert node_b.command("tellref keeper-a", "OK") == ""
    b_keeper = node_a.lookup("keeper-b")
    refs = wait_for(lambda: b_keeper.ask("refs", timeout=10), what="the ref told to keeper-b")
    assert refs == [keeper] and refs[0].node == node_a.node
    assert local.ask("refs", timeout=10) == []
    with pytest.raises(actors.ActorError, match="another node is not supported"):
        c.stop()  # (a stop is a service operation of the actor's own node)
    assert c.ask("get", timeout=10) == 8
    assert node_a.nodes() == ["b"] and heartbeat.thread.is_alive()  # still linked


def test_remote_death_fails_asks_and_tells_watchers(node_a, node_b):
    node_a.connect(node_b.address)
    hanger = node_a.lookup("hanger-b")
    pid = hanger.ask("pid", timeout=10)
    keeper = node_a.spawn(Keeper)
    keeper.tell(("watch", hanger))
    pending = hanger.ask_async("hang")  # its handler never returns
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(actors.ActorDeadError):
        pending.result(30)
    ended = wait_for(lambda: keeper.ask("ended", timeout=10), what="Terminated")
    assert ended[0][0] == hanger and "SIGKILL" in ended[0][1]
    with pytest.raises(actors.ActorDeadError):
        hanger.ask("get", timeout=10)  # later asks fail at once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lost_node_fails_asks_and_tells_watchers(node_a, keys):
    bind = f"tcp://127.0.0.1:{free_port()}"  # the restarted node binds it again
    node_b = NodeProcess("b", keys, bind)
    assert node_b.address == bind
    try:
        node_a.connect(node_b.address)
        hanger = node_a.lookup("hanger-b")
        counter = node_a.lookup("counter-b")
        keeper = node_a.spawn(Keeper)
        keeper.tell(("watch", counter))
        assert keeper.ask(("ask", counter, "get"), timeout=10) == 5  # the watch went first
        pending = hanger.ask_async("hang")
        node_b.proc.send_signal(signal.SIGKILL)  # the whole node; its hosts follow it
        node_b.proc.wait(10)
        with pytest.raises(actors.ActorDeadError, match="node b is down"):
            pending.result(30)
        ended = wait_for(lambda: keeper.ask("ended", timeout=10), what="Terminated")
        assert ended == [(counter, ended[0][1])] and "node b is down" in ended[0][1]
        assert node_a.nodes() == []
        with pytest.raises(actors.ActorDeadError, match="node b is down"):
            counter.ask("get", timeout=10)
        lost = node_a.dead_letters
        counter.tell(("add", 1))  # to a lost node: a dead letter
        wait_for(lambda: node_a.dead_letters > lost, what="the dead letter")
        lost = node_a.dead_letters
        keeper.tell(("tell", counter, ("add", 1)))  # from an actor: counted in its process
        wait_for(lambda: node_a.dead_letters > lost, what="the actor's dead letter reported")
        # the same name, restarted at the same address: a new incarnation
        node_b2 = NodeProcess("b", keys, bind)
        try:
            assert node_a.connect(bind) == "b"
            counter2 = node_a.lookup("counter-b")
            assert counter2.node != counter.node and counter2 != counter
            assert counter2.ask("get", timeout=10) == 5
            with pytest.raises(actors.ActorDeadError):
                counter.ask("get", timeout=10)
        finally:
            node_b2.stop()
    finally:
        node_b.stop()


def test_frozen_node_is_cut_off_on_both_sides(node_a, keys):
    """SIGSTOP for longer than link_timeout: the other node loses it (its
    pending asks fail); after SIGCONT the frozen one finds its link cut too,
    and the lost incarnation is not taken back."""
    node_b = NodeProcess("b", keys)
    try:
        node_a.connect(node_b.address)
        pending = node_a.lookup("hanger-b").ask_async("hang")
        node_b.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(actors.ActorDeadError, match="node b is down"):
                pending.result(30)
        finally:
            node_b.proc.send_signal(signal.SIGCONT)
        assert node_a.nodes() == []
        wait_for(lambda: node_b.command("nodes", "NODES") == "", what="b to lose a")
        refused = node_b.command(f"connect {node_a.address}", "ERROR")
        assert "was lost" in refused and "new incarnation" in refused
    finally:
        node_b.stop()


def test_three_nodes_refs_passed_along(node_a, node_b, keys):
    """A ref of node b, sent by node a inside a message to node c, works
    from c; and a's ask to c's actor waits on b's answer."""
    node_c = NodeProcess("c", keys)
    try:
        assert node_a.connect(node_b.address) == "b"
        assert node_a.connect(node_c.address) == "c"
        assert node_c.command(f"connect {node_b.address}", "MET") == "b"
        assert node_a.nodes() == ["b", "c"]
        counter_b = node_a.lookup("counter-b")
        keeper_c = node_a.lookup("keeper-c")
        assert keeper_c.node.startswith("c.")
        keeper_c.tell(("keep", counter_b))
        assert keeper_c.ask("refs", timeout=10) == [counter_b]
        assert keeper_c.ask(("ask", counter_b, "get"), timeout=10) == 5
        # c watches b's actor; b's actor crashes: c's keeper is told
        keeper_c.tell(("watch", counter_b))
        assert keeper_c.ask(("ask", counter_b, ("echo", "x")), timeout=10) == "x"
        counter_b.tell("boom")  # raises in a tell: it crashes
        ended = wait_for(lambda: keeper_c.ask("ended", timeout=10), what="Terminated on c")
        assert ended[0][0] == counter_b and "crashed" in ended[0][1]
        with pytest.raises(actors.ActorDeadError):
            counter_b.ask("get", timeout=10)
    finally:
        node_c.stop()


def test_per_node_keys_and_revocation(tmp_path):
    """Each node with a client pair of its own (``--node``), the cluster pair
    no longer admitted as a client: nodes meet; a node whose public key is
    removed from the other's allowed/ gets nothing through."""
    from transport.keys import create
    shared = str(tmp_path / "keys")
    create(shared, "a")
    create(shared, "b")
    os.remove(os.path.join(shared, "allowed", "cluster.key"))
    revoked = str(tmp_path / "keys-without-a")  # b's copy, once a is revoked
    shutil.copytree(shared, revoked)
    os.chmod(revoked, 0o700)
    os.remove(os.path.join(revoked, "allowed", "a.key"))
    with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=shared, spares=0) as a:
        trusting = NodeProcess("b", shared)
        try:
            assert a.connect(trusting.address) == "b"
            assert a.lookup("counter-b").ask("get", timeout=10) == 5
        finally:
            trusting.stop()
        refusing = NodeProcess("b", revoked)
        try:
            with pytest.raises(actors.ActorError, match="no node answered"):
                a.connect(refusing.address, timeout=2)
            assert refusing.command("nodes", "NODES") == ""
        finally:
            refusing.stop()
