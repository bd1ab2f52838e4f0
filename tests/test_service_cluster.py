"""A service in a cluster (docs/deployment.md, "A service in a cluster"):
``actors run`` of a file with a ``[cluster]`` table against a real etcd,
``actors nodes`` (text and ``--json``), the cluster line of ``status`` and
``tree``, a reload that finds ``[cluster]`` changed, a name taken by
another member, fencing and an etcd that does not answer (exit 1), and
``actors check`` of bad ``[cluster]`` values; a service outside a cluster
keeps its output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from actors.cli.config import ClusterConfig, load
from conftest import wait_for, wait_gone
from etcd_server import free_port
from service_harness import ROOT, ServiceRun, services
from tcp_proxy import TcpProxy
from test_service_run import SMALL

pytestmark = pytest.mark.timeout(120)

# @NAME@, @NODE@, @KEYS@ and @ETCD@ are filled in by ``cluster_app``;
# {journal} by the harness
CLUSTER_APP = """\
    name = "@NAME@"
    [system]
    node = "@NODE@"
    bind = "tcp://127.0.0.1"
    keys = "@KEYS@"
    spares = 0
    [cluster]
    etcd = "@ETCD@"
    lease_ttl = 4
    [[child]]
    name = "db"
    actor = "sample_service:Recorder"
    args = ["{journal}"]
"""


def cluster_app(url: str, keys: str, node: str, name: str = "shop") -> str:
    return (CLUSTER_APP.replace("@NAME@", name).replace("@NODE@", node)
            .replace("@KEYS@", keys).replace("@ETCD@", url))


@pytest.fixture
def service(tmp_path):
    """A factory of services (SMALL by default), cleaned up after the test."""
    yield from services(tmp_path, SMALL)


def members_of(run: ServiceRun, name: str) -> list[str] | None:
    """The member names ``actors status`` shows on its cluster line."""
    out = run.cli("status", name)
    match = re.fullmatch(r"node \S+ in cluster \S+: members (.*)", out.stdout.splitlines()[0])
    return match[1].split() if out.returncode == 0 and match else None


def test_service_in_a_cluster_lists_its_members(service, cluster_url, keys):
    """Two services, each a member (nodes a and b) of one cluster: ``nodes``
    lists both with their lease left and marks the service's own node,
    ``--json`` gives the rows; ``status`` and ``tree`` start with the
    cluster line, ``tree --json`` names each actor's node; a reload that
    finds [cluster] changed says it waits for the next start; once b stops,
    a's members are a alone."""
    a = service(cluster_app(cluster_url, keys, "a")).start()
    b = service(cluster_app(cluster_url, keys, "b", name="shop-b")).start()
    assert wait_for(lambda: members_of(a, "shop") == ["a", "b"], 20, "a sees a and b")

    out = a.cli("nodes", "shop")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"shop: node a in cluster {cluster_url}, 2 live members"
    assert lines[1].split() == ["NODE", "NODE", "ID", "ADDRESS", "LEASE", "LEFT", "HOST", "PID"]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["*", "b"]        # * marks the service's own node
    own, other = rows[0][1:], rows[1]
    assert own[0] == "a" and own[1].startswith("a.") and own[-1] == str(a.pid)
    assert other[0] == "b" and other[1].startswith("b.") and other[-1] == str(b.pid)
    for row in (own, other):
        assert row[2].startswith("tcp://127.0.0.1:")
        assert re.fullmatch(r"[0-4]s", row[3]), row       # whole seconds of a 4 s lease

    out = a.cli("nodes", a.path, "--json")
    assert out.returncode == 0, out.stderr
    found = {row["name"]: row for row in json.loads(out.stdout)}
    assert sorted(found) == ["a", "b"]
    assert found["a"]["self"] and not found["b"]["self"]
    assert (found["a"]["pid"], found["b"]["pid"]) == (a.pid, b.pid)
    assert found["a"]["node_id"] == own[1] and found["b"]["address"] == other[2]
    assert all(0 <= row["lease_left"] <= 4 and row["lease"] > 0 for row in found.values())
    assert [row["self"] for row in json.loads(b.cli("nodes", "shop-b", "--json").stdout)] \
        == [False, True]

    status = a.cli("status", "shop").stdout.splitlines()
    assert status[0] == f"node a in cluster {cluster_url}: members a b"
    assert re.match(rf"shop: running, pid {a.pid}, up \d+s, 2 actors \(", status[1])
    assert [line.split()[0] for line in status[2:]] == ["shop", "shop/db"]
    tree = a.cli("tree", "shop").stdout.splitlines()
    assert tree[0] == status[0] and tree[1].startswith(f"shop: running, pid {a.pid}")
    assert tree[3].endswith("restarts 0")                # no "on node": it runs here
    assert {e["node"] for e in a.tree().values()} == {"a"}

    a.write(cluster_app(cluster_url, keys, "a").replace("lease_ttl = 4", "lease_ttl = 5"))
    out = a.cli("reload", "shop")
    assert out.returncode == 0, out.stderr
    assert "warning: [cluster] changed: it applies at the next start, not on reload" \
        in out.stderr

    b.signal(signal.SIGTERM)
    assert b.wait_exit() == 0, b.stderr()
    assert wait_for(lambda: members_of(a, "shop") == ["a"], 20, "b gone from a's members")
    a.signal(signal.SIGTERM)
    assert a.wait_exit() == 0, a.stderr()
    assert "Traceback" not in a.stderr() + b.stderr()


