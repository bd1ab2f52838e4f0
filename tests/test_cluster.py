"""Clusters on etcd (docs/cluster.md): a real etcd server, real node
processes on 127.0.0.1 linked over CURVE, and what the issue asks of them:
membership, cluster-wide names, placement, node death, fencing, etcd
outages and a rolling restart."""

from __future__ import annotations

import os
import shutil
import time

import psutil
import pytest

import actors
from conftest import wait_for, wait_gone
from etcd_server import EtcdServer
from sample_cluster import ClusterNode, Worker
from sample_nodes import Keeper
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def nodes():
    """Cluster nodes a test starts (:class:`ClusterNode`): stopped after it."""
    started: list[ClusterNode] = []
    yield started
    for node in started:
        node.stop()


def member(url: str, keys: str, name: str = "a",
           ttl: int = 2) -> actors.ActorSystem:
    return actors.ActorSystem(node=name, bind="tcp://127.0.0.1", keys=keys, cluster=url,
                              lease_ttl=ttl, spares=0, link_timeout=1.0)


def start(nodes: list, name: str, keys: str, url: str, ttl: int = 2, **env: str) -> ClusterNode:
    node = ClusterNode(name, keys, url, ttl, env=env or None)
    nodes.append(node)
    return node


def asks_retrying(system: actors.ActorSystem, name: str, timeout: float = 20.0) -> str:
    """Where the actor named ``name`` answers from, retrying while it is
    gone or moving (looked up again each time)."""
    def answer() -> str | None:
        ref = system.lookup(name)
        try:
            return None if ref is None else ref.ask("where", timeout=5)
        except actors.ActorDeadError:
            return None
    return wait_for(answer, timeout, what=f"{name} to answer")


# -- configuration -----------------------------------------------------------------------
def test_cluster_settings_are_checked_where_they_are_given(keys):
    with pytest.raises(actors.ConfigError, match="cluster= needs node=NAME"):
        actors.ActorSystem(cluster="etcd://127.0.0.1:2379/x")
    with pytest.raises(actors.ConfigError, match="cluster must be"):
        actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys, cluster="http://x/y")
    with pytest.raises(ValueError, match="lease_ttl"):
        actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys,
                           cluster="etcd://127.0.0.1:2379/x", lease_ttl=0.5)
    with pytest.raises(ValueError, match="node must be"):
        actors.ChildSpec("w", Worker, node=["b", 3])
    from actors.cluster.etcd import parse_url
    assert parse_url("etcd://h1:1,[::1]:2/a/b") == ([("h1", 1), ("::1", 2)], "/a/b/")
    with pytest.raises(ValueError, match="cluster must be"):
        parse_url("etcd://h1/a")


def test_no_etcd_no_system(keys):
    """An etcd that does not answer: the system is not made (ClusterError),
    and nothing it started is left."""
    from etcd_server import free_port
    t0 = time.monotonic()
    with pytest.raises(actors.ClusterError, match="did not answer"):
        actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys,
                           cluster=f"etcd://127.0.0.1:{free_port()}/x", spares=0)
    assert time.monotonic() - t0 < 10


def test_spawn_on_a_node_needs_a_cluster(keys):
    with actors.ActorSystem(spares=0) as system:
        with pytest.raises(actors.ConfigError, match="places an actor in a cluster"):
            system.spawn(Worker, node="b")


