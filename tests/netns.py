"""Network namespaces for tests that cut the link between two nodes
(tests/test_netns.py). Linux only, as root, with iproute2's ``ip``.

The drawing: one namespace per node, each with one interface ``eth0``
(10.213.0.N/24) whose other end is a port of the bridge ``br0`` in a
third namespace, the *switch*:

    node a            switch                  node b
    eth0 10.213.0.1 -- pa ]                [ pb -- eth0 10.213.0.2
                          [ br0 (bridge) ]

``cut(name)`` takes the node's port off the bridge: both ends of every
link stay up (carrier, addresses, routes), and the frames the node sends
go nowhere, as when a switch or a cable past the first hop dies. That is
a *silent* cut; netem (``tc qdisc ... netem loss 100%``) would do the
same, but needs the ``sch_netem`` kernel module, which not every machine
has. ``cut(name, how="down")`` sets the node's own interface down
instead (its routes go, its peer sees no carrier): a louder cut that the
node itself can see. ``heal(name)`` undoes either.

Every namespace name holds the pytest process's pid, so two runs never
share one; the addresses exist only inside them. :meth:`Net.close` kills
what still runs in them (``ip netns pids``: only processes this test
started can be in a namespace it made) and deletes them; namespaces left
by a run that died without cleaning up are deleted by the next one.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time

__all__ = ["Net", "unavailable"]

PREFIX = "actors-t"
SUBNET = "10.213.0"
_serial = itertools.count()


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's ip (apt-get install iproute2)"
    probe = f"{PREFIX}{os.getpid()}-probe{next(_serial)}"
    added = ip("netns", "add", probe, check=False)
    if added.returncode != 0:
        return f"ip netns add is refused here: {added.stderr.strip()}"
    bridge = ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
    ip("netns", "del", probe, check=False)
    if bridge.returncode != 0:
        return f"no bridge in a namespace here: {bridge.stderr.strip()}"
    return None


def _delete_stale() -> None:
    """Delete the namespaces of test runs whose pytest is gone."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):].partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            ip("netns", "del", name, check=False)


class Net:
    """Nodes ``names`` (one namespace each) on one bridge (see module doc)."""

    def __init__(self, names: list[str]) -> None:
        _delete_stale()
        tag = f"{PREFIX}{os.getpid()}-{next(_serial)}"
        self.switch = f"{tag}-sw"
        self.spaces = {name: f"{tag}-{name}" for name in names}
        self.addresses = {name: f"{SUBNET}.{i}" for i, name in enumerate(names, 1)}
        self._made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        sw = self.switch
        ip("netns", "add", sw)
        self._made.append(sw)
        ip("-n", sw, "link", "add", "br0", "type", "bridge")
        ip("-n", sw, "link", "set", "br0", "up")
        for name, space in self.spaces.items():
            ip("netns", "add", space)
            self._made.append(space)
            ip("-n", space, "link", "set", "lo", "up")
            port = self.port(name)
            # made in the switch; its other end moves into the node's namespace
            ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", space)
            ip("-n", sw, "link", "set", port, "master", "br0")
            ip("-n", sw, "link", "set", port, "up")
            ip("-n", space, "addr", "add", f"{self.addresses[name]}/24", "dev", "eth0")
            ip("-n", space, "link", "set", "eth0", "up")

    def port(self, name: str) -> str:
        return f"p{name}"

    def command(self, name: str, argv: list[str]) -> list[str]:
        """``argv`` run inside node ``name``'s namespace."""
        return ["ip", "netns", "exec", self.spaces[name], *argv]

    def cut(self, name: str, how: str = "bridge") -> None:
        """Cut node ``name`` off the others: ``bridge`` (silent: its port
        leaves the bridge) or ``down`` (its own interface goes down)."""
        if how == "bridge":
            ip("-n", self.switch, "link", "set", self.port(name), "nomaster")
        elif how == "down":
            ip("-n", self.spaces[name], "link", "set", "eth0", "down")
        else:
            raise ValueError(f"how must be 'bridge' or 'down', got {how!r}")

    def heal(self, name: str) -> None:
        """Join node ``name`` to the others again, whichever way it was cut."""
        ip("-n", self.spaces[name], "link", "set", "eth0", "up")
        ip("-n", self.switch, "link", "set", self.port(name), "master", "br0")

    def pids(self, name: str) -> list[int]:
        """The processes in node ``name``'s namespace."""
        done = ip("netns", "pids", self.spaces[name], check=False)
        return [int(p) for p in done.stdout.split() if p.isdigit()]

    def close(self, timeout: float = 10.0) -> None:
        """Kill what still runs in the namespaces (SIGKILL, then wait for
        them to go), then delete the namespaces."""
        for space in self._made:
            self._kill(space, timeout)
        for space in reversed(self._made):
            ip("netns", "del", space, check=False)
        self._made.clear()

    @staticmethod
    def _kill(space: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            done = ip("netns", "pids", space, check=False)
            pids = [int(p) for p in done.stdout.split() if p.isdigit()]
            if not pids:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"processes left in namespace {space}: {pids}")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)  # between two listings, while the killed ones exit