def test_a_second_service_of_the_same_name_in_the_cluster_is_refused(service, cluster_url,
                                                                       keys):
    """The service's name is its root supervisor's, and names are unique in
    a cluster: a member running a service of a name another member runs
    fails to start (exit 1, saying why), and the first keeps running."""
    a = service(cluster_app(cluster_url, keys, "a")).start()
    c = service(cluster_app(cluster_url, keys, "c")).start(ready=False)
    assert c.wait_exit() == 1
    assert "an actor named 'shop' already exists in the cluster (on node a)" in c.stderr()
    assert a.cli("status", "shop").returncode == 0


def test_a_service_cut_off_from_etcd_fences_itself_and_exits_1(service, etcd, cluster_url,
                                                                keys):
    """The service's node loses etcd (a real cut of its connections): it
    stops its actors (fencing) and the service exits 1 saying why, for
    systemd's Restart=on-failure to start it again as a new incarnation."""
    proxy = TcpProxy(("127.0.0.1", etcd.port))
    url = cluster_url.replace(etcd.endpoint, f"127.0.0.1:{proxy.port}")
    run = service(cluster_app(url, keys, "a").replace("lease_ttl = 4", "lease_ttl = 2"))
    run.start()
    pids = sorted(run.remember())
    assert run.journal()[0].startswith("start db ")
    proxy.cut()
    assert run.wait_exit(20) == 1, run.stderr()
    assert "service shop failed, exiting with status 1: node a left its cluster (fenced)" \
        in run.stderr()
    assert wait_gone(pids, 10) == []


def test_a_service_whose_etcd_does_not_answer_exits_1(service, keys):
    """No etcd at the URL: the actor system cannot be made; exit 1 with the
    reason, before any actor starts."""
    run = service(cluster_app(f"etcd://127.0.0.1:{free_port()}/x", keys, "a")).start(ready=False)
    assert run.wait_exit() == 1
    assert "cannot start the actor system" in run.stderr()
    assert "did not answer" in run.stderr()
    assert run.journal() == []


def test_service_outside_a_cluster_keeps_its_output(service):
    """Without [cluster]: ``nodes`` says so (exit 0; ``--json``: []),
    ``status`` and ``tree`` print no cluster line, ``tree --json`` has no
    node; ``nodes`` of a service that is not running exits 3."""
    run = service()
    out = run.cli("nodes", "shop")
    assert out.returncode == 3 and "not running" in out.stderr
    run.start()
    out = run.cli("nodes", "shop")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"shop: not in a cluster (no [cluster] table in {run.path})\n"
    out = run.cli("nodes", "shop", "--json")
    assert out.returncode == 0 and json.loads(out.stdout) == []
    assert run.cli("status", "shop").stdout.startswith(f"shop: running, pid {run.pid}, up ")
    assert run.cli("tree", "shop").stdout.startswith(f"shop: running, pid {run.pid}, up ")
    assert all("node" not in e for e in run.tree().values())
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0