# -- membership and names -------------------------------------------------------------------
def test_join_leave_names_and_placement(cluster_url, keys, nodes):
    with member(cluster_url, keys) as a:
        b = start(nodes, "b", keys, cluster_url)
        c = start(nodes, "c", keys, cluster_url)
        wait_for(lambda: a.nodes() == ["a", "b", "c"], what="three members")
        assert b.command("nodes", "NODES") == "a b c"
        rows = {row["name"]: row for row in a.members()}
        assert set(rows) == {"a", "b", "c"} and rows["a"]["self"]
        assert all(0 < row["lease_left"] <= 2 for row in rows.values())
        assert rows["b"]["address"] == b.address
        # a name is unique in the cluster and found from every node
        assert b.command("spawn w1", "OK").startswith("b.")
        assert c.command("spawn w1", "ERROR") == \
            "ValueError an actor named 'w1' already exists in the cluster (on node b)"
        with pytest.raises(ValueError, match="already exists in the cluster"):
            a.spawn(Worker, name="w1")
        assert a.lookup("w1").ask("where", timeout=10) == "b"
        assert c.command("ask w1", "GOT") == "b"
        # placement: a named node, a preference list, any other node
        w2 = a.spawn(Worker, name="w2", node="c")
        assert w2.node.startswith("c.") and w2.ask("where", timeout=10) == "c"
        assert b.command("ask w2", "GOT") == "c"
        assert a.spawn(Worker, node=["x", "b"]).ask("where", timeout=10) == "b"
        assert a.spawn(Worker, node="a").ask("where", timeout=10) == "a"
        anywhere = {a.spawn(Worker, node="*").ask("where", timeout=10) for _ in range(4)}
        assert anywhere == {"b", "c"}  # spread over the others
        with pytest.raises(actors.SpawnError, match="no live member"):
            a.spawn(Worker, node="zz")
        # a class the other node has not imported: SpawnError naming it
        with pytest.raises(actors.SpawnError, match="OnlyHere"):
            a.spawn(OnlyHere, node="b")
        # the name is free again once its actor stopped
        w2.stop()
        wait_for(lambda: a.lookup("w2") is None, what="w2's name released")
        assert b.command("spawn w2", "OK").startswith("b.")
        # leaving in order: the others see it at once, its names go with it
        t0 = time.monotonic()
        b.stop()
        wait_for(lambda: a.nodes() == ["a", "c"], what="b gone")
        assert time.monotonic() - t0 < 15
        assert a.lookup("w1") is None and c.command("nodes", "NODES") == "a c"


def test_actors_place_find_and_stop_across_the_cluster(cluster_url, keys, nodes):
    """From inside an actor: spawn(node=...), a cluster-wide lookup, and a
    stop of another member's actor."""
    from sample_cluster import Placer
    with member(cluster_url, keys) as a:
        start(nodes, "b", keys, cluster_url)
        wait_for(lambda: a.nodes() == ["a", "b"], what="two members")
        placer = a.spawn(Placer)
        ref = placer.ask(("place", "wp", "b"), timeout=20)
        assert ref.node.startswith("b.") and ref.ask("where", timeout=10) == "b"
        assert placer.ask(("find", "wp"), timeout=10) == ref
        pid = ref.ask("pid", timeout=10)
        assert placer.ask(("stop", ref), timeout=10) is True
        assert wait_gone([pid], 10) == []
        wait_for(lambda: placer.ask(("find", "wp"), timeout=10) is None, what="wp released")


class OnlyHere(actors.Actor):
    """Imported by the test's node only."""


def test_a_name_taken_by_a_live_member_refuses_a_second_node_of_that_name(cluster_url, keys,
                                                                           nodes):
    start(nodes, "b", keys, cluster_url, ttl=1)
    with pytest.raises(actors.ConfigError, match="is a member of the cluster already"):
        member(cluster_url, keys, name="b", ttl=1)


# -- node death -------------------------------------------------------------------------
def test_kill_a_node_watchers_asks_names_and_supervised_child_moves(cluster_url, keys, nodes):
    with member(cluster_url, keys) as a:
        b = start(nodes, "b", keys, cluster_url)
        start(nodes, "c", keys, cluster_url)
        wait_for(lambda: a.nodes() == ["a", "b", "c"], what="three members")
        from sample_cluster import WorkerSup
        a.spawn(WorkerSup, [actors.ChildSpec("w", Worker, node=["b", "c"])], name="sup")
        assert asks_retrying(a, "sup/w") == "b"
        assert b.command("spawn wb", "OK").startswith("b.")
        wb = a.lookup("wb")
        keeper = a.spawn(Keeper)
        keeper.tell(("watch", wb))
        keeper.ask(("ask", wb, "pid"), timeout=10)  # the watch is made before this answer
        pending = wb.ask_async("hang")
        t0 = time.monotonic()
        b.kill()
        with pytest.raises(actors.ActorDeadError, match="node b is down"):
            pending.result(10)
        failed = time.monotonic() - t0
        ended = wait_for(lambda: keeper.ask("ended", timeout=10), what="Terminated")
        assert ended[0][0] == wb and "node b is down" in ended[0][1]
        assert asks_retrying(a, "sup/w") == "c"  # restarted on the live node its spec allows
        moved = time.monotonic() - t0
        assert a.nodes() == ["a", "c"] and a.lookup("wb") is None
        # acted on well within the lease (2 s): the heartbeats' votes decided
        assert failed < 2 + 1.0, failed
        assert moved < 2 + 3.0, moved
        tree = a.tree()
        assert tree[0]["name"] == "sup"


