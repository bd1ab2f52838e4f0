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

    def __init__(self, data_dir: str, port: int | None = None) -> None:
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
        return f"etcd://{self.endpoint}/{prefix}"

    def start(self, timeout: float = 20.0) -> None:
        client = f"http://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "test", "--data-dir", self.data_dir,
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", "--heartbeat-interval", "10",
             "--election-timeout", "100", "--log-level", "warn"],
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while True:  # until it serves (its health endpoint says so)
            try:
                if requests.get(f"{client}/health", timeout=0.5).json().get("health") == "true":
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