# -- actors check ------------------------------------------------------------------------
BAD_CLUSTER = [
    ("""\
        name = "shop"
        [cluster]
        lease_ttl = 0
        colour = "blue"
     """, ["cluster.colour: unknown key (known: etcd, lease_ttl)",
           "cluster.etcd: is required ('etcd://HOST:PORT[,HOST:PORT...]/PREFIX')",
           "cluster.lease_ttl: must be a whole number of seconds in [1, 3600] (etcd leases "
           "count whole seconds), got 0",
           "system.node: is required with [cluster] (this node's name among the members)",
           "system.bind: must be 'tcp://HOST[:PORT]' with [cluster] (the address the other "
           "members reach this node at), got 'ipc'",
           "system.keys: is required with [cluster] (a folder made by 'actors keys new', "
           "the same on every member)"]),
    ("""\
        name = "shop"
        [system]
        node = "a"
        bind = "tcp://127.0.0.1"
        keys = "/etc/shop/keys"
        cluster = "etcd://127.0.0.1:2379/shop"
        lease_ttl = 5
        [cluster]
        etcd = "http://127.0.0.1:2379/shop"
        lease_ttl = 2.5
     """, ["system.cluster: set [cluster] etcd instead",
           "system.lease_ttl: set [cluster] lease_ttl instead",
           "cluster.etcd: must be 'etcd://HOST:PORT[,HOST:PORT...]/PREFIX' (etcds:// for TLS; "
           "PREFIX: letters, digits, '_', '-', '.', '/'), got 'http://127.0.0.1:2379/shop'",
           "cluster.lease_ttl: must be a whole number of seconds in [1, 3600] (etcd leases "
           "count whole seconds), got 2.5"]),
    ("""\
        name = "shop"
        [system]
        node = "a"
        bind = "tcp://127.0.0.1"
        [cluster]
        etcd = "etcd://127.0.0.1:99999,h2:2379/shop"
        lease_ttl = 3601
     """, ["system.bind: tcp needs system.keys (a folder made by 'actors keys new')",
           "cluster.etcd: must be 'etcd://HOST:PORT[,HOST:PORT...]/PREFIX' (etcds:// for TLS; "
           "PREFIX: letters, digits, '_', '-', '.', '/'), got 'etcd://127.0.0.1:99999,h2:2379/shop'",
           "cluster.lease_ttl: must be a whole number of seconds in [1, 3600] (etcd leases "
           "count whole seconds), got 3601"]),
    ("""\
        name = "shop"
        cluster = "etcd://127.0.0.1:2379/shop"
     """, ["cluster: must be a table ([cluster]), got 'etcd://127.0.0.1:2379/shop'",
           "cluster.etcd: is required ('etcd://HOST:PORT[,HOST:PORT...]/PREFIX')",
           "system.node: is required with [cluster] (this node's name among the members)",
           "system.bind: must be 'tcp://HOST[:PORT]' with [cluster] (the address the other "
           "members reach this node at), got 'ipc'",
           "system.keys: is required with [cluster] (a folder made by 'actors keys new', "
           "the same on every member)"]),
]


def check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "app.toml"
    path.write_text(text)
    env = dict(os.environ, PYTHONPATH=ROOT, ACTORS_RUN_DIR=str(tmp_path / "run"))
    return subprocess.run([sys.executable, "-m", "actors", "check", str(path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("text,errors", BAD_CLUSTER, ids=["missing", "wrong", "ranges",
                                                          "not-a-table"])
def test_check_rejects_bad_cluster_values_naming_key_and_value(tmp_path, text, errors):
    """``actors check`` reports every [cluster] error, and what [cluster]
    needs of [system], each naming its key and value (exit 1)."""
    out = check(tmp_path, text.replace("\n        ", "\n"))
    assert out.returncode == 1, out
    assert out.stderr.splitlines() == [f"{tmp_path / 'app.toml'}: {len(errors)} error"
                                       f"{'s' if len(errors) > 1 else ''}:",
                                       *(f"  {error}" for error in errors)]


def test_check_accepts_a_cluster_and_load_maps_it_to_the_system(tmp_path, keys):
    """A good [cluster]: ``check`` says which node of which cluster (etcd is
    not contacted); load() keeps it apart from [system] and hands both to
    ActorSystem (cluster=, lease_ttl=); lease_ttl defaults to 5."""
    url = "etcd://10.0.0.9:2379,[::1]:2379/shop/east"
    text = cluster_app(url, keys, "a").replace("    ", "").split("[[child]]")[0]
    out = check(tmp_path, text)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(f"; node a of cluster {url}")
    config = load(str(tmp_path / "app.toml"))
    assert config.cluster == ClusterConfig(url, 4)
    assert "cluster" not in config.system and "lease_ttl" not in config.system
    assert config.system_kwargs() == {"node": "a", "bind": "tcp://127.0.0.1", "keys": keys,
                                      "spares": 0, "cluster": url, "lease_ttl": 4,
                                      "log_level": 20}
    (tmp_path / "app.toml").write_text(text.replace("lease_ttl = 4\n", ""))
    assert load(str(tmp_path / "app.toml")).cluster == ClusterConfig(url, 5)
    (tmp_path / "app.toml").write_text('name = "shop"\n')
    assert load(str(tmp_path / "app.toml")).cluster is None
