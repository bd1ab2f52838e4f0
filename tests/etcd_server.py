"""A real etcd server for the cluster tests: the ``etcd`` binary (Debian's
``etcd-server`` package; .ci/run installs it) on free loopback ports, with
its data in a temporary folder, started and stopped by PID.

Raft timings are short (heartbeat 10 ms, election 100 ms) so that leases
of 1 s are allowed (etcd's minimum TTL is 1.5 election timeouts) and a
restart elects itself at once.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import requests

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdServer:
    """One etcd member on 127.0.0.1 (see module doc)."""

    def __init__(self, data_dir: str, port: int | None = None,
                 tls: dict[str, str] | None = None) -> None:
        """``tls``: ``ca``, ``cert`` and ``key`` files: https only, and a
        client must present a certificate the CA signed."""
        self.tls = tls
        self.data_dir = data_dir
        self.port = port or free_port()
        self.peer_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(os.path.dirname(data_dir.rstrip("/")) or ".",
                                     f"etcd-{self.port}.log")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, prefix: str) -> str:
        return f"{'etcds' if self.tls else 'etcd'}://{self.endpoint}/{prefix}"

    def start(self, timeout: float = 20.0) -> None:
        client = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        secure = [] if not self.tls else [
            "--cert-file", self.tls["cert"], "--key-file", self.tls["key"],
            "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "test", "--data-dir", self.data_dir,
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", "--heartbeat-interval", "10",
             "--election-timeout", "100", "--log-level", "warn", *secure],
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        auth = {} if not self.tls else {"verify": self.tls["ca"],
                                        "cert": (self.tls["client_cert"], self.tls["client_key"])}
        while True:  # until it serves (its health endpoint says so)
            try:
                if requests.get(f"{client}/health", timeout=0.5,
                                **auth).json().get("health") == "true":
                    return
            except (requests.RequestException, ValueError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not serve within {timeout} s; see {self.log_path}")
            time.sleep(0.02)  # between two checks of its health

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def make_tls(folder: str) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate,
    made with openssl in ``folder``: the paths, by role."""
    import subprocess as sp

    def run(*args: str) -> None:
        sp.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    os.makedirs(folder, exist_ok=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    with open(os.path.join(folder, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    for who in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout",
            f"{who}.key", "-out", f"{who}.csr")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", f"{who}.crt")
    path = lambda name: os.path.join(folder, name)  # noqa: E731
    return {"ca": path("ca.crt"), "cert": path("server.crt"), "key": path("server.key"),
            "client_cert": path("client.crt"), "client_key": path("client.key")}
