"""tcp:// links: CurveZMQ keys (``actors keys new``), the refusal rules,
and strangers that get nothing through (docs/security.md, docs/cluster.md).

The attackers are raw pyzmq sockets on 127.0.0.1: one without CURVE, one
with a key pair of its own (it even knows the cluster's public server key,
which is not secret). Each connects to every tcp port of a node and sends
well-formed frames and garbage; its socket monitor shows the handshake
refused. A legitimate client with the folder's keys then gets its frame
through, which shows the node serving and that the attackers' frames
would have counted had they arrived.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import msgpack
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

import actors
from actors import protocol as P
from conftest import wait_for
from sample_actors import Counter
from transport.codec import FRAME_VERSION
from transport.keys import load

pytestmark = pytest.mark.timeout(90)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAILED = (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
          | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


def frame(*envelopes: object) -> bytes:
    return bytes((FRAME_VERSION,)) + b"".join(msgpack.packb(e, use_bin_type=True)
                                              for e in envelopes)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "actors", *args], env=env,
                          capture_output=True, text=True, timeout=30, check=False)


def test_keys_new_makes_private_files(tmp_path):
    folder = tmp_path / "keys"
    done = cli("keys", "new", str(folder))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / "allowed").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / "cluster.key_secret").st_mode) == 0o600
    assert sorted(os.listdir(folder / "allowed")) == ["cluster.key"]
    again = cli("keys", "new", str(folder))  # never overwrites keys
    assert again.returncode == 1 and "already holds keys" in again.stderr
    node = cli("keys", "new", str(folder), "--node", "a")
    assert node.returncode == 0, node.stderr
    assert stat.S_IMODE(os.stat(folder / "a.key_secret").st_mode) == 0o600
    assert sorted(os.listdir(folder / "allowed")) == ["a.key", "cluster.key"]
    curve = load(str(folder), "a")  # node a is a client with its own pair
    assert curve.public != curve.server_public
    assert load(str(folder), "b").public == curve.server_public
    bad = cli("keys", "new", str(folder), "--node", "../x")
    assert bad.returncode == 1 and "node name" in bad.stderr


def test_tcp_refusals(tmp_path, keys):
    with pytest.raises(actors.ConfigError, match="needs keys.*actors keys new"):
        actors.ActorSystem(bind="tcp://127.0.0.1")
    with pytest.raises(actors.ConfigError, match="wildcard"):
        actors.ActorSystem(bind="tcp://0.0.0.0:7000", keys=keys)
    with pytest.raises(actors.ConfigError, match="ipc needs none"):
        actors.ActorSystem(keys=keys)
    with pytest.raises(actors.ConfigError, match="does not exist"):
        actors.ActorSystem(bind="tcp://127.0.0.1", keys=str(tmp_path / "none"))
    with pytest.raises(actors.ConfigError, match="node must be"):
        actors.ActorSystem(node="a b", bind="tcp://127.0.0.1", keys=keys)
    open_folder = tmp_path / "open"
    assert cli("keys", "new", str(open_folder)).returncode == 0
    os.chmod(open_folder / "cluster.key_secret", 0o644)
    with pytest.raises(actors.ConfigError, match="readable by others"):
        actors.ActorSystem(bind="tcp://127.0.0.1", keys=str(open_folder))


class Client:
    """A raw PUSH socket to one tcp inbox, with its monitor."""

    def __init__(self, context: zmq.Context, address: str,
                 secret: bytes | None = None, public: bytes | None = None,
                 server: bytes | None = None) -> None:
        self.socket = context.socket(zmq.PUSH)
        self.socket.linger = 0
        if secret is not None:
            self.socket.curve_secretkey = secret
            self.socket.curve_publickey = public
            self.socket.curve_serverkey = server
        self.monitor = self.socket.get_monitor_socket()
        self.events = 0
        self.socket.connect(address)

    def refused(self) -> bool:
        while self.monitor.poll(0):
            self.events |= recv_monitor_message(self.monitor)["event"]
        return bool(self.events & FAILED)

    def close(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)


def test_strangers_get_nothing_through(keys):
    with actors.ActorSystem(bind="tcp://127.0.0.1", keys=keys) as system:
        c = system.spawn(Counter, 0, name="c")
        # every tcp port: the node's, its process's, and the beacon other nodes watch
        ports = [system._node.runtime.address, c.address, system._node.remotes.beacon]
        assert all(p.startswith("tcp://127.0.0.1:") for p in ports)
        curve = load(keys)
        foreign_public, foreign_secret = zmq.curve_keypair()
        context = zmq.Context()
        strangers = []
        try:
            for port in ports:
                strangers.append(Client(context, port))  # no CURVE at all
                strangers.append(Client(context, port, foreign_secret, foreign_public,
                                        curve.server_public))
            hostile = [frame([P.TELL, c.uid, ["add", 1000], True]),
                       frame([P.ASK, 0, [4, b"x" * 16, "c"], True, ports[0], 7]),
                       b"\xa2garbage that is not msgpack \xc1\xc1"]
            for stranger in strangers:
                for data in hostile:
                    stranger.socket.send(data)
            for stranger in strangers:
                wait_for(stranger.refused, what="the handshake refused")
            friend = Client(context, c.address, curve.secret, curve.public,
                            curve.server_public)
            friend.socket.send(frame([P.TELL, c.uid, ["add", 1], True]))
            wait_for(lambda: c.ask("get", timeout=10) == 1, what="the friend's tell")
            assert c.ask("get", timeout=10) == 1  # none of the strangers' 1000s
            counts = system.counters()
            assert counts["malformed"] == 0 and counts["refused"] == 0, counts
            assert system.lookup("c") == c
            friend.close()
        finally:
            for stranger in strangers:
                stranger.close()
            context.term()


def test_service_file_tcp_needs_keys(tmp_path):
    """A service file's [system] takes node, keys (absolute) and link_timeout,
    and refuses tcp without keys before anything starts."""
    from actors.cli.config import ConfigError as FileError
    from actors.cli.config import load
    path = tmp_path / "app.toml"
    path.write_text('name = "shop"\n[system]\nbind = "tcp://127.0.0.1:7000"\n'
                    'node = "a b"\nlink_timeout = 0\n')
    with pytest.raises(FileError) as info:
        load(str(path))
    errors = "\n".join(info.value.errors)
    assert "system.bind: tcp needs system.keys" in errors
    assert "system.node: must be a name" in errors
    assert "system.link_timeout: must be a positive number" in errors
    path.write_text('name = "shop"\n[system]\nbind = "tcp://127.0.0.1:7000"\nkeys = "rel"\n')
    with pytest.raises(FileError, match="system.keys: must be an absolute path"):
        load(str(path))


def test_libzmq_without_curve_is_named(monkeypatch, keys):
    """A libzmq built without CURVE: the system refuses to start on tcp and
    says how to get one that has it."""
    monkeypatch.setattr(zmq, "has", lambda capability: capability != "curve")
    with pytest.raises(actors.ConfigError, match="without CURVE.*pip install"):
        actors.ActorSystem(bind="tcp://127.0.0.1", keys=keys)


def test_peer_operations_refused_without_keys():
    """A node without keys (ipc) and its hosts take no operation between
    nodes: a Meet is refused, a PeerDown marks nothing dead, and both keep
    serving (here a same-user process on ipc plays the peer)."""
    with actors.ActorSystem() as system:
        c = system.spawn(Counter, 0)
        node = system._node.runtime.address
        context = zmq.Context()
        try:
            to_node = Client(context, node)
            to_host = Client(context, c.address)
            down = frame([P.TELL, 0, [P.PeerDown.code, P.NO_TOKEN, [c.uid], "forged"], True])
            meet = frame([P.ASK, 0, [P.Meet.code, P.NO_TOKEN, "x", "x.1", "ipc:///nowhere",
                                     "ipc:///nowhere"], True, "ipc:///nowhere/reply", 9])
            for client in (to_node, to_host):
                client.socket.send(down)
                client.socket.send(meet)
            to_host.socket.send(frame([P.TELL, c.uid, ["add", 1], True]))  # after them
            wait_for(lambda: c.ask("get", timeout=10) == 1, what="the host read them")
            # the node refused the Meet (its answer had nowhere to go), after the PeerDown
            wait_for(lambda: system.counters()["refused"] >= 1, what="the node read them")
            assert c.ask("get", timeout=10) == 1  # not marked dead anywhere
            assert system.nodes() == []
            to_node.close()
            to_host.close()
        finally:
            context.term()
