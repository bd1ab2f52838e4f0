"""Fixtures: a system per transport that cleans up after itself and checks
that no process it started is left behind."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import Any

import pytest

import actors

TRANSPORTS = ["zmq", "pipe"]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "a condition") -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)  # between two checks of the condition


def ask_retrying(ref: actors.ActorRef, message: Any, timeout: float = 15.0) -> Any:
    """Ask ``ref``, retrying while it fails with ActorDeadError (a restart in
    progress: an ask that meets the death fails at once), until a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ref.ask(message, timeout=max(0.5, deadline - time.monotonic()))
        except actors.ActorDeadError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # between two attempts


def find(entries: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The entry named ``name`` anywhere in ``system.tree()``."""
    for entry in entries:
        if entry["name"] == name:
            return entry
        found = find(entry["children"], name)
        if found is not None:
            return found
    return None

def wait_gone(pids, timeout: float = 10.0) -> list[int]:
    """Wait until every pid has exited (a zombie counts as exited), using
    pidfds so the wait is an event, not a poll. Returns the pids still alive."""
    deadline = time.monotonic() + timeout
    alive = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)
        if not ready:
            alive.append(pid)
    return alive


def host_pids(system: actors.ActorSystem) -> set[int]:
    node = system._node
    with node.lock:
        return {h.pid for h in node.hosts.values() if h.pid}


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> str:
    """A keys folder (``actors keys new``) for systems bound to tcp://."""
    from transport.keys import create
    folder = str(tmp_path_factory.mktemp("keys") / "cluster")
    create(folder)
    return folder


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


@pytest.fixture
def system(transport):
    """An ActorSystem over each transport; afterwards, every process it
    started must be gone."""
    sys_ = actors.ActorSystem(transport, stop_timeout=5.0)
    try:
        yield sys_
    finally:
        sys_.shutdown()
        leftover = wait_gone(sys_._node.started_pids, 5.0)
        assert not leftover, f"processes left behind: {leftover}"
        assert not os.path.exists(sys_._node.rundir)


# -- multiprocessing-style processes (the actors.mp suites) -----------------------
CHILD_JOIN = 15.0  # seconds: the longest a test waits for a child that should end


@pytest.fixture
def procs():
    """Processes a test starts (``multiprocessing`` or ``actors.mp``): any
    still alive afterwards is killed and reaped, and the test fails."""
    started: list = []
    yield started
    leftover = []
    for p in started:
        try:
            alive = p.is_alive()
        except Exception:  # noqa: BLE001 - a closed Process: not alive
            alive = False
        if alive:
            leftover.append(p)
            p.kill()
        if p.pid is not None:
            p.join(CHILD_JOIN)
    assert not leftover, f"processes left running by the test: {leftover}"


def start(procs: list, ctx: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
    """Start ``target(*args, **kwargs)`` in a ``ctx.Process`` that ``procs`` reaps."""
    p = ctx.Process(target=target, args=args, kwargs=kwargs)
    procs.append(p)
    p.start()
    return p


def joined(p: Any, timeout: float = CHILD_JOIN) -> int | None:
    """Join ``p`` (it must end within ``timeout``) and return its exit code."""
    p.join(timeout)
    assert not p.is_alive(), f"{p} did not end within {timeout} s"
    return p.exitcode


@pytest.fixture(scope="module")
def pool(ctx):
    """A Pool(2) of the module's ``ctx`` (multiprocessing or actors.mp),
    shared by its tests, closed and joined at the end."""
    p = ctx.Pool(2)
    try:
        yield p
    finally:
        p.close()
        p.join()


# -- etcd (the cluster tests) --------------------------------------------------------
@pytest.fixture(scope="session")
def etcd(tmp_path_factory):
    """A real etcd server shared by the cluster tests (each uses a prefix of
    its own); the ``etcd`` binary must be installed (Debian: etcd-server)."""
    from etcd_server import ETCD, EtcdServer
    if not os.access(ETCD, os.X_OK):
        pytest.fail("the cluster tests start a real etcd: install the etcd binary "
                    "(Debian/Ubuntu: apt-get install etcd-server)", pytrace=False)
    server = EtcdServer(str(tmp_path_factory.mktemp("etcd") / "data"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster_url(etcd, request) -> str:
    """A cluster of this test's own: a prefix named after it."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return etcd.url(f"t/{name}-{os.getpid()}")
