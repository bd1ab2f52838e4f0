"""A cluster of three nodes and an etcd on one machine; a supervised
worker moves to another node when its node dies.

Run it:  python examples/cluster/run.py      (needs the etcd binary on PATH:
         apt-get install etcd-server, or ETCD=/path/to/etcd)

It starts an etcd server on free loopback ports (its data in a temporary
folder), makes a keys folder (``actors keys new``), starts nodes b and c
(``node.py``, one process each) and is node a itself. Node a's supervisor
"workers" places its child "worker" on node b (``ChildSpec(...,
node=["b", "c"])``). Then node b is killed with SIGKILL: the cluster
declares it down, node a's supervisor restarts the worker on node c, and
the client's next asks are answered from there. docs/cluster.md explains
each part.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import actors
from shop import Workers

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_etcd(folder: str) -> tuple[subprocess.Popen, str]:
    """An etcd member on 127.0.0.1, serving within 20 s; its client address."""
    binary = os.environ.get("ETCD") or shutil.which("etcd")
    if binary is None:
        sys.exit("this example needs the etcd binary: apt-get install etcd-server")
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [binary, "--name", "example", "--data-dir", os.path.join(folder, "etcd"),
         "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"example={peer}", "--heartbeat-interval", "10",
         "--election-timeout", "100", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{client}/health", timeout=0.5) as answer:
                if json.load(answer).get("health") == "true":
                    return proc, client.removeprefix("http://")
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("etcd did not start")


def where(system: actors.ActorSystem, timeout: float = 15.0) -> str:
    """Where the worker answers from, asking again while it moves."""
    deadline = time.monotonic() + timeout
    while True:
        ref = system.lookup("workers/worker")
        try:
            if ref is not None:
                return ref.ask("where", timeout=5)
        except actors.ActorDeadError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not answer")
        time.sleep(0.01)


def main() -> None:
    folder = tempfile.mkdtemp()
    nodes: dict[str, subprocess.Popen] = {}
    etcd, endpoint = start_etcd(folder)
    try:
        keys = os.path.join(folder, "keys")
        subprocess.run([sys.executable, "-m", "actors", "keys", "new", keys], check=True,
                       stdout=subprocess.DEVNULL)
        url = f"etcd://{endpoint}/example"
        print("etcd serves at", endpoint)
        for name in ("b", "c"):
            nodes[name] = subprocess.Popen([sys.executable, os.path.join(HERE, "node.py"), name,
                                            url, keys], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True, cwd=HERE)
            nodes[name].stdout.readline()  # "joined ...": it is a member
        with actors.ActorSystem(node="a", bind="tcp://127.0.0.1", keys=keys, cluster=url,
                                lease_ttl=2) as system:
            print("members:", ", ".join(system.nodes()))
            system.spawn(Workers, name="workers")
            print("the worker runs on", where(system))
            worker = system.lookup("workers/worker")
            print("3 * 3 =", worker.ask(("job", 3), timeout=5))
            t0 = time.monotonic()
            nodes["b"].kill()  # SIGKILL, by the PID we started
            nodes["b"].wait()
            print("node b killed")
            moved = where(system)
            print(f"the worker runs on {moved}, {time.monotonic() - t0:.2f} s after the kill")
            print("members:", ", ".join(system.nodes()))
            print("4 * 4 =", system.lookup("workers/worker").ask(("job", 4), timeout=5))
    finally:
        for proc in nodes.values():
            if proc.poll() is None:
                proc.stdin.close()  # leaves in order
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        etcd.terminate()
        etcd.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