def test_restart_types_of_placed_children_when_their_node_dies(cluster_url, keys, nodes):
    """A node's death is an abnormal end: a transient child moves, a
    temporary one is gone from its supervisor."""
    with member(cluster_url, keys) as a:
        b = start(nodes, "b", keys, cluster_url)
        start(nodes, "c", keys, cluster_url)
        wait_for(lambda: a.nodes() == ["a", "b", "c"], what="three members")
        from sample_cluster import WorkerSup
        sup = a.spawn(WorkerSup, [
            actors.ChildSpec("t", Worker, node="b", restart="temporary"),
            actors.ChildSpec("p", Worker, node=["b", "c"], restart="transient")], name="sup")
        assert asks_retrying(a, "sup/t") == "b" and asks_retrying(a, "sup/p") == "b"
        b.kill()
        assert asks_retrying(a, "sup/p") == "c"
        children = wait_for(lambda: [c for c in sup.proxy(timeout=10).which_children()
                                     if c.name != "t" or c.status != "running"] or None,
                            what="t dropped")
        assert [c.name for c in children] == ["p"] and a.lookup("sup/t") is None


def test_a_supervisor_stopping_stops_its_placed_children(cluster_url, keys, nodes):
    with member(cluster_url, keys) as a:
        start(nodes, "b", keys, cluster_url)
        wait_for(lambda: a.nodes() == ["a", "b"], what="two members")
        from sample_cluster import WorkerSup
        sup = a.spawn(WorkerSup, [actors.ChildSpec("w", Worker, node="b")], name="sup")
        pid = a.lookup("sup/w").ask("pid", timeout=10)
        children = sup.proxy(timeout=10).which_children()
        assert children[0].name == "w" and children[0].ref.node.startswith("b.")
        sup.stop()
        assert wait_gone([pid], 10) == []
        wait_for(lambda: a.lookup("sup/w") is None, what="sup/w released")


def test_orphans_of_a_dead_supervisor_node_are_stopped(cluster_url, keys, nodes):
    """A supervisor's node dies: the child it placed elsewhere does not
    outlive it."""
    with member(cluster_url, keys) as a:
        b = start(nodes, "b", keys, cluster_url, SUPERVISE="a")
        wait_for(lambda: a.nodes() == ["a", "b"], what="two members")
        assert b.command("supervise", "OK") == ""
        child = wait_for(lambda: a.lookup("sup/w"), what="sup/w placed here")
        pid = child.ask("pid", timeout=10)
        b.kill()
        assert wait_gone([pid], 10) == []
        wait_for(lambda: a.lookup("sup/w") is None, what="the orphan's name released")


# -- fencing and etcd outages ---------------------------------------------------------------
def test_a_node_cut_off_from_etcd_fences_itself_before_its_actors_move(etcd, cluster_url,
                                                                        keys, nodes):
    proxy = TcpProxy(("127.0.0.1", etcd.port))
    via_proxy = cluster_url.replace(etcd.endpoint, f"127.0.0.1:{proxy.port}")
    with member(cluster_url, keys) as a:
        c = start(nodes, "c", keys, via_proxy)
        wait_for(lambda: a.nodes() == ["a", "c"], what="two members")
        from sample_cluster import WorkerSup
        a.spawn(WorkerSup, [actors.ChildSpec("w", Worker, node=["c", "a"])], name="sup")
        assert asks_retrying(a, "sup/w") == "c"
        pid = a.lookup("sup/w").ask("pid", timeout=10)
        proxy.cut()  # c can no longer reach etcd; its links to a stay up
        wait_for(lambda: "c" not in a.nodes(), timeout=20, what="c down")
        # fencing came first: c's actor was already gone when a saw c down
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        assert c.command("failure", "FAILURE").startswith("ClusterError(")
        assert asks_retrying(a, "sup/w") == "a"  # its supervisor restarted it here


def test_etcd_away_for_a_moment_changes_nothing(tmp_path, keys, nodes):
    server = EtcdServer(str(tmp_path / "etcd"))
    server.start()
    url = server.url("outage")
    try:
        with member(url, keys, ttl=5) as a:
            b = start(nodes, "b", keys, url, ttl=5)
            wait_for(lambda: a.nodes() == ["a", "b"], what="two members")
            assert b.command("spawn w", "OK").startswith("b.")
            w = a.lookup("w")
            server.stop()
            assert w.ask("where", timeout=10) == "b"  # links and actors keep working
            with pytest.raises(actors.ClusterError):
                a.spawn(Worker, name="named")  # a name needs etcd
            assert a.spawn(Worker).ask("where", timeout=10) == "a"  # an unnamed one does not
            server.start()
            assert w.ask("where", timeout=10) == "b"
            # membership changes resume: a new node joins and is seen
            start(nodes, "c", keys, url, ttl=5)
            wait_for(lambda: a.nodes() == ["a", "b", "c"], what="c joined after the outage")
            assert b.command("failure", "FAILURE") == "None" and a.failure is None
    finally:
        server.stop()


def test_etcd_back_without_the_leases_fences_every_node(tmp_path, keys, nodes):
    """etcd returns having lost its data (the leases with it): each node
    finds its lease gone and fences itself."""
    server = EtcdServer(str(tmp_path / "etcd"))
    server.start()
    url = server.url("wiped")
    try:
        b = start(nodes, "b", keys, url, ttl=5)
        c = start(nodes, "c", keys, url, ttl=5)
        assert b.command("spawn w", "OK").startswith("b.")
        server.kill()
        shutil.rmtree(server.data_dir)
        server.start()
        for node in (b, c):
            wait_for(lambda n=node: n.command("failure", "FAILURE") != "None", timeout=20,
                     what=f"node {node.name} fenced")
            assert "fenced" in node.command("failure", "FAILURE")
    finally:
        server.stop()


def test_rolling_restart_while_a_client_keeps_getting_answers(cluster_url, keys, nodes):
    """Every node that runs the worker is restarted in turn (orderly); its
    supervisor on the client's node moves it each time, and the client's
    asks keep being answered."""
    with member(cluster_url, keys) as a:
        servers = {n: start(nodes, n, keys, cluster_url) for n in ("b", "c", "d")}
        wait_for(lambda: a.nodes() == ["a", "b", "c", "d"], what="four members")
        from sample_cluster import WorkerSup
        a.spawn(WorkerSup, [actors.ChildSpec("w", Worker, node="*")], name="sup")
        seen = []
        for name in ("b", "c", "d"):
            servers[name].stop()
            nodes.remove(servers[name])
            wait_for(lambda n=name: n not in a.nodes(), what=f"{name} left")
            seen.append(asks_retrying(a, "sup/w", timeout=15))
            servers[name] = start(nodes, name, keys, cluster_url)
            wait_for(lambda n=name: n in a.nodes(), what=f"{name} back")
        assert all(where in ("b", "c", "d") for where in seen)
        assert asks_retrying(a, "sup/w") in ("b", "c", "d")
        assert a.failure is None


# -- TLS to etcd -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory):
    """An etcd that speaks https only and wants a client certificate its CA
    signed (``--client-cert-auth``), and the files for it."""
    from etcd_server import make_tls
    folder = tmp_path_factory.mktemp("tls")
    files = make_tls(str(folder / "pki"))
    server = EtcdServer(str(folder / "data"), tls=files)
    server.start()
    try:
        yield server, files
    finally:
        server.stop()


def keys_with(tmp_path, keys: str, files: dict[str, str], client: bool = True) -> str:
    """A copy of the keys folder with etcd's CA (and the client pair)."""
    folder = str(tmp_path / "keys")
    shutil.copytree(keys, folder)
    os.makedirs(os.path.join(folder, "etcd"))
    shutil.copy(files["ca"], os.path.join(folder, "etcd", "ca.crt"))
    if client:
        shutil.copy(files["client_cert"], os.path.join(folder, "etcd", "client.crt"))
        shutil.copy(files["client_key"], os.path.join(folder, "etcd", "client.key"))
        os.chmod(os.path.join(folder, "etcd", "client.key"), 0o600)
    return folder


def test_a_cluster_over_tls_to_etcd(tls_etcd, tmp_path, keys, nodes):
    """etcds://: the node checks etcd's certificate with KEYS/etcd/ca.crt
    and presents KEYS/etcd/client.crt; the cluster works as over http."""
    server, files = tls_etcd
    url = server.url("tls")
    assert url.startswith("etcds://")
    folder = keys_with(tmp_path, keys, files)
    with member(url, folder) as a:
        b = start(nodes, "b", folder, url)
        wait_for(lambda: a.nodes() == ["a", "b"], what="two members over TLS")
        assert a.spawn(Worker, name="tw", node="b").ask("where", timeout=10) == "b"
        assert b.command("ask tw", "GOT") == "b"
        assert all(row["lease_left"] for row in a.members())


def test_tls_to_etcd_refuses_what_does_not_fit(tls_etcd, tmp_path, keys):
    server, files = tls_etcd
    url = server.url("tls-refused")
    # no client certificate: etcd refuses the handshake
    no_client = keys_with(tmp_path / "a", keys, files, client=False)
    with pytest.raises(actors.ClusterError, match="did not answer"):
        member(url, no_client)
    # no CA: said before anything is tried
    bare = str(tmp_path / "bare")
    shutil.copytree(keys, bare)
    with pytest.raises(actors.ClusterError, match="etcd/ca.crt"):
        member(url, bare)
    # a readable client key is refused
    loose = keys_with(tmp_path / "b", keys, files)
    os.chmod(os.path.join(loose, "etcd", "client.key"), 0o644)
    with pytest.raises(actors.ClusterError, match="chmod 600"):
        member(url, loose)
    # plain http to the TLS port: nothing answers
    with pytest.raises(actors.ClusterError, match="did not answer"):
        member(url.replace("etcds://", "etcd://"), keys_with(tmp_path / "c", keys, files))


# -- the watch and incarnations ------------------------------------------------------------
def test_a_watch_behind_a_compaction_reads_the_prefix_again(etcd):
    """A watch asked for history etcd has compacted away says so (on_reset,
    which reads the prefix again and says where to go on from) and then
    follows the changes after it, none missed or repeated."""
    import threading

    from actors.cluster import etcd as E
    client = E.Etcd([("127.0.0.1", etcd.port)], 2.0)
    prefix = f"/t/compaction-{os.getpid()}/"
    for i in range(3):
        client.txn([], [E.put(f"{prefix}k{i}", {"i": i})])
    revision, _ = client.get_prefix(prefix)
    client._post("/kv/compaction", {"revision": revision, "physical": True})  # (etcdctl compact)
    seen: list[str] = []
    resets: list[int] = []
    got = threading.Event()

    def reset() -> int:
        now, found = client.get_prefix(prefix)
        resets.append(len(found))
        return now + 1

    def events(batch) -> None:
        seen.extend(f"{kind} {kv.key[len(prefix):]}" for kind, kv in batch)
        got.set()

    watch = client.watch(prefix, 1, events, reset)  # from revision 1: compacted
    try:
        wait_for(lambda: resets, what="the reset")
        assert resets == [3]
        client.delete(f"{prefix}k1")
        assert got.wait(10) and seen == ["DELETE k1"]
    finally:
        watch.stop()


def test_a_killed_node_restarted_at_once_is_a_new_incarnation(cluster_url, keys, nodes):
    """kill -9 then the same name again: the members declare the old one
    down, the new one joins (waiting out the old lease if it must), and the
    old incarnation's refs stay dead."""
    with member(cluster_url, keys) as a:
        b = start(nodes, "b", keys, cluster_url)
        wait_for(lambda: a.nodes() == ["a", "b"], what="two members")
        old = a.spawn(Worker, name="wb", node="b")
        b.kill()
        b2 = start(nodes, "b", keys, cluster_url)
        assert b2.command("nodes", "NODES") == "a b"
        new = a.spawn(Worker, name="wb", node="b")
        assert new.node != old.node and new.ask("where", timeout=10) == "b"
        with pytest.raises(actors.ActorDeadError, match="node b is down"):
            old.ask("where", timeout=10)
